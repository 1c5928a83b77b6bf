"""A least-privilege JEA endpoint for port80: the role capability (.psrc) and session configuration
(.pssc) exposing exactly the read-only commands the collector runs, derived from the evidence-kind
registry (``remote/evidence/kinds.py``) through the collector's builders made from its rows
(``collect.EVIDENCE`` + ``FALLBACK``): each builder is run against a recorder, so a new evidence kind
changes the endpoint by itself.

What the files say (PowerShell's JEA, Windows PowerShell 5.1):

* native tools are exposed only through functions of the same name (``netsh.exe``...) whose
  parameters carry ``ValidatePattern`` attributes built from the exact arguments port80 passes
  (``netsh.exe`` accepts ``http show servicestate|urlacl|iplisten [view=requestq]`` and nothing
  else); a function takes precedence over an application of the same name, so the collector's
  pipeline is unchanged, and the function calls the tool by its full path;
* cmdlets with the parameter values port80 uses (``Get-CimInstance -ClassName`` only the CIM
  classes it reads), plus the utility cmdlets the pipeline needs (``Write-Output``, ``Select-Object``,
  ``ConvertTo-Json``, ``Out-String``);
* scripts are not exposed at all: a JEA session is ``NoLanguage`` (``SessionType =
  'RestrictedRemoteServer'``); evidence kinds that are scripts (the elevation check) are skipped on
  such an endpoint, with a note in the host's evidence;
* ``RunAsVirtualAccount``: the commands run as a temporary local administrator account created
  for the session (netsh http show servicestate needs elevation); the connecting user needs no
  rights on the host beyond membership of the group named in ``RoleDefinitions``.

The exact behaviour of a ``FunctionDefinitions`` wrapper calling an external program in a
NoLanguage session was not captured on a real host here: the form follows Microsoft's JEA
documentation (role capabilities: "custom functions"); treat it as to be verified on first use.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

DEFAULT_NAME = "Port80Audit"
DEFAULT_GROUP = "BUILTIN\\Remote Management Users"
UTILITY_CMDLETS = ("Write-Output",)  # the collector's statement markers (collect.MARKER)
SYSTEM32 = "$env:SystemRoot\\System32"


@dataclass
class Recorded:
    """One command of a builder's pipeline."""

    name: str
    is_script: bool = False
    arguments: list[str] = field(default_factory=list)  # positional (add_argument)
    parameters: dict[str, Any] = field(default_factory=dict)  # named (add_parameter)


class _Recorder:
    """Stands in for a pypsrp ``PowerShell`` while a collector builder adds its commands."""

    def __init__(self) -> None:
        self.commands: list[Recorded] = []

    def add_cmdlet(self, name: str) -> "_Recorder":
        self.commands.append(Recorded(name))
        return self

    def add_script(self, script: str) -> "_Recorder":
        self.commands.append(Recorded(script, is_script=True))
        return self

    def add_argument(self, value: Any) -> "_Recorder":
        self.commands[-1].arguments.append(str(value))
        return self

    def add_parameter(self, name: str, value: Any = None) -> "_Recorder":
        self.commands[-1].parameters[name] = value
        return self

    def add_statement(self) -> "_Recorder":
        return self


def collector_commands() -> dict[str, list[Recorded]]:
    """Evidence kind -> the commands its builder sends (collect.EVIDENCE and FALLBACK)."""
    from remote.remoting.collect import EVIDENCE, FALLBACK

    builders: dict[str, Callable] = dict(EVIDENCE)
    for name, build in FALLBACK.values():
        builders[name] = build
    out: dict[str, list[Recorded]] = {}
    for kind, build in builders.items():
        r = _Recorder()
        build(r)
        out[kind] = r.commands
    return out


def script_kinds() -> list[str]:
    """Evidence kinds sent as scripts: not available in a NoLanguage (JEA) session."""
    return [k for k, cmds in collector_commands().items() if any(c.is_script for c in cmds)]


@dataclass
class Role:
    """What the role exposes: cmdlets (with ValidateSet per constrained parameter) and native tools
    (with one ValidatePattern per argument position; None = the position is optional)."""

    cmdlets: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    natives: dict[str, list[tuple[list[str], bool]]] = field(default_factory=dict)  # exe -> [(values, required)]
    skipped: list[str] = field(default_factory=list)  # evidence kinds that are scripts


