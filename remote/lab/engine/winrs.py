"""WinRS: the cmd shell resource (``…/windows/shell/cmd``) that pywinrm, pypsrp's ``Client.execute_cmd``
and most WinRM tools use. Create → Command (rsp:Command + rsp:Arguments) → Receive (stdout/stderr
streams, CommandState with ExitCode) → Signal → Delete.

The command line runs as ``cmd.exe /c`` would run it on the emulated host: a native program the engine
knows (netstat, netsh, tasklist, whoami, hostname…) prints its text; ``powershell.exe -Command …`` /
``-EncodedCommand …`` runs the script through the PowerShell engine (stdout: what ``Out-String``
prints; errors: CLIXML on stderr, as powershell.exe writes them when its output is redirected; exit
code: ``exit N``, else 1 when the script failed); anything else is cmd's "is not recognized" on
stderr with exit code 1. With ``WINRS_SKIP_CMD_SHELL=TRUE`` an unknown program is the fault Windows
sends (recorded: pypsrp's test_winrs_no_cmd_shell.yml, Code 2147942402 inside ProviderFault).
Output is encoded in the shell's code page (437 unless ``WINRS_CODEPAGE`` says otherwise).

Receive framing follows MS-WSMV 3.1.4.14 (no recording of a cmd-shell Receive in the corpus): one
rsp:Stream per stream with data, then an ``End="true"`` stream for each, and CommandState Done with
ExitCode in the final Receive; output larger than the client's envelope is spread over several
Receives whose CommandState is Running.
"""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from typing import Any, Optional
from xml.sax.saxutils import escape, quoteattr

from remote.lab import api
from remote.lab.protocol import wsman

CMD_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
NOT_RECOGNIZED_CMD = ("'{0}' is not recognized as an internal or external command,\r\n"
                      "operable program or batch file.\r\n")
CODE_FILE_NOT_FOUND = 2147942402  # 0x80070002 (recorded)
_CHUNK = 65536


def is_cmd_shell(resource_uri: str) -> bool:
    return resource_uri.rstrip("/").lower() == CMD_RESOURCE


class CmdCommand:
    __slots__ = ("id", "out", "err", "exit_code", "done_sent")

    def __init__(self, command_id: str, out: bytes, err: bytes, exit_code: int):
        self.id = command_id
        self.out = out
        self.err = err
        self.exit_code = exit_code
        self.done_sent = False


class CmdShell:
    """One WinRS cmd shell: its commands run at once (the emulated programs never wait)."""

    def __init__(self, shell_id: str, resource_uri: str, owner: str, client_ip: str, codepage: int,
                 input_streams: str, output_streams: str):
        self.id = shell_id
        self.resource_uri = resource_uri
        self.owner = owner
        self.client_ip = client_ip
        self.codepage = codepage
        self.input_streams = input_streams
        self.output_streams = output_streams
        self.commands: dict[str, CmdCommand] = {}
        self.cond = threading.Condition()
        self.closed = False
        self.created = time.monotonic()
        self.last_use = self.created


