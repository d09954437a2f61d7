"""MTA-STS (RFC 8461): the _mta-sts TXT record, the policy file, MX matching and selection.

Theory of operation. A sending MTA looks up `_mta-sts.<domain>` TXT
(`lookup_record`); a valid record announces a policy whose `id` changes when
the policy does. The policy itself is fetched over HTTPS from `policy_url`
(mailactors.net.https does the fetching), parsed by `parse_policy` and cached
for `max_age` seconds (mailactors.storage.mtastsdb). At delivery time `select`
applies the policy's mode to the MX hosts of the domain: "enforce" keeps only
MX hosts matching a policy pattern and requires TLS with a PKIX-valid
certificate; "testing" keeps every MX host, verifies as "enforce" would and
reports failures without acting on them; "none" behaves as if there were no
policy.

Errors carry the RFC 8460 section 4.3.2.2 result types that TLS reports use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from mailactors.protocol.dns import DnsError, DnsTemporaryError, Resolver, normalize_name

__all__ = [
    "MAX_AGE_LIMIT",
    "POLICY_BODY_LIMIT",
    "POLICY_PATH",
    "RESULT_POLICY_FETCH_ERROR",
    "RESULT_POLICY_INVALID",
    "RESULT_VALIDATION_FAILURE",
    "RESULT_WEBPKI_INVALID",
    "RecordStatus",
    "StsMode",
    "StsMxCandidate",
    "StsPolicy",
    "StsPolicyError",
    "StsRecord",
    "StsRecordError",
    "StsRecordLookup",
    "StsSelection",
    "lookup_record",
    "mx_matches",
    "parse_policy",
    "parse_record",
    "policy_host",
    "policy_url",
    "record_name",
    "select",
]

# RFC 8460 section 4.3.2.2: result types of MTA-STS failures.
RESULT_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
RESULT_POLICY_INVALID = "sts-policy-invalid"
RESULT_WEBPKI_INVALID = "sts-webpki-invalid"
# RFC 8460 section 4.3.1: validation-failure, a general failure for a reason not
# matching another category; used for an MX host that an enforced policy does not list.
RESULT_VALIDATION_FAILURE = "validation-failure"

# RFC 8461 section 3.2: max_age is "plaintext non-negative integer seconds, maximum
# value of 31557600".
MAX_AGE_LIMIT = 31557600

# The largest policy body we accept (RFC 8461 section 3.3 fetch). A policy is a few
# lines; the bound keeps memory small whatever the server sends.
POLICY_BODY_LIMIT = 64 * 1024

# RFC 8461 section 3.3: the policy lives at this path of https://mta-sts.<domain>.
POLICY_PATH = "/.well-known/mta-sts.txt"

# RFC 8461 section 3.1: sts-id = %s"id=" 1*32(ALPHA / DIGIT)
_ID_MAX = 32
_ALNUM = re.compile(r"[A-Za-z0-9]+")
# sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")
# sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)   ; chars except "=" and ";"
_TXT_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
_WSP = " \t"


class StsRecordError(ValueError):
    """A TXT record that starts with v=STSv1 but does not follow RFC 8461 section 3.1."""


class StsPolicyError(ValueError):
    """A policy file that does not follow RFC 8461 section 3.2."""

    result_type = RESULT_POLICY_INVALID


@dataclass(frozen=True, slots=True)
class StsRecord:
    """A parsed `_mta-sts` TXT record: the policy id and any extension fields."""

    id: str
    extensions: tuple[tuple[str, str], ...] = ()


def record_name(domain: str) -> str:
    """The TXT name of a domain's MTA-STS record (RFC 8461 section 3.1)."""
    return "_mta-sts." + normalize_name(domain)


def policy_host(domain: str) -> str:
    """The host serving a domain's policy (RFC 8461 section 3.3)."""
    return "mta-sts." + normalize_name(domain)


def policy_url(domain: str) -> str:
    """The HTTPS URL of a domain's policy (RFC 8461 section 3.3)."""
    return f"https://{policy_host(domain)}{POLICY_PATH}"


def _is_sts_record(text: str) -> bool:
    # RFC 8461 section 3.1: "Records that do not begin with 'v=STSv1;' are discarded"
    # (WSP may precede the ';' per the sts-field-delim rule).
    return text.startswith("v=STSv1") and text[len("v=STSv1") :].lstrip(_WSP).startswith(";")


