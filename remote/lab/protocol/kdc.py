"""The lab's own Kerberos realm: the operating system's MIT KDC (``krb5kdc``) on a loopback port.

``port80 lab serve --auth kerberos|negotiate`` starts one: a realm (``LAB.TEST`` by default) whose
database, stash, ``kdc.conf``, ``krb5.conf``, keytab and log live in the lab's state folder, the lab
user (password = the lab password) and one ``HTTP/<host>.<realm domain>`` service principal per
emulated host, as Active Directory registers ``HTTP/`` (through ``HOST/``) for a machine account.
``krb5.conf`` has ``rdns = false`` and ``dns_canonicalize_hostname = false`` and lists the KDC by
address, so nothing needs DNS: the inventory carries each host's address and its Kerberos name
(``ansible_psrp_negotiate_hostname_override``).

Needs the OS packages (Debian/Ubuntu): ``krb5-kdc`` (krb5kdc), ``krb5-admin-server`` (kadmin.local;
``kdb5_util`` comes with krb5-kdc) and ``krb5-user`` (kinit, for people). ``KDCMissing`` names them.

The KDC runs in the foreground (``krb5kdc -n``) as a child of the lab and stops with it. Its log
(``kdc.log``) has one ``AS_REQ`` line per AS exchange: ``as_exchanges()`` counts them (a client that
fetches one ticket for a whole scan makes 1, or 2 when the KDC first answers PREAUTH_REQUIRED).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterable, Optional

from remote.errors import Port80Error

DEFAULT_REALM = "LAB.TEST"
SERVICE = "HTTP"  # the SPN class Windows clients ask for a WinRM listener (HTTP/host; AD maps it to HOST/)
PACKAGES = "krb5-kdc krb5-admin-server krb5-user"
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local")
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class KDCError(Port80Error):
    """The lab's KDC cannot be set up (message says why, in one line)."""


class KDCMissing(KDCError):
    """The MIT KDC tools are not installed."""


def find_tool(name: str) -> Optional[str]:
    """Path of an MIT Kerberos tool: on PATH, or in the sbin folders Debian puts them in."""
    found = shutil.which(name)
    if found:
        return found
    for d in _SBIN:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def missing_tools() -> list[str]:
    return [t for t in TOOLS if find_tool(t) is None]


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        raise KDCMissing(f"Kerberos lab needs the MIT KDC ({', '.join(missing)} not found): install the OS packages "
                         f"{PACKAGES} (Debian/Ubuntu: apt-get install {PACKAGES})")


