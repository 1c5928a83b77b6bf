"""``LabFleet``: N emulated Windows hosts served from a folder of evidence bundles, on loopback only.

By default (``base_address="127.0.1.1"``) each host gets its own loopback address 127.0.1.N (Linux
routes all of 127/8 to ``lo``) and the real WinRM port: 5986 (HTTPS) or 5985 (HTTP), so an
inventory needs no port. With ``base_address=None`` every host listens on 127.0.0.1 on its own
ephemeral port (what tests use: no clash between parallel runs). With more hosts than bundles the
bundles are cycled under distinct host names (``web-01``, ``web-01-2``, ...).

    with LabFleet(profiles, hosts=20) as fleet:
        fleet.write_inventory(path)
        ... fleet.stats()
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from remote.errors import Port80Error
from remote.lab.protocol import tls
from remote.lab.protocol.auth import LAB_DOMAIN, LAB_USER, NTLM_USERS, Credentials, KerberosAcceptor, lab_password
from remote.lab.protocol.kdc import SERVICE as KRB_SERVICE, KDCError, LabKDC, principal_host
from remote.lab.protocol.faults import Faults, FaultSpec, parse_faults
from remote.lab.protocol.server import Acceptor, LabHTTPServer
from remote.lab.engine.shell import HostRuntime

log = logging.getLogger("port80.lab.fleet")

HTTP_PORT, HTTPS_PORT = 5985, 5986
CERT_GROUP = 64  # hosts per TLS certificate
AUTH_MODES = ("basic", "ntlm", "negotiate", "kerberos")
KDC_MODES = ("negotiate", "kerberos")  # the lab runs its own KDC (remote/lab/protocol/kdc.py)


class LabError(Port80Error):
    """The lab cannot be set up as asked (message says why)."""


def default_profiles_dir() -> Path:
    """The shipped demo fleet (``remote/lab/fleet/profiles/``)."""
    from remote.lab.fleet import demo_fleet_dir

    return demo_fleet_dir()


def default_host_factory(path: Path, name: Optional[str]) -> Any:
    """The engine's ``LabHost.from_bundle`` (remote/lab/engine/host.py); without it (a checkout where it does
    not exist yet), ``fixture.ScriptedHost``, which answers the bundle's text evidence only."""
    try:
        from remote.lab.engine.host import LabHost
    except ModuleNotFoundError as e:
        if e.name != "remote.lab.engine.host":
            raise
        from remote.lab.fixture import ScriptedHost

        log.warning("lab: remote/lab/engine/host.py not found; serving bundles with the minimal ScriptedHost")
        return ScriptedHost.from_bundle(Path(path), name)
    return LabHost.from_bundle(Path(path), name)