def parse_record(text: str) -> StsRecord:
    """Parse an MTA-STS TXT record.

    RFC 8461 section 3.1:
        sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
        sts-version     = %s"v=STSv1"
        sts-field-delim = *WSP ";" *WSP
        sts-field       = sts-id / sts-extension
    """
    if not _is_sts_record(text):
        raise StsRecordError("record does not start with v=STSv1;")
    fields = text[len("v=STSv1") :].split(";")
    # fields[0] is the WSP before the first ';'; a trailing ';' leaves one empty field.
    rest = [f.strip(_WSP) for f in fields[1:]]
    if rest and rest[-1] == "" and len(rest) > 1:
        rest = rest[:-1]
    record_id: str | None = None
    extensions: list[tuple[str, str]] = []
    for item in rest:
        name, eq, value = item.partition("=")
        if not eq:
            raise StsRecordError(f"field {item!r} is not name=value")
        if name == "id":
            if record_id is not None:
                raise StsRecordError("more than one id field")
            if not (0 < len(value) <= _ID_MAX and _ALNUM.fullmatch(value)):
                raise StsRecordError(f"id {value!r} is not 1 to 32 letters and digits")
            record_id = value
        elif _EXT_NAME.fullmatch(name) and _TXT_EXT_VALUE.fullmatch(value):
            extensions.append((name, value))
        else:
            raise StsRecordError(f"invalid field {item!r}")
    if record_id is None:
        raise StsRecordError("no id field")
    return StsRecord(record_id, tuple(extensions))


class RecordStatus(Enum):
    """The outcome of looking up a domain's MTA-STS record."""

    FOUND = "found"  # exactly one valid record
    NONE = "none"  # no record, several records, or an invalid one: no MTA-STS
    TEMPERROR = "temperror"  # the lookup failed; a cached policy stays in force


@dataclass(frozen=True, slots=True)
class StsRecordLookup:
    status: RecordStatus
    record: StsRecord | None = None
    detail: str = ""


def lookup_record(resolver: Resolver, domain: str) -> StsRecordLookup:
    """Look up and parse `_mta-sts.<domain>` TXT (CNAMEs are followed by the resolver)."""
    name = record_name(domain)
    try:
        answer = resolver.txt(name)
    except DnsTemporaryError as exc:
        return StsRecordLookup(RecordStatus.TEMPERROR, detail=str(exc))
    except DnsError as exc:
        return StsRecordLookup(RecordStatus.NONE, detail=str(exc))
    candidates = [text for text in answer.records if _is_sts_record(text)]
    if not candidates:
        return StsRecordLookup(RecordStatus.NONE, detail=f"no MTA-STS record at {name}")
    # RFC 8461 section 3.1: "If the number of resulting records is not one, or if the
    # resulting record is syntactically invalid, senders MUST assume the recipient
    # domain does not have an available MTA-STS Policy."
    if len(candidates) > 1:
        return StsRecordLookup(RecordStatus.NONE, detail=f"{len(candidates)} records at {name}")
    try:
        record = parse_record(candidates[0])
    except StsRecordError as exc:
        return StsRecordLookup(RecordStatus.NONE, detail=f"{name}: {exc}")
    return StsRecordLookup(RecordStatus.FOUND, record)


