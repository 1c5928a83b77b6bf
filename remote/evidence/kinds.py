"""The evidence-kind registry: every kind of evidence port80 collects, declared once.

One row (``Kind``) says everything about a kind: the bundle file it is kept in, the command sent to
the host (its pypsrp form and the text recorded in host.json are both made from the same
``Command``, so they cannot drift), the kind asked for when it yields nothing, the words that
attribute a failed statement to it, its parser, whether the verdict needs it, and what the docs say
about it. Everything else derives from ``KINDS``:

- the collector (``remote/remoting/collect.py``): the pipeline, the fallback, error attribution;
- the bundle reader/writer (``remote/evidence/bundle.py``): ``FILES``, ``COMMANDS``;
- ``remote.parsers.PARSERS`` and ``port80 parse``'s choices;
- the analysis inputs (``remote/analysis/verdicts.py``): what is parsed, what is required;
- the lab's file table (``remote/lab/engine/host.py``);
- the read-only allowlist tests check the lab's command log against (``READ_ONLY_STATEMENTS``);
- the table in docs/evidence-bundle.md (``markdown_table()``; a test keeps the two equal).

Adding a kind: one row here, one parser in ``remote/parsers/``, one lab handler (recipe in
docs/architecture.md). This module imports nothing heavy: parsers are named, and imported on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

MARKER = "port80:evidence:"  # each statement's output is preceded by MARKER + kind


@dataclass(frozen=True)
class Native:
    """An executable run with fixed arguments, its output as text (``| Out-String``)."""

    words: tuple[str, ...]

    def build(self, ps: Any) -> None:
        ps.add_cmdlet(self.words[0])
        for w in self.words[1:]:
            ps.add_argument(w)
        ps.add_cmdlet("Out-String")

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def statement(self) -> str:
        return f"{self.text} | Out-String"


@dataclass(frozen=True)
class CmdletJson:
    """A cmdlet whose objects are cut to ``props`` and sent as JSON (``Select-Object | ConvertTo-Json``)."""

    cmdlet: str
    params: tuple[tuple[str, str], ...]
    props: tuple[str, ...]

    def build(self, ps: Any) -> None:
        ps.add_cmdlet(self.cmdlet)
        for k, v in self.params:
            ps.add_parameter(k, v)
        ps.add_cmdlet("Select-Object").add_parameter("Property", list(self.props))
        ps.add_cmdlet("ConvertTo-Json")

    @property
    def text(self) -> str:  # the short form a person types (parameter values positional)
        head = " ".join([self.cmdlet, *(v for _, v in self.params)])
        return f"{head} | Select-Object {','.join(self.props)} | ConvertTo-Json"

    @property
    def statement(self) -> str:
        head = " ".join([self.cmdlet, *(f"-{k} {v}" for k, v in self.params)])
        return f"{head} | Select-Object -Property {','.join(self.props)} | ConvertTo-Json"


@dataclass(frozen=True)
class Script:
    """A PowerShell expression sent as a script (its output objects kept as they are)."""

    script: str

    def build(self, ps: Any) -> None:
        ps.add_script(self.script)

    @property
    def text(self) -> str:
        return self.script

    @property
    def statement(self) -> str:  # as the lab's canonical key writes it (whitespace collapsed)
        return " ".join(self.script.split())


Command = Union[Native, CmdletJson, Script]


@dataclass(frozen=True)
class Kind:
    name: str
    command: Optional[Command]  # None: not collected yet (a parser for evidence captured elsewhere)
    file: Optional[str]  # bundle file name; None: kept in host.json only (os, elevated), or not collected
    parser: Optional[str] = None  # "module:function", text in -> records out (remote/parsers/)
    required: bool = False  # the verdict needs it: missing or unreadable -> status "partial"
    fallback: Optional[str] = None  # kind the collector asks for when this one yields nothing
    stand_ins: tuple[str, ...] = ()  # kinds the verdict accepts instead when this one is missing
    collected: bool = True  # asked for in the scan's pipeline (False: only as another kind's fallback)
    error_words: tuple[str, ...] = ()  # lower-case words in an error record that name this kind's command
    shared_words: tuple[str, ...] = ()  # words several kinds share: tried after every kind's own words
    content: str = ""  # docs/evidence-bundle.md: what the file holds
    need: str = ""  # docs/evidence-bundle.md: why the analysis wants it
    # "module:function" giving what the fleet analysis reads of the text (error, warnings, verdict inputs)
    # for less CPU than ``parser`` (which ``port80 analyze`` and ``fix`` use); None: the parser
    checker: Optional[str] = None
    _parse: list[Callable[[str], Any]] = field(default_factory=list, compare=False, repr=False)
    _check: list[Callable[[str], Any]] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.command is None and (self.collected or self.file):
            raise ValueError(f"evidence kind {self.name!r}: collected or kept in a file, but no command")

    def build(self, ps: Any) -> None:
        """Add this kind's statement to a pypsrp PowerShell."""
        if self.command is None:
            raise ValueError(f"evidence kind {self.name!r} has no command")
        self.command.build(ps)

    @property
    def parse(self) -> Callable[[str], Any]:
        """The parser function (imported on first use)."""
        if not self._parse:
            if self.parser is None:
                raise KeyError(f"evidence kind {self.name!r} has no parser")
            self._parse.append(_function(self.parser))
        return self._parse[0]

    @property
    def analyse(self) -> Callable[[str], Any]:
        """What the fleet analysis runs on the text: ``checker`` when there is one, else the parser."""
        if not self._check:
            self._check.append(self.parse if self.checker is None else _function(self.checker))
        return self._check[0]