def role_from_collector() -> Role:
    role = Role()
    argvs: dict[str, list[list[str]]] = {}
    for kind, cmds in collector_commands().items():
        if any(c.is_script for c in cmds):
            role.skipped.append(kind)
            continue
        for c in cmds:
            if c.name.lower().endswith(".exe"):
                argvs.setdefault(c.name, []).append(c.arguments)
            else:
                params = role.cmdlets.setdefault(c.name, {})
                for p, v in c.parameters.items():
                    if c.name.lower() == "get-ciminstance" and p.lower() == "classname":
                        vals = params.setdefault(p, [])
                        if str(v) not in vals:
                            vals.append(str(v))
    for name in UTILITY_CMDLETS:
        role.cmdlets.setdefault(name, {})
    for exe, lists in argvs.items():
        width = max(len(a) for a in lists)
        positions = []
        for i in range(width):
            values: list[str] = []
            for a in lists:
                if i < len(a) and a[i] not in values:
                    values.append(a[i])
            positions.append((values, all(i < len(a) for a in lists)))
        role.natives[exe] = positions
    return role


def _q(text: str) -> str:
    """A PowerShell single-quoted string."""
    return "'" + text.replace("'", "''") + "'"


def pattern(values: list[str]) -> str:
    """An anchored ValidatePattern matching exactly ``values`` (case-insensitive, as PowerShell's)."""
    return "^(" + "|".join(re.escape(v) for v in values) + ")$"


def _function(exe: str, positions: list[tuple[list[str], bool]]) -> str:
    params, args = [], []
    for i, (values, required) in enumerate(positions):
        attr = f"[Parameter(Position = {i}{', Mandatory' if required else ''})]"
        params.append(f"{attr} [ValidatePattern({_q(pattern(values))})] [string] $Arg{i}")
        args.append(f"$Arg{i}")
    # language constructs only (no cmdlet the role does not expose); the tool by its full path
    body = (f"param({', '.join(params)}) "
            f"$a = @(); foreach ($v in @({', '.join(args)})) {{ if ($v) {{ $a += $v }} }}; "
            f"& \"{SYSTEM32}\\{exe}\" @a")
    return f"        @{{ Name = {_q(exe)}; ScriptBlock = {{ {body} }} }}"


def render_psrc(role: Role, name: str = DEFAULT_NAME) -> str:
    lines = [
        "# port80 JEA role capability: the read-only commands port80's collector runs, nothing else.",
        "# Written by `port80 jea`; derived from port80's evidence kinds. Do not add commands that change state.",
        "@{",
        f"    GUID = {_q(str(uuid.uuid5(uuid.NAMESPACE_URL, 'port80:jea:psrc:' + name)))}",
        "    Author = 'port80'",
        f"    Description = {_q('port80 read-only audit of port 80/443 holders (HTTP.sys, services, processes)')}",
        "    VisibleCmdlets = @(",
    ]
    items = []
    for cmdlet, params in sorted(role.cmdlets.items(), key=lambda kv: kv[0].lower()):
        if params:
            ps = "; ".join(f"@{{ Name = {_q(p)}; ValidateSet = {', '.join(_q(v) for v in vals)} }}"
                           for p, vals in params.items())
            items.append(f"        @{{ Name = {_q(cmdlet)}; Parameters = {ps} }}")
        else:
            items.append(f"        {_q(cmdlet)}")
    lines.append(",\n".join(items))
    lines.append("    )")
    lines.append(f"    VisibleFunctions = {', '.join(_q(exe) for exe in sorted(role.natives))}")
    lines.append("    FunctionDefinitions = @(")
    lines.append(",\n".join(_function(exe, pos) for exe, pos in sorted(role.natives.items())))
    lines.append("    )")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_pssc(name: str = DEFAULT_NAME, group: str = DEFAULT_GROUP) -> str:
    return "\n".join([
        "# port80 JEA session configuration (register it with the command in INSTALL.txt).",
        "@{",
        "    SchemaVersion = '2.0.0.0'",
        f"    GUID = {_q(str(uuid.uuid5(uuid.NAMESPACE_URL, 'port80:jea:pssc:' + name)))}",
        "    Author = 'port80'",
        f"    Description = {_q('port80 read-only audit endpoint (JEA, NoLanguage)')}",
        "    SessionType = 'RestrictedRemoteServer'",
        "    LanguageMode = 'NoLanguage'",
        "    RunAsVirtualAccount = $true",
        f"    TranscriptDirectory = {_q('C:' + chr(92) + 'ProgramData' + chr(92) + 'port80' + chr(92) + 'Transcripts')}",
        f"    RoleDefinitions = @{{ {_q(group)} = @{{ RoleCapabilities = {_q(name)} }} }}",
        "}",
    ]) + "\n"


