"""Admin login: the admin password file, signed session cookies and CSRF tokens.

Sessions are not kept on the server (actors share no mutable state): the cookie
carries its expiry and a random session id, signed with HMAC-SHA256 under a key
made at server start and the admin password's stored key, so a restart or a new
admin password ends every session. A form's CSRF token is an HMAC of the session
id, so it is bound to the session and needs no server-side storage either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from mailactors.protocol.sasl.scram import ScramCredentials, derive_credentials
from mailactors.storage.files import open_file, write_file_atomic

__all__ = [
    "ADMIN_PASSWORD_FILE",
    "SESSION_COOKIE",
    "SESSION_LIFETIME",
    "AdminSession",
    "csrf_token",
    "format_credentials",
    "new_session_cookie",
    "parse_credentials",
    "read_admin_credentials",
    "verify_csrf_token",
    "verify_session_cookie",
    "write_admin_password",
]

ADMIN_PASSWORD_FILE = "adminpasswd"
SESSION_COOKIE = "mailactors_admin"
# How long a login lasts (seconds).
SESSION_LIFETIME = 8 * 3600
_SCHEME = "SCRAM-SHA-256"
_COOKIE_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A verified login: its random id and when it expires (Unix seconds)."""

    session_id: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def format_credentials(creds: ScramCredentials) -> str:
    """RFC 5803 3: "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"."""
    return (
        f"{_SCHEME}${creds.iterations}:{_b64(creds.salt)}"
        f"${_b64(creds.stored_key)}:{_b64(creds.server_key)}"
    )


def parse_credentials(text: str) -> ScramCredentials:
    """The inverse of format_credentials; ValueError when malformed."""
    scheme, sep, rest = text.strip().partition("$")
    if scheme != _SCHEME or not sep:
        raise ValueError("not a SCRAM-SHA-256 password hash")
    first, sep, second = rest.partition("$")
    iterations, colon1, salt = first.partition(":")
    stored, colon2, server = second.partition(":")
    if not (sep and colon1 and colon2) or not iterations.isdigit():
        raise ValueError("malformed SCRAM-SHA-256 password hash")
    try:
        return ScramCredentials(
            base64.b64decode(salt, validate=True),
            int(iterations),
            base64.b64decode(stored, validate=True),
            base64.b64decode(server, validate=True),
        )
    except binascii.Error as exc:
        raise ValueError("malformed base64 in the password hash") from exc


def write_admin_password(data_dir: Path, password: str) -> None:
    """Store the admin password's SCRAM-SHA-256 hash in <data_dir>/adminpasswd (0600)."""
    creds = derive_credentials(password, secrets.token_bytes(16))
    data_dir.mkdir(parents=True, exist_ok=True)
    write_file_atomic(
        data_dir / ADMIN_PASSWORD_FILE, (format_credentials(creds) + "\n").encode(), mode=0o600
    )


def read_admin_credentials(data_dir: Path) -> ScramCredentials | None:
    """The stored admin password hash; None when no admin password is set."""
    try:
        with open_file(data_dir / ADMIN_PASSWORD_FILE, "rb") as f:
            text = f.read(4096).decode("ascii", "replace")
    except FileNotFoundError:
        return None
    return parse_credentials(text)


def _mac(key: bytes, creds: ScramCredentials, *parts: str) -> str:
    # Keyed by the server's key and the password's stored key: a new password or a
    # restart invalidates every cookie and CSRF token.
    mac = hmac.new(key + creds.stored_key, "|".join(parts).encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode("ascii").rstrip("=")


def new_session_cookie(key: bytes, creds: ScramCredentials, now: int) -> tuple[str, AdminSession]:
    """A fresh session's cookie value and the session it stands for."""
    session = AdminSession(secrets.token_urlsafe(16), now + SESSION_LIFETIME)
    expires = str(session.expires)
    value = ".".join(
        (
            _COOKIE_VERSION,
            expires,
            session.session_id,
            _mac(key, creds, "session", _COOKIE_VERSION, expires, session.session_id),
        )
    )
    return value, session


def verify_session_cookie(
    key: bytes, creds: ScramCredentials, value: str, now: int
) -> AdminSession | None:
    """The session of a cookie value whose signature holds and that has not expired."""
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != _COOKIE_VERSION or not parts[1].isdigit():
        return None
    version, expires, session_id, mac = parts
    expected = _mac(key, creds, "session", version, expires, session_id)
    if not hmac.compare_digest(expected.encode(), mac.encode()):
        return None
    if int(expires) <= now:
        return None
    return AdminSession(session_id, int(expires))


def csrf_token(key: bytes, creds: ScramCredentials, session: AdminSession) -> str:
    """The CSRF token of every form in this session."""
    return _mac(key, creds, "csrf", session.session_id)


def verify_csrf_token(
    key: bytes, creds: ScramCredentials, session: AdminSession, token: str
) -> bool:
    return hmac.compare_digest(csrf_token(key, creds, session).encode(), token.encode())
