"""The PLAIN SASL mechanism (RFC 4616)."""

from __future__ import annotations

from mailactors.protocol.sasl.errors import SaslError

# RFC 4616 section 2: authzid, authcid and passwd are each at most 255 octets
# ("1*SAFE ... up to 255 octets" in the ABNF comments).
MAX_PLAIN_FIELD = 255


def parse_plain(response: bytes) -> tuple[str, str, str]:
    """Split a PLAIN response into (authzid, authcid, password); raise SaslError.

    RFC 4616 section 2:
        message   = [authzid] UTF8NUL authcid UTF8NUL passwd
        authcid   = 1*SAFE ; MUST accept up to 255 octets
        authzid   = 1*SAFE ; MUST accept up to 255 octets
        passwd    = 1*SAFE ; MUST accept up to 255 octets
        SAFE      = UTF1 / UTF2 / UTF3 / UTF4 ; any UTF-8 encoded Unicode character except NUL
    An empty authzid means "act as authcid".
    """
    parts = response.split(b"\x00")
    if len(parts) != 3:
        raise SaslError("PLAIN response must have exactly three NUL-separated fields")
    authzid_b, authcid_b, password_b = parts
    if not authcid_b or not password_b:
        raise SaslError("PLAIN response has an empty authentication identity or password")
    # Be lenient on length (RFC 4616 only sets a minimum to accept) but bound it.
    if any(len(p) > 4 * MAX_PLAIN_FIELD for p in parts):
        raise SaslError("PLAIN response field too long")
    try:
        authzid, authcid, password = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        raise SaslError("PLAIN response is not valid UTF-8") from None
    return authzid, authcid, password


def make_plain(authcid: str, password: str, authzid: str = "") -> bytes:
    """Build a PLAIN response (RFC 4616 section 2), for clients and tests."""
    return b"\x00".join(s.encode("utf-8") for s in (authzid, authcid, password))
