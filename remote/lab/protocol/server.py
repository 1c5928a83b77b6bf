"""The HTTP side of one emulated Windows host: a WinRM listener (``/wsman``) on a loopback address.

One stdlib ``ThreadingHTTPServer`` per emulated host (one thread per TCP connection, daemon threads),
HTTP/1.1 keep-alive with ``Content-Length`` on every reply (including 401s: NTLM's state lives on
the connection), Nagle off and each reply written in one ``send``. TLS is wrapped around the
accepted socket in the connection's own thread, never in the accept loop, so a client that never
sends a ClientHello blocks only itself. The listening sockets of a whole fleet are served by one
``Acceptor`` thread (a selector), not one ``serve_forever`` thread per host.

HTTP-level faults (``hang``, ``reset``, ``auth``, ``garbage``, ``http500``, ``latency``) are applied
here; WSMan-level ones (``wsman_fault``, ``hang_receive``, ``slow``) by ``shell.HostRuntime``.
A hung request waits until the client goes away or the lab stops; stopping shuts every open
connection down, so nothing keeps the lab from exiting.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import logging
import select
import selectors
import socket
import socketserver
import ssl
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from remote.lab.protocol import wsman
from remote.lab.protocol.auth import REALM, Credentials, KerberosAcceptor, NegotiateState, challenge_headers
from remote.lab.engine.shell import Hang, HostRuntime

log = logging.getLogger("port80.lab.server")

IDLE_TIMEOUT = 120.0  # seconds an idle keep-alive connection is kept (HTTP.sys default)
# A TLS handshake gets HTTP.sys's idle-connection time too (`netsh http show servicestate` prints "Idle
# connection timeout (secs): 120" and "Header wait timeout (secs): 120" for its request queues). It was 10 s:
# at 1,000 hosts in flight a client whose own CPU is saturated (port80 on one core: 90 ms/host × 1,000 hosts)
# finishes some handshakes 10-13 s after connecting, and the lab dropped 78 of 1,000 (scripts/bench_fleet.py
# --scale --hosts 1000; the lab itself used 26% of its core). A waiting handshake costs the lab no CPU.
HANDSHAKE_TIMEOUT = IDLE_TIMEOUT
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
GARBAGE_BODY = b"\x00\x01lab garbage: this is not a SOAP envelope {{{ <<<"
HTTP500_BODY = b"Internal Server Error (lab fault http500)"


class HostStats:
    """Request counters of one emulated host (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.connections = 0
        self.tls_failures = 0
        self.tls_handshakes = 0
        self.tls_wait_ms_max = 0  # longest wait from accept to handshake done (what HANDSHAKE_TIMEOUT cuts)
        self.actions: Counter[str] = Counter()
        self.status: Counter[int] = Counter()
        self.bytes_in = 0
        self.bytes_out = 0
        self.pipelines = 0

    def add(self, **kw: int) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def handshake(self, wait_s: float, ok: bool) -> None:
        ms = int(wait_s * 1000)
        with self._lock:
            if ok:
                self.tls_handshakes += 1
            else:
                self.tls_failures += 1
            if ms > self.tls_wait_ms_max:
                self.tls_wait_ms_max = ms

    def count(self, action: Optional[str] = None, status: Optional[int] = None) -> None:
        with self._lock:
            if action:
                self.actions[action] += 1
            if status:
                self.status[status] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": self.requests,
                "connections": self.connections,
                "tls_failures": self.tls_failures,
                "tls_handshakes": self.tls_handshakes,
                "tls_wait_ms_max": self.tls_wait_ms_max,
                "actions": dict(self.actions),
                "status": {str(k): v for k, v in sorted(self.status.items())},
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
                "pipelines": self.pipelines,
                "sessions": self.actions.get("Create", 0),
            }

    def reset(self) -> None:
        with self._lock:
            self.requests = self.connections = self.tls_failures = self.bytes_in = self.bytes_out = 0
            self.tls_handshakes = self.tls_wait_ms_max = 0
            self.pipelines = 0
            self.actions.clear()
            self.status.clear()


class LabRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: "LabHTTPServer"

    def setup(self) -> None:
        super().setup()
        self.negotiate = NegotiateState(self.server.kerberos, self.server.ntlm)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_POST(self) -> None:
        try:
            self.server.handle_post(self)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            raise
        except Exception:  # a lab bug: answer 500 (visible to the client and in the log), keep serving
            log.exception("lab %s: request failed", self.server.runtime.machine)
            self.close_connection = True
            try:
                self.server.reply(self, 500, b"lab internal error (see the lab's log)", "text/plain; charset=utf-8")
            except OSError:
                pass

    def _not_allowed(self) -> None:
        self.server.reply(self, 405, b"", headers=[("Allow", "POST")])

    do_GET = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _not_allowed


class LabHTTPServer(ThreadingHTTPServer):
    """The WinRM listener of one emulated host."""

    path = "wsman"  # the WinRM listener's URL path (Windows: /wsman); a test may serve another one
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self,
        address: str,
        port: int,
        runtime: HostRuntime,
        credentials: Credentials,
        ssl_context: Optional[ssl.SSLContext] = None,
        allow_unencrypted: bool = False,
        basic: bool = True,
        negotiate: bool = True,
        latency_ms: float = 0.0,
        stopping: Optional[threading.Event] = None,
        kerberos: Optional[KerberosAcceptor] = None,
        ntlm: bool = True,
    ) -> None:
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"{address}: the lab listens on loopback addresses only")
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.runtime = runtime
        self.faults = runtime.faults
        self.credentials = credentials
        self.ssl_context = ssl_context
        self.allow_unencrypted = allow_unencrypted
        self.basic = basic
        self.negotiate = negotiate
        self.kerberos = kerberos  # the host's Kerberos acceptor (a lab with a KDC), else NTLM only
        self.ntlm = ntlm  # False: NTLM turned off on this host (Kerberos only)
        self.latency = (latency_ms + runtime.faults.latency_ms) / 1000.0
        self.stopping = stopping or runtime.stopping
        self.stats = HostStats()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.closed = False
        super().__init__((address, port), LabRequestHandler)
        self.scheme = "https" if ssl_context is not None else "http"
        host = f"[{self.server_address[0]}]" if ":" in self.server_address[0] else self.server_address[0]
        self.url = f"{self.scheme}://{host}:{self.server_address[1]}/wsman"
        runtime.on_pipeline = lambda statements, ex: self.stats.add(pipelines=1)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(): a reverse DNS lookup per host. Not on loopback.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    # ------------------------------------------------------------------- connection handling

    def finish_request(self, request: socket.socket, client_address) -> None:
        conn = request
        accepted = time.monotonic()  # the accept loop starts this thread as it accepts
        self.stats.add(connections=1)
        with self._conns_lock:
            if self.closed:
                _close_quietly(request)
                return
            self._conns.add(request)
        try:
            if self.ssl_context is not None:
                request.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    conn = self.ssl_context.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError) as e:
                    self.stats.handshake(time.monotonic() - accepted, False)
                    log.debug("lab %s: TLS handshake failed: %s", self.runtime.machine, e)
                    return
                self.stats.handshake(time.monotonic() - accepted, True)
                with self._conns_lock:
                    self._conns.discard(request)
                    self._conns.add(conn)
            LabRequestHandler(conn, client_address, self)
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError) as e:
            log.debug("lab %s: connection ended: %s", self.runtime.machine, e)
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
                self._conns.discard(request)
            _close_quietly(conn)

    def shutdown_request(self, request) -> None:
        _close_quietly(request)

    def handle_error(self, request, client_address) -> None:
        log.debug("lab %s: error on a connection from %s", self.runtime.machine, client_address, exc_info=True)

    def close(self) -> None:
        """Stop listening and shut every open connection down (wakes threads blocked on them)."""
        with self._conns_lock:
            self.closed = True
            conns = list(self._conns)
            self._conns.clear()
        try:
            self.socket.close()
        except OSError:
            pass
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            _close_quietly(c)
        self.runtime.close_all()

    # ------------------------------------------------------------------------ replies

    def reply(self, h: LabRequestHandler, status: int, body: bytes = b"", content_type: Optional[str] = None,
              headers: list[tuple[str, str]] = ()) -> None:
        reason = h.responses.get(status, ("",))[0]
        if status == 401 and not any(k == "WWW-Authenticate" and " " in v and not v.startswith("Basic")
                                     for k, v in headers):
            h.close_connection = True  # HTTP.sys closes after a 401 that carries no auth token to continue
        elif status == 500 and not body:
            h.close_connection = True  # …and after an empty-body 500
        lines = [f"HTTP/1.1 {status} {reason}", "Server: Microsoft-HTTPAPI/2.0", "Date: " + _http_date()]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        for k, v in headers:
            lines.append(f"{k}: {v}")
        lines.append(f"Content-Length: {len(body)}")
        if h.close_connection:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        h.wfile.write(data)
        self.stats.add(bytes_out=len(data))
        self.stats.count(status=status)

    def _challenge(self, h: LabRequestHandler, negotiate_token: Optional[bytes] = None, bare: bool = False) -> None:
        if negotiate_token is not None:
            hdrs = [("WWW-Authenticate", "Negotiate " + base64.b64encode(negotiate_token).decode("ascii"))]
        elif bare:
            hdrs = [("WWW-Authenticate", "Negotiate")] if self.negotiate else []
            if self.basic:
                hdrs.append(("WWW-Authenticate", f'Basic realm="{REALM}"'))
        else:
            hdrs = challenge_headers(self.basic, self.negotiate)
        self.reply(h, 401, b"", headers=hdrs)

    def _hang(self, h: LabRequestHandler) -> None:
        """Never answer: wait until the client gives up (closes) or the lab stops, then drop the connection."""
        h.close_connection = True
        try:
            poller = select.poll()  # not select(): file descriptors above 1024 in a big lab
            poller.register(h.connection.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
        except (OSError, ValueError):
            return
        while not self.stopping.is_set() and not self.closed:
            try:
                events = poller.poll(500)
            except OSError:
                return
            if events:  # a client waiting for our answer sends nothing: this is its FIN (or RST)
                return

    def _reset(self, h: LabRequestHandler) -> None:
        """Close the TCP connection with a RST, no response."""
        h.close_connection = True
        sock = h.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            h.rfile.close()
        except OSError:
            pass
        raw = sock
        if isinstance(sock, ssl.SSLSocket):
            try:  # drop the TLS layer without close_notify: the peer sees a bare RST
                raw = socket.socket(fileno=sock.detach())
            except OSError:
                pass
        _close_quietly(raw)

    # ------------------------------------------------------------------------ one request

    def handle_post(self, h: LabRequestHandler) -> None:
        self.stats.add(requests=1)
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or h.headers.get("Transfer-Encoding"):
            h.close_connection = True
            self.reply(h, 411 if length >= 0 else 400, b"")
            return
        body = h.rfile.read(length) if length else b""
        self.stats.add(bytes_in=len(body))
        f = self.faults
        if self.latency > 0:
            time.sleep(self.latency)
        if f.hang:
            self.stats.count(action="hang")
            self._hang(h)
            return
        if f.reset:
            self.stats.count(action="reset")
            self._reset(h)
            return
        if h.path.split("?", 1)[0].rstrip("/").lower() != "/" + self.path.strip("/").lower():
            self.reply(h, 404, b"")
            return

        # ---- authentication (per request for Basic, per connection for Negotiate)
        if f.auth:
            self.stats.count(action="auth")
            self._challenge(h, bare=True)
            return
        scheme, _, value = (h.headers.get("Authorization") or "").partition(" ")
        scheme = scheme.lower()
        neg = h.negotiate
        user: Optional[str]
        auth_headers: list[tuple[str, str]] = []  # the acceptor's final token, on the reply that completes it
        if scheme == "basic" and self.basic:
            user = self.credentials.check_basic(value)
            if user is None or (self.ssl_context is None and not self.allow_unencrypted):
                # wrong credentials, or Basic over plain HTTP with AllowUnencrypted=false: Windows says 401
                self.stats.count(action="auth")
                self._challenge(h)
                return
        elif scheme in ("negotiate", "ntlm", "kerberos") and self.negotiate:
            self.stats.count(action="auth")
            result, out = neg.step(value, scheme)
            if result == "failed":
                self._challenge(h, bare=True)
                return
            if result == "continue":
                self._challenge(h, negotiate_token=out or b"")
                return
            user = neg.user
            if out:
                auth_headers = [("WWW-Authenticate", "Negotiate " + base64.b64encode(out).decode("ascii"))]
            if not body:  # pypsrp's blank POST: done authenticating, nothing to answer
                self.reply(h, 200, b"", headers=auth_headers)
                return
            # else the AUTHENTICATE token came with the first (encrypted) message, as the Windows client
            # sends it: answer that message (Windows accepts both forms)
        elif neg.user is not None:
            user = neg.user
        else:
            self.stats.count(action="auth")
            self._challenge(h)
            return

        # ---- faults of an authenticated request
        if f.garbage:
            self.stats.count(action="garbage")
            self.reply(h, 200, GARBAGE_BODY, SOAP_CONTENT_TYPE)
            return
        if f.http500:
            self.stats.count(action="http500")
            self.reply(h, 500, HTTP500_BODY, "text/plain; charset=utf-8")
            return

        # ---- message encryption
        ctype = h.headers.get("Content-Type") or ""
        encrypted = ctype.lower().startswith("multipart/encrypted")
        if encrypted:
            try:
                xml = neg.unwrap(body, ctype)
            except Exception as e:
                log.debug("lab %s: cannot decrypt: %s", self.runtime.machine, e)
                self.reply(h, 400, b"")
                return
        else:
            xml = body
            if not ctype.lower().startswith("application/soap+xml"):
                self.reply(h, 415, b"")  # WinRM accepts SOAP (or an encrypted multipart) only
                return
            if self.ssl_context is None and not self.allow_unencrypted:
                # authenticated but unencrypted over HTTP: AllowUnencrypted=false gives HTTP 500
                self.reply(h, 500, b"")
                return

        # ---- WS-Management
        try:
            req = wsman.parse_request(xml)
        except wsman.WSManParseError as e:
            self._send_soap(h, 500, wsman.fault(wsman.relates_to_of(xml), wsman.CODE_INTERNAL,
                                                f"The WS-Management service cannot process the request: {e}",
                                                self.runtime.machine, subcode="w:SchemaValidationError",
                                                value="s:Sender"), encrypted)
            return
        self.stats.count(action=req.name)
        try:
            reply = self.runtime.handle(req, client_ip=h.client_address[0], user=user or "", address=self.url)
        except Hang:
            self._hang(h)
            return
        self._send_soap(h, reply.status, reply.body, encrypted, auth_headers)

    def _send_soap(self, h: LabRequestHandler, status: int, xml: bytes, encrypted: bool,
                   headers: list[tuple[str, str]] = ()) -> None:
        if encrypted:
            ctype, payload = h.negotiate.wrap(xml)
            self.reply(h, status, payload, ctype, headers=headers)
        else:
            self.reply(h, status, xml, SOAP_CONTENT_TYPE, headers=headers)


_DATE = [0, ""]


def _http_date() -> str:
    """RFC 7231 Date header, formatted once per second."""
    now = int(time.time())
    if _DATE[0] != now:
        _DATE[1] = email.utils.formatdate(now, usegmt=True)
        _DATE[0] = now
    return str(_DATE[1])


def _close_quietly(sock) -> None:
    try:
        sock.close()
    except OSError:
        pass


class Acceptor:
    """One thread accepting connections for many listeners (a selector over their sockets)."""

    def __init__(self, name: str = "port80-lab-accept") -> None:
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)  # a full wake-up pipe already wakes the loop: never block on it
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def add(self, server: LabHTTPServer) -> None:
        server.socket.setblocking(False)
        with self._lock:
            self._sel.register(server.socket, selectors.EVENT_READ, server)
        self._wake()

    def remove(self, server: LabHTTPServer) -> None:
        with self._lock:
            try:
                self._sel.unregister(server.socket)
            except (KeyError, ValueError):
                pass
        self._wake()

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._wake()
        if self._started:
            self._thread.join(timeout=5)
        try:
            self._sel.close()
        except Exception:
            pass
        _close_quietly(self._wake_r)
        _close_quietly(self._wake_w)

    def _wake(self) -> None:
        if not self._started:
            return
        try:
            self._wake_w.send(b"\0")
        except OSError:  # BlockingIOError included: the loop has wake-ups pending anyway
            pass

    def _run(self) -> None:
        while not self._stop:
            try:
                events = self._sel.select(timeout=1.0)
            except (OSError, ValueError):
                if self._stop:
                    return
                time.sleep(0.01)
                continue
            for key, _ in events:
                if key.data is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    continue
                server: LabHTTPServer = key.data
                for _ in range(64):
                    try:
                        sock, addr = server.socket.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    sock.setblocking(True)
                    try:
                        server.process_request(sock, addr)
                    except Exception:
                        log.exception("lab: cannot start a connection thread")
                        _close_quietly(sock)