def render_install(name: str = DEFAULT_NAME, group: str = DEFAULT_GROUP, skipped: Optional[list[str]] = None) -> str:
    mod = f"$env:ProgramFiles\\WindowsPowerShell\\Modules\\{name}"
    return "\n".join([
        f"port80 JEA endpoint '{name}' — install on each Windows host (elevated Windows PowerShell 5.1):",
        "",
        f"  New-Item -ItemType Directory -Force \"{mod}\\RoleCapabilities\" | Out-Null",
        f"  Copy-Item .\\{name}.psrc \"{mod}\\RoleCapabilities\\{name}.psrc\"",
        f"  Register-PSSessionConfiguration -Name {name} -Path .\\{name}.pssc -Force",
        "",
        "Then in the inventory (all hosts or a group):",
        f"  ansible_psrp_configuration_name={name}",
        "",
        f"Who can connect: members of {group} (RoleDefinitions in {name}.pssc).",
        "",
        "What the session can do: run only the commands in the .psrc: netstat.exe, netsh.exe and tasklist.exe",
        "with exactly the arguments port80 passes (ValidatePattern), Get-CimInstance for the CIM classes port80",
        "reads, Get-Process, and Write-Output / Select-Object / ConvertTo-Json / Out-String. No scripts",
        "(NoLanguage), no other cmdlets, no file system or registry provider, no way to change a service.",
        "The commands run as a virtual account: a temporary local administrator created per session",
        "(netsh http show servicestate needs elevation), so the connecting account itself needs no admin rights",
        "on the host; every session is transcribed to C:\\ProgramData\\port80\\Transcripts.",
        "",
        "What it cannot do: port80 fix (it changes services and the IP listen list: use a full endpoint for",
        "that, on purpose), and the elevation check "
        + (f"({', '.join(skipped)}: a script) " if skipped else "")
        + "is skipped: host.json says why.",
    ]) + "\n"


def write(out: Path, name: str = DEFAULT_NAME, group: str = DEFAULT_GROUP) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    role = role_from_collector()
    files = {
        out / f"{name}.psrc": render_psrc(role, name),
        out / f"{name}.pssc": render_pssc(name, group),
        out / "INSTALL.txt": render_install(name, group, role.skipped),
    }
    for p, text in files.items():
        p.write_text(text, encoding="utf-8-sig", newline="\r\n")  # Windows PowerShell 5.1 reads BOM UTF-8
    return list(files)


# --------------------------------------------------------------------------------- reading the files back

def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


@dataclass
class Endpoint:
    """A JEA endpoint as the files describe it (for the lab): visible cmdlets with their ValidateSets,
    visible functions with one ValidatePattern per position (and whether it is mandatory)."""

    name: str
    cmdlets: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # lower name -> {param: values}
    functions: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)  # lower name -> [(regex, required)]
    display: dict[str, str] = field(default_factory=dict)  # lower name -> name as written


def read_endpoint(folder: Path, name: Optional[str] = None) -> Endpoint:
    """Read the .psrc that ``write`` produced (the subset of the PowerShell data-file syntax it uses).
    Raises ValueError naming the file when it cannot be read."""
    folder = Path(folder)
    psrcs = sorted(folder.glob("*.psrc"))
    if name is not None:
        psrcs = [p for p in psrcs if p.stem.lower() == name.lower()]
    if not psrcs:
        raise ValueError(f"{folder}: no .psrc role capability file" + (f" named {name}.psrc" if name else ""))
    path = psrcs[0]
    text = _strip_comments(path.read_text(encoding="utf-8-sig"))
    ep = Endpoint(name=path.stem)
    m = re.search(r"VisibleCmdlets\s*=\s*@\((.*?)\n\s*\)", text, re.S)
    if m is None:
        raise ValueError(f"{path}: no VisibleCmdlets")
    for entry in re.finditer(r"@\{\s*Name\s*=\s*'([^']+)'\s*;\s*Parameters\s*=\s*(.*?)\}\s*\}|'([^']+)'", m.group(1)):
        if entry.group(3):
            ep.cmdlets[entry.group(3).lower()] = {}
            ep.display[entry.group(3).lower()] = entry.group(3)
            continue
        cmd = entry.group(1)
        params: dict[str, list[str]] = {}
        for p in re.finditer(r"Name\s*=\s*'([^']+)'\s*;\s*ValidateSet\s*=\s*((?:'[^']*'\s*,?\s*)+)", entry.group(2) + "}"):
            params[p.group(1).lower()] = [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", p.group(2))]
        ep.cmdlets[cmd.lower()] = params
        ep.display[cmd.lower()] = cmd
    for fn in re.finditer(r"@\{\s*Name\s*=\s*'([^']+)'\s*;\s*ScriptBlock\s*=\s*\{\s*param\((.*?)\)\s", text, re.S):
        positions = []
        for p in re.finditer(r"\[Parameter\(Position = (\d+)(, Mandatory)?\)\]\s*\[ValidatePattern\('((?:[^']|'')*)'\)\]",
                             fn.group(2)):
            positions.append((p.group(3).replace("''", "'"), bool(p.group(2))))
        ep.functions[fn.group(1).lower()] = positions
        ep.display[fn.group(1).lower()] = fn.group(1)
    return ep
