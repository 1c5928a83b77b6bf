"""``port80 scan --cluster tcp://SCHEDULER:8786``: the hosts run on Dask workers, results come home.

Dask distributed (``pip install "port80[dask]"``) does the scheduling, retries and placement; port80
only cuts the fleet into batches and says where each may run:

* a batch is one Dask task: ``scan_batch`` runs the same fleet runner and the same per-host task as
  a local scan (``remote.runner.fleet``, ``remote.runner.scan.host_task``) on the worker, with
  ``--forks`` hosts in flight and port80's per-host deadline, and returns every host's raw evidence
  (or its failure, already classified there, as one line);
* placement: hosts whose inventory sets ``port80_segment=NAME`` go in batches that need the worker
  resource ``segment-NAME`` (one unit per batch; a worker started with ``--resources
  segment-NAME=N`` runs N such batches at once); hosts without it run on any worker;
* results stream back as each batch finishes; the submitting machine writes everything (evidence
  folders, results.jsonl, reports) with the same code as a local scan, so the output is the same,
  plus the worker's name as ``runner`` in each host.json;
* a worker that dies: Dask runs its unfinished batches again on another worker that may take them
  (or on the same one restarted by its nanny); a host already recorded is never recorded again;
* credentials: each batch carries the passwords of its hosts in memory only, wrapped in ``Secret``
  (its repr is ``Secret(***)``, so Dask's logs of a task's arguments never show one); task keys
  are ``port80-<run>-<n>`` (no host name, no secret); ``scan_batch`` never raises, so Dask never
  logs a failed task's arguments. Dask's own connections are plain TCP unless the cluster is
  configured for TLS (``tls://``): see docs/scale.md.
"""

from __future__ import annotations

import logging
import re
import secrets as _random
from typing import IO, TYPE_CHECKING, Any, Optional

from remote.errors import Port80Error
from remote.remoting.collect import Collected, ConnectionSpec
from remote.runner.failures import Classified, classify, one_line
from remote.runner.fleet import Context, FleetRunner, Job, Progress, Result

if TYPE_CHECKING:
    from remote.runner.scan import Scan

log = logging.getLogger("port80.cluster")

SEGMENT_VAR = "port80_segment"
SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
CONNECT_TIMEOUT_S = 20


class ClusterError(Port80Error):
    """The Dask cluster cannot be used as asked (one line: what and why)."""


def resource_name(segment: str) -> str:
    """The Dask worker resource a segment's hosts need."""
    return f"segment-{segment}"


def check_segment(host: str, segment: Any) -> Optional[str]:
    """``port80_segment`` of ``host`` as a resource-safe name (None when unset); ValueError naming the host."""
    if segment is None or segment == "":
        return None
    seg = str(segment)
    if not SEGMENT_RE.match(seg):
        raise ValueError(f"{host}: {SEGMENT_VAR}={seg!r}: use letters, digits, '.', '_' or '-' (a Dask resource name)")
    return seg


class Secret:
    """A password on its way to a worker: in memory only, never shown by repr/str (Dask logs task
    arguments when a task fails)."""

    __slots__ = ("_value",)

    def __init__(self, value: Optional[str]) -> None:
        self._value = value

    def get(self) -> Optional[str]:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[Secret], tuple[Optional[str]]]:
        return (Secret, (self._value,))


# ----------------------------------------------------------------------------------- on the worker


def _worker_info() -> dict[str, Any]:
    try:
        from distributed import get_worker

        w = get_worker()
        state = getattr(w, "state", None)
        resources = dict(getattr(state, "total_resources", None) or getattr(w, "total_resources", {}) or {})
        return {"name": str(w.name), "address": str(w.address), "resources": resources}
    except Exception:  # noqa: BLE001 - called outside a worker (tests, a local run)
        return {"name": "local", "address": "", "resources": {}}


def scan_batch(specs: list[ConnectionSpec], passwords: dict[str, Secret], secrets: list[Secret], mode: str,
               forks: int, timeout: float) -> dict[str, Any]:
    """One Dask task: scan ``specs`` on this worker. Never raises: a host's failure is classified here
    (secrets masked) and returned as data, like its evidence."""
    from remote.runner.scan import host_task

    masks = [s for s in (x.get() for x in secrets) if s]
    hosts: list[tuple[str, Any, Optional[str], Optional[str], float]] = []
    done: set[str] = set()

    def password_for(spec: ConnectionSpec) -> Optional[str]:
        p = passwords.get(spec.name)
        return p.get() if p is not None else None

    def task(spec: ConnectionSpec, ctx: Context) -> Any:
        return host_task(spec, ctx, mode, password_for)

    def on_result(r: Result[ConnectionSpec]) -> Optional[str]:
        done.add(r.name)
        if r.exc is not None:
            status, error = classify(r.exc, masks)
            hosts.append((r.name, None, status, error, r.elapsed))
            return status
        hosts.append((r.name, r.value, None, None, r.elapsed))
        return "done"

    try:
        FleetRunner(task, on_result, forks=max(1, min(forks, len(specs))), timeout=timeout,
                    thread_name="port80-dask").run(Job(s.name, s) for s in specs)
    except BaseException as e:  # noqa: BLE001 - never raise out of a Dask task (its arguments would be logged)
        msg = one_line(f"the worker failed: {type(e).__name__}: {e}", masks, 300)
        for s in specs:
            if s.name not in done:
                hosts.append((s.name, None, "error", msg, 0.0))
    return {"worker": _worker_info(), "hosts": hosts}


