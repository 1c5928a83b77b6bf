"""Credentials for WinRM/PSRP: where the user name and the password come from, and how they stay secret.

Where they come from (first match wins):

* user: ``--user`` option, else ``PORT80_USER``, else each host's ``ansible_user`` from the inventory;
* password: ``PORT80_PASSWORD``, else the first line of ``--password-file``, else each host's
  inventory password (accepted, with a warning from the inventory loader), else an interactive
  ``getpass`` prompt (only when ``interactive``), else a :class:`CredentialsError` that names the
  three ways to give one.

How they stay secret: the password lives in a :class:`Secret` (its ``repr``/``str``/``format`` is
``***``) inside :class:`Credentials`, whose ``repr`` shows only where the password came from. The
only way to the text is ``Credentials.password()`` / ``Secret.reveal()``. :class:`SecretRedactingFilter`
(or :func:`redact`) replaces every known secret in log records with ``***``: the password itself,
its escaped forms (``repr``, JSON, URL, XML) and the base64 of ``user:password`` (the value of an
``Authorization: Basic`` header); any ``Authorization: Basic …`` value is redacted too, whoever it
belongs to. Standard library only.
"""

from __future__ import annotations

import base64
import getpass
import html
import json
import logging
import os
import re
import stat
import threading
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Sequence

from remote.errors import Port80Error

if TYPE_CHECKING:  # pragma: no cover
    from remote.inventory.ansible_ini import HostConfig

__all__ = [
    "ENV_PASSWORD",
    "ENV_USER",
    "MASK",
    "Credentials",
    "CredentialsError",
    "Secret",
    "SecretRedactingFilter",
    "read_password_file",
    "redact",
    "resolve_credentials",
    "secret_variants",
]

ENV_USER = "PORT80_USER"
ENV_PASSWORD = "PORT80_PASSWORD"
MASK = "***"

HOW_TO_GIVE_A_PASSWORD = (
    f"set {ENV_PASSWORD}, or pass --password-file FILE (its first line is the password), "
    "or run port80 in a terminal to be prompted"
)

# auth methods that cannot work without a user name and a password
_NEEDS_USER_AND_PASSWORD = frozenset({"basic", "ntlm", "credssp"})


class CredentialsError(Port80Error):
    """A credential could not be resolved; ``str()`` says what is wrong and how to fix it."""