def _function(spec: str) -> Callable[[str], Any]:
    """The function a "module:function" names (imported now)."""
    module, func = spec.split(":")
    f: Callable[[str], Any] = getattr(importlib.import_module(module), func)
    return f


ELEVATION_CHECK = (
    "([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent())"
    ".IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)"
)

# Get-Service with its dependency lists as names (a script: calculated properties do not cross PSRP as
# script blocks). [string] casts give the enum words on PowerShell 5.1 and 7 alike; [string[]] keeps a list
# a JSON array (null when empty).
GETSERVICE_SCRIPT = (
    "Get-Service | Select-Object Name, DisplayName, @{Name='Status';Expression={[string]$_.Status}}, "
    "@{Name='StartType';Expression={[string]$_.StartType}}, "
    "@{Name='DependentServices';Expression={[string[]]$_.DependentServices.Name}}, "
    "@{Name='ServicesDependedOn';Expression={[string[]]$_.ServicesDependedOn.Name}} | ConvertTo-Json"
)

# issue 13's scripts. The IIS cmdlets exist only where IIS's PowerShell modules are installed: guarded, so a
# host without IIS answers nothing instead of failing the statement (no IIS is not an error). Out-String's
# width keeps long binding lists on one line; the tables' shapes are the corpus captures (remote/parsers/).
IIS_SITES_SCRIPT = "if (Get-Command Get-Website -ErrorAction Ignore) { Get-Website | Out-String -Width 512 }"
IIS_APPPOOLS_SCRIPT = "if (Get-Command Get-IISAppPool -ErrorAction Ignore) { Get-IISAppPool | Out-String -Width 512 }"
NETTCP_SCRIPT = ("Get-NetTCPConnection -State Listen | Select-Object LocalAddress,LocalPort,OwningProcess | "
                 "Out-String -Width 512")

