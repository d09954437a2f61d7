"""The DKIM-Signature header field (RFC 6376 section 3.5): parsing and checks."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from mailactors.protocol.dkim.canon import HeaderField, relaxed_field
from mailactors.protocol.dkim.tags import Tag, TagListError, parse_tag_list, split_list

# RFC 6376 3.5 marks v=, a=, b=, bh=, d=, h= and s= REQUIRED; 6.1.1: a signature missing
# one of them is a PERMFAIL (signature missing required tag).
REQUIRED_TAGS = ("v", "a", "b", "bh", "d", "h", "s")
# a= values we understand; rsa-sha1 is parsed so that it can be refused (RFC 8301 3.1).
HASH_BYTES = {"rsa-sha256": 32, "ed25519-sha256": 32, "rsa-sha1": 20}
CANONICALIZATIONS = ("simple", "relaxed")
# Our bound on h= entries, against hostile signatures; real ones list a few dozen names.
MAX_SIGNED_FIELDS = 1000
# RFC 6376 3.5 t=: implementations may take a value longer than 12 digits as infinite
# (against denial of service). Such timestamps are read as "never".
MAX_TIMESTAMP_DIGITS = 12
# RFC 6376 3.5 l=: "1*76DIGIT".
MAX_LENGTH_DIGITS = 76
# How much of a tag value a result repeats: RFC 5321 4.5.3.1 bounds a path to 256 octets.
SUMMARY_CHARS = 256
FOREVER: int = 10**MAX_TIMESTAMP_DIGITS

# RFC 5321 4.1.2 sub-domain (Let-dig [Ldh-str]); underscores occur in selectors in practice.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_DIGITS = re.compile(r"[0-9]+\Z")


class SignatureError(ValueError):
    """The DKIM-Signature field is malformed or not acceptable (a permerror)."""


@dataclass(frozen=True, slots=True)
class Signature:
    """A parsed DKIM-Signature field."""

    algorithm: str  # a=, lower case: "rsa-sha256", "ed25519-sha256" or "rsa-sha1"
    signature: bytes  # b=, decoded
    body_hash: bytes  # bh=, decoded
    header_relaxed: bool  # c= header part
    body_relaxed: bool  # c= body part
    domain: str  # d=, lower case
    selector: str  # s=, lower case
    signed_fields: tuple[str, ...]  # h=, lower case, in order
    identity: str | None  # i= as written
    identity_domain: str  # domain of i=, lower case; d= when i= is absent
    length: int | None  # l=
    timestamp: int | None  # t=
    expiration: int | None  # x=
    unsigned_field: bytes  # the field with the b= value removed, no final CRLF

    @property
    def key_type(self) -> str:
        return self.algorithm.split("-", 1)[0]

    def hashed_field(self) -> bytes:
        """This field as it enters the header hash (RFC 6376 3.7): canonicalized, with b=
        empty and without the final CRLF."""
        if not self.header_relaxed:
            return self.unsigned_field
        colon = self.unsigned_field.index(b":")
        return relaxed_field(self.unsigned_field[:colon], self.unsigned_field[colon + 1 :])


@dataclass(frozen=True, slots=True)
class SignatureSummary:
    """What can be told about a signature even when it does not parse (for results)."""

    domain: str = ""
    selector: str = ""
    identity: str | None = None
    algorithm: str = ""
    b: str = ""


def summarize(tags: dict[str, Tag]) -> SignatureSummary:
    """The tags a result reports, cut to SUMMARY_CHARS (they may come from hostile input)."""

    def get(name: str) -> str:
        tag = tags.get(name)
        return "" if tag is None else tag.unfolded()[:SUMMARY_CHARS]

    return SignatureSummary(
        domain=get("d").lower(),
        selector=get("s").lower(),
        identity=tags["i"].value[:SUMMARY_CHARS] if "i" in tags else None,
        algorithm=get("a").lower(),
        b=get("b"),
    )


def parse_tags(field: HeaderField) -> dict[str, Tag]:
    """The tag-list of a DKIM-Signature field; raises SignatureError."""
    try:
        return parse_tag_list(field.value)
    except TagListError as exc:
        raise SignatureError(f"DKIM-Signature syntax: {exc}") from exc


def parse_signature(field: HeaderField, tags: dict[str, Tag]) -> Signature:
    """Check the tags of a DKIM-Signature field (RFC 6376 3.5, 6.1.1); raise SignatureError."""
    missing = [name for name in REQUIRED_TAGS if name not in tags]
    if missing:
        raise SignatureError(f"missing required tag(s): {', '.join(missing)}")
    # 3.5 v=: the value MUST be "1"; 6.1.1: an unknown version is a PERMFAIL.
    if tags["v"].value != "1":
        raise SignatureError(f"unknown version v={tags['v'].value}")
    algorithm = tags["a"].value.lower()
    if algorithm not in HASH_BYTES:
        raise SignatureError(f"unknown algorithm a={tags['a'].value}")
    header_relaxed, body_relaxed = _canonicalization(tags.get("c"))
    domain = _domain(tags["d"].value, "d=")
    selector = _domain(tags["s"].value, "s=")
    signed_fields = _signed_fields(tags["h"].value)
    identity, identity_domain = _identity(tags.get("i"), domain)
    _query_methods(tags.get("q"))
    timestamp = _timestamp(tags.get("t"))
    expiration = _timestamp(tags.get("x"))
    # 3.5 x=: "the value of the "x=" tag MUST be greater than the value of the "t=" tag if
    # both are present."
    if timestamp is not None and expiration is not None and expiration <= timestamp:
        raise SignatureError("expiration x= is not after the timestamp t=")
    body_hash = _base64(tags["bh"], "bh=")
    if len(body_hash) != HASH_BYTES[algorithm]:
        raise SignatureError(
            f"bh= has {len(body_hash)} bytes, {algorithm} needs {HASH_BYTES[algorithm]}"
        )
    b = tags["b"]
    raw = field.raw[:-2]
    value_offset = field.colon + 1
    # 3.7: the field is hashed "with the value of the "b=" tag (including all surrounding
    # whitespace) deleted (i.e., treated as the empty string)".
    unsigned = raw[: value_offset + b.start] + raw[value_offset + b.end :]
    return Signature(
        algorithm=algorithm,
        signature=_base64(b, "b="),
        body_hash=body_hash,
        header_relaxed=header_relaxed,
        body_relaxed=body_relaxed,
        domain=domain,
        selector=selector,
        signed_fields=signed_fields,
        identity=identity,
        identity_domain=identity_domain,
        length=_length(tags.get("l")),
        timestamp=timestamp,
        expiration=expiration,
        unsigned_field=unsigned,
    )


def _canonicalization(tag: Tag | None) -> tuple[bool, bool]:
    # 3.5 c=: "If only one algorithm is named, that algorithm is used for the header and
    # "simple" is used for the body. ... Default is "simple/simple"."
    if tag is None:
        return False, False
    parts = tag.value.lower().split("/")
    if len(parts) == 1:
        parts.append("simple")
    if len(parts) != 2 or not all(part in CANONICALIZATIONS for part in parts):
        raise SignatureError(f"unknown canonicalization c={tag.value}")
    return parts[0] == "relaxed", parts[1] == "relaxed"


def is_domain_name(name: str) -> bool:
    """Dot-separated labels of letters, digits, hyphens, underscores; at most 253 octets."""
    if not name or len(name) > 253 or not name.isascii():
        return False
    return all(_LABEL.match(label) for label in name.lower().split("."))


def _domain(value: str, tag: str) -> str:
    # RFC 6376 3.5 d=, s=: domain names; "internationalized domain names MUST be encoded
    # as A-labels". A trailing dot is not part of the syntax.
    if not is_domain_name(value):
        raise SignatureError(f"{tag} {value!r} is not a domain name in A-label form")
    return value.lower()


def _signed_fields(value: str) -> tuple[str, ...]:
    names = split_list(value)
    if len(names) > MAX_SIGNED_FIELDS:
        raise SignatureError(f"h= lists more than {MAX_SIGNED_FIELDS} header fields")
    if not all(names):
        raise SignatureError("h= has an empty header field name")
    lower = tuple(name.lower() for name in names)
    # 6.1.1: "If the "h=" tag does not include the From header field, the Verifier MUST
    # ignore the DKIM-Signature header field and return PERMFAIL (From field not signed)."
    if "from" not in lower:
        raise SignatureError("h= does not include From")
    return lower


def _identity(tag: Tag | None, domain: str) -> tuple[str | None, str]:
    # 3.5 i=: "[ Local-part ] "@" domain-name". "The domain part of the address MUST be the
    # same as, or a subdomain of, the value of the "d=" tag."
    if tag is None:
        return None, domain
    identity = tag.value
    if "@" not in identity:
        raise SignatureError(f"i= {identity!r} has no '@'")
    identity_domain = identity.rsplit("@", 1)[1].lower()
    if not is_domain_name(identity_domain):
        raise SignatureError(f"i= domain {identity_domain!r} is not a domain name")
    if identity_domain != domain and not identity_domain.endswith("." + domain):
        raise SignatureError(f"i= domain {identity_domain} is not within d={domain}")
    return identity, identity_domain


def _query_methods(tag: Tag | None) -> None:
    # 3.5 q=: "Currently, the only valid value is "dns/txt"". 6.1.1: unknown methods -> PERMFAIL.
    if tag is not None and "dns/txt" not in (m.lower() for m in split_list(tag.value)):
        raise SignatureError(f"no supported query method in q={tag.value}")


def _timestamp(tag: Tag | None) -> int | None:
    if tag is None:
        return None
    if not _DIGITS.match(tag.value):
        raise SignatureError(f"{tag.name}= is not a number")
    if len(tag.value) > MAX_TIMESTAMP_DIGITS:
        return FOREVER
    return int(tag.value)


def _length(tag: Tag | None) -> int | None:
    if tag is None:
        return None
    if not _DIGITS.match(tag.value) or len(tag.value) > MAX_LENGTH_DIGITS:
        raise SignatureError("l= is not a number of at most 76 digits")
    return int(tag.value)


def _base64(tag: Tag, name: str) -> bytes:
    try:
        return base64.b64decode(tag.unfolded(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"{name} is not valid base64") from exc