# ------------------------------------------------------------------------ on the submitting machine


def batches(todo: list[ConnectionSpec], segments: dict[str, str], size: int) -> list[tuple[Optional[str], list[ConnectionSpec]]]:
    """(segment or None, specs) per batch: hosts of one segment together, in inventory order."""
    groups: dict[Optional[str], list[ConnectionSpec]] = {}
    for spec in todo:
        groups.setdefault(segments.get(spec.name) or None, []).append(spec)
    out: list[tuple[Optional[str], list[ConnectionSpec]]] = []
    for seg, specs in groups.items():
        for i in range(0, len(specs), size):
            out.append((seg, specs[i:i + size]))
    return out


def _client(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError("--cluster needs Dask distributed: pip install \"port80[dask]\"") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise ClusterError(f"--cluster {address}: cannot reach the Dask scheduler ({one_line(e, (), 200)})") from None


def _check_placement(client: Any, plan: list[tuple[Optional[str], list[ConnectionSpec]]]) -> None:
    workers = client.scheduler_info().get("workers", {})
    if not workers:
        raise ClusterError("the Dask cluster has no worker")
    offered = {r for w in workers.values() for r, n in (w.get("resources") or {}).items() if n}
    for seg, specs in plan:
        if seg is not None and resource_name(seg) not in offered:
            raise ClusterError(f"no Dask worker offers resource {resource_name(seg)}=1 for the hosts with "
                               f"{SEGMENT_VAR}={seg} (e.g. {specs[0].name}): start one with "
                               f"dask worker SCHEDULER --resources {resource_name(seg)}=1")


def run_on_cluster(scan: "Scan", todo: list[ConnectionSpec], fh: IO[str]) -> bool:
    """Run ``todo`` on the Dask cluster at ``scan.opts.cluster``; each host's result is written by
    ``scan`` (evidence folder, results.jsonl) as its batch comes back. Returns True when interrupted."""
    from distributed import as_completed

    opts = scan.opts
    size = opts.batch or max(1, opts.forks)
    plan = batches(todo, opts.segments, size)
    if not plan:
        return False
    client = _client(str(opts.cluster))
    run_id = _random.token_hex(4)
    progress = Progress(len(todo), opts.progress)
    recorded: set[str] = set()
    secrets = [Secret(s) for s in scan.secrets]
    futures: dict[Any, list[ConnectionSpec]] = {}
    interrupted = False
    running = len(todo)

    def finish(spec: ConnectionSpec, value: Any, exc: Optional[BaseException], elapsed: float) -> None:
        nonlocal running
        if spec.name in recorded:  # a batch that ran twice (its worker died after it finished): once only
            return
        recorded.add(spec.name)
        report = scan.record_finished(spec, scan.finish_host(spec, value, exc, elapsed), fh)
        running -= 1
        progress.update(report.status, running)

    try:
        _check_placement(client, plan)
        for n, (seg, specs) in enumerate(plan):
            passwords = {s.name: Secret(scan.password_for(s)) for s in specs}
            fut = client.submit(scan_batch, specs, passwords, secrets, opts.mode, opts.forks, opts.timeout,
                                key=f"port80-{run_id}-{n:05d}", pure=False,
                                resources={resource_name(seg): 1} if seg else None)
            futures[fut] = specs
        for fut in as_completed(list(futures), loop=client.loop):
            specs = futures[fut]
            by_name = {s.name: s for s in specs}
            try:
                got = fut.result()
            except Exception as e:  # noqa: BLE001 - e.g. KilledWorker after too many worker deaths
                msg = one_line(f"the Dask cluster could not run this host's batch ({type(e).__name__}: {e})",
                               scan.secrets, 300)
                for s in specs:
                    finish(s, None, Classified("error", msg), 0.0)
                continue
            worker = got.get("worker") or {}
            for name, value, status, error, elapsed in got.get("hosts", []):
                spec = by_name.get(name)
                if spec is None:
                    continue
                if status is not None:
                    finish(spec, None, Classified(status, error or status), elapsed)
                    continue
                if isinstance(value, Collected):
                    value.meta["runner"] = worker.get("name")
                finish(spec, value, None, elapsed)
            for s in specs:  # every host accounted for, even if a batch came back short
                if s.name not in recorded:
                    finish(s, None, Classified("error", "the Dask worker returned no result for this host"), 0.0)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        try:
            if interrupted:
                client.cancel(list(futures))
        finally:
            progress.close()
            client.close()
    return interrupted


__all__ = ["ClusterError", "Secret", "batches", "check_segment", "resource_name", "run_on_cluster", "scan_batch"]
