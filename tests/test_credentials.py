"""Credentials: where the user and password come from, that they never show, and that log records
(ours, pypsrp's, requests'...) are redacted, Basic auth headers included."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import urllib.parse

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from remote.inventory.credentials import (
    Credentials,
    CredentialsError,
    Secret,
    SecretRedactingFilter,
    read_password_file,
    redact,
    resolve_credentials,
    secret_variants,
)
from remote.inventory.ansible_ini import parse_inventory

NO_PROMPT_MSG = (
    "no password: set PORT80_PASSWORD, or pass --password-file FILE (its first line is the password), "
    "or run port80 in a terminal to be prompted"
)


def no_prompt(_: str) -> str:  # pragma: no cover - called only by a broken implementation
    raise AssertionError("the prompt must not be called")


def hosts_of(text: str):
    return parse_inventory(text, "inv.ini").hosts()


# --- user ------------------------------------------------------------------------------------------


def test_user_from_option_then_env_then_per_host():
    env = {"PORT80_USER": "envuser", "PORT80_PASSWORD": "pw"}
    c = resolve_credentials("optuser", None, env=env)
    assert (c.user, c.user_source) == ("optuser", "--user")
    c = resolve_credentials(None, None, env=env)
    assert (c.user, c.user_source) == ("envuser", "PORT80_USER")
    c = resolve_credentials(None, None, env={"PORT80_PASSWORD": "pw", "PORT80_USER": ""})
    assert (c.user, c.user_source) == (None, None)
    host = hosts_of("w1 ansible_user='CORP\\inv'\n")[0]
    per_host = c.for_host(host)
    assert per_host.user == "CORP\\inv" and per_host.user_source == "inventory (inv.ini:1)"
    assert resolve_credentials("optuser", None, env=env).for_host(host).user == "optuser"


# --- password --------------------------------------------------------------------------------------


def test_password_from_env_wins_over_file(tmp_path):
    f = tmp_path / "pw.txt"
    f.write_text("from-file\n")
    c = resolve_credentials(None, f, env={"PORT80_PASSWORD": "from-env"}, prompt=no_prompt, interactive=True)
    assert c.password() == "from-env" and c.password_source == "PORT80_PASSWORD"
    assert c.warnings == [f"PORT80_PASSWORD is set: --password-file {f} is not read"]


def test_password_from_file_first_line(tmp_path):
    f = tmp_path / "pw.txt"
    f.write_bytes(b"\xef\xbb\xbf p@ss word \r\nsecond line\n")
    os.chmod(f, 0o600)
    c = resolve_credentials(None, str(f), env={}, prompt=no_prompt, interactive=True)
    assert c.password() == " p@ss word "  # only the line ending (and a BOM) is stripped
    assert c.password_source == f"--password-file {f}"
    assert c.warnings == []
    f.write_text("no-newline")
    assert resolve_credentials(None, f, env={}).password() == "no-newline"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_password_file_readable_by_others_warns(tmp_path):
    f = tmp_path / "pw.txt"
    f.write_text("pw\n")
    os.chmod(f, 0o644)
    c = resolve_credentials(None, f, env={})
    assert c.warnings == [f"--password-file {f}: readable by other users; chmod 600 it"]


def test_password_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.txt"
    with pytest.raises(CredentialsError) as e:
        resolve_credentials(None, missing, env={})
    assert str(e.value) == f"--password-file {missing}: cannot read it (No such file or directory)"
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(CredentialsError) as e:
        resolve_credentials(None, empty, env={})
    assert str(e.value) == f"--password-file {empty}: the first line is empty (it must hold the password)"
    blank_first = tmp_path / "blank.txt"
    blank_first.write_text("\nsecret-on-line-2\n")
    with pytest.raises(CredentialsError) as e:
        resolve_credentials(None, blank_first, env={})
    assert str(e.value) == f"--password-file {blank_first}: the first line is empty (it must hold the password)"
    assert "secret-on-line-2" not in str(e.value)
    with pytest.raises(CredentialsError) as e:
        resolve_credentials(None, tmp_path, env={})
    assert str(e.value) == f"--password-file {tmp_path}: is a directory, not a file"
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    with pytest.raises(CredentialsError) as e:
        resolve_credentials(None, latin, env={})
    assert str(e.value) == f"--password-file {latin}: not UTF-8 text"


def test_unreadable_password_file(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    f = tmp_path / "locked.txt"
    f.write_text("pw\n")

    def denied(self):  # chmod 000 does not stop root, so simulate it
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(CredentialsError) as e:
        read_password_file(f)
    assert str(e.value) == f"--password-file {f}: cannot read it (Permission denied)"


def test_prompt_only_when_interactive():
    asked = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed-pw"

    c = resolve_credentials("bob", None, env={}, prompt=prompt, interactive=True)
    assert c.password() == "typed-pw" and c.password_source == "prompt"
    assert asked == ["Password for bob: "]
    c = resolve_credentials(None, None, env={}, prompt=prompt, interactive=True)
    assert asked[-1] == "Password for the WinRM user: "
    with pytest.raises(CredentialsError) as e:
        resolve_credentials("bob", None, env={}, prompt=no_prompt, interactive=False)
    assert str(e.value) == NO_PROMPT_MSG


def test_prompt_end_of_input_and_empty_answer():
    def eof(_: str) -> str:
        raise EOFError

    with pytest.raises(CredentialsError) as e:
        resolve_credentials("bob", None, env={}, prompt=eof, interactive=True)
    assert str(e.value).startswith("no password entered: set PORT80_PASSWORD")
    with pytest.raises(CredentialsError) as e:
        resolve_credentials("bob", None, env={}, prompt=lambda _: "", interactive=True)
    assert str(e.value).startswith("empty password entered: ")


def test_default_prompt_is_getpass(monkeypatch):
    import getpass

    monkeypatch.setattr(getpass, "getpass", lambda text: "gp-pw")
    assert resolve_credentials("u", None, env={}, interactive=True).password() == "gp-pw"


def test_default_env_is_os_environ(monkeypatch):
    monkeypatch.setenv("PORT80_PASSWORD", "environ-pw")
    monkeypatch.setenv("PORT80_USER", "environ-user")
    c = resolve_credentials()
    assert (c.user, c.password()) == ("environ-user", "environ-pw")


def test_empty_env_password_counts_as_unset():
    with pytest.raises(CredentialsError):
        resolve_credentials("u", None, env={"PORT80_PASSWORD": ""})


def test_no_password_needed_when_every_host_has_its_own_or_needs_none():
    own = hosts_of("w1 ansible_password=inv-pw\n")
    cert = hosts_of("w2 ansible_psrp_auth=certificate ansible_psrp_cert_pem=/c ansible_psrp_cert_key_pem=/k\n")
    krb = hosts_of("w3 ansible_psrp_auth=kerberos\n")
    c = resolve_credentials(None, None, env={}, prompt=no_prompt, interactive=True, hosts=own + cert + krb)
    assert c.password() is None and not c.has_password
    assert c.for_host(own[0]).password() == "inv-pw"
    assert c.for_host(own[0]).password_source == "inventory"
    assert c.for_host(cert[0]).password() is None
    # a host that needs one: asked for (or an error when not interactive)
    plain = hosts_of("w4\n")
    with pytest.raises(CredentialsError) as e:
        resolve_credentials(None, None, env={}, hosts=own + plain)
    assert str(e.value) == NO_PROMPT_MSG
    # kerberos with a user name is a password login, not the ticket cache
    with pytest.raises(CredentialsError):
        resolve_credentials("bob", None, env={}, hosts=krb)


def test_global_password_wins_over_the_inventory_password():
    host = hosts_of("w1 ansible_password=inv-pw ansible_user=invuser\n")[0]
    c = resolve_credentials(None, None, env={"PORT80_PASSWORD": "global-pw"})
    per_host = c.for_host(host)
    assert (per_host.user, per_host.password()) == ("invuser", "global-pw")


def test_for_host_needs_user_and_password_for_basic_ntlm_credssp():
    basic = hosts_of("w1 ansible_psrp_auth=basic\n")[0]
    with pytest.raises(CredentialsError) as e:
        Credentials(None, "pw").for_host(basic)
    assert str(e.value) == (
        "host w1: basic authentication needs a user name: pass --user, set PORT80_USER, or set ansible_user in the inventory"
    )
    ntlm = hosts_of("w1 ansible_psrp_auth=ntlm\n")[0]
    with pytest.raises(CredentialsError) as e:
        Credentials("bob").for_host(ntlm)
    assert str(e.value).startswith("host w1: ntlm authentication needs a password: set PORT80_PASSWORD")
    negotiate = hosts_of("w1\n")[0]
    assert Credentials().for_host(negotiate).user is None  # Kerberos ticket cache may do


# --- never shown -----------------------------------------------------------------------------------


def test_secret_and_credentials_never_show_the_password():
    s = Secret("hunter2-xyz")
    assert repr(s) == "Secret('***')" and str(s) == "***" and f"{s}" == "***" and f"{s:>20}" == "***"
    assert s.reveal() == "hunter2-xyz" and s == Secret("hunter2-xyz") and bool(s)
    c = Credentials("bob", "hunter2-xyz", user_source="--user", password_source="PORT80_PASSWORD")
    assert repr(c) == "Credentials(user='bob', user_source='--user', password=*** from PORT80_PASSWORD)"
    assert str(c) == repr(c) and "hunter2" not in f"{c}" and "hunter2" not in repr([c, {"c": c}])
    assert not hasattr(c, "__dict__")  # slots only: vars(c) is not a way in
    assert c.password() == "hunter2-xyz" and c.secrets() == ["hunter2-xyz"]
    assert repr(Credentials()) == "Credentials(user=None, user_source=None, password=None)"


passwords = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=6, max_size=40
).filter(lambda p: "\n" not in p and "\r" not in p)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(password=passwords, user=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12))
def test_random_passwords_never_show_in_credentials(password, user):
    placeholder = resolve_credentials(user, None, env={"PORT80_PASSWORD": "Zq9-placeholder"})
    assume(password not in f"credentials: {placeholder!r} / {placeholder}")  # not a piece of the fixed text
    c = resolve_credentials(user, None, env={"PORT80_PASSWORD": password})
    assert c.password() == password
    stream = io.StringIO()
    logger = logging.getLogger("port80.test.creds")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("credentials: %r / %s", c, c)
    finally:
        logger.removeHandler(handler)
    for text in (repr(c), str(c), f"{c}", stream.getvalue()):
        assert password not in text


# --- redaction -------------------------------------------------------------------------------------


def test_redact_plain_escaped_and_encoded_forms():
    pw, user = 'p"a\\ss wörd&<x>', "CORP\\bob"
    basic = base64.b64encode(f"{user}:{pw}".encode()).decode()
    texts = [
        f"password={pw}",
        f"kwargs={{'password': {pw!r}}}",
        json.dumps({"password": pw}),
        "url=https://x/?p=" + urllib.parse.quote(pw, safe=""),
        "<Password>" + pw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "</Password>",
        f"token {basic} end",
        "b64 " + base64.b64encode(pw.encode()).decode(),
    ]
    for t in texts:
        out = redact(t, [pw], users=[user])
        assert "***" in out, t
        for v in secret_variants(pw, [user]):
            assert v not in out, (t, v)


def test_redact_any_basic_authorization_header_even_for_unknown_users():
    token = base64.b64encode(b"someone:else").decode()
    for t in (
        f"Authorization: Basic {token}",
        f"{{'Authorization': 'Basic {token}', 'Content-Type': 'application/soap+xml'}}",
        f"authorization=basic {token}",
        f"Proxy-Authorization: Basic {token}",
    ):
        out = redact(t, [])
        assert token not in out and "***" in out
    assert redact("Authorization: Negotiate YIIabc", []) == "Authorization: Negotiate YIIabc"


def test_redact_replaces_the_longest_form_first():
    out = redact("ab abab", ["ab", "abab"])
    assert out == "*** ***"


def test_filter_redacts_message_args_exception_and_stack():
    f = SecretRedactingFilter(["Sup3r-S3cret"], users=["bob"])
    logger = logging.getLogger("port80.test.filter")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(f)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("connecting with password=%s", "Sup3r-S3cret")
        logger.debug("headers %r", {"Authorization": "Basic " + base64.b64encode(b"bob:Sup3r-S3cret").decode()})
        try:
            raise RuntimeError("login failed for password Sup3r-S3cret")
        except RuntimeError:
            logger.exception("boom")
        logger.info("stack", stack_info=True, extra={"pw_hint": "none"})
        logger.info("broken format %d", "Sup3r-S3cret")  # a bad %-format still gets redacted
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "Sup3r-S3cret" not in out
    assert base64.b64encode(b"bob:Sup3r-S3cret").decode() not in out
    assert "connecting with password=***" in out
    assert "RuntimeError: login failed for password ***" in out
    assert "Traceback" in out and "stack" in out


def test_installed_filter_redacts_records_from_child_loggers_and_later_handlers():
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    early = io.StringIO()
    early_handler = logging.StreamHandler(early)
    root.addHandler(early_handler)
    f = SecretRedactingFilter.for_credentials(
        Credentials("svc", "Gl0bal-Pw"), hosts_of("w1 ansible_user=local ansible_password=H0st-Pw\n")
    )
    f.install()
    late = io.StringIO()
    late_handler = logging.StreamHandler(late)
    root.addHandler(late_handler)
    try:
        logging.getLogger("pypsrp.wsman").debug("sending password %s", "Gl0bal-Pw")
        logging.getLogger("requests.packages.urllib3").debug(
            "header Authorization: Basic %s", base64.b64encode(b"local:H0st-Pw").decode()
        )
        logging.getLogger("urllib3.connectionpool").debug("b64 %s", base64.b64encode(b"svc:Gl0bal-Pw").decode())
    finally:
        f.uninstall()
        root.removeHandler(early_handler)
        root.removeHandler(late_handler)
        root.setLevel(old_level)
    for out in (early.getvalue(), late.getvalue()):
        assert "Gl0bal-Pw" not in out and "H0st-Pw" not in out
        assert base64.b64encode(b"local:H0st-Pw").decode() not in out
        assert base64.b64encode(b"svc:Gl0bal-Pw").decode() not in out
        assert out.count("***") == 3
    # uninstalled: the factory is back, no filter left on the root logger
    assert f not in root.filters
    rec = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, "Gl0bal-Pw", None, None)
    assert rec.getMessage() == "Gl0bal-Pw"


def test_redacted_records_carry_no_secret():
    f = SecretRedactingFilter(["Marker-Pw-1"])
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "pw %s", ("Marker-Pw-1",), None)
    f.filter(rec)
    assert "Marker-Pw-1" not in repr(rec.__dict__)
    assert rec.getMessage() == "pw ***"
    f.add_secret("Marker-Pw-2")  # a new secret: the record is redacted again
    rec2 = logging.LogRecord("x", logging.INFO, __file__, 1, "Marker-Pw-2", None, None)
    f.filter(rec2)
    f.filter(rec2)
    assert rec2.getMessage() == "***"
    assert repr(f) == "SecretRedactingFilter(2 secret(s), 0 user(s))"


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(password=passwords.filter(lambda p: p.strip() != ""), user=st.text("abcdefgh\\.@", min_size=1, max_size=10))
def test_random_passwords_are_redacted_from_log_records(password, user):
    f = SecretRedactingFilter([password], users=[user])
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    for msg, args in (
        ("password is %s", (password,)),
        ("kwargs %r", ({"password": password},)),
        ("%s", (json.dumps({"p": password}),)),
        ("Authorization: Basic %s", (token,)),
        ("token %s inside", (token,)),
    ):
        rec = logging.LogRecord("pypsrp", logging.DEBUG, __file__, 1, msg, args, None)
        f.filter(rec)
        out = rec.getMessage()
        assert password not in out
        assert token not in out