# Order matters: it is the order of the statements in the scan's pipeline and of the problems a
# partial host reports.
_ROWS = (
    Kind("netstat", Native(("netstat.exe", "-ano")), "netstat.txt",
         "remote.parsers.netstat:parse_netstat", required=True, fallback="nettcpconnection",
         stand_ins=("nettcpconnection",),
         error_words=("netstat",),
         content="output of `netstat.exe -ano`", need="yes: without it port80 cannot say a port is free"),
    Kind("servicestate", Native(("netsh.exe", "http", "show", "servicestate", "view=requestq")), "servicestate.txt",
         "remote.parsers.servicestate:parse_servicestate", required=True,
         error_words=("servicestate",), shared_words=("netsh",),
         content="output of `netsh.exe http show servicestate view=requestq` (the default Server Session View "
                 "parses too)",
         need="yes, for HTTP.sys details"),
    Kind("urlacl", Native(("netsh.exe", "http", "show", "urlacl")), "urlacl.txt",
         "remote.parsers.urlacl:parse_urlacl", required=True, error_words=("urlacl",), shared_words=("netsh",),
         content="output of `netsh.exe http show urlacl`", need="recommended"),
    Kind("iplisten", Native(("netsh.exe", "http", "show", "iplisten")), "iplisten.txt",
         "remote.parsers.iplisten:parse_iplisten", required=True, error_words=("iplisten",), shared_words=("netsh",),
         content="output of `netsh.exe http show iplisten`", need="recommended"),
    Kind("services", CmdletJson("Get-CimInstance", (("ClassName", "Win32_Service"),),
                                ("Name", "DisplayName", "State", "StartMode", "ProcessId")), "services.json",
         "remote.parsers.services:parse_services_json", required=True, fallback="tasklist", stand_ins=("tasklist",),
         error_words=("win32_service",), shared_words=("get-ciminstance",),
         need="recommended (maps PIDs to services)"),
    Kind("tasklist", Native(("tasklist.exe", "/svc")), "tasklist.txt",
         "remote.parsers.tasklist:parse_tasklist", collected=False, error_words=("tasklist",),
         content="`tasklist /svc` — used when `services.json` is absent", need="optional"),
    Kind("processes", CmdletJson("Get-Process", (), ("Id", "ProcessName", "Path")), "processes.json",
         "remote.parsers.services:parse_processes_json", error_words=("get-process",),
         need="optional (process names)"),
    Kind("os", CmdletJson("Get-CimInstance", (("ClassName", "Win32_OperatingSystem"),),
                          ("CSName", "Caption", "Version", "BuildNumber")), None,
         error_words=("win32_operatingsystem",), content="host.json: `hostname`, `os_version`, `os_caption`"),
    Kind("elevated", Script(ELEVATION_CHECK), None, error_words=("windowsprincipal", "isinrole"),
         content="host.json: `elevated`"),
    # the service dependency graph (port80 fix orders by it): names, not ServiceController objects
    Kind("getservice", Script(GETSERVICE_SCRIPT), "getservice.json", "remote.parsers.getservice:parse_getservice",
         checker="remote.parsers.getservice:check_getservice", error_words=("get-service", "servicecommand"),
         content="`Get-Service` with `Status`, `StartType` and the names in `DependentServices` / "
                 "`ServicesDependedOn` (the pipeline below)",
         need="recommended for `port80 fix`: the service dependency graph (without it a plan that stops "
              "several services is refused)"),
    # issue 13: certificate bindings, excluded port ranges, IIS sites and app pools, and the listener table
    # where netstat is unavailable (README "How port80 decides"; none is required: missing -> bindable null)
    Kind("sslcert", Native(("netsh.exe", "http", "show", "sslcert")), "sslcert.txt",
         "remote.parsers.sslcert:parse_sslcert", error_words=("sslcert",), shared_words=("netsh",),
         content="output of `netsh.exe http show sslcert`", need="optional (certificate bindings: `tls`)"),
    Kind("excludedportrange", Native(("netsh.exe", "int", "ipv4", "show", "excludedportrange", "protocol=tcp")),
         "excludedportrange.txt", "remote.parsers.excludedportrange:parse_excludedportrange",
         error_words=("ipv4 show excludedportrange",),
         content="output of `netsh.exe int ipv4 show excludedportrange protocol=tcp`",
         need="optional (without it `bindable` is null)"),
    Kind("excludedportrange6", Native(("netsh.exe", "int", "ipv6", "show", "excludedportrange", "protocol=tcp")),
         "excludedportrange6.txt", "remote.parsers.excludedportrange:parse_excludedportrange",
         error_words=("ipv6 show excludedportrange",),
         content="output of `netsh.exe int ipv6 show excludedportrange protocol=tcp`", need="optional"),
    Kind("iis_sites", Script(IIS_SITES_SCRIPT), "iis_sites.txt", "remote.parsers.iis_sites:parse_iis_sites",
         error_words=("get-website",),
         content="`Get-Website` table (empty where IIS's WebAdministration module is absent)",
         need="optional (IIS site names and bindings)"),
    Kind("iis_apppools", Script(IIS_APPPOOLS_SCRIPT), "iis_apppools.txt",
         "remote.parsers.iis_apppools:parse_iis_apppools", error_words=("get-iisapppool",),
         content="`Get-IISAppPool` table (empty where the IISAdministration module is absent)",
         need="optional (app pool states)"),
    Kind("nettcpconnection", Script(NETTCP_SCRIPT), "nettcpconnection.txt",
         "remote.parsers.nettcpconnection:parse_nettcpconnection", collected=False,
         error_words=("nettcpconnection",),
         content="`Get-NetTCPConnection -State Listen` table — asked for when `netstat.txt` is empty or missing",
         need="optional (stands in for netstat)"),
)
KINDS: dict[str, Kind] = {k.name: k for k in _ROWS}