@dataclass
class LabHostEndpoint:
    """One served host: where it listens and what it is."""

    name: str
    address: str
    port: int
    scheme: str
    bundle_dir: Path
    faults: Faults
    host: Any = None  # the engine's LabHost
    server: Optional[LabHTTPServer] = None  # None for a refusing host
    _reserved: Optional[socket.socket] = field(default=None, repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}/wsman"

    @property
    def command_log(self) -> list:
        return list(getattr(self.host, "command_log", []) or [])

    def stats(self) -> dict:
        if self.server is None:
            return {"requests": 0, "connections": 0, "actions": {}, "status": {}, "refused": True}
        return self.server.stats.snapshot()


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class LabFleet:
    """Start N emulated hosts from a folder of bundles (context manager)."""

    def __init__(
        self,
        profiles: Optional[Path] = None,
        hosts: Optional[int] = None,
        *,
        tls_enabled: Optional[bool] = None,
        auth: str = "basic",
        user: str = LAB_USER,
        password: Optional[str] = None,
        latency_ms: float = 0.0,
        base_address: Optional[str] = "127.0.1.1",
        port: Optional[int] = None,
        faults: Optional[dict[str, FaultSpec]] = None,
        allow_unencrypted: bool = False,
        workdir: Optional[Path] = None,
        host_factory: Optional[Callable[[Path, Optional[str]], Any]] = None,
        group: str = "lab",
        jea: Optional[Path] = None,
    ) -> None:
        auth = auth.lower()
        if auth not in AUTH_MODES:
            raise LabError(f"auth {auth!r}: choose from {', '.join(AUTH_MODES)}")
        if tls_enabled is None:
            tls_enabled = auth == "basic"
        if auth == "basic" and not tls_enabled and not allow_unencrypted:
            raise LabError("Basic over plain HTTP is refused by Windows unless AllowUnencrypted is on: "
                           "use TLS, NTLM, or allow_unencrypted=True (the client must then set encryption='never')")
        self.profiles = Path(profiles) if profiles is not None else default_profiles_dir()
        self.count = hosts
        self.tls = bool(tls_enabled)
        self.auth = auth
        self.credentials = Credentials(user=user, password=lab_password(password), domain=LAB_DOMAIN)
        self.latency_ms = float(latency_ms or 0)
        self.base_address = base_address
        self.port = port
        self.fault_overrides = dict(faults or {})
        self.allow_unencrypted = allow_unencrypted
        self.host_factory = host_factory or default_host_factory
        self.group = group
        self._workdir_given = workdir
        self.workdir: Optional[Path] = None
        self.hosts: list[LabHostEndpoint] = []
        self.ca_path: Optional[Path] = None
        self.inventory_path: Optional[Path] = None
        self.stopping = threading.Event()
        self._acceptor: Optional[Acceptor] = None
        self._ntlm_token: Optional[int] = None
        self.kdc: Optional[LabKDC] = None  # with --auth kerberos|negotiate: the lab's own realm
        self.jea_endpoint: Any = None  # remote.remoting.jea.Endpoint: a JEA configuration every host serves
        if jea is not None:
            from remote.remoting.jea import read_endpoint

            try:
                self.jea_endpoint = read_endpoint(Path(jea))
            except (OSError, ValueError) as e:
                raise LabError(f"--jea {jea}: {e}") from None
        self._started = False

    # ------------------------------------------------------------------------------ info

    @property
    def user(self) -> str:
        return self.credentials.user

    @property
    def password(self) -> str:
        return self.credentials.password

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def host(self, name: str) -> LabHostEndpoint:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def client_kwargs(self, host: LabHostEndpoint | str) -> dict:
        """Keyword arguments for ``pypsrp.wsman.WSMan`` to reach ``host`` (handy in tests and demos)."""
        h = self.host(host) if isinstance(host, str) else host
        kw: dict[str, Any] = dict(
            server=h.address, port=h.port, username=self.user, password=self.password, ssl=self.tls,
            auth=self.auth, no_proxy=True,
        )
        if self.tls:
            kw["cert_validation"] = str(self.ca_path)
        elif self.auth == "basic":
            kw["encryption"] = "never"
        if self.kdc is not None:
            kw.update(negotiate_hostname_override=self.kerberos_host(h), negotiate_service=KRB_SERVICE)
        return kw

    def kerberos_host(self, host: "LabHostEndpoint | str") -> str:
        """The host's Kerberos name (its SPN is ``HTTP/<this>``), e.g. ``web-01.lab.test``."""
        name = host if isinstance(host, str) else host.name
        return principal_host(name, self.kdc.realm if self.kdc is not None else "LAB.TEST")

    # --------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> "LabFleet":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _bundles(self) -> list[Path]:
        from remote.evidence.bundle import BundleError, find_bundles

        if not self.profiles.exists():
            raise LabError(f"{self.profiles}: no such folder of bundles")
        try:
            return find_bundles([self.profiles])
        except BundleError as e:
            raise LabError(str(e)) from None

    def _addresses(self, n: int) -> tuple[list[str], list[int]]:
        default_port = HTTPS_PORT if self.tls else HTTP_PORT
        if self.base_address is None:
            base, distinct = "127.0.0.1", False
        else:
            base = self.base_address
            if not _is_loopback(base):
                raise LabError(f"base address {base}: the lab serves loopback addresses only (127.0.0.0/8, ::1)")
            distinct = ipaddress.ip_address(base).version == 4
        addrs: list[str] = []
        ports: list[int] = []
        for i in range(n):
            if distinct:
                a = str(ipaddress.ip_address(base) + i)
                if not _is_loopback(a):
                    raise LabError(f"{n} hosts from {base} leave 127.0.0.0/8")
                addrs.append(a)
                ports.append(default_port if self.port is None else self.port)
            else:
                addrs.append(base)
                ports.append(0 if not self.port else self.port + i)
        return addrs, ports

    def start(self) -> "LabFleet":
        if self._started:
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        bundles = self._bundles()
        n = self.count if self.count is not None else len(bundles)
        if n < 1:
            raise LabError("hosts must be at least 1")
        # hosts (the engine), with distinct names
        made: list[tuple[Path, Any]] = []
        natural: dict[Path, str] = {}
        used: set[str] = set()
        first: dict[Path, Any] = {}  # bundle -> its first host: the others are its twins (one parse per bundle)
        share = self.host_factory is default_host_factory

        def make(b: Path, name: Optional[str]) -> Any:
            proto = first.get(b) if share and name is not None else None
            if proto is not None and hasattr(proto, "twin"):
                return proto.twin(name)
            try:
                h = self.host_factory(b, name)
                first.setdefault(b, h)
                return h
            except LabError:
                raise
            except Exception as e:  # a bundle the engine cannot model (nesting, 1e400, …): one line naming it
                msg = " ".join(str(e).split())[:200]
                raise LabError(f"{b}: cannot serve this bundle ({type(e).__name__}: {msg})") from None

        for i in range(n):
            b = bundles[i % len(bundles)]
            rnd = i // len(bundles)
            if rnd == 0:
                h = make(b, None)
                natural[b] = h.name
                if h.name in used:
                    h = make(b, _unique(h.name, used))
            else:
                h = make(b, _unique(f"{natural[b]}-{rnd + 1}", used))
            used.add(h.name)
            made.append((b, h))
        unknown = set(self.fault_overrides) - used
        if unknown:
            raise LabError(f"fault for unknown host(s): {', '.join(sorted(unknown))} "
                           f"(hosts: {', '.join(sorted(used)[:10])}{' ...' if len(used) > 10 else ''})")

        addrs, ports = self._addresses(n)
        self.workdir = Path(self._workdir_given) if self._workdir_given else Path(
            tempfile.mkdtemp(prefix="port80-lab-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        contexts: list = [None] * n
        if self.tls:
            # one certificate per CERT_GROUP hosts, naming their addresses and host names (+ localhost)
            chunks = [list(range(i, min(i + CERT_GROUP, n))) for i in range(0, n, CERT_GROUP)]
            groups = [sorted({"localhost", "127.0.0.1", "::1", *(addrs[i] for i in c), *(made[i][1].name for i in c)})
                      for c in chunks]
            files = tls.generate_groups(self.workdir, groups)
            self.ca_path = files[0].ca_path.resolve()
            for chunk, f in zip(chunks, files):
                ctx = f.server_context()
                for i in chunk:
                    contexts[i] = ctx
        # every listener offers Negotiate (and Basic), as a Windows host with both enabled
        self._ntlm_token = NTLM_USERS.register(self.credentials)
        if self.auth in KDC_MODES:
            self.kdc = LabKDC(self.workdir / "kdc")
            try:
                self.kdc.create(self.user, self.password, [principal_host(h.name, self.kdc.realm) for _, h in made])
                self.kdc.start()
            except KDCError as e:
                raise LabError(str(e)) from None

        self._acceptor = Acceptor()
        for (bundle, h), addr, port, ssl_context in zip(made, addrs, ports, contexts):
            try:
                spec = self.fault_overrides[h.name] if h.name in self.fault_overrides else getattr(h, "faults", {})
                faults = parse_faults(spec)
            except ValueError as e:
                raise LabError(f"{h.name}: {e}") from None
            ep = LabHostEndpoint(name=h.name, address=addr, port=port, scheme=self.scheme, bundle_dir=bundle,
                                 faults=faults, host=h)
            if faults.refuse:
                ep._reserved = _reserve(addr, port)  # bound, never listening: connection refused
                ep.port = ep._reserved.getsockname()[1]
            else:
                runtime = HostRuntime(h, faults=faults, machine=h.name, stopping=self.stopping)
                if self.jea_endpoint is not None:
                    from remote.lab.engine.jea import JeaGate

                    runtime.endpoints[self.jea_endpoint.name.lower()] = JeaGate(self.jea_endpoint)
                try:
                    kerberos = None
                    if self.kdc is not None:
                        kerberos = KerberosAcceptor(str(self.kdc.keytab), principal_host(h.name, self.kdc.realm),
                                                    KRB_SERVICE, rcache=self.kdc.replay_cache(h.name))
                    server = LabHTTPServer(addr, port, runtime, self.credentials, ssl_context=ssl_context,
                                           allow_unencrypted=self.allow_unencrypted, latency_ms=self.latency_ms,
                                           stopping=self.stopping, kerberos=kerberos,
                                           ntlm=self.auth != "kerberos")
                except OSError as e:
                    raise LabError(f"{h.name}: cannot listen on {addr}:{port}: {e.strerror or e}"
                                   + (" (another lab running? use --port or --base-address)" if port else "")) \
                        from None
                ep.server = server
                ep.port = server.server_address[1]
                self._acceptor.add(server)
            self.hosts.append(ep)
        self._acceptor.start()
        log.info("lab: %d hosts up (%s, %s)", len(self.hosts), self.scheme, self.auth)

    def stop(self) -> None:
        """Stop every listener, drop every connection (hung ones too), remove the temporary files."""
        self.stopping.set()
        if self._acceptor is not None:
            self._acceptor.stop()
            self._acceptor = None
        for ep in self.hosts:
            if ep.server is not None:
                ep.server.close()
            if ep._reserved is not None:
                try:
                    ep._reserved.close()
                except OSError:
                    pass
                ep._reserved = None
        if self._ntlm_token is not None:
            NTLM_USERS.unregister(self._ntlm_token)
            self._ntlm_token = None
        if self.kdc is not None:
            self.kdc.stop()
        if self.workdir is not None and self._workdir_given is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --------------------------------------------------------------------------- outputs

    def stats(self) -> dict:
        """Per-host request counters (``requests``, ``actions`` by WSMan action, ``status``...) and totals."""
        per = {h.name: h.stats() for h in self.hosts}
        total: dict[str, Any] = {"requests": 0, "connections": 0, "pipelines": 0, "actions": {}, "status": {}}
        for s in per.values():
            for k in ("requests", "connections", "pipelines"):
                total[k] += s.get(k, 0)
            for k in ("actions", "status"):
                for kk, v in s.get(k, {}).items():
                    total[k][kk] = total[k].get(kk, 0) + v
        return {"hosts": per, "total": total}

    def reset_stats(self) -> None:
        for h in self.hosts:
            if h.server is not None:
                h.server.stats.reset()

    def inventory_text(self) -> str:
        default_port = HTTPS_PORT if self.tls else HTTP_PORT
        ports = {h.port for h in self.hosts}
        group_port = ports.pop() if len(ports) == 1 else None
        lines = [
            "# written by port80 lab serve; password: set PORT80_PASSWORD (the lab's password is printed at start)",
            f"[{self.group}]",
        ]
        if self.kdc is not None:
            lines.insert(1, f"# Kerberos: export KRB5_CONFIG={self.kdc.krb5_conf} (realm {self.kdc.realm}; "
                            f"no DNS: each host's Kerberos name is its negotiate_hostname_override)")
        for h in self.hosts:
            line = f"{h.name} ansible_host={h.address}"
            if group_port is None:
                line += f" ansible_port={h.port}"
            if self.kdc is not None:
                line += f" ansible_psrp_negotiate_hostname_override={self.kerberos_host(h)}"
            lines.append(line)
        lines += [
            "",
            f"[{self.group}:vars]",
            "ansible_connection=psrp",
            f"ansible_user={self.user}",
            f"ansible_port={group_port if group_port is not None else default_port}",
            f"ansible_psrp_protocol={self.scheme}",
            f"ansible_psrp_auth={self.auth}",
        ]
        if self.kdc is not None:
            lines.append(f"ansible_psrp_negotiate_service={KRB_SERVICE}")
        if self.jea_endpoint is not None:
            lines.append(f"ansible_psrp_configuration_name={self.jea_endpoint.name}")
        if self.tls:
            lines += ["ansible_psrp_cert_validation=validate", f"ansible_psrp_ca_cert={self.ca_path}"]
        elif self.auth == "basic":
            lines.append("ansible_psrp_message_encryption=never")
        return "\n".join(lines) + "\n"

    def write_inventory(self, path: Path) -> Path:
        """Write an Ansible INI inventory of the fleet (never the password)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.inventory_text(), encoding="utf-8")
        self.inventory_path = path
        return path


def _unique(name: str, used: set[str]) -> str:
    if name not in used:
        return name
    k = 2
    while f"{name}-{k}" in used:
        k += 1
    return f"{name}-{k}"


def _reserve(address: str, port: int) -> socket.socket:
    fam = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((address, port))
    except OSError as e:
        s.close()
        raise LabError(f"cannot reserve {address}:{port}: {e.strerror or e}") from None
    return s