class Secret:
    """A string that never shows itself: ``repr``, ``str`` and ``format`` all give ``***``.

    ``reveal()`` is the only way to the text."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Secret, self._value))


class Credentials:
    """The resolved user and password. Never shows the password: see :meth:`password`.

    ``user`` is None when each host's inventory ``ansible_user`` is to be used. ``password()`` is
    None when no global password was needed (every host has its own, or needs none)."""

    __slots__ = ("user", "user_source", "password_source", "warnings", "_password")

    def __init__(
        self,
        user: Optional[str] = None,
        password: Optional[str] = None,
        *,
        user_source: Optional[str] = None,
        password_source: Optional[str] = None,
        warnings: Optional[list[str]] = None,
    ) -> None:
        self.user = user
        self.user_source = user_source if user is not None else None
        self._password: Optional[Secret] = Secret(password) if password is not None else None
        self.password_source = password_source if password is not None else None
        self.warnings: list[str] = list(warnings or [])

    def password(self) -> Optional[str]:
        """The password text, or None. The one accessor: do not log what it returns."""
        return self._password.reveal() if self._password is not None else None

    @property
    def has_password(self) -> bool:
        return self._password is not None

    def secrets(self) -> list[str]:
        """The secret texts to redact from logs (the password, if any)."""
        return [self._password.reveal()] if self._password is not None else []

    def for_host(self, host: "HostConfig") -> "Credentials":
        """The credentials to use for one host: the global user/password, else the host's own
        inventory ``ansible_user`` / password. Raises :class:`CredentialsError` when the host's
        auth method (basic, ntlm, credssp) needs a user or a password that nobody gave."""
        user, user_source = self.user, self.user_source
        if user is None and getattr(host, "user", None):
            user, user_source = host.user, f"inventory ({host.source}:{host.line})"
        password, password_source = self.password(), self.password_source
        if password is None:
            inv = host.inventory_password() if hasattr(host, "inventory_password") else None
            if inv is not None:
                password, password_source = inv, "inventory"
        auth = getattr(host, "auth", "negotiate")
        if auth in _NEEDS_USER_AND_PASSWORD:
            if user is None:
                raise CredentialsError(
                    f"host {host.name}: {auth} authentication needs a user name: pass --user, "
                    f"set {ENV_USER}, or set ansible_user in the inventory"
                )
            if password is None:
                raise CredentialsError(f"host {host.name}: {auth} authentication needs a password: {HOW_TO_GIVE_A_PASSWORD}")
        return Credentials(user, password, user_source=user_source, password_source=password_source)

    def __repr__(self) -> str:
        pw = f"{MASK} from {self.password_source}" if self._password is not None else "None"
        return f"Credentials(user={self.user!r}, user_source={self.user_source!r}, password={pw})"

    __str__ = __repr__


def _nonempty(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    value = str(value)
    return value if value.strip() else None


def read_password_file(path: "str | os.PathLike[str]") -> tuple[str, list[str]]:
    """First line of *path* (without its line ending; a UTF-8 BOM is dropped) and warnings.

    Raises :class:`CredentialsError` naming the file when it cannot be read, is not UTF-8, or its
    first line is empty. Never puts the file's content in a message."""
    p = Path(path).expanduser()
    shown = str(path)
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise CredentialsError(f"--password-file {shown}: is a directory, not a file") from None
    except OSError as e:
        raise CredentialsError(f"--password-file {shown}: cannot read it ({e.strerror or type(e).__name__})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CredentialsError(f"--password-file {shown}: not UTF-8 text") from None
    first = text.split("\n", 1)[0]
    if first.endswith("\r"):
        first = first[:-1]
    if not first:
        raise CredentialsError(f"--password-file {shown}: the first line is empty (it must hold the password)")
    warnings: list[str] = []
    try:
        mode = p.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(f"--password-file {shown}: readable by other users; chmod 600 it")
    except OSError:  # pragma: no cover - it was just read
        pass
    return first, warnings


def _needs_global_password(hosts: Sequence["HostConfig"], user: Optional[str]) -> bool:
    """Whether some host needs a password that port80 must ask for: hosts with their own
    inventory password, certificate auth, or Kerberos from the ticket cache (no user anywhere) need
    none; nor do Kerberos/Negotiate hosts when the user has a valid Kerberos ticket (kinit)."""
    ticket: Optional[bool] = None
    for h in hosts:
        if h.password_from_inventory:
            continue
        auth = h.auth
        if auth == "certificate":
            continue
        if auth == "kerberos" and user is None and not h.user:
            continue
        if auth in ("kerberos", "negotiate"):
            if ticket is None:
                ticket = _has_kerberos_ticket()
            if ticket:
                continue  # after kinit: every Kerberos host uses the ticket (remote/remoting/kerberos.py)
        return True
    return False


def _kerberos_hint(hosts: Optional[Sequence["HostConfig"]]) -> Optional[str]:
    """For Kerberos/Negotiate hosts: why the ticket cache could not be used instead of a password."""
    if not hosts or not any(h.auth == "kerberos" for h in hosts):
        return None
    from remote.remoting.kerberos import ticket_problem

    return f"or run kinit for a Kerberos ticket ({ticket_problem()})"


def _has_kerberos_ticket() -> bool:
    from remote.remoting.kerberos import default_ticket

    return default_ticket() is not None


def resolve_credentials(
    user_option: Optional[str] = None,
    password_file: "Optional[str | os.PathLike[str]]" = None,
    env: Optional[Mapping[str, str]] = None,
    prompt: Optional[Callable[[str], str]] = None,
    interactive: bool = False,
    *,
    hosts: Optional[Sequence["HostConfig"]] = None,
) -> Credentials:
    """Resolve the user and the password (see the module docstring for the order).

    *env* defaults to ``os.environ``; *prompt* to ``getpass.getpass`` (called only when
    *interactive*). When *hosts* is given and none of them needs a global password (each has an
    inventory password, or uses certificate auth, or Kerberos with no user = the ticket cache), no
    password is asked for and ``password()`` is None. Raises :class:`CredentialsError`."""
    env = os.environ if env is None else env
    warnings: list[str] = []

    user: Optional[str]
    if _nonempty(user_option) is not None:
        user, user_source = str(user_option), "--user"
    elif _nonempty(env.get(ENV_USER)) is not None:
        user, user_source = env[ENV_USER], ENV_USER
    else:
        user, user_source = None, None  # per host: the inventory's ansible_user

    password: Optional[str] = None
    password_source: Optional[str] = None
    if env.get(ENV_PASSWORD):
        password, password_source = env[ENV_PASSWORD], ENV_PASSWORD
        if password_file is not None:
            warnings.append(f"{ENV_PASSWORD} is set: --password-file {password_file} is not read")
    elif password_file is not None:
        password, file_warnings = read_password_file(password_file)
        password_source = f"--password-file {password_file}"
        warnings.extend(file_warnings)
    elif hosts is not None and not _needs_global_password(hosts, user):
        pass
    elif interactive:
        ask = prompt if prompt is not None else getpass.getpass
        who = user if user is not None else "the WinRM user"
        try:
            answer = ask(f"Password for {who}: ")
        except EOFError:
            raise CredentialsError(f"no password entered: {HOW_TO_GIVE_A_PASSWORD}") from None
        if answer is None or answer == "":
            raise CredentialsError(f"empty password entered: {HOW_TO_GIVE_A_PASSWORD}")
        password, password_source = str(answer).rstrip("\r\n"), "prompt"
    else:
        hint = _kerberos_hint(hosts)
        raise CredentialsError(f"no password: {HOW_TO_GIVE_A_PASSWORD}" + (f"; {hint}" if hint else ""))

    return Credentials(user, password, user_source=user_source, password_source=password_source, warnings=warnings)


# --- redaction ------------------------------------------------------------------------------------

_BASIC_HEADER_RE = re.compile(
    r"""((?:Proxy-)?Authorization['"]?\s*[:=]\s*['"]?\s*Basic\s+)([A-Za-z0-9+/=_-]+)""",
    re.IGNORECASE,
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def secret_variants(secret: str, users: Iterable[str] = ()) -> set[str]:
    """Every form in which *secret* may show up in a log line: as is, escaped (``repr``, JSON,
    URL, XML/HTML), base64 of itself and of ``user:secret`` for each known user (Basic auth)."""
    if not secret:
        return set()
    out = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret, safe=""),
        html.escape(secret, quote=False),
        html.escape(secret, quote=True),
        _b64(secret),
        _b64(secret).rstrip("="),
    }
    for user in users:
        if user:
            token = _b64(f"{user}:{secret}")
            out.add(token)
            out.add(token.rstrip("="))
    out.discard("")
    return out


