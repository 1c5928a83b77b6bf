"""Evaluates the AST of remote/lab/engine/language.py against the emulated machine.

Commands are the engine's table (remote/lab/engine/script.py ``resolve``: natives and cmdlets);
values are plain Python (str, int, float, bool, None, list, dict) plus the engine's ``PSObj``.
PowerShell semantics kept here: a statement's error is written and the next statement runs
(``$?`` False); ``$ErrorActionPreference = 'Stop'`` turns errors into terminating ones; a native
command sets ``$LASTEXITCODE``; ``exit N`` ends the script with exit code N (the protocol server
reports it to the client through the host's SetShouldExit call, as PowerShell's LocalPipeline does).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Optional

from remote.lab import api
from remote.lab.engine import language as L
from remote.lab.engine.formats import CAT_INVALID_OPERATION, PSObj, display, format_objects
from remote.lab.engine.script import (_NOVALUE, Args, Context, ScriptBlock, Step, Terminate, bind,
                                      not_found_error, resolve)

CAT_PARSER_ERROR = 17  # System.Management.Automation.ErrorCategory.ParserError
CAT_NOT_IMPLEMENTED = 11


class ExitScript(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class ReturnScript(Exception):
    def __init__(self, value: list):
        super().__init__()
        self.value = value


def parse_error_spec(text: str, e: L.ParseError, via: str = "") -> api.ErrorSpec:
    """PowerShell's ParseException error record (Invoke-Expression's: ``<id>,…InvokeExpressionCommand``)."""
    fqid = e.error_id + (",Microsoft.PowerShell.Commands.InvokeExpressionCommand" if via == "iex" else "")
    return api.ErrorSpec(message=L.error_position(text, e.pos) + "\n" + e.message, fully_qualified_error_id=fqid,
                         category=CAT_PARSER_ERROR, exception_type="System.Management.Automation.ParseException",
                         command_name="Invoke-Expression" if via == "iex" else None)


def not_emulated_spec(text: str, e: L.NotEmulated) -> api.ErrorSpec:
    return api.ErrorSpec(
        message=(f"port80 lab: {e.what} is valid PowerShell that this emulated host does not run "
                 f"(see docs/lab.md).\n{L.error_position(text, e.pos)}"),
        fully_qualified_error_id="LabNotEmulated", category=CAT_NOT_IMPLEMENTED,
        exception_type="System.NotImplementedException")


# --- values -------------------------------------------------------------------------------------------------


def truthy(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, str):
        return v != ""
    if isinstance(v, list):
        if not v:
            return False
        return truthy(v[0]) if len(v) == 1 else True
    return True


def enumerate_value(v: Any) -> list:
    """What writing a value to the pipeline emits (arrays are unrolled, $null emits nothing from an
    expression statement)."""
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return list(v)
    return [v]


def collapse(items: list) -> Any:
    """A pipeline's result as a value: $null, the single object, or an array."""
    if not items:
        return None
    if len(items) == 1:
        return items[0]
    return list(items)


def to_str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, list):
        return " ".join(to_str(x) for x in v)  # $OFS
    if isinstance(v, dict):
        return "System.Collections.Hashtable"
    if isinstance(v, ScriptBlock):
        return v.text
    return display(v)