def split_command_line(line: str) -> list[str]:
    """Windows command-line splitting (CommandLineToArgvW rules, enough for what clients send)."""
    out, buf, quoted, i = [], [], False, 0
    has = False
    while i < len(line):
        c = line[i]
        if c == "\\":
            j = i
            while j < len(line) and line[j] == "\\":
                j += 1
            n = j - i
            if j < len(line) and line[j] == '"':
                buf.append("\\" * (n // 2))
                if n % 2:
                    buf.append('"')
                    i = j + 1
                else:
                    i = j
                continue
            buf.append("\\" * n)
            i = j
            has = True
            continue
        if c == '"':
            quoted = not quoted
            has = True
        elif c in " \t" and not quoted:
            if buf or has:
                out.append("".join(buf))
            buf, has = [], False
        else:
            buf.append(c)
            has = True
        i += 1
    if buf or has:
        out.append("".join(buf))
    return out


def _encode(text: str, codepage: int) -> bytes:
    enc = {65001: "utf-8", 437: "cp437", 850: "cp850", 1252: "cp1252"}.get(codepage, "cp437")
    return text.encode(enc, errors="replace")


def clixml_errors(errors: list[api.ErrorSpec]) -> str:
    """What powershell.exe writes to a redirected stderr for error records (``#< CLIXML`` + <S S="Error">)."""
    parts = []
    for e in errors:
        text = e.message + "\r\n"
        body = (escape(text).replace("_", "_x005F_").replace("\r", "_x000D_").replace("\n", "_x000A_"))
        parts.append(f'<S S="Error">{body}</S>')
    return ('#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
            + "".join(parts) + "</Objs>")


_PS_SWITCHES = {"noprofile", "nologo", "noninteractive", "noexit", "sta", "mta", "nop", "noni"}
_PS_VALUED = {"executionpolicy", "ep", "inputformat", "outputformat", "windowstyle", "version", "configurationname",
              "psconsolefile", "ex", "exec", "w", "if", "of", "v"}


def run_command_line(host: Any, argv: list[str], codepage: int) -> tuple[bytes, bytes, int]:
    """Run one command line on the emulated host: (stdout, stderr, exit code)."""
    if not argv:
        return b"", b"", 0
    prog = argv[0]
    base = re.split(r"[\\/]", prog)[-1].lower()
    stem = base[:-4] if base.endswith(".exe") else base
    if stem in ("powershell", "pwsh"):
        return _run_powershell(host, argv[1:], codepage)
    if stem == "cmd" and len(argv) > 2 and argv[1].lower() in ("/c", "/k"):
        return run_command_line(host, split_command_line(" ".join(argv[2:])), codepage)
    ex = host.run([[api.Command(prog, False, [(None, a) for a in argv[1:]]), api.Command("Out-String", False, [])]])
    if ex.failed and ex.failure is not None and "CommandNotFoundException" in ex.failure.fully_qualified_error_id:
        return b"", _encode(NOT_RECOGNIZED_CMD.format(prog), codepage), 1
    text = "".join(str(o) for o in ex.output)
    err = "".join(e.message + "\r\n" for e in ex.errors)
    return _encode(text, codepage), _encode(err, codepage), 1 if ex.failed else 0


def _run_powershell(host: Any, args: list[str], codepage: int) -> tuple[bytes, bytes, int]:
    script: Optional[str] = None
    i = 0
    while i < len(args):
        a = args[i]
        low = a.lower().lstrip("-/")
        if a[:1] in "-/" and low in _PS_SWITCHES:
            i += 1
            continue
        if a[:1] in "-/" and low in _PS_VALUED:
            i += 2
            continue
        if a[:1] in "-/" and "encodedcommand".startswith(low) and len(low) >= 1 and low.startswith("e"):
            try:
                script = base64.b64decode(args[i + 1]).decode("utf-16-le")
            except (IndexError, ValueError):
                return b"", _encode("Cannot process the command because the value specified with -EncodedCommand "
                                    "is not properly encoded. The value must be Base64 encoded.\r\n", codepage), 1
            break
        if a[:1] in "-/" and "command".startswith(low) and low.startswith("c"):
            script = " ".join(args[i + 1:])
            break
        script = " ".join(args[i:])  # powershell.exe <script text>
        break
    if script is None:
        return b"", _encode("port80 lab: an interactive powershell.exe is not emulated (give -Command or "
                            "-EncodedCommand).\r\n", codepage), 1
    ex = host.run([[api.Command(script, True, []), api.Command("Out-String", False, [])]])
    text = "".join(str(o) for o in ex.output)
    errors = list(ex.errors) + ([ex.failure] if ex.failed and ex.failure is not None else [])
    err = clixml_errors(errors) if errors else ""
    code = ex.exit_code if ex.exit_code is not None else (1 if (ex.failed or ex.errors) else 0)
    return _encode(text, codepage), _encode(err, codepage), code


# --- WS-Management replies ------------------------------------------------------------------------------------


def receive_response(req: wsman.Request, cmd: CmdCommand, budget: int) -> bytes:
    cid = quoteattr(cmd.id)
    parts = ["<rsp:ReceiveResponse>"]
    used = 0
    for name in ("out", "err"):
        data: bytes = getattr(cmd, name)
        stream = "stdout" if name == "out" else "stderr"
        while data and used < budget:
            room = max(min(_CHUNK, (budget - used) * 3 // 4), 1024)
            piece, data = data[:room], data[room:]
            parts.append(f'<rsp:Stream Name="{stream}" CommandId={cid}>{base64.b64encode(piece).decode()}</rsp:Stream>')
            used += len(piece) * 4 // 3 + 80
        setattr(cmd, name, data)
    if not cmd.out and not cmd.err:
        parts.append(f'<rsp:Stream Name="stdout" CommandId={cid} End="true"></rsp:Stream>')
        parts.append(f'<rsp:Stream Name="stderr" CommandId={cid} End="true"></rsp:Stream>')
        parts.append(f'<rsp:CommandState CommandId={cid} State="{wsman.COMMAND_DONE}">'
                     f"<rsp:ExitCode>{cmd.exit_code}</rsp:ExitCode></rsp:CommandState>")
        cmd.done_sent = True
    else:
        parts.append(f'<rsp:CommandState CommandId={cid} State="{wsman.COMMAND_RUNNING}"/>')
    parts.append("</rsp:ReceiveResponse>")
    return wsman.envelope(wsman.A_SHELL + "ReceiveResponse", req.message_id, "".join(parts))


def provider_fault(relates_to: str, code: int, message: str, machine: str, provider: str, path: str) -> bytes:
    """A fault whose text sits only inside ``f:ProviderFault`` (recorded shape: test_winrs_no_cmd_shell.yml)."""
    msg = escape(message)
    return wsman.envelope(
        wsman.FAULT_ACTION, relates_to,
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode>"
        f'</s:Code><s:Reason><s:Text xml:lang="en-US">{msg}</s:Text></s:Reason><s:Detail>'
        f'<f:WSManFault xmlns:f="{wsman.NS["f"]}" Code="{code}" Machine={quoteattr(machine)}><f:Message>'
        f"<f:ProviderFault provider={quoteattr(provider)} path={quoteattr(path)}>{msg}</f:ProviderFault>"
        "</f:Message></f:WSManFault></s:Detail></s:Fault>")


def new_command_id() -> str:
    return str(uuid.uuid4()).upper()
