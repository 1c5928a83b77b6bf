"""Collect one host's evidence over PowerShell remoting (pypsrp). The only module that talks to hosts.

One host = one WSMan + one RunspacePool, created, used and closed in the calling thread (no pypsrp
object crosses threads). All evidence comes back from ONE pipeline of several statements, each
preceded by a marker string, so a host costs: open pool (Create + 2 Receives, as Windows answers it),
one Command + Receive, close (Delete): 6 HTTP requests over Basic/HTTPS, 7 over NTLM/HTTP (one auth leg
more; pypsrp alone needs 3, see remote/remoting/transport.py). Commands are
read-only (see ``EVIDENCE``); tests assert the lab saw nothing else.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Union

from remote.evidence.kinds import COLLECTED, COMMANDS, KINDS, MARKER, attribute_error

log = logging.getLogger("port80.collect")

@dataclass
class ConnectionSpec:
    """How to reach one host (built from the inventory; holds no secret)."""

    name: str
    address: str
    port: int = 5986
    scheme: str = "https"
    auth: str = "negotiate"
    user: Optional[str] = None
    cert_validation: Union[bool, str] = True  # True, False, or a CA bundle path
    encryption: str = "auto"
    connection_timeout: float = 10
    read_timeout: float = 30
    operation_timeout: int = 20
    configuration_name: str = "Microsoft.PowerShell"
    path: str = "wsman"  # the WinRM endpoint's URL path (ansible_psrp_path)
    ports: Optional[list[int]] = None  # the ports to audit on this host (port80_ports; None: the run's)
    certificate_pem: Optional[str] = None
    certificate_key_pem: Optional[str] = None
    groups: list[str] = field(default_factory=list)  # the host's inventory groups (reports carry them)
    # Kerberos/Negotiate: the SPN is <negotiate_service>/<negotiate_hostname_override or address>
    negotiate_hostname_override: Optional[str] = None
    negotiate_service: Optional[str] = None  # pypsrp's default: WSMAN
    negotiate_delegate: bool = False
    negotiate_send_cbt: bool = True
    # the most bytes one host may send while port80 collects (None: no cap); over it the host is
    # `partial` with the reason, and what came before is kept (remote/remoting/transport.py)
    max_output_bytes: Optional[int] = None


@dataclass
class Collected:
    """Raw evidence of one host: texts by evidence kind, plus metadata (host.json)."""

    texts: dict[str, Optional[str]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    command_errors: dict[str, str] = field(default_factory=dict)  # kind -> why it failed


# evidence kind -> how to ask for it (remote/evidence/kinds.py; read-only commands only)
EVIDENCE: dict[str, Callable[[Any], None]] = {k: KINDS[k].build for k in COLLECTED}
# kind -> (the kind asked for instead when it yields nothing, how to ask for that one)
FALLBACK: dict[str, tuple[str, Callable[[Any], None]]] = {
    k.name: (k.fallback, KINDS[k.fallback].build) for k in KINDS.values() if k.fallback
}


def connect(spec: ConnectionSpec, password: Optional[str]):
    """A pypsrp WSMan for ``spec`` with every timeout and retry set explicitly, and port80's transport
    (remote/remoting/transport.py: NTLM/Negotiate over HTTP in 2 requests fewer)."""
    from remote.remoting.transport import Port80WSMan

    kwargs: dict[str, Any] = {}
    if spec.auth == "certificate":
        kwargs.update(certificate_pem=spec.certificate_pem, certificate_key_pem=spec.certificate_key_pem)
    if spec.auth in ("negotiate", "kerberos", "ntlm"):
        kwargs.update(negotiate_delegate=spec.negotiate_delegate, negotiate_send_cbt=spec.negotiate_send_cbt)
        if spec.negotiate_hostname_override:
            kwargs["negotiate_hostname_override"] = spec.negotiate_hostname_override
        if spec.negotiate_service:
            kwargs["negotiate_service"] = spec.negotiate_service
    wsman = Port80WSMan(  # pypsrp's WSMan with port80's transport (tune_wsman)
        spec.address,
        port=spec.port,
        path=spec.path,
        username=spec.user,
        password=password,
        ssl=spec.scheme == "https",
        auth=spec.auth,
        cert_validation=spec.cert_validation,  # type: ignore[arg-type]  # pypsrp: bool, or a CA bundle path
        encryption=spec.encryption,
        connection_timeout=spec.connection_timeout,  # type: ignore[arg-type]  # pypsrp passes it to requests
        read_timeout=spec.read_timeout,  # type: ignore[arg-type]
        operation_timeout=max(1, int(spec.operation_timeout)),
        reconnection_retries=0,
        reconnection_backoff=0.1,  # pypsrp retries a timed-out Receive 5x: keep the backoff short
        no_proxy=True,
        max_envelope_size=512000,
        **kwargs,
    )
    if spec.max_output_bytes:
        wsman.transport._port80_cap = int(spec.max_output_bytes)  # type: ignore[attr-defined]  # transport.py
    return wsman


def run_pipeline(pool, kinds: list[str], builders: dict[str, Callable]) -> tuple[dict[str, Any], dict[str, str]]:
    """Run ``kinds`` as one pipeline of statements on ``pool`` (a ``Session``, remote/remoting/psrp.py, or
    a pypsrp ``RunspacePool``); split the output on the markers."""
    from remote.remoting.psrp import Pipeline, Session, pipeline_xml
    from remote.remoting.transport import OutputCapExceeded

    capped: Optional[OutputCapExceeded] = None
    if isinstance(pool, Session):
        ran = Pipeline()
        try:
            pool.run(pipeline_xml(kinds, builders, _add_statements, pool.wsman, pool.protocol_version), ran)
        except OutputCapExceeded as e:  # keep the statements that came in whole; the rest is the cap's
            capped = e
        output, error_records, had_errors = ran.output, ran.errors, ran.had_errors
    else:
        output, error_records, had_errors, capped = _pypsrp_pipeline(pool, kinds, builders)
    got: dict[str, list[Any]] = {}
    current: Optional[str] = None
    for item in output:
        if isinstance(item, str) and item.startswith(MARKER) and item[len(MARKER):] in builders:
            current = item[len(MARKER):]
            got[current] = []
        elif current is not None:
            got[current].append(item)
    errors: dict[str, str] = {}
    if capped is not None:
        if current is not None:
            del got[current]  # cut by the cap: never analysed as if it were whole
            errors[current] = f"cut off: {capped}"
        for kind in kinds:
            if kind not in got and kind not in errors:
                errors[kind] = f"not collected: {capped}"
    for rec in error_records:
        rec_kind = _error_kind(rec, kinds)
        if rec_kind:
            errors.setdefault(rec_kind, _one_line(str(rec)))
    results: dict[str, Any] = {}
    for kind in kinds:
        if kind in got and (got[kind] or kind not in errors):
            results[kind] = got[kind]
        elif kind not in errors:
            errors[kind] = "no output (pipeline " + ("failed" if had_errors else "ended") + " before it ran)"
    return results, errors


def _pypsrp_pipeline(pool, kinds: list[str], builders: dict[str, Callable]) -> tuple[list, list, bool, Any]:
    """``run_pipeline`` on a pypsrp ``RunspacePool``: output, error records, had_errors, the cap's exception."""
    from pypsrp.powershell import PowerShell

    from remote.remoting.transport import OutputCapExceeded

    ps = PowerShell(pool)
    _add_statements(ps, kinds, builders)
    capped: Optional[OutputCapExceeded] = None
    try:
        output = ps.invoke()
    except OutputCapExceeded as e:  # keep the statements that came in whole; the rest is the cap's
        capped, output = e, list(ps.output)
    # the pipeline is over: forget it as pypsrp's close() does (without its Signal request), which
    # breaks the pool <-> pipeline cycle that kept each host's HTTP session and TLS context alive
    # until a full garbage collection
    getattr(pool, "pipelines", {}).pop(ps.id, None)
    return output, list(ps.streams.error), ps.had_errors, capped


