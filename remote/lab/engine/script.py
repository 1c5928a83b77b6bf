"""The PowerShell engine core: tokenizer, parameter binding, the command table and the runner
(statements, pipelines, scripts). Commands register themselves with ``@native`` / ``@cmdlet``
(remote/lab/engine/natives.py, cmdlets.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Optional


from remote.lab import api

from remote.lab.engine.formats import *  # noqa: F401,F403

# --- the script tokenizer ("a simple command line": words, quotes, -Name value, a,b,c, pipes) -------------

class ScriptTooComplex(Exception):
    """Beyond a simple command line; ``word`` is what PowerShell would have tried to run."""

    def __init__(self, word: str):
        super().__init__(word)
        self.word = word


@dataclass
class Tok:
    value: Any
    quoted: bool = False
    param: Optional[str] = None  # "-Name" → "Name"
    attached: Any = None  # "-Name:value" → value (``_NOVALUE`` when absent)


_NOVALUE = object()
_WORD_END = set(" \t\r\n;|,'\"{}()")


def tokenize_script(text: str) -> list[list[list[Tok]]]:
    """Statements → commands → tokens. Raises ScriptTooComplex for expressions, variables, blocks
    other than a simple ``{ $_.Prop -op value }``, redirections…"""
    statements: list[list[list[Tok]]] = []
    cmds: list[list[Tok]] = []
    toks: list[Tok] = []
    i, n = 0, len(text)

    def end_command() -> None:
        nonlocal toks
        if toks:
            cmds.append(toks)
        toks = []

    def end_statement() -> None:
        nonlocal cmds
        end_command()
        if cmds:
            statements.append(cmds)
        cmds = []

    def read_value(i: int) -> tuple[Any, bool, int]:
        c = text[i]
        if c == "'":
            j, buf = i + 1, []
            while j < n:
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    return "".join(buf), True, j + 1
                buf.append(text[j])
                j += 1
            raise ScriptTooComplex(text[i:].split()[0])
        if c == '"':
            j, buf = i + 1, []
            while j < n:
                ch = text[j]
                if ch == "`" and j + 1 < n:
                    buf.append({"n": "\n", "r": "\r", "t": "\t", "0": "\0"}.get(text[j + 1], text[j + 1]))
                    j += 2
                    continue
                if ch == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    return "".join(buf), True, j + 1
                if ch == "$" and j + 1 < n and (text[j + 1].isalnum() or text[j + 1] in "_({:"):
                    raise ScriptTooComplex('"' + text[i + 1:j + 1])
                buf.append(ch)
                j += 1
            raise ScriptTooComplex(text[i:].split()[0])
        if c == "{":
            depth, j, q = 0, i, None
            while j < n:
                ch = text[j]
                if q:
                    if ch == q:
                        q = None
                elif ch in "'\"":
                    q = ch
                elif ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        return ScriptBlock(text[i + 1:j]), False, j + 1
                j += 1
            raise ScriptTooComplex("{")
        if c in "$@([" or c == ")":
            raise ScriptTooComplex(re.split(r"\s", text[i:], maxsplit=1)[0])
        j = i
        while j < n and text[j] not in _WORD_END:
            if text[j] == "`" and j + 1 < n:
                j += 2
                continue
            j += 1
        word = text[i:j]
        if word in (">", ">>", "2>", "2>&1", "*>") or word.startswith(("2>", ">")):
            raise ScriptTooComplex(word)
        return word, False, j

    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
        elif c == "`" and i + 1 < n and text[i + 1] in "\r\n":
            i += 2
        elif c in "\r\n;":
            end_statement()
            i += 1
        elif c == "|":
            if not toks:
                raise ScriptTooComplex("|")
            end_command()
            i += 1
        elif c == "#":
            while i < n and text[i] not in "\r\n":
                i += 1
        elif c == "&" and not toks:
            i += 1
        else:
            value, quoted, i = read_value(i)
            tok = Tok(value, quoted)
            if not quoted and isinstance(value, str) and re.match(r"^-[A-Za-z_][\w-]*(:.*)?$", value) and toks:
                name, colon, rest = value[1:].partition(":")
                tok.param = name
                tok.attached = _NOVALUE
                if colon:
                    if rest:
                        tok.attached = rest
                    else:  # -Name: value
                        while i < n and text[i] in " \t":
                            i += 1
                        if i < n and text[i] not in "\r\n;|":
                            v, _q, i = read_value(i)
                            tok.attached = v
            # a,b,c → one list argument
            values = [tok.attached if tok.param is not None else tok.value]
            j = i
            while True:
                k = j
                while k < n and text[k] in " \t":
                    k += 1
                if k < n and text[k] == ",":
                    k += 1
                    while k < n and text[k] in " \t":
                        k += 1
                    if k >= n or text[k] in "\r\n;|":
                        raise ScriptTooComplex(",")
                    v, _q, j = read_value(k)
                    values.append(v)
                    continue
                break
            if len(values) > 1:
                if tok.param is not None:
                    tok.attached = values
                else:
                    tok.value, tok.quoted = values, True
                i = j
            toks.append(tok)
    end_statement()
    return statements


@dataclass
class ScriptBlock:
    text: str
    body: Any = None  # its parsed statements (remote/lab/engine/language.py), when parsed

    def __str__(self) -> str:
        return self.text


# --- binding ------------------------------------------------------------------------------------------------


@dataclass
class Param:
    name: str
    kind: str = "str"  # str | int | switch | list | any
    position: Optional[int] = None
    aliases: tuple[str, ...] = ()


@dataclass
class Cmdlet:
    name: str
    params: list[Param]
    run: Callable[..., list]
    noun_verb: str = ""  # Microsoft.PowerShell.Commands.<X>Command for error ids
    changes_state: bool = False


class Args:
    """One command's arguments: ('param', name, value|_NOVALUE) and ('pos', value) items."""

    def __init__(self, items: list[tuple]):
        self.items = items

    @classmethod
    def from_psrp(cls, params: list[tuple[Optional[str], Any]]) -> "Args":
        items: list[tuple] = []
        for name, value in params:
            if name is None:
                items.append(("pos", value))
            else:
                items.append(("param", name.lstrip("-"), True if value is None else value))
        return cls(items)

    @classmethod
    def from_tokens(cls, toks: list[Tok]) -> "Args":
        items: list[tuple] = []
        for t in toks:
            if t.param is not None:
                items.append(("param", t.param, t.attached))
            else:
                items.append(("pos", t.value))
        return cls(items)

    def native_argv(self) -> list[str]:
        argv: list[str] = []
        for it in self.items:
            if it[0] == "param":
                argv.append("-" + it[1])
                if it[2] is not _NOVALUE and it[2] is not True:
                    argv.append(_argstr(it[2]))
            else:
                argv.append(_argstr(it[1]))
        return argv


