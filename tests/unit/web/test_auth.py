"""Admin password file, signed session cookies (signature, expiry) and CSRF tokens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailactors.protocol.sasl.scram import derive_credentials, verify_password
from mailactors.web import auth

KEY = b"k" * 32
CREDS = derive_credentials("pw", b"salt0123", 16)
NOW = 1_800_000_000


def test_credentials_round_trip_rfc5803_form() -> None:
    text = auth.format_credentials(CREDS)
    assert text.startswith("SCRAM-SHA-256$16:")
    assert auth.parse_credentials(text) == CREDS


@pytest.mark.parametrize(
    "text",
    ["", "PLAIN$x", "SCRAM-SHA-256$x:c2FsdA==$a:b", "SCRAM-SHA-256$16:!!$a:b", "SCRAM-SHA-256$16"],
)
def test_malformed_credentials(text: str) -> None:
    with pytest.raises(ValueError):
        auth.parse_credentials(text)


def test_admin_password_file(tmp_path: Path) -> None:
    assert auth.read_admin_credentials(tmp_path) is None
    auth.write_admin_password(tmp_path, "s3cret")
    path = tmp_path / auth.ADMIN_PASSWORD_FILE
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600
    assert b"s3cret" not in path.read_bytes()
    creds = auth.read_admin_credentials(tmp_path)
    assert creds is not None
    assert verify_password(creds, "s3cret")
    assert not verify_password(creds, "S3cret")


def test_cookie_verifies_until_expiry() -> None:
    value, session = auth.new_session_cookie(KEY, CREDS, NOW)
    assert session.expires == NOW + auth.SESSION_LIFETIME
    assert auth.verify_session_cookie(KEY, CREDS, value, NOW) == session
    assert auth.verify_session_cookie(KEY, CREDS, value, session.expires - 1) == session
    assert auth.verify_session_cookie(KEY, CREDS, value, session.expires) is None


def test_cookie_bound_to_key_and_password() -> None:
    value, _ = auth.new_session_cookie(KEY, CREDS, NOW)
    assert auth.verify_session_cookie(b"x" * 32, CREDS, value, NOW) is None
    other = derive_credentials("new password", b"salt0123", 16)
    assert auth.verify_session_cookie(KEY, other, value, NOW) is None


def test_extending_expiry_breaks_signature() -> None:
    value, session = auth.new_session_cookie(KEY, CREDS, NOW)
    version, expires, sid, mac = value.split(".")
    forged = ".".join((version, str(int(expires) + 10**6), sid, mac))
    assert auth.verify_session_cookie(KEY, CREDS, forged, session.expires + 5) is None


@given(st.text(max_size=200))
def test_garbage_cookies_refused(value: str) -> None:
    assert auth.verify_session_cookie(KEY, CREDS, value, NOW) is None


def test_csrf_token_bound_to_session() -> None:
    _, one = auth.new_session_cookie(KEY, CREDS, NOW)
    _, two = auth.new_session_cookie(KEY, CREDS, NOW)
    token = auth.csrf_token(KEY, CREDS, one)
    assert auth.verify_csrf_token(KEY, CREDS, one, token)
    assert not auth.verify_csrf_token(KEY, CREDS, two, token)
    assert not auth.verify_csrf_token(KEY, CREDS, one, "")
    assert not auth.verify_csrf_token(b"y" * 32, CREDS, one, token)