def _add_statements(ps: Any, kinds: list[str], builders: dict[str, Callable]) -> None:
    """Each kind's statement, preceded by its marker statement."""
    for kind in kinds:
        ps.add_cmdlet("Write-Output").add_parameter("InputObject", MARKER + kind).add_statement()
        builders[kind](ps)
        ps.add_statement()


def _error_kind(rec: Any, kinds: list[str]) -> Optional[str]:
    """Which evidence kind an error record belongs to, from the command it names."""
    text = " ".join(str(getattr(rec, a, "") or "") for a in ("command_name", "invocation_name", "message", "fq_error"))
    inv = getattr(rec, "invocation", None) or getattr(rec, "invocation_info", None)
    text += " " + str(inv or "") + " " + str(rec)
    return attribute_error(text, kinds)


def _one_line(text: str) -> str:
    from remote.runner.failures import one_line

    return one_line(text, (), 300)


def as_text(items: list[Any]) -> str:
    return "".join(i if isinstance(i, str) else str(i) for i in items)


OPERATION_TIMEOUT_FAULT = 2150858793  # w:TimedOut: "nothing within OperationTimeout", ask again


def open_pool(wsman: Any, spec: ConnectionSpec) -> Any:
    """The host's pool, not yet opened: port80's ``Session`` (remote/remoting/psrp.py), or pypsrp's tuned
    ``RunspacePool`` where the session cannot write pypsrp's envelopes (nothing has been sent then)."""
    from remote.remoting.psrp import Session, Unsupported

    try:
        return Session(wsman, spec.configuration_name)
    except Unsupported as e:
        log.debug("%s: pypsrp's RunspacePool (%s)", spec.name, e)
        from pypsrp.powershell import RunspacePool

        return tuned_pool(RunspacePool(wsman, configuration_name=spec.configuration_name))