class StsMode(Enum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class StsPolicy:
    """A parsed policy file (RFC 8461 section 3.2)."""

    version: str
    mode: StsMode
    mx: tuple[str, ...]  # patterns, lower case; "*.example.com" for a wildcard
    max_age: int  # seconds
    extensions: tuple[tuple[str, str], ...] = ()


# sts-policy-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
_POLICY_EXT_NAME = _EXT_NAME
# sts-policy-max-age-value = 1*10(DIGIT)
_MAX_AGE = re.compile(r"[0-9]{1,10}")
# RFC 5321 Domain, as an sts-policy-mx-value = ["*."] Domain
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_MX_PATTERN = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*\.?")


def _policy_lines(text: bytes) -> list[str]:
    # sts-policy-term = LF / CRLF
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StsPolicyError(f"policy is not UTF-8: {exc}") from None
    lines = decoded.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the optional final sts-policy-term
    out = []
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        if "\r" in line:
            raise StsPolicyError("bare CR in policy")
        out.append(line)
    return out


def parse_policy(text: bytes) -> StsPolicy:
    """Parse a policy file; raises StsPolicyError (-> "sts-policy-invalid").

    RFC 8461 section 3.2:
        sts-policy-record      = sts-policy-field *WSP
                                 *(sts-policy-term sts-policy-field *WSP)
                                 [sts-policy-term]
        sts-policy-field-delim = ":" *WSP
        sts-policy-term        = LF / CRLF
    """
    version: str | None = None
    mode: StsMode | None = None
    max_age: int | None = None
    mx: list[str] = []
    extensions: list[tuple[str, str]] = []
    lines = _policy_lines(text)
    for number, line in enumerate(lines, 1):
        if not line.strip(_WSP):
            # Not in the ABNF, but blank lines (often a trailing one) are common and
            # harmless; refusing them would only break delivery.
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise StsPolicyError(f"line {number}: not key: value")
        value = value.strip(_WSP)
        if name == "version":
            if version is None:
                if value != "STSv1":
                    raise StsPolicyError(f"line {number}: version {value!r} is not STSv1")
                version = value
        elif name == "mode":
            if mode is None:
                try:
                    mode = StsMode(value)
                except ValueError:
                    raise StsPolicyError(f"line {number}: unknown mode {value!r}") from None
        elif name == "max_age":
            if max_age is None:
                if not _MAX_AGE.fullmatch(value):
                    raise StsPolicyError(f"line {number}: max_age {value!r} is not 1-10 digits")
                max_age = int(value)
                if max_age > MAX_AGE_LIMIT:
                    raise StsPolicyError(f"line {number}: max_age above {MAX_AGE_LIMIT}")
        elif name == "mx":
            if not _MX_PATTERN.fullmatch(value):
                raise StsPolicyError(f"line {number}: invalid mx pattern {value!r}")
            mx.append(normalize_name(value))
        elif _POLICY_EXT_NAME.fullmatch(name):
            # RFC 8461 section 3.2: unknown fields are ignored; we keep them for display.
            if not value or not all(c == " " or c.isprintable() for c in value):
                raise StsPolicyError(f"line {number}: invalid value for {name!r}")
            extensions.append((name, value))
        else:
            raise StsPolicyError(f"line {number}: invalid field name {name!r}")
        # RFC 8461 section 3.2: of a field other than mx that appears more than once,
        # the first occurrence is used (the checks above keep the first).
    if version is None:
        raise StsPolicyError("no version field")
    if mode is None:
        raise StsPolicyError("no mode field")
    if max_age is None:
        raise StsPolicyError("no max_age field")
    # RFC 8461 section 3.2: mx patterns are required, except with mode "none".
    if not mx and mode is not StsMode.NONE:
        raise StsPolicyError("no mx field")
    return StsPolicy(version, mode, tuple(mx), max_age, tuple(extensions))


def mx_matches(policy: StsPolicy, host: str) -> bool:
    """Whether an MX host name matches one of the policy's mx patterns.

    RFC 8461 section 4.1: a pattern "*.example.com" matches a host with exactly one
    more label ("mx1.example.com", not "example.com" nor "a.b.example.com"); the
    wildcard is allowed only as the whole leftmost label.
    """
    host = normalize_name(host)
    if not host:
        return False
    for pattern in policy.mx:
        if pattern.startswith("*."):
            first, dot, rest = host.partition(".")
            if dot and first and rest == pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


@dataclass(frozen=True, slots=True)
class StsMxCandidate:
    """One MX host as the policy sees it."""

    host: str
    matches: bool  # listed by the policy
    # RFC 8461 section 4.2: with "enforce", delivery to this host requires STARTTLS and
    # a certificate that is PKIX-valid for the host; failures are fatal for the host.
    pkix_required: bool
    # With "testing" (and "enforce"), STARTTLS and PKIX failures are reported (TLSRPT).
    report_failures: bool


@dataclass(frozen=True, slots=True)
class StsSelection:
    """The MX hosts to try, in the given order, and those the policy rules out."""

    mode: StsMode | None  # None: no policy
    candidates: tuple[StsMxCandidate, ...]
    # Hosts an enforced policy does not list: never delivered to, reported with
    # RESULT_VALIDATION_FAILURE.
    rejected: tuple[str, ...] = ()


def select(policy: StsPolicy | None, mx_hosts: Sequence[str]) -> StsSelection:
    """Apply a policy's mode to the MX hosts (already ordered by preference).

    RFC 8461 section 5: "enforce": "sending MTAs MUST NOT deliver the message to
    hosts that fail MX matching or certificate validation or that do not support
    STARTTLS"; "testing": such failures are reported but delivery proceeds;
    "none": as if there were no policy.
    """
    hosts = [normalize_name(h) for h in mx_hosts]
    if policy is None or policy.mode is StsMode.NONE:
        mode = None if policy is None else StsMode.NONE
        return StsSelection(mode, tuple(StsMxCandidate(h, False, False, False) for h in hosts))
    if policy.mode is StsMode.TESTING:
        return StsSelection(
            policy.mode,
            tuple(StsMxCandidate(h, mx_matches(policy, h), False, True) for h in hosts),
        )
    keep = tuple(StsMxCandidate(h, True, True, True) for h in hosts if mx_matches(policy, h))
    rejected = tuple(h for h in hosts if not mx_matches(policy, h))
    return StsSelection(policy.mode, keep, rejected)