def to_number(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    if v is None:
        return 0
    s = to_str(v).strip()
    try:
        return int(s, 16) if s.lower().startswith("0x") else int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        raise Terminate(api.ErrorSpec(
            message=f'Cannot convert value "{s}" to type "System.Int32". Error: "Input string was not in a correct '
                    'format."', fully_qualified_error_id="InvalidCastFromStringToInteger",
            category=CAT_INVALID_OPERATION,
            exception_type="System.Management.Automation.RuntimeException")) from None


def member(v: Any, name: str) -> Any:
    low = name.lower()
    if isinstance(v, PSObj):
        if v.has(name):
            return v.get(name)
    elif isinstance(v, dict):
        for k, x in v.items():
            if str(k).lower() == low:
                return x
        if low == "count":
            return len(v)
        if low == "keys":
            return list(v.keys())
        if low == "values":
            return list(v.values())
        return None
    elif isinstance(v, str):
        if low == "length":
            return len(v)
        return None
    if isinstance(v, list):
        if low in ("count", "length"):
            return len(v)
        out = [member(x, name) for x in v]  # member enumeration
        out = [x for x in out if x is not None]
        return collapse(out) if len(out) != 1 else out[0]
    if low == "count" and v is not None:
        return 1
    return None


def _method(ctx: Context, v: Any, name: str, args: list) -> Any:
    low = name.lower()
    if isinstance(v, list) and low not in ("tostring", "gettype", "contains"):
        return collapse([_method(ctx, x, name, args) for x in v])
    if low == "tostring":
        return to_str(v)
    if isinstance(v, str):
        s = str(v)
        a = [to_str(x) for x in args]
        if low == "trim":
            return s.strip(a[0] if a else None)
        if low == "trimend":
            return s.rstrip(a[0] if a else None)
        if low == "trimstart":
            return s.lstrip(a[0] if a else None)
        if low == "tolower" or low == "tolowerinvariant":
            return s.lower()
        if low == "toupper" or low == "toupperinvariant":
            return s.upper()
        if low == "contains":
            return a[0] in s
        if low == "startswith":
            return s.startswith(a[0])
        if low == "endswith":
            return s.endswith(a[0])
        if low == "replace":
            return s.replace(a[0], a[1])
        if low == "split":
            return re.split("[" + re.escape(a[0]) + "]", s) if a else s.split()
        if low == "substring":
            start = int(to_number(args[0]))
            return s[start:start + int(to_number(args[1]))] if len(args) > 1 else s[start:]
        if low == "indexof":
            return s.find(a[0])
    if isinstance(v, list) and low == "contains":
        return any(_eq(x, args[0] if args else None, False) for x in v)
    raise Terminate(api.ErrorSpec(
        message=f"Method invocation failed because [{_type_name(v)}] does not contain a method named '{name}'.",
        fully_qualified_error_id="MethodNotFound", category=CAT_INVALID_OPERATION,
        exception_type="System.Management.Automation.RuntimeException"))


def _type_name(v: Any) -> str:
    if isinstance(v, PSObj):
        return v.type_names[0].split("#")[0]
    return {str: "System.String", int: "System.Int32", float: "System.Double", bool: "System.Boolean",
            list: "System.Object[]", dict: "System.Collections.Hashtable"}.get(type(v), "System.Object")


def _eq(a: Any, b: Any, cs: bool) -> bool:
    if isinstance(a, bool):
        return a == truthy(b)
    if isinstance(a, (int, float)):
        try:
            return a == to_number(b)
        except Terminate:
            return False
    if a is None:
        return b is None
    sa, sb = to_str(a), to_str(b)
    return sa == sb if cs else sa.lower() == sb.lower()


def _cmp(a: Any, b: Any, cs: bool) -> int:
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        nb = to_number(b)
        return (a > nb) - (a < nb)
    sa, sb = to_str(a), to_str(b)
    if not cs:
        sa, sb = sa.lower(), sb.lower()
    return (sa > sb) - (sa < sb)


def _like(a: Any, pat: Any, cs: bool) -> bool:
    s, p = to_str(a), to_str(pat)
    return fnmatch.fnmatchcase(s, p) if cs else fnmatch.fnmatchcase(s.lower(), p.lower())


def compare(ctx: Context, op: str, a: Any, b: Any) -> Any:
    cs = op.startswith("c") and op[1:] in L._COMPARISON
    base = op[1:] if op[:1] in ("c", "i") and op[1:] in L._COMPARISON else op
    if base in ("contains", "notcontains"):
        hit = any(_eq(x, b, cs) for x in enumerate_value(a) or [a])
        return hit if base == "contains" else not hit
    if base in ("in", "notin"):
        hit = any(_eq(x, a, cs) for x in enumerate_value(b) or [b])
        return hit if base == "in" else not hit
    if base == "join":
        return to_str(b).join(to_str(x) for x in enumerate_value(a))
    if base == "split":
        return re.split(to_str(b), to_str(a), flags=0 if cs else re.I)
    if base == "replace":
        pat, rep = (enumerate_value(b) + [""])[:2]
        rep = re.sub(r"\$(\d+)", r"\\\1", to_str(rep))
        return re.sub(to_str(pat), rep, to_str(a), flags=0 if cs else re.I)
    if base in ("is", "isnot", "as"):
        raise Terminate(not_emulated_spec("", L.NotEmulated(f"the -{base} operator", 0)))
    if isinstance(a, list):  # comparison operators filter arrays
        return [x for x in a if truthy(compare(ctx, op, x, b)) or (compare(ctx, op, x, b) is True)]
    if base == "eq":
        return _eq(a, b, cs)
    if base == "ne":
        return not _eq(a, b, cs)
    if base in ("gt", "ge", "lt", "le"):
        c = _cmp(a, b, cs)
        return {"gt": c > 0, "ge": c >= 0, "lt": c < 0, "le": c <= 0}[base]
    if base in ("like", "notlike"):
        hit = _like(a, b, cs)
        return hit if base == "like" else not hit
    if base in ("match", "notmatch"):
        m = re.search(to_str(b), to_str(a), 0 if cs else re.I)
        if m is not None and base == "match":
            ctx.vars["matches"] = {**{0: m.group(0)}, **{i + 1: g for i, g in enumerate(m.groups())},
                                   **m.groupdict()}
        return (m is not None) if base == "match" else m is None
    raise Terminate(not_emulated_spec("", L.NotEmulated(f"the -{op} operator", 0)))


# --- evaluation -----------------------------------------------------------------------------------------------


_ENV_DEFAULTS = {"systemroot": "C:\\Windows", "windir": "C:\\Windows", "systemdrive": "C:",
                 "programfiles": "C:\\Program Files", "processor_architecture": "AMD64", "os": "Windows_NT",
                 "comspec": "C:\\Windows\\system32\\cmd.exe", "psmodulepath": "", "temp": "", "tmp": ""}


def get_var(ctx: Context, name: str) -> Any:
    if name in ("true",):
        return True
    if name == "false":
        return False
    if name == "null":
        return None
    if name == "?":
        return ctx.last_ok
    if name == "psitem":
        name = "_"
    if name.startswith("env:"):
        key = name[4:]
        m = ctx.m
        if key == "computername":
            return m.hostname.upper()
        if key == "username":
            return str(m.user).split("\\")[-1]
        if key == "userdomain":
            return str(m.user).split("\\")[0].upper() if "\\" in str(m.user) else m.hostname.upper()
        if key == "temp" or key == "tmp":
            return f"C:\\Users\\{str(m.user).split(chr(92))[-1]}\\AppData\\Local\\Temp"
        return _ENV_DEFAULTS.get(key)
    if name == "erroractionpreference" and name not in ctx.vars:
        return "Continue"
    if name == "pid":
        return 4242
    return ctx.vars.get(name)


def set_var(ctx: Context, name: str, value: Any) -> None:
    if name in ("true", "false", "null", "?"):
        raise Terminate(api.ErrorSpec(
            message=f"Cannot overwrite variable {name} because it is read-only or constant.",
            fully_qualified_error_id="VariableNotWritable", category=CAT_INVALID_OPERATION + 21,
            exception_type="System.Management.Automation.SessionStateUnauthorizedAccessException"))
    ctx.vars[name] = value


class Interp:
    def __init__(self, ctx: Context, text: str):
        self.ctx = ctx
        self.text = text
        if not hasattr(ctx, "vars"):
            ctx.vars = {}

    # statements
    def run_block(self, stmts: list[L.Node]) -> list:
        out: list = []
        for st in stmts:
            try:
                out.extend(self.statement(st))
            except Terminate as t:
                self.ctx.error(t.spec)
                self.ctx.last_ok = False
                if str(get_var(self.ctx, "erroractionpreference")).lower() == "stop":
                    raise
        return out

    def statement(self, st: L.Node) -> list:
        k = st.kind
        if k == "pipeline":
            return self.pipeline(st)
        if k == "assign":
            value = self.value_of(st.c)
            target = st.a
            if target.kind != "var":
                raise Terminate(not_emulated_spec(self.text, L.NotEmulated("assignment to a property", st.pos)))
            if st.b == "+=":
                cur = get_var(self.ctx, target.a)
                value = self.binop("+", cur, value)
            elif st.b == "-=":
                value = self.binop("-", get_var(self.ctx, target.a), value)
            set_var(self.ctx, target.a, value)
            self.ctx.last_ok = True
            return []
        if k == "if":
            for cond, body in st.a:
                if truthy(self.value_of(cond)):
                    return self.run_block(body)
            if st.b is not None:
                return self.run_block(st.b)
            return []
        if k == "foreach":
            out: list = []
            for item in enumerate_value(self.value_of(st.b)):
                set_var(self.ctx, st.a, item)
                out.extend(self.run_block(st.c))
            return out
        if k == "exit":
            code = 0
            if st.a is not None:
                v = self.value_of(st.a)
                try:
                    code = int(to_number(v)) if v is not None else 0
                except Terminate:
                    code = 0
            raise ExitScript(code)
        if k == "return":
            raise ReturnScript(self.pipeline(st.a) if st.a is not None else [])
        if k == "throw":
            v = self.value_of(st.a) if st.a is not None else None
            msg = to_str(v) if v is not None else "ScriptHalted"
            raise Terminate(api.ErrorSpec(message=msg, fully_qualified_error_id=msg if v is not None else
                                          "ScriptHalted", category=CAT_INVALID_OPERATION + 7,
                                          exception_type="System.Management.Automation.RuntimeException",
                                          target=msg if v is not None else None))
        return enumerate_value(self.expr(st))

    def value_of(self, node: L.Node) -> Any:
        if node.kind == "pipeline":
            return collapse(self.pipeline(node))
        if node.kind in ("if", "foreach"):
            return collapse(self.statement(node))
        return self.expr(node)

    # pipelines
    def pipeline(self, p: L.Node) -> list:
        elements = p.a
        first = elements[0]
        if isinstance(first, L.Node):
            data = enumerate_value(self.expr(first))
            self.ctx.last_ok = True
            rest = elements[1:]
        else:
            data = []
            rest = elements
        for i, cmd in enumerate(rest):
            data = self.command(cmd, data, first=(i == 0 and not isinstance(first, L.Node)))
        return data

    def command(self, c: L.CommandAst, data: list, first: bool) -> list:
        ctx = self.ctx
        name = c.name if isinstance(c.name, str) else to_str(self.expr(c.name))
        r = resolve(ctx, name)
        if r is None:
            raise Terminate(not_found_error(name))
        items: list[tuple] = []
        for a in c.args:
            if a.kind == "param":
                items.append(("param", a.name, _NOVALUE if a.value is None else self.arg_value(a.value)))
            else:
                items.append(("pos", self.arg_value(a.value)))
        args = Args(items)
        errors_before = len(ctx.errors)
        if r[0] == "native":
            ctx.native_exit = 0
            out = r[1](ctx, args.native_argv(), data)
            code = getattr(ctx, "native_exit", 0) or 0
            ctx.vars["lastexitcode"] = code
            ok = code == 0
        else:
            b = bind(r[1], args)
            out = r[1].run(ctx, b, data)
            ok = len(ctx.errors) == errors_before
        if c.drop_errors:
            del ctx.errors[errors_before:]
        elif c.merge_errors:
            merged = ctx.errors[errors_before:]
            del ctx.errors[errors_before:]
            out = list(out) + [PSObj(["System.Management.Automation.ErrorRecord", "System.Object"],
                                     {"Exception": e.message}, e.message) for e in merged]
        ctx.last_ok = ok
        if not ok and len(ctx.errors) > errors_before and \
                str(get_var(ctx, "erroractionpreference")).lower() == "stop":
            spec = ctx.errors.pop()
            raise Terminate(spec)
        if c.drop_output:
            return []
        return list(out)

    def arg_value(self, node: L.Node) -> Any:
        if node.kind == "sblock":
            return ScriptBlock(node.b, body=node.a)
        v = self.expr(node)
        return v

    # expressions
    def expr(self, n: L.Node) -> Any:
        k = n.kind
        if k == "const":
            return n.a
        if k == "var":
            return get_var(self.ctx, n.a)
        if k == "expand":
            return "".join(p if isinstance(p, str) else to_str(self.expr(p)) for p in n.a)
        if k == "paren":
            return self.value_of(n.a)
        if k == "sub":
            return collapse(self.run_block(n.a))
        if k == "arraysub":
            return list(self.run_block(n.a))
        if k == "array":
            return [self.expr(x) for x in n.a]
        if k == "hash":
            return {to_str(self.expr(kk)): self.value_of(vv) for kk, vv in n.a}
        if k == "sblock":
            return ScriptBlock(n.b, body=n.a)
        if k == "pipeline":
            return collapse(self.pipeline(n))
        if k == "not":
            return not truthy(self.expr(n.a))
        if k == "neg":
            return -to_number(self.expr(n.a))
        if k == "range":
            a, b = int(to_number(self.expr(n.a))), int(to_number(self.expr(n.b)))
            return list(range(a, b + 1)) if a <= b else list(range(a, b - 1, -1))
        if k == "bin":
            op = n.a
            if op == "and":
                return truthy(self.expr(n.b)) and truthy(self.expr(n.c))
            if op == "or":
                return truthy(self.expr(n.b)) or truthy(self.expr(n.c))
            if op == "xor":
                return truthy(self.expr(n.b)) != truthy(self.expr(n.c))
            left, right = self.expr(n.b), self.expr(n.c)
            if op in ("+", "-", "*", "/", "%"):
                return self.binop(op, left, right)
            return compare(self.ctx, op, left, right)
        if k == "member":
            return member(self.expr(n.a), n.b)
        if k == "call":
            return _method(self.ctx, self.expr(n.a), n.b, [self.expr(x) for x in n.c])
        if k == "index":
            v, i = self.expr(n.a), self.expr(n.b)
            if isinstance(v, dict):
                return member(v, to_str(i))
            seq = v if isinstance(v, (list, str)) else [v]
            try:
                return seq[int(to_number(i))]
            except IndexError:
                return None
        if k == "cast":
            return self.cast(n.a, self.expr(n.b))
        if k in ("type", "static", "scall"):
            return self.static(n)
        raise Terminate(not_emulated_spec(self.text, L.NotEmulated(f"the expression '{k}'", n.pos)))

    def binop(self, op: str, a: Any, b: Any) -> Any:
        if op == "+":
            if isinstance(a, list):
                return a + enumerate_value(b)
            if isinstance(a, str):
                return a + to_str(b)
            if a is None:
                return b
            return to_number(a) + to_number(b)
        x, y = to_number(a), to_number(b)
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "%":
            return x % y
        r = x / y
        return int(r) if float(r).is_integer() else r

    def cast(self, tname: str, v: Any) -> Any:
        t = tname.lower().replace("system.", "")
        if t in ("int", "int32", "int64", "long", "uint32", "uint16", "int16", "byte"):
            return int(to_number(v))
        if t in ("double", "float", "decimal", "single"):
            return float(to_number(v))
        if t == "string":
            return to_str(v)
        if t == "bool" or t == "boolean":
            return truthy(v)
        if t in ("array", "object[]"):
            return enumerate_value(v)
        if t in ("pscustomobject", "psobject") and isinstance(v, dict):
            from remote.lab.engine.formats import selected_to_string
            return PSObj(["System.Management.Automation.PSCustomObject", "System.Object"], v,
                         selected_to_string(v))
        if t in ("void",):
            return None
        raise Terminate(not_emulated_spec(self.text, L.NotEmulated(f"the cast [{tname}]", 0)))

    def static(self, n: L.Node) -> Any:
        if n.kind == "type":
            raise Terminate(not_emulated_spec(self.text, L.NotEmulated(f"the type literal [{n.a}]", n.pos)))
        t = n.a.a.lower().replace("system.", "") if n.a.kind == "type" else ""
        name = n.b.lower()
        m = self.ctx.m
        if t == "environment" and name == "machinename":
            return m.hostname.upper()
        if t == "environment" and name == "username":
            return str(m.user).split("\\")[-1]
        if t == "environment" and name == "osversion":
            return f"Microsoft Windows NT {m.os['version']}.0"
        if t == "net.dns" and name == "gethostname":
            return m.hostname
        raise Terminate(not_emulated_spec(self.text, L.NotEmulated(f"[{n.a.a if n.a.kind == 'type' else ''}]::"
                                                                   f"{n.b}", n.pos)))


def run_text(ctx: Context, text: str, input_items: Optional[list] = None, via: str = "") -> list:
    """Run a script's text; output so far is returned when it ends with ``exit``."""
    try:
        stmts = L.parse(text)
    except L.ParseError as e:
        raise Terminate(parse_error_spec(text, e, via)) from None
    except L.NotEmulated as e:
        raise Terminate(not_emulated_spec(text, e)) from None
    it = Interp(ctx, text)
    out: list = []
    if input_items:
        ctx.vars["input"] = list(input_items)
    for st in stmts:
        try:
            out.extend(it.statement(st))
        except Terminate as t:
            if via == "iex":
                # a terminating error ends Invoke-Expression itself (recorded: pypsrp's
                # test_client_execute_ps_failure, `Get-ServiceTypo` → PipelineState Failed, no ERROR_RECORD)
                raise
            ctx.error(t.spec)
            ctx.last_ok = False
            if str(get_var(ctx, "erroractionpreference")).lower() == "stop":
                raise
        except ExitScript as e:
            ctx.exit_code = e.code
            ctx.exiting = True
            return out
        except ReturnScript as r:
            out.extend(r.value)
            return out
    return out


def invoke_block(ctx: Context, block: ScriptBlock, item: Any = None, set_item: bool = True) -> list:
    """Run a script block (Where-Object / ForEach-Object) with ``$_`` bound to ``item``."""
    body = block.body
    if body is None:
        try:
            body = L.parse(block.text)
        except L.ParseError as e:
            raise Terminate(parse_error_spec(block.text, e)) from None
        except L.NotEmulated as e:
            raise Terminate(not_emulated_spec(block.text, e)) from None
    it = Interp(ctx, block.text)
    saved = ctx.vars.get("_")
    if set_item:
        ctx.vars["_"] = item
    try:
        return it.run_block(body)
    except ReturnScript as r:
        return r.value
    finally:
        ctx.vars["_"] = saved


def format_value_text(items: list) -> str:
    return format_objects(items)


__all__ = ["run_text", "invoke_block", "truthy", "compare", "member", "to_str", "ExitScript", "Step"]