def tuned_pool(pool):
    """A new pypsrp RunspacePool with port80's client tuning (remote/remoting/transport.py), not yet opened,
    that survives a slow open."""
    from remote.remoting.transport import tune_pool

    tune_pool(pool)
    _retry_open_timeouts(pool)
    return pool


def _retry_open_timeouts(pool) -> None:
    """Windows opens a pool in two Receives, and on a loaded host the second one can end in the
    OperationTimeout fault; pypsrp's ``RunspacePool.open()`` does not retry it (only ``poll_invoke`` does,
    for pipeline output). Pool-level Receives are asked again on that fault until the read timeout
    (which the runner bounds by the host's deadline) has passed."""
    from pypsrp.exceptions import WSManFaultError

    # the pool's own method, held weakly: a closure holding the pool would make pool -> closure -> pool a
    # reference cycle, which the fleet runner's frozen garbage collections would keep until the end
    inner = weakref.WeakMethod(pool._receive)
    transport = getattr(pool.connection, "transport", None)
    budget = float(getattr(transport, "read_timeout", None) or 30)

    def call(id, timeout):  # noqa: A002
        method = inner()
        if method is None:
            raise RuntimeError("the runspace pool is gone")
        return method(id, timeout)

    def receive(id=None, timeout=None):  # noqa: A002 - pypsrp's signature
        if id is not None:
            return call(id, timeout)
        started = time.monotonic()
        while True:
            try:
                return call(id, timeout)
            except WSManFaultError as e:
                if e.code != OPERATION_TIMEOUT_FAULT or time.monotonic() - started >= budget:
                    raise
                log.debug("pool Receive: OperationTimeout, asking again")

    pool._receive = receive


def collect(spec: ConnectionSpec, password: Optional[str],
            on_evidence: Optional[Callable[[Collected], None]] = None) -> Collected:
    """Collect every evidence kind from one host. Raises what pypsrp/requests raise on failure
    (the runner classifies it); command-level failures are recorded in ``command_errors``.

    Once every answer is in, the evidence is complete: ``on_evidence(collected)`` gets it before the
    session is closed (so the caller can store and analyse it while the Delete request is on the
    wire), and a failure to close the session no longer fails the host (logged, and noted as
    ``close_error`` in host.json when nobody took the evidence earlier)."""
    started = datetime.now(timezone.utc)
    out: Optional[Collected] = None
    evidence, skipped = session_evidence(spec)
    try:
        with connect(spec, password) as wsman:
            with open_pool(wsman, spec) as pool:
                results, errors = run_pipeline(pool, list(evidence), evidence)
                capped = getattr(wsman.transport, "_port80_capped", False)  # nothing more to ask this host
                missing = [k for k in evidence if k not in results]
                if missing and len(missing) < len(evidence) and not capped:
                    # a statement broke the pipeline: ask again, one statement per kind still missing
                    for kind in missing:
                        r, e = run_pipeline(pool, [kind], evidence)
                        results.update(r)
                        if kind in r:
                            errors.pop(kind, None)
                        elif kind in e:
                            errors[kind] = e[kind]
                for kind, (name, build) in FALLBACK.items():
                    if not capped and kind in EVIDENCE and (kind not in results or not as_text(results[kind]).strip()):
                        r, e = run_pipeline(pool, [name], {name: build})
                        if name in r:
                            results[name] = r[name]
                        elif name in e:
                            errors[name] = e[name]
                out = _collected(spec, results, errors, started)
                if skipped:
                    out.meta["jea"] = _jea_note(spec, skipped)
                if on_evidence is not None:
                    on_evidence(out)
    except Exception as e:
        if out is None:
            raise
        log.debug("%s: closing the session failed after the evidence was collected", spec.name, exc_info=True)
        if on_evidence is None:
            out.meta["close_error"] = _one_line(f"{type(e).__name__}: {e}")
    return out