def free_port(address: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on ``address`` (the KDC listens on both)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind((address, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((address, port))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        return port
    raise KDCError("no free loopback port for the KDC")


def principal_host(name: str, realm: str = DEFAULT_REALM) -> str:
    """The Kerberos host name of an emulated host: ``web-01`` -> ``web-01.lab.test`` (lower case, as
    Windows registers SPNs; MIT compares names case-sensitively)."""
    return f"{name.lower()}.{realm.lower()}"


class LabKDC:
    """An MIT KDC for the lab, with its state in ``state_dir`` (created; never outside it)."""

    def __init__(self, state_dir: Path, realm: str = DEFAULT_REALM, address: str = "127.0.0.1",
                 port: Optional[int] = None) -> None:
        self.dir = Path(state_dir).resolve()
        self.realm = realm.upper()
        self.address = address
        self.port = port
        self.krb5_conf = self.dir / "krb5.conf"
        self.kdc_conf = self.dir / "kdc.conf"
        self.keytab = self.dir / "lab.keytab"
        self.log_path = self.dir / "kdc.log"
        self._proc: Optional[subprocess.Popen] = None
        self._users: list[str] = []
        self._rcache_dir: Optional[str] = None

    def replay_cache(self, host: str) -> str:
        """The replay cache of one emulated host's acceptor (``file2:PATH``, a gssapi cred-store value).

        Each Windows host detects replayed authenticators in its own cache; one file shared by every
        emulated host (MIT's default, in /var/tmp) made 200 acceptors queue on its lock and its disk
        writes: a 200-host scan at latency 0 took 27 s, 11 s with no cache at all. One file per host,
        on tmpfs when there is one (in RAM: nothing to wait for), removed when the lab stops."""
        if self._rcache_dir is None:
            shm = "/dev/shm"
            parent = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
            self._rcache_dir = tempfile.mkdtemp(prefix="port80-lab-rcache-", dir=parent or str(self.dir))
        safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in host)
        return f"file2:{os.path.join(self._rcache_dir, safe + '.rcache2')}"

    # ------------------------------------------------------------------ setup

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KRB5_CONFIG"] = str(self.krb5_conf)
        env["KRB5_KDC_PROFILE"] = str(self.kdc_conf)
        env.pop("KRB5CCNAME", None)
        return env

    def _write_configs(self) -> None:
        d = self.dir
        domain = self.realm.lower()
        self.kdc_conf.write_text(
            "[kdcdefaults]\n"
            f" kdc_listen = {self.address}:{self.port}\n"
            f" kdc_tcp_listen = {self.address}:{self.port}\n"
            "[realms]\n"
            f" {self.realm} = {{\n"
            f"  database_name = {d / 'principal'}\n"
            f"  key_stash_file = {d / 'stash'}\n"
            f"  acl_file = {d / 'kadm5.acl'}\n"
            "  max_life = 10h 0m 0s\n"
            "  max_renewable_life = 1d 0h 0m 0s\n"
            "  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n"
            " }\n"
            "[logging]\n"
            f" kdc = FILE:{self.log_path}\n",
            encoding="utf-8")
        self.krb5_conf.write_text(self.client_config(), encoding="utf-8")
        (d / "kadm5.acl").write_text("", encoding="utf-8")
        del domain

    def client_config(self) -> str:
        """The krb5.conf a client of the lab uses (``export KRB5_CONFIG=...``)."""
        domain = self.realm.lower()
        return (
            "# written by port80 lab serve: the lab's own realm, its KDC on loopback; no DNS needed\n"
            "[libdefaults]\n"
            f" default_realm = {self.realm}\n"
            " rdns = false\n"
            " dns_canonicalize_hostname = false\n"
            " dns_lookup_kdc = false\n"
            " dns_lookup_realm = false\n"
            " udp_preference_limit = 1\n"  # TCP to the KDC (as Windows does with large tickets)
            " forwardable = true\n"
            "[realms]\n"
            f" {self.realm} = {{\n"
            f"  kdc = {self.address}:{self.port}\n"
            " }\n"
            "[domain_realm]\n"
            f" .{domain} = {self.realm}\n"
            f" {domain} = {self.realm}\n")

    def _run(self, args: list[str], stdin: Optional[str] = None) -> str:
        try:
            p = subprocess.run(args, input=stdin, capture_output=True, text=True, env=self._env(), timeout=120,
                               cwd=str(self.dir))
        except (OSError, subprocess.TimeoutExpired) as e:
            raise KDCError(f"{os.path.basename(args[0])}: {e}") from None
        if p.returncode != 0:
            err = " ".join((p.stderr or p.stdout or "").split())[:300]
            raise KDCError(f"{os.path.basename(args[0])} failed (exit {p.returncode}): {err}")
        return p.stdout

    def create(self, user: str, password: str, hosts: Iterable[str]) -> None:
        """A new realm database with ``user`` (``password``) and ``HTTP/<host>`` for every host name
        (already in Kerberos form, e.g. ``web-01.lab.test``), their keys in ``self.keytab``."""
        require_tools()
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        if self.port is None:
            self.port = free_port(self.address)
        for f in ("principal", "principal.ok", "principal.kadm5", "principal.kadm5.lock", "stash", self.keytab.name):
            try:
                (self.dir / f).unlink()
            except FileNotFoundError:
                pass
        self._write_configs()
        self._run([find_tool("kdb5_util") or "kdb5_util", "-r", self.realm, "create", "-s", "-W",
                   "-P", secrets.token_urlsafe(24)])
        spns = [f"{SERVICE}/{h}" for h in hosts]
        lines = [f'addprinc -pw "{_quote(password)}" +requires_preauth {user}']
        lines += [f"addprinc -randkey {p}" for p in spns]
        for i in range(0, len(spns), 50):  # a few ktadd commands, not one per host
            lines.append(f"ktadd -k {self.keytab} " + " ".join(spns[i:i + 50]))
        self._run([find_tool("kadmin.local") or "kadmin.local", "-r", self.realm], stdin="\n".join(lines) + "\n")
        if spns and not self.keytab.exists():
            raise KDCError("kadmin.local did not write the keytab")
        self._users.append(user)

    def add_principal(self, spn: str) -> None:
        """One more service principal in the keytab (for tests: a host added after start)."""
        self._run([find_tool("kadmin.local") or "kadmin.local", "-r", self.realm],
                  stdin=f"addprinc -randkey {spn}\nktadd -k {self.keytab} {spn}\n")

    # ------------------------------------------------------------------ run

    def start(self, timeout: float = 15.0) -> None:
        tool = find_tool("krb5kdc")
        if tool is None:
            require_tools()
        log = open(self.dir / "krb5kdc.out", "ab")
        try:
            self._proc = subprocess.Popen([tool or "krb5kdc", "-n", "-r", self.realm], env=self._env(),
                                          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          cwd=str(self.dir))
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                out = (self.dir / "krb5kdc.out").read_text(errors="replace")
                raise KDCError(f"krb5kdc exited ({self._proc.returncode}): {' '.join(out.split())[:300]}")
            try:
                with socket.create_connection((self.address, int(self.port or 0)), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise KDCError(f"krb5kdc did not listen on {self.address}:{self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        p, self._proc = self._proc, None
        d, self._rcache_dir = self._rcache_dir, None
        if d is not None:
            shutil.rmtree(d, ignore_errors=True)
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> "LabKDC":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ observation

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def as_exchanges(self, principal: Optional[str] = None) -> int:
        """AS exchanges in the KDC's log (``AS_REQ`` lines), optionally only those naming ``principal``."""
        return sum(1 for line in self.log_lines() if " AS_REQ " in line and (principal is None or principal in line))

    def tgs_exchanges(self) -> int:
        return sum(1 for line in self.log_lines() if " TGS_REQ " in line)

    def kinit_hint(self, user: str) -> str:
        return f"kinit {user}@{self.realm}"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