def _redact_with(text: str, variants: Sequence[str]) -> str:
    for v in variants:  # longest first, so that a longer form is not half-replaced by a shorter one
        if v in text:
            text = text.replace(v, MASK)
    return _BASIC_HEADER_RE.sub(lambda m: m.group(1) + MASK, text)


def redact(text: str, secrets: Iterable[str], users: Iterable[str] = ()) -> str:
    """*text* with every form of every secret (see :func:`secret_variants`) replaced by ``***``;
    any ``Authorization: Basic …`` value is replaced too."""
    users = list(users)
    variants: set[str] = set()
    for s in secrets:
        if s:
            variants |= secret_variants(s, users)
    return _redact_with(str(text), sorted(variants, key=len, reverse=True))


class SecretRedactingFilter(logging.Filter):
    """A logging filter that replaces every known secret in a record with ``***``.

    It rewrites the formatted message (``msg % args``), the exception text and the stack text, and
    always lets the record through. Logger filters do not see records that propagate up from child
    loggers (``pypsrp``, ``requests``, ``urllib3``...), so use :meth:`install`: it adds the filter to
    the root logger and its handlers *and* wraps the log-record factory, so every record is redacted
    when it is created, whatever logger or handler it goes to later.
    """

    def __init__(self, secrets: Iterable[str] = (), users: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: list[str] = []
        self._users: list[str] = []
        self._variants: tuple[str, ...] = ()
        self._version = 0
        self._installed: list[tuple[Any, ...]] = []
        for s in secrets:
            self.add_secret(s)
        for u in users:
            self.add_user(u)

    @classmethod
    def for_credentials(cls, credentials: Optional[Credentials], hosts: Iterable["HostConfig"] = ()) -> "SecretRedactingFilter":
        """A filter that knows the global password and user, and every host's inventory password
        and user."""
        f = cls()
        if credentials is not None:
            for s in credentials.secrets():
                f.add_secret(s)
            if credentials.user:
                f.add_user(credentials.user)
        for h in hosts:
            if h.user:
                f.add_user(h.user)
            pw = h.inventory_password()
            if pw:
                f.add_secret(pw)
        return f

    def __repr__(self) -> str:
        return f"SecretRedactingFilter({len(self._secrets)} secret(s), {len(self._users)} user(s))"

    def _rebuild(self) -> None:
        variants: set[str] = set()
        for s in self._secrets:
            variants |= secret_variants(s, self._users)
        self._variants = tuple(sorted(variants, key=len, reverse=True))
        self._version += 1

    def add_secret(self, secret: Optional[str]) -> None:
        if not secret:
            return
        with self._lock:
            if secret not in self._secrets:
                self._secrets.append(secret)
                self._rebuild()

    def add_user(self, user: Optional[str]) -> None:
        """A user name is not secret, but base64("user:password") is: knowing users lets the
        filter find Basic auth tokens anywhere, not only after ``Authorization:``."""
        if not user:
            return
        with self._lock:
            if user not in self._users:
                self._users.append(user)
                self._rebuild()

    def redact(self, text: str) -> str:
        return _redact_with(str(text), self._variants)

    def filter(self, record: logging.LogRecord) -> bool:
        # the marker says "done by this filter with this set of secrets"; it holds no secret
        # (records may be pickled or dumped whole by some handlers)
        marker = (id(self), self._version)
        if getattr(record, "_port80_redacted", None) == marker:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: redact what there is
            message = str(record.msg)
            if record.args:
                message += " " + repr(record.args)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None  # handlers must use the redacted exc_text
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        record._port80_redacted = marker  # type: ignore[attr-defined]
        return True

    def install(self, logger: Optional[logging.Logger] = None) -> "SecretRedactingFilter":
        """Redact every record from now on: adds this filter to *logger* (default: root) and its
        handlers, and wraps the log-record factory. :meth:`uninstall` undoes it."""
        logger = logger if logger is not None else logging.getLogger()
        logger.addFilter(self)
        handlers = list(logger.handlers)
        for h in handlers:
            h.addFilter(self)
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            self.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        self._installed.append((logger, handlers, previous, factory))
        return self

    def uninstall(self) -> None:
        while self._installed:
            logger, handlers, previous, factory = self._installed.pop()
            logger.removeFilter(self)
            for h in handlers:
                h.removeFilter(self)
            if logging.getLogRecordFactory() is factory:
                logging.setLogRecordFactory(previous)
