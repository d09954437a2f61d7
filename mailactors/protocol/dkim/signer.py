"""Signing messages with DKIM (RFC 6376 section 5, RFC 8301, RFC 8463)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mailactors.protocol.dkim.canon import (
    canonical_body,
    relaxed_field,
    select_fields,
    split_message,
)
from mailactors.protocol.dkim.keys import DkimKey
from mailactors.protocol.dkim.signature import CANONICALIZATIONS, is_domain_name

# RFC 6376 5.4.1 lists the fields that "SHOULD be included in the signature"; to those we
# add the MIME fields, List-Unsubscribe-Post (RFC 8058 section 4 requires it be signed) and
# Sender. A field is signed as often as it occurs.
DEFAULT_SIGNED_HEADERS: tuple[str, ...] = (
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-ID",
    "Content-Description",
    "Content-Disposition",
    "Resent-Date",
    "Resent-From",
    "Resent-Sender",
    "Resent-To",
    "Resent-Cc",
    "Resent-Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Help",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Subscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
)
# Fields named once more than they occur, present or not: a field of that name added later
# then breaks the signature (RFC 6376 5.4.2 and 8.15, "oversigning").
OVERSIGNED_HEADERS: tuple[str, ...] = (
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
# RFC 5322 2.1.1: "Each line of characters SHOULD be no more than 78 characters".
MAX_LINE = 78
FIELD_NAME = "DKIM-Signature"
# RFC 5322 3.6.8 field-name: printable ASCII except ":".
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
_TAG_VALUE = re.compile(r"[^\x00-\x20;\x7f]+")


class _Folder:
    """Lays words out on lines of at most MAX_LINE characters, folding with CRLF SP."""

    def __init__(self, first: str) -> None:
        self.lines = [first]

    def add(self, word: str, separator: str = " ") -> None:
        if len(self.lines[-1]) + len(separator) + len(word) <= MAX_LINE:
            self.lines[-1] += separator + word
        else:
            self.lines.append(" " + word)

    def add_split(self, text: str) -> None:
        """Append text right after the last word, breaking it anywhere (base64 allows FWS)."""
        while text:
            room = MAX_LINE - len(self.lines[-1])
            if room <= 0:
                self.lines.append(" ")
                room = MAX_LINE - 1
            self.lines[-1] += text[:room]
            text = text[room:]

    def text(self) -> str:
        return "\r\n".join(self.lines)


def sign(
    message: bytes,
    *,
    domain: str,
    selector: str,
    key: DkimKey,
    now: int,
    headers: Sequence[str] = DEFAULT_SIGNED_HEADERS,
    canonicalization: tuple[str, str] = ("relaxed", "relaxed"),
    expiration: int | None = None,
    identity: str | None = None,
    oversign: Sequence[str] = OVERSIGNED_HEADERS,
    body_length: bool = False,
) -> bytes:
    """The "DKIM-Signature: ...\\r\\n" field to put on top of `message`.

    `headers` are the field names signed when present; those also in `oversign` are
    listed once more than they occur. `expiration` is the absolute x= time (after `now`).
    `body_length` adds l= (RFC 6376 8.2 warns against it: content can be appended).
    Misuse (bad names, From not signed) raises ValueError.
    """
    domain = domain.lower()
    selector = selector.lower()
    if not is_domain_name(domain) or not is_domain_name(selector):
        raise ValueError("domain and selector must be domain names in A-label form")
    header_canon, body_canon = canonicalization
    if header_canon not in CANONICALIZATIONS or body_canon not in CANONICALIZATIONS:
        raise ValueError(f"canonicalization must be 'simple' or 'relaxed', not {canonicalization}")
    if expiration is not None and expiration <= now:
        raise ValueError("expiration must be after now (it is the absolute x= time)")
    if identity is not None:
        identity_domain = identity.rpartition("@")[2].lower()
        if "@" not in identity or (
            identity_domain != domain and not identity_domain.endswith("." + domain)
        ):
            raise ValueError(f"identity {identity!r} must be an address within {domain}")
        # RFC 6376 3.2 VALCHAR (widened to UTF-8 by RFC 8616): no ";", whitespace or controls.
        if not _TAG_VALUE.fullmatch(identity):
            raise ValueError(f"identity {identity!r} cannot be written as a tag value")
    for name in headers:
        if not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a header field name")
    parsed = split_message(message)
    # RFC 5322 3.6: a message has a From field; DKIM exists to vouch for it.
    if not any(field.name == "from" for field in parsed.fields):
        raise ValueError("the message has no From header field")
    signed = _signed_field_names(
        [field.name for field in parsed.fields],
        [name.lower() for name in headers],
        {name.lower() for name in oversign},
    )
    # RFC 6376 5.4: "The From header field MUST be signed".
    if "from" not in signed:
        raise ValueError("the From header field must be signed")

    body = canonical_body(parsed.body, body_canon == "relaxed")
    folder = _Folder(f"{FIELD_NAME}:")
    folder.add("v=1;")
    folder.add(f"a={key.signature_algorithm};")
    folder.add(f"c={header_canon}/{body_canon};")
    folder.add(f"d={domain};")
    folder.add(f"s={selector};")
    if identity is not None:
        folder.add(f"i={identity};")
    folder.add(f"t={now};")
    if expiration is not None:
        folder.add(f"x={expiration};")
    if body_length:
        folder.add(f"l={len(body)};")
    for position, name in enumerate(signed):
        last = position == len(signed) - 1
        word = name + (";" if last else ":")
        if position == 0:
            folder.add("h=" + word)
        else:
            folder.add(word, separator="")
    body_hash = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
    folder.add(f"bh={body_hash};")
    folder.add("b=")

    # RFC 6376 3.7: hash the signed fields, then this field with an empty b= and no CRLF.
    unsigned = folder.text().encode("utf-8")
    relaxed = header_canon == "relaxed"
    selected = select_fields(parsed.fields, signed)
    data = b"".join(field.canonical(relaxed) for field in selected)
    if relaxed:
        colon = unsigned.index(b":")
        data += relaxed_field(unsigned[:colon], unsigned[colon + 1 :])
    else:
        data += unsigned
    folder.add_split(base64.b64encode(_sign_data(key, data)).decode("ascii"))
    return folder.text().encode("utf-8") + b"\r\n"


def _signed_field_names(
    present: Sequence[str], wanted: Sequence[str], oversign: set[str]
) -> list[str]:
    counts: dict[str, int] = {}
    for name in present:
        counts[name] = counts.get(name, 0) + 1
    signed: list[str] = []
    seen: set[str] = set()
    for name in wanted:
        if name in seen:
            continue
        seen.add(name)
        signed.extend([name] * (counts.get(name, 0) + (1 if name in oversign else 0)))
    return signed


def _sign_data(key: DkimKey, data: bytes) -> bytes:
    private_key = key.private_key
    if isinstance(private_key, rsa.RSAPrivateKey):
        # RFC 8301 3.1: "Signers MUST sign using rsa-sha256."
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    # RFC 8463 3: Ed25519 (PureEdDSA) over the SHA-256 hash of the data.
    return private_key.sign(hashlib.sha256(data).digest())
