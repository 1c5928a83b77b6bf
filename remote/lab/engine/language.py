"""The PowerShell language, the part scripts real remoting clients send: a parser and an evaluator.

What it covers (PowerShell 5.1 semantics; sources: the PowerShell language specification 3.0 and
github.com/PowerShell/PowerShell src/System.Management.Automation/engine/parser):

* statements separated by newlines and ``;``; ``#`` comments and ``<# … #>`` blocks;
* pipelines ``a | b | c``; the first element may be an expression (``$x | Select-Object …``);
* commands with ``-Name value``, ``-Name:value``, switches, positional and ``a,b,c`` arguments,
  ``&`` calls, redirections ``2>&1`` / ``*>&1`` (merged into output) and ``>$null`` / ``2>$null``;
* expressions: numbers, '…' and "…" strings ("$var" and "$($expr)" expanded), ``$var``,
  ``$env:NAME``, ``$true/$false/$null``, ``$_``/``$PSItem``, ``$?``, ``$LASTEXITCODE``, ``(…)``,
  ``$(…)``, ``@(…)``, ``@{k=v}``, ``{ script block }``, ``[type]`` casts, member access ``.Name`` and
  ``.Count``/``.Length``, indexing ``[i]``, ``,`` arrays, ``..`` ranges; operators ``-not ! -and
  -or -xor`` ``-eq -ne -gt -ge -lt -le -like -notlike -match -notmatch -contains -notcontains -in
  -notin`` (``c``/``i`` prefixes), ``+ - * / %``;
* ``$x = …`` and ``+=``; ``if``/``elseif``/``else``; ``foreach ($x in …) {…}``; ``exit [n]``;
  ``return``; ``throw``.

What it does not cover is reported, never silently skipped: a construct outside this list
(``function``, ``while``, ``try``, ``switch``, classes…) is an error record saying the lab does not
emulate it; an unknown command is PowerShell's CommandNotFoundException; a syntax error is a
ParseException with PowerShell's error id and message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

# --- AST ------------------------------------------------------------------------------------------------------


@dataclass
class Node:
    kind: str
    a: Any = None
    b: Any = None
    c: Any = None
    pos: int = 0


@dataclass
class Arg:
    kind: str  # "param" | "pos"
    name: Optional[str] = None
    value: Optional[Node] = None  # None for a switch given without a value
    pos: int = 0


@dataclass
class CommandAst:
    name: Any  # str (bareword) or Node (& expression, quoted name)
    args: list[Arg] = field(default_factory=list)
    merge_errors: bool = False  # 2>&1
    drop_output: bool = False  # > $null
    drop_errors: bool = False  # 2> $null
    pos: int = 0
    text: str = ""


class ParseError(Exception):
    """A PowerShell parse error: its error id (``MissingEndCurlyBrace``…), message and offset."""

    def __init__(self, error_id: str, message: str, pos: int):
        super().__init__(message)
        self.error_id, self.message, self.pos = error_id, message, pos


class NotEmulated(Exception):
    """Valid PowerShell the lab does not run (reported as an error record, never silence)."""

    def __init__(self, what: str, pos: int):
        super().__init__(what)
        self.what, self.pos = what, pos


# PowerShell's ParserStrings (en-US)
MSG = {
    "MissingEndCurlyBrace": "Missing closing '}' in statement block or type definition.",
    "MissingEndParenthesisInExpression": "Missing closing ')' in expression.",
    "MissingEndParenthesisInSubexpression": "Missing closing ')' in subexpression.",
    "TerminatorExpectedAtEndOfString": "The string is missing the terminator: {0}.",
    "UnexpectedToken": "Unexpected token '{0}' in expression or statement.",
    "ExpectedValueExpression": "You must provide a value expression following the '{0}' operator.",
    "MissingOpenParenthesisInIfStatement": "Missing '(' after 'if' in if statement.",
    "IfStatementMissingCondition": "Missing condition in if statement after 'if ('.",
    "MissingEndParenthesisAfterStatement": "Missing closing ')' after expression in '{0}' statement.",
    "MissingStatementBlock": "Missing statement block after {0} ( condition ).",
    "MissingStatementBlockAfterElse": "Missing statement block after 'else' keyword.",
    "EmptyPipeElement": "An empty pipe element is not allowed.",
    "ExpressionsMustBeFirstInPipeline": "Expressions are only allowed as the first element of a pipeline.",
    "MissingEndSquareBracket": "Missing ']' at end of attribute or type literal.",
    "MissingArrayIndexExpression": "Array index expression is missing or not valid.",
    "MissingExpressionAfterToken": "Missing expression after '{0}'.",
    "MissingVariableNameAfterForeach": "Missing variable name after foreach.",
    "MissingInInForeach": "Missing 'in' after variable in foreach loop.",
    "MissingForeachStatement": "Missing statement body in foreach loop.",
    "MissingPropertyName": "Missing property name after reference operator.",
    "MissingEqualsInHashLiteral": "Missing '=' operator after key in hash literal.",
    "MissingEndCurlyBraceInHashLiteral": "The hash literal was incomplete.",
}

_COMPARISON = {"eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch", "contains",
               "notcontains", "in", "notin", "replace", "split", "join", "is", "isnot", "as"}
_ALL_OPS = ({o for o in _COMPARISON} | {"c" + o for o in _COMPARISON} | {"i" + o for o in _COMPARISON}
            | {"and", "or", "xor", "not", "band", "bor", "f"})
_UNSUPPORTED_KEYWORDS = {"function", "filter", "workflow", "while", "do", "for", "switch", "try", "trap",
                         "class", "enum", "using", "param", "begin", "process", "end", "data", "dynamicparam",
                         "configuration", "break", "continue"}
_DASHES = "-\u2013\u2014\u2015"
_VAR_RE = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z_][\w]*:[\w]+|[\w]+|\?|\^|\$))")
_NUM_RE = re.compile(r"(0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(kb|mb|gb|tb|pb|l|d)?(?!\w)", re.I)
_GENERIC_END = set(" \t\r\n;|&(){},")


class Parser:
    def __init__(self, text: str):
        self.t = text
        self.n = len(text)
        self.i = 0

    # -- low level
    def err(self, eid: str, *fmt: Any, pos: Optional[int] = None) -> ParseError:
        return ParseError(eid, MSG[eid].format(*fmt), self.i if pos is None else pos)

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.t[j] if j < self.n else ""

    def ws(self, newlines: bool = False) -> None:
        """Skip blanks, comments and line continuations (and newlines when ``newlines``)."""
        while self.i < self.n:
            c = self.t[self.i]
            if c in " \t\f\v\u00a0" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "`" and self.peek(1) in "\r\n" and self.peek(1):
                self.i += 2
                if self.t[self.i - 1] == "\r" and self.peek() == "\n":
                    self.i += 1
            elif c == "#":
                while self.i < self.n and self.t[self.i] not in "\r\n":
                    self.i += 1
            elif c == "<" and self.peek(1) == "#":
                end = self.t.find("#>", self.i + 2)
                if end < 0:
                    raise ParseError("MissingEndOfComment", "Missing end of comment ('#>').", self.i)
                self.i = end + 2
            else:
                return

    def word_at(self) -> str:
        m = re.match(r"[A-Za-z_][\w-]*", self.t[self.i:])
        return m.group(0) if m else ""

    def keyword(self) -> str:
        w = self.word_at()
        nxt = self.t[self.i + len(w):self.i + len(w) + 1]
        if w and (not nxt or nxt in " \t\r\n;({}$\"'"):
            return w.lower()
        return ""

    # -- statements
    def parse_script(self) -> list[Node]:
        stmts = self.statements(end="")
        if self.i < self.n:
            raise self.err("UnexpectedToken", self.t[self.i])
        return stmts

    def statements(self, end: str) -> list[Node]:
        out: list[Node] = []
        while True:
            self.ws(newlines=True)
            while self.peek() == ";":
                self.i += 1
                self.ws(newlines=True)
            if self.i >= self.n or (end and self.peek() == end):
                return out
            if self.peek() in ")}" and self.peek() != end:
                raise self.err("UnexpectedToken", self.peek())
            out.append(self.statement())
            self.ws()
            c = self.peek()
            if c in (";", "\r", "\n"):
                self.i += 1
            elif c and not (end and c == end):
                if c in ")}":
                    raise self.err("UnexpectedToken", c)
                raise self.err("UnexpectedToken", self._token_text())

    def _token_text(self) -> str:
        m = re.match(r"\S+?(?=[\s;|(){}]|$)", self.t[self.i:])
        return m.group(0) if m else self.peek()

    def statement(self) -> Node:
        start = self.i
        kw = self.keyword()
        if kw == "if":
            return self.if_statement()
        if kw == "foreach":
            return self.foreach_statement()
        if kw in ("exit", "return", "throw"):
            self.i += len(kw)
            self.ws()
            value = None
            if self.peek() and self.peek() not in ";\r\n}":
                value = self.pipeline()
            return Node(kw, value, pos=start)
        if kw in _UNSUPPORTED_KEYWORDS:
            raise NotEmulated(f"the '{kw}' statement", start)
        m = re.match(r"\$(\{[^}]*\}|[\w:]+)\s*(\+=|-=|=)(?!=)", self.t[self.i:])
        if m:
            target = self.primary()
            self.ws()
            op = "=" if self.peek() == "=" else self.t[self.i:self.i + 2]
            self.i += len(op)
            self.ws(newlines=False)
            if self.peek() in ("", ";", "\r", "\n"):
                raise self.err("ExpectedValueExpression", op)
            value = self.statement_value()
            return Node("assign", target, op, value, pos=start)
        return self.pipeline()

    def statement_value(self) -> Node:
        kw = self.keyword()
        if kw == "if":
            return self.if_statement()
        if kw == "foreach":
            return self.foreach_statement()
        return self.pipeline()

    def block(self, missing: ParseError) -> list[Node]:
        self.ws(newlines=True)
        if self.peek() != "{":
            raise missing
        open_at = self.i
        self.i += 1
        body = self.statements(end="}")
        if self.peek() != "}":
            raise self.err("MissingEndCurlyBrace", pos=open_at)
        self.i += 1
        return body

    def if_statement(self) -> Node:
        start = self.i
        clauses = []
        else_body = None
        kw = "if"
        while True:
            self.i += len(kw)
            self.ws(newlines=True)
            if self.peek() != "(":
                raise self.err("MissingOpenParenthesisInIfStatement")
            self.i += 1
            self.ws(newlines=True)
            if self.peek() == ")":
                raise self.err("IfStatementMissingCondition")
            cond = self.pipeline()
            self.ws(newlines=True)
            if self.peek() != ")":
                raise self.err("MissingEndParenthesisAfterStatement", kw)
            self.i += 1
            body = self.block(self.err("MissingStatementBlock", kw))
            clauses.append((cond, body))
            save = self.i
            self.ws(newlines=True)
            nk = self.keyword()
            if nk == "elseif":
                kw = "elseif"
                continue
            if nk == "else":
                self.i += 4
                else_body = self.block(self.err("MissingStatementBlockAfterElse"))
            else:
                self.i = save
            return Node("if", clauses, else_body, pos=start)

    def foreach_statement(self) -> Node:
        start = self.i
        self.i += len("foreach")
        self.ws(newlines=True)
        if self.peek() != "(":
            raise NotEmulated("the ForEach-Object alias 'foreach' in a pipeline", start)
        self.i += 1
        self.ws(newlines=True)
        m = _VAR_RE.match(self.t, self.i)
        if not m:
            raise self.err("MissingVariableNameAfterForeach")
        var = (m.group(1) or m.group(2)).lower()
        self.i = m.end()
        self.ws(newlines=True)
        if self.keyword() != "in":
            raise self.err("MissingInInForeach")
        self.i += 2
        self.ws(newlines=True)
        seq = self.pipeline()
        self.ws(newlines=True)
        if self.peek() != ")":
            raise self.err("MissingEndParenthesisAfterStatement", "foreach")
        self.i += 1
        body = self.block(self.err("MissingForeachStatement"))
        return Node("foreach", var, seq, body, pos=start)

    # -- pipelines
    def pipeline(self) -> Node:
        start = self.i
        elements: list[Any] = []
        while True:
            self.ws()
            if self.peek() == "|" or self.peek() in ("", ";", "\r", "\n", ")", "}"):
                raise self.err("EmptyPipeElement")
            if self._is_command_start():
                elements.append(self.command())
            else:
                if elements:
                    raise self.err("ExpressionsMustBeFirstInPipeline")
                expr = self.expression()
                elements.append(expr)
                self._redirections(None)
            self.ws()
            if self.peek() == "|" and self.peek(1) != "|":
                self.i += 1
                self.ws(newlines=True)
                continue
            return Node("pipeline", elements, pos=start)

    def _is_command_start(self) -> bool:
        c = self.peek()
        if c == "&" or c == ".":
            return c == "&" or self.peek(1) in "\\/" or self.peek(1).isalpha()
        if c in "\"'$(@[{!+0123456789" or c in _DASHES:
            return False
        return bool(c)

    def _redirections(self, cmd: Optional[CommandAst]) -> bool:
        self.ws()
        m = re.match(r"(\*|[1-6])?>(>)?(&1)?", self.t[self.i:])
        if not m or not m.group(0):
            return False
        self.i += m.end()
        stream = m.group(1) or "1"
        if m.group(3):
            if cmd is not None and stream in ("2", "*"):
                cmd.merge_errors = True
            return True
        self.ws()
        target = self.t[self.i:self.i + 5].lower()
        if target == "$null":
            self.i += 5
            if cmd is not None:
                if stream in ("1", "*"):
                    cmd.drop_output = True
                if stream in ("2", "*"):
                    cmd.drop_errors = True
            return True
        raise NotEmulated("redirection to a file", self.i)

    def command(self) -> CommandAst:
        start = self.i
        name: Any
        if self.peek() == "&":
            self.i += 1
            self.ws()
            name = self.primary() if self.peek() in "\"'$(" else self.generic_word()
        else:
            name = self.generic_word()
        cmd = CommandAst(name, pos=start)
        while True:
            self.ws()
            c = self.peek()
            if not c or c in "|;\r\n)}":
                break
            if self._redirections(cmd):
                continue
            if c in _DASHES and re.match(r"[A-Za-z_?]", self.peek(1)):
                apos = self.i
                m = re.match(r"[" + _DASHES + r"]([A-Za-z_?][\w-]*)(:)?", self.t[self.i:])
                assert m is not None
                self.i += m.end()
                if m.group(2):
                    self.ws()
                    cmd.args.append(Arg("param", m.group(1), self.argument(), apos))
                else:
                    cmd.args.append(Arg("param", m.group(1), None, apos))
                continue
            cmd.args.append(Arg("pos", None, self.argument(), self.i))
        cmd.text = self.t[start:self.i].strip()
        return cmd

    def argument(self) -> Node:
        items = [self.arg_value()]
        while True:
            save = self.i
            self.ws()
            if self.peek() == ",":
                self.i += 1
                self.ws(newlines=True)
                items.append(self.arg_value())
            else:
                self.i = save
                break
        return items[0] if len(items) == 1 else Node("array", items)

    def arg_value(self) -> Node:
        c = self.peek()
        if c in "\"'(@{" or (c == "$" and self.peek(1) not in ("", " ")):
            node = self.primary()
            return self.postfix(node, in_command=True)
        start = self.i
        w = self.generic_word()
        if re.fullmatch(r"\d+", w):
            return Node("const", int(w), pos=start)
        return Node("const", w, pos=start)

    def generic_word(self) -> str:
        start = self.i
        buf = []
        while self.i < self.n:
            c = self.t[self.i]
            if c in _GENERIC_END:
                break
            if c == "`" and self.i + 1 < self.n:
                buf.append(self.t[self.i + 1])
                self.i += 2
                continue
            if c in "\"'":
                s = self.string()
                buf.append(str(s.a) if s.kind == "const" else "".join(p if isinstance(p, str) else "" for p in s.a))
                continue
            buf.append(c)
            self.i += 1
        if self.i == start:
            raise self.err("UnexpectedToken", self.peek())
        return "".join(buf)

    # -- expressions (precedence: -and/-or < comparison < , < .. < + - < * / % < unary < postfix)
    def expression(self) -> Node:
        return self.logical()

    def _op(self) -> str:
        save = self.i
        self.ws()
        c = self.peek()
        if c and c in _DASHES:
            m = re.match(r"[" + _DASHES + r"]([A-Za-z]+)(?![\w-])", self.t[self.i:])
            if m and m.group(1).lower() in _ALL_OPS:
                self.i = save
                return m.group(1).lower()
        self.i = save
        return ""

    def _take_op(self, op: str) -> None:
        self.ws()
        self.i += len(op) + 1
        self.ws(newlines=True)

    def logical(self) -> Node:
        left = self.comparison()
        while True:
            op = self._op()
            if op not in ("and", "or", "xor"):
                return left
            pos = self.i
            self._take_op(op)
            if not self.peek() or self.peek() in ";)}\r\n|":
                raise self.err("ExpectedValueExpression", "-" + op, pos=pos)
            left = Node("bin", op, left, self.comparison(), pos=pos)

    def comparison(self) -> Node:
        left = self.array()
        while True:
            op = self._op()
            base = op[1:] if op[:1] in ("c", "i") and op[1:] in _COMPARISON else op
            if base not in _COMPARISON:
                return left
            pos = self.i
            self._take_op(op)
            if not self.peek() or self.peek() in ";)}\r\n|":
                raise self.err("ExpectedValueExpression", "-" + op, pos=pos)
            left = Node("bin", op, left, self.array(), pos=pos)

    def array(self) -> Node:
        first = self.range_()
        items = [first]
        while True:
            save = self.i
            self.ws()
            if self.peek() == ",":
                pos = self.i
                self.i += 1
                self.ws(newlines=True)
                if not self.peek() or self.peek() in ";)}\r\n|":
                    raise self.err("MissingExpressionAfterToken", ",", pos=pos)
                items.append(self.range_())
            else:
                self.i = save
                break
        return first if len(items) == 1 else Node("array", items, pos=first.pos)

    def range_(self) -> Node:
        left = self.additive()
        save = self.i
        self.ws()
        if self.t.startswith("..", self.i):
            self.i += 2
            self.ws()
            return Node("range", left, self.additive())
        self.i = save
        return left

    def additive(self) -> Node:
        left = self.multiplicative()
        while True:
            save = self.i
            self.ws()
            c = self.peek()
            if c and (c == "+" or (c in _DASHES and not re.match(r"[A-Za-z]", self.peek(1)))):
                if c == "+" and self.peek(1) == "=":
                    self.i = save
                    return left
                pos = self.i
                self.i += 1
                self.ws(newlines=True)
                if not self.peek() or self.peek() in ";)}\r\n|":
                    raise self.err("ExpectedValueExpression", c, pos=pos)
                left = Node("bin", "+" if c == "+" else "-", left, self.multiplicative(), pos=pos)
            else:
                self.i = save
                return left

    def multiplicative(self) -> Node:
        left = self.unary()
        while True:
            save = self.i
            self.ws()
            c = self.peek()
            if c in ("*", "/", "%") and c:
                pos = self.i
                self.i += 1
                self.ws(newlines=True)
                if not self.peek() or self.peek() in ";)}\r\n|":
                    raise self.err("ExpectedValueExpression", c, pos=pos)
                left = Node("bin", c, left, self.unary(), pos=pos)
            else:
                self.i = save
                return left

    def unary(self) -> Node:
        self.ws()
        c = self.peek()
        pos = self.i
        if c == "!":
            self.i += 1
            self.ws()
            if not self.peek() or self.peek() in ";)}\r\n|":
                raise self.err("MissingExpressionAfterToken", "!")
            return Node("not", self.unary(), pos=pos)
        if c and c in _DASHES:
            m = re.match(r"[" + _DASHES + r"](not|bnot)(?![\w-])", self.t[self.i:], re.I)
            if m:
                self.i += m.end()
                self.ws(newlines=True)
                if not self.peek() or self.peek() in ";)}\r\n|":
                    raise self.err("ExpectedValueExpression", "-not")
                return Node("not", self.unary(), pos=pos)
            if re.match(r"\d", self.peek(1)):
                self.i += 1
                return Node("neg", self.unary(), pos=pos)
        if c == "[":
            m = re.match(r"\[\s*([A-Za-z_][\w.`\[\],]*?)\s*\]", self.t[self.i:])
            if m:
                self.i += m.end()
                tname = m.group(1)
                if self.t.startswith("::", self.i):
                    return self.postfix(Node("type", tname, pos=pos))
                save = self.i
                self.ws()
                if self.peek() and self.peek() not in ";)}\r\n|,=" and not self._op() and self.peek() != ".":
                    return Node("cast", tname, self.unary(), pos=pos)
                self.i = save
                return self.postfix(Node("type", tname, pos=pos))
            raise self.err("MissingEndSquareBracket")
        return self.postfix(self.primary())

    def postfix(self, node: Node, in_command: bool = False) -> Node:
        while True:
            c = self.peek()
            if c == "." and (self.peek(1).isalpha() or self.peek(1) in "_\"'"):
                self.i += 1
                name = self._member_name()
                if self.peek() == "(":
                    node = Node("call", node, name, self._call_args())
                else:
                    node = Node("member", node, name)
            elif c == ":" and self.peek(1) == ":":
                self.i += 2
                name = self._member_name()
                if self.peek() == "(":
                    node = Node("scall", node, name, self._call_args())
                else:
                    node = Node("static", node, name)
            elif c == "[" and not in_command:
                self.i += 1
                self.ws(newlines=True)
                if self.peek() == "]":
                    raise self.err("MissingArrayIndexExpression")
                idx = self.expression()
                self.ws(newlines=True)
                if self.peek() != "]":
                    raise self.err("MissingEndSquareBracket")
                self.i += 1
                node = Node("index", node, idx)
            else:
                return node

    def _member_name(self) -> str:
        if self.peek() in "\"'":
            s = self.string()
            return str(s.a) if s.kind == "const" else ""
        m = re.match(r"[A-Za-z_]\w*", self.t[self.i:])
        if not m:
            raise self.err("MissingPropertyName")
        self.i += m.end()
        return m.group(0)

    def _call_args(self) -> list[Node]:
        open_at = self.i
        self.i += 1
        args: list[Node] = []
        self.ws(newlines=True)
        if self.peek() == ")":
            self.i += 1
            return args
        while True:
            args.append(self.range_() if True else None)
            self.ws(newlines=True)
            if self.peek() == ",":
                self.i += 1
                self.ws(newlines=True)
                continue
            if self.peek() == ")":
                self.i += 1
                return args
            raise self.err("MissingEndParenthesisInExpression", pos=open_at)

    def primary(self) -> Node:
        self.ws()
        c = self.peek()
        pos = self.i
        if c in "\"'":
            return self.string()
        if c == "$":
            if self.peek(1) == "(":
                self.i += 2
                body = self.statements(end=")")
                if self.peek() != ")":
                    raise self.err("MissingEndParenthesisInSubexpression", pos=pos)
                self.i += 1
                return Node("sub", body, pos=pos)
            m = _VAR_RE.match(self.t, self.i)
            if not m:
                raise self.err("UnexpectedToken", "$")
            self.i = m.end()
            return Node("var", (m.group(1) if m.group(1) is not None else m.group(2)).lower(), pos=pos)
        if c == "@":
            if self.peek(1) == "(":
                self.i += 2
                body = self.statements(end=")")
                if self.peek() != ")":
                    raise self.err("MissingEndParenthesisInSubexpression", pos=pos)
                self.i += 1
                return Node("arraysub", body, pos=pos)
            if self.peek(1) == "{":
                return self.hashtable()
            if self.peek(1) in "\"'":
                raise NotEmulated("here-strings", pos)
            raise self.err("UnexpectedToken", "@")
        if c == "(":
            self.i += 1
            self.ws(newlines=True)
            if self.peek() == ")":
                raise self.err("ExpectedValueExpression", "(")
            inner = self.statement_value() if self.keyword() in ("if", "foreach") else self.pipeline()
            self.ws(newlines=True)
            if self.peek() != ")":
                raise self.err("MissingEndParenthesisInExpression", pos=pos)
            self.i += 1
            return Node("paren", inner, pos=pos)
        if c == "{":
            self.i += 1
            body_start = self.i
            body = self.statements(end="}")
            if self.peek() != "}":
                raise self.err("MissingEndCurlyBrace", pos=pos)
            text = self.t[body_start:self.i]
            self.i += 1
            return Node("sblock", body, text, pos=pos)
        m = _NUM_RE.match(self.t, self.i)
        if m:
            self.i = m.end()
            raw, suffix = m.group(1), (m.group(2) or "").lower()
            val: Any = int(raw, 16) if raw.lower().startswith("0x") else (float(raw) if re.search(r"[.eE]", raw)
                                                                         else int(raw))
            mult = {"kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3, "tb": 1024 ** 4, "pb": 1024 ** 5}.get(suffix)
            if mult:
                val = val * mult
            return Node("const", val, pos=pos)
        if not c:
            raise self.err("ExpectedValueExpression", self.t[max(0, self.i - 1):self.i] or "(")
        if re.match(r"[A-Za-z_]", c):
            raise self.err("UnexpectedToken", self._token_text())
        raise self.err("UnexpectedToken", c)

    def hashtable(self) -> Node:
        pos = self.i
        self.i += 2
        pairs: list[tuple[Node, Node]] = []
        while True:
            self.ws(newlines=True)
            while self.peek() == ";":
                self.i += 1
                self.ws(newlines=True)
            if self.peek() == "}":
                self.i += 1
                return Node("hash", pairs, pos=pos)
            if not self.peek():
                raise self.err("MissingEndCurlyBraceInHashLiteral", pos=pos)
            if self.peek() in "\"'":
                key = self.string()
            else:
                m = re.match(r"[\w-]+", self.t[self.i:])
                if not m:
                    raise self.err("MissingEqualsInHashLiteral")
                self.i += m.end()
                key = Node("const", m.group(0))
            self.ws()
            if self.peek() != "=":
                raise self.err("MissingEqualsInHashLiteral")
            self.i += 1
            self.ws(newlines=True)
            pairs.append((key, self.statement_value()))

    def string(self) -> Node:
        q = self.peek()
        pos = self.i
        self.i += 1
        if q == "'":
            buf = []
            while self.i < self.n:
                c = self.t[self.i]
                if c in "'\u2018\u2019":
                    if self.peek(1) == "'":
                        buf.append("'")
                        self.i += 2
                        continue
                    self.i += 1
                    return Node("const", "".join(buf), pos=pos)
                buf.append(c)
                self.i += 1
            raise self.err("TerminatorExpectedAtEndOfString", "'", pos=pos)
        parts: list[Any] = []
        buf = []
        while self.i < self.n:
            c = self.t[self.i]
            if c == "`" and self.i + 1 < self.n:
                nx = self.t[self.i + 1]
                buf.append({"n": "\n", "r": "\r", "t": "\t", "0": "\0", "a": "\a", "b": "\b", "e": "\x1b",
                            "f": "\f", "v": "\v"}.get(nx, nx))
                self.i += 2
                continue
            if c == '"':
                if self.peek(1) == '"':
                    buf.append('"')
                    self.i += 2
                    continue
                self.i += 1
                if buf:
                    parts.append("".join(buf))
                if all(isinstance(p, str) for p in parts):
                    return Node("const", "".join(parts), pos=pos)
                return Node("expand", parts, pos=pos)
            if c == "$":
                if self.peek(1) == "(":
                    if buf:
                        parts.append("".join(buf))
                        buf = []
                    sub_at = self.i
                    self.i += 2
                    body = self.statements(end=")")
                    if self.peek() != ")":
                        raise self.err("MissingEndParenthesisInSubexpression", pos=sub_at)
                    self.i += 1
                    parts.append(Node("sub", body))
                    continue
                m = _VAR_RE.match(self.t, self.i)
                if m and (m.group(1) is not None or m.group(2)):
                    if buf:
                        parts.append("".join(buf))
                        buf = []
                    self.i = m.end()
                    parts.append(Node("var", (m.group(1) if m.group(1) is not None else m.group(2)).lower()))
                    continue
            buf.append(c)
            self.i += 1
        raise self.err("TerminatorExpectedAtEndOfString", '"', pos=pos)


def parse(text: str) -> list[Node]:
    """The statements of a script; raises ParseError (PowerShell's error id/message) or NotEmulated."""
    return Parser(text).parse_script()


def error_position(text: str, pos: int) -> str:
    """PowerShell's position message: ``At line:1 char:5`` + the line + a ``~`` marker."""
    pos = max(0, min(pos, len(text)))
    line_no = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start:line_end if line_end >= 0 else len(text)].rstrip("\r")
    col = pos - line_start + 1
    return f"At line:{line_no} char:{col}\n+ {line}\n+ {' ' * (col - 1)}~"