def _argstr(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(_argstr(x) for x in v)
    if isinstance(v, bool):
        return "True" if v else "False"
    return str(v)


def bind(cmd: Cmdlet, args: Args) -> dict[str, Any]:
    """Parameter binding (names case-insensitive, unique prefixes and aliases accepted)."""
    bound: dict[str, Any] = {}
    positional: list[Any] = []
    items = list(args.items)
    k = 0
    while k < len(items):
        it = items[k]
        if it[0] == "pos":
            positional.append(it[1])
            k += 1
            continue
        name, value = it[1], it[2]
        p = _find_param(cmd, name)
        if p is None:
            raise Terminate(api.ErrorSpec(
                message=f"A parameter cannot be found that matches parameter name '{name}'.",
                fully_qualified_error_id=f"NamedParameterNotFound,{_cmd_class(cmd)}",
                category=CAT_INVALID_ARGUMENT,
                exception_type="System.Management.Automation.ParameterBindingException",
                target=None, command_name=cmd.name))
        if p.kind == "switch":
            if value is _NOVALUE:
                value = True
            bound[p.name] = bool(value) if not isinstance(value, str) else value.lower() not in ("$false", "false", "0")
            k += 1
            continue
        if value is _NOVALUE:
            if k + 1 < len(items) and items[k + 1][0] == "pos":
                value = items[k + 1][1]
                k += 1
            else:
                raise Terminate(api.ErrorSpec(
                    message=(f"Missing an argument for parameter '{p.name}'. Specify a parameter of type "
                             f"'{_TYPE_NAMES[p.kind]}' and try again."),
                    fully_qualified_error_id=f"MissingArgument,{_cmd_class(cmd)}", category=CAT_INVALID_ARGUMENT,
                    exception_type="System.Management.Automation.ParameterBindingException",
                    command_name=cmd.name))
        bound[p.name] = _convert(cmd, p, value)
        k += 1
    free = sorted((p for p in cmd.params if p.position is not None and p.name not in bound),
                  key=lambda p: p.position)
    for value in positional:
        if not free:
            raise Terminate(api.ErrorSpec(
                message=f"A positional parameter cannot be found that accepts argument '{_argstr(value)}'.",
                fully_qualified_error_id=f"PositionalParameterNotFound,{_cmd_class(cmd)}",
                category=CAT_INVALID_ARGUMENT,
                exception_type="System.Management.Automation.ParameterBindingException", command_name=cmd.name))
        p = free.pop(0)
        bound[p.name] = _convert(cmd, p, value)
    return bound


_TYPE_NAMES = {"str": "System.String", "int": "System.Int32", "list": "System.String[]", "any": "System.Object",
               "switch": "System.Management.Automation.SwitchParameter"}


def _cmd_class(cmd: Cmdlet) -> str:
    return f"Microsoft.PowerShell.Commands.{cmd.noun_verb or cmd.name.replace('-', '')}Command"


def _find_param(cmd: Cmdlet, name: str) -> Optional[Param]:
    low = name.lower()
    for p in cmd.params:
        if p.name.lower() == low or low in (a.lower() for a in p.aliases):
            return p
    cands = [p for p in cmd.params if p.name.lower().startswith(low)]
    return cands[0] if len(cands) == 1 else None


def _convert(cmd: Cmdlet, p: Param, value: Any) -> Any:
    if p.kind == "list":
        vals = value if isinstance(value, (list, tuple)) else [value]
        return [str(v) if not isinstance(v, ScriptBlock) else v for v in vals]
    if p.kind == "int":
        vals = value if isinstance(value, (list, tuple)) else [value]
        try:
            return [int(str(v).strip()) for v in vals]
        except ValueError:
            raise Terminate(api.ErrorSpec(
                message=(f"Cannot bind parameter '{p.name}'. Cannot convert value \"{_argstr(value)}\" to type "
                         f"\"System.Int32\". Error: \"Input string was not in a correct format.\""),
                fully_qualified_error_id=f"CannotConvertArgumentNoMessage,{_cmd_class(cmd)}",
                category=CAT_INVALID_ARGUMENT,
                exception_type="System.Management.Automation.ParameterBindingException",
                command_name=cmd.name)) from None
    if p.kind == "str":
        return _argstr(value) if not isinstance(value, ScriptBlock) else value
    return value


# --- the engine ---------------------------------------------------------------------------------------------


class Context:
    """One pipeline run: the machine, the error stream, whether the host changed."""

    def __init__(self, machine: Any):
        self.m = machine
        self.errors: list[api.ErrorSpec] = []
        self.changed = False
        self.vars: dict[str, Any] = {}  # script variables (lower-case names)
        self.last_ok = True  # $?
        self.native_exit = 0  # a native command sets it (→ $LASTEXITCODE)
        self.exit_code: Optional[int] = None  # `exit N`
        self.exiting = False

    def error(self, spec: api.ErrorSpec) -> None:
        self.errors.append(spec)


NATIVE: dict[str, Callable[[Context, list[str], list], list]] = {}
CMDLETS: dict[str, Cmdlet] = {}
ALIASES = {"echo": "write-output", "write": "write-output", "gsv": "get-service", "gps": "get-process",
           "ps": "get-process", "select": "select-object", "iex": "invoke-expression", "gcim": "get-ciminstance",
           "gwmi": "get-wmiobject", "where": "where-object", "?": "where-object", "spsv": "stop-service",
           "sasv": "start-service", "ft": "format-table", "fl": "format-list", "sort": "sort-object",
           "%": "foreach-object", "foreach": "foreach-object", "measure": "measure-object", "sls": "select-string"}


def native(*names: str):
    def deco(fn):
        for nm in names:
            NATIVE[nm] = fn
        return fn
    return deco


def cmdlet(name: str, params: list[Param], noun_verb: str = "", changes_state: bool = False):
    def deco(fn):
        CMDLETS[name.lower()] = Cmdlet(name, params, fn, noun_verb, changes_state)
        return fn
    return deco


def resolve(ctx: Context, name: str) -> Optional[tuple[str, Any]]:
    """('native', fn) | ('cmdlet', Cmdlet) | None. Native names match with or without .exe and a
    System32 path; iisreset only exists where IIS is installed."""
    low = name.strip().lower()
    low = ALIASES.get(low, low)
    if low in CMDLETS:
        listing = _MODULE_LISTINGS.get(low)  # IIS cmdlets: only where IIS (its module) is installed
        if listing is not None and not ctx.m.orig.get(listing):
            return None
        return ("cmdlet", CMDLETS[low])
    base = re.split(r"[\\/]", low)[-1]
    if base != low and not re.match(r"^(c:)?[\\/]windows[\\/](system32|sysnative)[\\/][^\\/]+$", low):
        return None
    stem = base[:-4] if base.endswith(".exe") else base
    fn = NATIVE.get(stem)
    if fn is None:
        return None
    if stem == "iisreset" and not ctx.m.has_service("W3SVC"):
        return None
    return ("native", fn)


@dataclass
class Step:
    name: str
    kind: str  # native | cmdlet | script
    target: Any
    args: Args


def run_statements(machine: Any, statements: list[api.Statement]) -> api.Execution:
    """Run a PSRP pipeline (one or more statements) the way the WinRM PowerShell endpoint does."""
    ctx = Context(machine)
    output: list[Any] = []
    failure: Optional[api.ErrorSpec] = None
    for st in statements:
        if ctx.exiting:
            break  # `exit` ends the pipeline (LocalPipeline: ExitException → host SetShouldExit)
        if failure is None:
            try:
                output.extend(run_statement(ctx, st))
            except Terminate as t:
                failure = t.spec
        else:
            # later statements still run on the host; the client never sees their output or errors
            shadow = Context(machine)
            try:
                run_statement(shadow, st)
            except Terminate:
                pass
            ctx.changed = ctx.changed or shadow.changed
    return api.Execution(output=[wire(x) for x in output], errors=ctx.errors, failed=failure is not None,
                         failure=failure, changed_state=ctx.changed, exit_code=ctx.exit_code)


def run_statement(ctx: Context, st: api.Statement) -> list:
    steps: list[Step] = []
    for c in st:
        if c.is_script:
            steps.append(Step(c.text, "script", c.text, Args.from_psrp(c.parameters)))
            continue
        r = resolve(ctx, c.text)
        if r is None:
            raise Terminate(not_found_error(c.text))  # the pipeline cannot even be built
        steps.append(Step(c.text, r[0], r[1], Args.from_psrp(c.parameters)))
    return run_steps(ctx, steps)


def run_steps(ctx: Context, steps: list[Step]) -> list:
    bound: list[Any] = []
    for s in steps:  # parameters are bound before anything runs
        bound.append(bind(s.target, s.args) if s.kind == "cmdlet" else None)
    data: list = []
    for s, b in zip(steps, bound):
        if s.kind == "script":
            data = run_script(ctx, s.target, data)
        elif s.kind == "native":
            data = s.target(ctx, s.args.native_argv(), data)
        else:
            data = s.target.run(ctx, b, data)
    return data


_MODULE_LISTINGS = {"get-website": "iis_sites", "get-iisapppool": "iis_apppools"}


def run_script(ctx: Context, script: str, input_items: Optional[list] = None, via: str = "") -> list:
    """A script (add_script / Invoke-Expression): parsed and run by remote/lab/engine/interp.py; an error in
    one statement is written and the next runs; a parse error is a terminating ParseException."""
    if is_admin_check(script):
        return [bool(ctx.m.elevated)]
    if is_getservice_graph(script):
        return [ctx.m.getservice_text()]
    from remote.lab.engine.interp import run_text  # the interpreter builds on this module
    return run_text(ctx, script, input_items, via)


_ADMIN_CHECK = re.compile(
    r"^\(?\s*\[(System\.)?Security\.Principal\.WindowsPrincipal\]\s*\[(System\.)?Security\.Principal\.WindowsIdentity\]"
    r"::GetCurrent\(\)\s*\)?\s*\.IsInRole\(\s*\[(System\.)?Security\.Principal\.WindowsBuiltInRole\]\s*::\s*"
    r"[\"']?Administrator[\"']?\s*\)\s*;?\s*$", re.I)


def is_admin_check(script: str) -> bool:
    return bool(_ADMIN_CHECK.match(script.strip()))


# Get-Service | Select-Object Name, DisplayName, <calculated Status, StartType, DependentServices and
# ServicesDependedOn> | ConvertTo-Json: the engine does not evaluate hashtables or script blocks, so it knows
# this one pipeline (the dependency lists as names) and answers it from the machine (Machine.getservice_text)
_GETSERVICE_GRAPH = re.compile(
    r"^Get-Service\s*\|\s*Select-Object\s+Name\s*,\s*DisplayName\s*,.*@\{\s*Name\s*=\s*'DependentServices'.*"
    r"@\{\s*Name\s*=\s*'ServicesDependedOn'.*\}\s*\|\s*ConvertTo-Json\s*$", re.I | re.S)


def is_getservice_graph(script: str) -> bool:
    return bool(_GETSERVICE_GRAPH.match(script.strip()))