# derived tables
FILES: dict[str, str] = {k.name: k.file for k in _ROWS if k.file}  # kind -> bundle file name
COMMANDS: dict[str, str] = {k.name: k.command.text for k in _ROWS if k.file and k.command}  # in host.json
PARSED: tuple[str, ...] = tuple(k.name for k in _ROWS if k.parser)  # kinds the analysis parses when given
REQUIRED: tuple[str, ...] = tuple(k.name for k in _ROWS if k.required)
COLLECTED: tuple[str, ...] = tuple(k.name for k in _ROWS if k.collected)  # the scan's pipeline, in order


def marker_statement(kind: str) -> str:
    return f"Write-Output -InputObject {MARKER}{kind}"


# Every statement a scan (or a fix's read-back) may send, as the lab's canonical key writes it
# (remote.lab.api.canonical_key): the tests check the lab's command log against this set.
READ_ONLY_STATEMENTS: frozenset[str] = frozenset(
    s for k in _ROWS if k.command for s in (marker_statement(k.name), k.command.statement)
)


def attribute_error(text: str, kinds: list[str]) -> Optional[str]:
    """Which of ``kinds`` a failed statement's error text belongs to (None: cannot tell)."""
    low = text.lower()
    for kind in kinds:
        if any(w in low for w in KINDS[kind].error_words):
            return kind
    for kind in kinds:
        if any(w in low for w in KINDS[kind].shared_words):
            return kind
    return None


def markdown_table() -> str:
    """The file table of docs/evidence-bundle.md (between its ``kinds`` markers)."""
    rows = ["| file | content | required |", "|---|---|---|"]
    for k in _ROWS:
        if not k.file:
            continue
        content = k.content or (f"`{k.command.text}`" if k.command else "")
        rows.append(f"| `{k.file}` | {content.replace('|', chr(92) + '|')} | {k.need} |")
    rows.append(HOST_JSON_ROW)
    return "\n".join(rows) + "\n"


HOST_JSON_ROW = (
    "| `host.json` | metadata: `host`, `hostname`, `address`, `os_version`, `collected_at`, `status`, `error`, "
    "`errors` (per command), `elapsed_s`; the lab reads a `lab` object here (faults, elevation) | optional |"
)
DOCS_BEGIN = "<!-- evidence kinds: generated from remote/evidence/kinds.py (python -m remote.evidence.kinds) -->"
DOCS_END = "<!-- end of evidence kinds -->"


def update_docs(text: str) -> str:
    """docs/evidence-bundle.md with its table regenerated between the markers."""
    head, rest = text.split(DOCS_BEGIN, 1)
    _, tail = rest.split(DOCS_END, 1)
    return f"{head}{DOCS_BEGIN}\n{markdown_table()}{DOCS_END}{tail}"


if __name__ == "__main__":  # rewrite the table in docs/evidence-bundle.md
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "evidence-bundle.md"
    doc.write_text(update_docs(doc.read_text(encoding="utf-8")), encoding="utf-8")