def _collected(spec: ConnectionSpec, results: dict[str, Any], errors: dict[str, str], started: datetime) -> Collected:
    out = Collected()
    for kind, items in results.items():
        if KINDS[kind].file is None:  # os, elevated: host.json only
            continue
        out.texts[kind] = as_text(items)
    out.command_errors = errors
    out.meta = _meta(spec, results, errors, started)
    return out


def _meta(spec: ConnectionSpec, results: dict[str, Any], errors: dict[str, str], started: datetime) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "host": spec.name,
        "address": spec.address,
        "collected_at": started.isoformat(timespec="seconds"),
        "commands": {k: COMMANDS[k] for k in results if k in COMMANDS},
    }
    os_items = results.get("os")
    if os_items:
        try:
            info = json.loads(as_text(os_items).lstrip("\ufeff"))
            if isinstance(info, list):
                info = info[0] if info else {}
            meta["hostname"] = info.get("CSName")
            meta["os_version"] = info.get("Version")
            meta["os_caption"] = info.get("Caption")
        except (ValueError, AttributeError, TypeError):
            pass
    el = results.get("elevated")
    if el:
        meta["elevated"] = str(el[0]).strip().lower() == "true"
    if errors:
        meta["errors"] = dict(errors)
    return meta


def check(spec: ConnectionSpec, password: Optional[str]) -> dict[str, Any]:
    """Reachability, credentials and elevation, in one pool and one tiny pipeline."""
    evidence, skipped = session_evidence(spec)
    with connect(spec, password) as wsman:
        with open_pool(wsman, spec) as pool:
            results, errors = run_pipeline(pool, [k for k in ("os", "elevated") if k in evidence], evidence)
    meta = _meta(spec, results, errors, datetime.now(timezone.utc))
    if skipped:
        meta["jea"] = _jea_note(spec, skipped)
    return meta


# the session configurations of a full PowerShell endpoint; any other name is taken for a constrained
# (JEA, NoLanguage) endpoint: commands only, no script
FULL_CONFIGURATIONS = frozenset({"microsoft.powershell", "microsoft.powershell32"})


def session_evidence(spec: ConnectionSpec) -> tuple[dict[str, Callable], list[str]]:
    """The evidence kinds to ask ``spec``'s endpoint for, and those skipped: on a JEA endpoint
    (``ansible_psrp_configuration_name`` other than Microsoft.PowerShell) the kinds sent as scripts
    (the elevation check) cannot run (NoLanguage) and are skipped."""
    if (spec.configuration_name or "Microsoft.PowerShell").lower() in FULL_CONFIGURATIONS:
        return EVIDENCE, []
    from remote.remoting.jea import script_kinds

    scripts = set(script_kinds())
    return {k: b for k, b in EVIDENCE.items() if k not in scripts}, sorted(scripts & set(EVIDENCE))


def _jea_note(spec: ConnectionSpec, skipped: list[str]) -> dict[str, Any]:
    return {"configuration": spec.configuration_name, "skipped": skipped,
            "why": "a JEA endpoint runs commands only (NoLanguage): script-based checks are skipped; its commands "
                   "run as the endpoint's virtual account (a local administrator when RunAsVirtualAccount is set)"}
