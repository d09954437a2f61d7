"""SMTP TLS Reporting (RFC 8460): the DNS record, the JSON report, the report message.

Theory of operation. Every outgoing delivery attempt ends in a `TlsResult`: the
policy that applied (MTA-STS for the recipient domain, DANE TLSA for an MX host,
or none) with one successful session or one failure and its details. The store
adds them up per policy domain and UTC day; once a day the reporter looks up the
policy domain's `_smtp._tls` TXT record (`lookup`), merges the day's results into
a `Report` (`build_report`), and sends `report_gzip` in a multipart/report
message (`compose_report_message`) to the mailto: addresses, or POSTs it to the
https: ones. Incoming reports arrive by mail (`find_report` picks the report part)
or by HTTPS POST; `parse_report` reads JSON or gzip-compressed JSON within fixed
size limits and validates every field, raising `TlsReportError` with the path of
the offending field.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlsplit

from mailactors.protocol.dns import Resolver, normalize_name
from mailactors.protocol.mime.encoding import UnknownTransferEncoding, decode_transfer_encoding
from mailactors.protocol.mime.tree import Part, parse_message

__all__ = [
    "MAX_DECOMPRESSED_SIZE",
    "MAX_JSON_NESTING",
    "MAX_REPORT_SIZE",
    "MAX_SESSION_COUNT",
    "MEDIA_TYPE_GZIP",
    "MEDIA_TYPE_JSON",
    "FailureDetails",
    "Policy",
    "PolicyType",
    "Report",
    "ResultType",
    "TlsReportError",
    "TlsResult",
    "TlsRptLookup",
    "TlsRptRecord",
    "TlsRptRecordError",
    "build_report",
    "compose_report_message",
    "day_bounds",
    "find_report",
    "lookup",
    "lookup_record",
    "mailto_address",
    "make_report_id",
    "merge_results",
    "parse_record",
    "parse_report",
    "record_name",
    "report_filename",
    "report_gzip",
    "report_json",
]

# RFC 8460 does not limit report sizes; a day of results for one policy domain is a
# few kilobytes even for large senders. These bound memory on hostile input: the
# gzip-compressed report as received, and the JSON (received as such, or after
# decompressing, enforced while decompressing so a gzip bomb never expands past it).
MAX_REPORT_SIZE = 1024 * 1024
MAX_DECOMPRESSED_SIZE = 10 * 1024 * 1024
# RFC 8460 4.4 nests objects four levels deep; deeper input is refused before the
# JSON decoder recurses into it.
MAX_JSON_NESTING = 32
# RFC 8259 6: integers in [-(2**53)+1, (2**53)-1] are interoperable; larger session
# counts are refused (they also fit SQLite's 64-bit integers when summed).
MAX_SESSION_COUNT = 2**53 - 1
# RFC 8259 6 numbers have no length limit; ours: enough digits for MAX_SESSION_COUNT.
_MAX_NUMBER_DIGITS = 20

# RFC 8460 6.4, 6.5: the media types of a report (also the HTTPS POST Content-Type, 5.4).
MEDIA_TYPE_GZIP = "application/tlsrpt+gzip"
MEDIA_TYPE_JSON = "application/tlsrpt+json"

_GZIP_MAGIC = b"\x1f\x8b"
_DECOMPRESS_CHUNK = 64 * 1024


class TlsRptRecordError(ValueError):
    """A `_smtp._tls` TXT record that is not a valid TLSRPT record (RFC 8460 3)."""


class TlsReportError(ValueError):
    """A TLS report that is not valid RFC 8460 4 JSON, or too large."""


class PolicyType(StrEnum):
    """RFC 8460 4.3 "policy-type"."""

    TLSA = "tlsa"
    STS = "sts"
    NO_POLICY_FOUND = "no-policy-found"


class ResultType(StrEnum):
    """RFC 8460 4.3 result types, plus "success" for our own bookkeeping."""

    SUCCESS = "success"
    # RFC 8460 4.3.1: negotiation failures.
    STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
    CERTIFICATE_EXPIRED = "certificate-expired"
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
    VALIDATION_FAILURE = "validation-failure"
    # RFC 8460 4.3.2.1: DANE-specific policy failures.
    TLSA_INVALID = "tlsa-invalid"
    DNSSEC_INVALID = "dnssec-invalid"
    DANE_REQUIRED = "dane-required"
    # RFC 8460 4.3.2.2: MTA-STS-specific policy failures.
    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
    STS_POLICY_INVALID = "sts-policy-invalid"
    STS_WEBPKI_INVALID = "sts-webpki-invalid"


# ---- the DNS record (RFC 8460 3) ------------------------------------------------------

RECORD_PREFIX = "_smtp._tls."

# tlsrpt-record = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
# field-delim = *WSP ";" *WSP
# tlsrpt-version = %s"v=TLSRPTv1"
_VERSION = "v=TLSRPTv1"
_LOOKS_LIKE_TLSRPT = re.compile(r"v=TLSRPTv1[ \t]*;")
_FIELD_DELIM = re.compile(r"[ \t]*;[ \t]*")
# tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")
# tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
# tlsrpt-rua = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
_URI_DELIM = re.compile(r"[ \t]*,[ \t]*")
# An addr-spec as a report goes to it: no white space, controls or specials that
# would break out of a header field or an SMTP path (RFC 5321 4.1.2).
_MAILBOX = re.compile(r"[^\x00-\x20\x7f<>()\[\],;:\\\"@]+@[A-Za-z0-9\-.\x80-\U0010ffff]+")


@dataclass(frozen=True, slots=True)
class TlsRptRecord:
    """A parsed TLSRPT record: where reports go (mailto: and https: URIs)."""

    rua: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TlsRptLookup:
    """The outcome of `lookup_record`, with the reason when there is no record."""

    record: TlsRptRecord | None
    txt: tuple[str, ...]  # the TXT records that start with v=TLSRPTv1
    error: str | None


def record_name(domain: str) -> str:
    """The DNS name of a domain's TLSRPT record (RFC 8460 3)."""
    return RECORD_PREFIX + normalize_name(domain)


def mailto_address(uri: str) -> str | None:
    """The address of a "mailto:" rua URI (RFC 6068), or None if it is not one we can use."""
    if uri[:7].lower() != "mailto:":
        return None
    # RFC 6068 2: hfields ("?subject=...") do not change where the report goes.
    try:
        address = unquote(uri[7:].split("?", 1)[0], errors="strict")
    except UnicodeDecodeError:
        return None
    if _MAILBOX.fullmatch(address) is None:
        return None
    return address


def _valid_https(uri: str) -> bool:
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        return False
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme.lower() == "https" and bool(parts.hostname)


def _valid_uri(uri: str) -> bool:
    scheme = uri.split(":", 1)[0].lower()
    if scheme == "mailto":
        return mailto_address(uri) is not None
    if scheme == "https":
        return _valid_https(uri)
    return False


def parse_record(text: str) -> TlsRptRecord:
    """Parse a TLSRPT TXT record (RFC 8460 3); raise TlsRptRecordError if it is invalid.

    Unknown extension fields are ignored, as RFC 8460 3 requires: "Parsers MUST accept
    TXT records that are syntactically valid ... and implementing a superset of this
    specification, in which case unknown fields SHALL be ignored."
    """
    # White space after the record is not in the ABNF; it is harmless, so allowed.
    fields = _FIELD_DELIM.split(text.rstrip(" \t"))
    if fields[0] != _VERSION:
        raise TlsRptRecordError(f"record does not start with {_VERSION}")
    if fields[-1] == "" and len(fields) > 1:
        fields.pop()  # the optional trailing field-delim
    rua: list[str] | None = None
    for field in fields[1:]:
        name, eq, value = field.partition("=")
        if not eq or _EXT_NAME.fullmatch(name) is None:
            raise TlsRptRecordError(f"malformed field {field!r}")
        if name == "rua":
            if rua is not None:
                raise TlsRptRecordError("more than one rua field")
            uris = _URI_DELIM.split(value)
            if any(not uri for uri in uris):
                raise TlsRptRecordError("empty URI in rua")
            # RFC 8460 3: tlsrpt-uri is a "mailto:" or "https:" URI; others (and ones
            # we cannot use safely) are dropped, the rest still get reports.
            rua = [uri for uri in uris if _valid_uri(uri)]
            if not rua:
                raise TlsRptRecordError(f"no usable mailto: or https: URI in rua={value!r}")
        elif _EXT_VALUE.fullmatch(value) is None:
            raise TlsRptRecordError(f"malformed extension value in {field!r}")
    if rua is None:
        # RFC 8460 3: "rua: A URI specifying the endpoint ... (plain-text; required)".
        raise TlsRptRecordError("record has no rua field")
    return TlsRptRecord(rua=tuple(rua))


def lookup_record(resolver: Resolver, domain: str) -> TlsRptLookup:
    """Look up and parse `_smtp._tls.<domain>` (RFC 8460 3). DnsError propagates.

    RFC 8460 3: "If multiple TXT records for _smtp._tls are returned by the resolver,
    records that do not begin with "v=TLSRPTv1;" are discarded. If the number of
    resulting records is not one, senders MUST assume the recipient domain does not
    implement TLSRPT."
    """
    answer = resolver.txt(record_name(domain))
    candidates = tuple(t for t in answer.records if _LOOKS_LIKE_TLSRPT.match(t))
    if not candidates:
        return TlsRptLookup(None, (), None)
    if len(candidates) > 1:
        return TlsRptLookup(None, candidates, f"{len(candidates)} TLSRPT records")
    try:
        return TlsRptLookup(parse_record(candidates[0]), candidates, None)
    except TlsRptRecordError as exc:
        return TlsRptLookup(None, candidates, str(exc))


def lookup(resolver: Resolver, domain: str) -> TlsRptRecord | None:
    """The domain's valid TLSRPT record, or None (no record, several, or invalid)."""
    return lookup_record(resolver, domain).record


# ---- results and reports (RFC 8460 4) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailureDetails:
    """One "failure-details" entry (RFC 8460 4.3); `result_type` is usually a ResultType,
    any other string is a type registered after RFC 8460 (or a reporter's own)."""

    result_type: str
    failed_session_count: int = 1
    sending_mta_ip: str | None = None
    receiving_mx_hostname: str | None = None
    receiving_mx_helo: str | None = None
    receiving_ip: str | None = None
    additional_information: str | None = None
    failure_reason_code: str | None = None

    def key(self) -> tuple[str, ...]:
        """Everything but the count: entries with equal keys are added up."""
        return (
            self.result_type,
            self.sending_mta_ip or "",
            self.receiving_mx_hostname or "",
            self.receiving_mx_helo or "",
            self.receiving_ip or "",
            self.additional_information or "",
            self.failure_reason_code or "",
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """The "policy" object of RFC 8460 4.3: which policy applied to the sessions."""

    policy_type: PolicyType
    policy_domain: str
    policy_strings: tuple[str, ...] = ()
    mx_hosts: tuple[str, ...] = ()  # "mx-host": MX host patterns of the policy


@dataclass(frozen=True, slots=True)
class TlsResult:
    """Sessions under one policy: one delivery attempt's outcome, or many added up.

    This is one element of a report's "policies" array (RFC 8460 4.4).
    """

    policy: Policy
    successful: int = 0
    failed: int = 0
    failure_details: tuple[FailureDetails, ...] = ()

    @classmethod
    def success(cls, policy: Policy) -> TlsResult:
        """One session that negotiated TLS as the policy requires."""
        return cls(policy, successful=1)

    @classmethod
    def failure(cls, policy: Policy, details: FailureDetails) -> TlsResult:
        """One failed session (details.failed_session_count is taken as 1)."""
        one = _replace_count(details, 1)
        return cls(policy, failed=1, failure_details=(one,))


def _replace_count(details: FailureDetails, count: int) -> FailureDetails:
    return FailureDetails(
        result_type=details.result_type,
        failed_session_count=count,
        sending_mta_ip=details.sending_mta_ip,
        receiving_mx_hostname=details.receiving_mx_hostname,
        receiving_mx_helo=details.receiving_mx_helo,
        receiving_ip=details.receiving_ip,
        additional_information=details.additional_information,
        failure_reason_code=details.failure_reason_code,
    )


def merge_results(results: Iterable[TlsResult]) -> tuple[TlsResult, ...]:
    """Add up results with the same policy, and their failure details with equal keys.

    Order follows first appearance, so merging is deterministic.
    """
    merged: dict[Policy, tuple[int, int, dict[tuple[str, ...], FailureDetails]]] = {}
    for result in results:
        ok, failed, details = merged.get(result.policy, (0, 0, {}))
        for detail in result.failure_details:
            key = detail.key()
            known = details.get(key)
            count = detail.failed_session_count + (known.failed_session_count if known else 0)
            details[key] = _replace_count(detail, count)
        merged[result.policy] = (ok + result.successful, failed + result.failed, details)
    return tuple(
        TlsResult(policy, ok, failed, tuple(details.values()))
        for policy, (ok, failed, details) in merged.items()
    )


@dataclass(frozen=True, slots=True)
class Report:
    """An RFC 8460 4.4 report."""

    organization_name: str
    start: datetime  # timezone-aware, UTC
    end: datetime
    contact_info: str
    report_id: str
    policies: tuple[TlsResult, ...]

    @property
    def successful(self) -> int:
        """Successful sessions over all policies."""
        return sum(p.successful for p in self.policies)

    @property
    def failed(self) -> int:
        """Failed sessions over all policies."""
        return sum(p.failed for p in self.policies)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The period of a daily report: 00:00:00Z to 23:59:59Z of the UTC day, as in the
    RFC 8460 4.8 example (RFC 8460 4.1: reports SHOULD cover a full UTC day)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1, seconds=-1)


def make_report_id(day: date, policy_domain: str, submitter: str) -> str:
    """A report-id in msg-id form, as the RFC 8460 5.3 Subject wants: "<day>.<policy
    domain>@<submitter>". The same day and domain give the same id, so a report sent
    twice (after a crash between sending and removing) is one report to a receiver
    that keeps (organization, report-id) unique."""
    return f"{day:%Y%m%d}.{normalize_name(policy_domain)}@{normalize_name(submitter)}"


def build_report(
    results: Iterable[TlsResult],
    *,
    organization: str,
    contact: str,
    report_id: str,
    day_start: datetime,
    day_end: datetime,
) -> Report:
    """A report of `results` (merged per policy) for the period day_start..day_end.

    RFC 8460 4.1: reports SHOULD cover a full UTC day; the caller passes its bounds.
    """
    if day_start.tzinfo is None or day_end.tzinfo is None:
        raise ValueError("report period must be timezone-aware")
    if day_end < day_start:
        raise ValueError("report period ends before it starts")
    return Report(
        organization_name=organization,
        start=day_start.astimezone(UTC),
        end=day_end.astimezone(UTC),
        contact_info=contact,
        report_id=report_id,
        policies=merge_results(results),
    )


def _format_datetime(value: datetime) -> str:
    # RFC 3339 5.6 date-time, in UTC with "Z".
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _details_json(details: FailureDetails) -> dict[str, Any]:
    out: dict[str, Any] = {"result-type": details.result_type}
    optional = (
        ("sending-mta-ip", details.sending_mta_ip),
        ("receiving-mx-hostname", details.receiving_mx_hostname),
        ("receiving-mx-helo", details.receiving_mx_helo),
        ("receiving-ip", details.receiving_ip),
    )
    for name, value in optional:
        if value is not None:
            out[name] = value
    out["failed-session-count"] = details.failed_session_count
    if details.additional_information is not None:
        out["additional-information"] = details.additional_information
    if details.failure_reason_code is not None:
        out["failure-reason-code"] = details.failure_reason_code
    return out


def _result_json(result: TlsResult) -> dict[str, Any]:
    policy: dict[str, Any] = {"policy-type": str(result.policy.policy_type)}
    if result.policy.policy_strings:
        policy["policy-string"] = list(result.policy.policy_strings)
    policy["policy-domain"] = result.policy.policy_domain
    if result.policy.mx_hosts:
        policy["mx-host"] = list(result.policy.mx_hosts)
    return {
        "policy": policy,
        "summary": {
            "total-successful-session-count": result.successful,
            "total-failure-session-count": result.failed,
        },
        "failure-details": [_details_json(d) for d in result.failure_details],
    }


def report_json(report: Report) -> bytes:
    """The report as RFC 8460 4.4 JSON (UTF-8, fields in the RFC's order)."""
    document = {
        "organization-name": report.organization_name,
        "date-range": {
            "start-datetime": _format_datetime(report.start),
            "end-datetime": _format_datetime(report.end),
        },
        "contact-info": report.contact_info,
        "report-id": report.report_id,
        "policies": [_result_json(r) for r in report.policies],
    }
    return json.dumps(document, indent=1).encode("ascii")


def report_gzip(report: Report) -> bytes:
    """report_json compressed with gzip (RFC 8460 5.1 "json.gz"), byte-for-byte
    reproducible: no file name, modification time 0."""
    level = 9
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(report_json(report)) + compressor.flush()


# ---- parsing received reports -----------------------------------------------------------


def _decompress(data: bytes, max_size: int) -> bytes:
    """Gunzip every member of `data`, refusing output beyond `max_size` bytes."""
    out = bytearray()
    rest = data
    while rest:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = rest
        while True:
            budget = max_size - len(out) + 1
            try:
                chunk = decompressor.decompress(pending, min(budget, _DECOMPRESS_CHUNK))
            except zlib.error as exc:
                raise TlsReportError(f"invalid gzip data: {exc}") from exc
            out += chunk
            if len(out) > max_size:
                raise TlsReportError(f"report decompresses to more than {max_size} bytes")
            if decompressor.eof:
                break
            pending = decompressor.unconsumed_tail
            if not pending and not chunk:
                raise TlsReportError("truncated gzip data")
        rest = decompressor.unused_data
        if rest and not rest.startswith(_GZIP_MAGIC):
            raise TlsReportError("trailing data after gzip stream")
    return bytes(out)


# A JSON string (RFC 8259 7), as an unrolled loop so long strings match quickly.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def _check_nesting(text: str) -> None:
    """Refuse JSON nested deeper than MAX_JSON_NESTING before decoding it."""
    # Strings may hold brackets: drop them (with their escapes) first.
    skeleton = _JSON_STRING.sub("", text)
    depth = 0
    for match in re.finditer(r"[\[\]{}]", skeleton):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_JSON_NESTING:
                raise TlsReportError(f"JSON nested deeper than {MAX_JSON_NESTING} levels")
        else:
            depth -= 1


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_NUMBER_DIGITS:
        raise TlsReportError(f"number with more than {_MAX_NUMBER_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise TlsReportError(f"number out of range: {text[:40]}")
    return value


def _parse_constant(text: str) -> float:
    # RFC 8259 6: "Numeric values that cannot be represented ... (such as Infinity
    # and NaN) are not permitted."
    raise TlsReportError(f"not a JSON value: {text}")


def _decode_json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TlsReportError(f"report is not UTF-8: {exc}") from exc
    # RFC 8259 8.1: implementations "MAY ignore the presence of a byte order mark".
    text = text.removeprefix("\ufeff")
    _check_nesting(text)
    try:
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except TlsReportError:
        raise
    except (ValueError, RecursionError) as exc:
        raise TlsReportError(f"report is not valid JSON: {exc}") from exc


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TlsReportError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _field(obj: dict[str, Any], name: str, where: str) -> Any:
    if name not in obj:
        raise TlsReportError(f"{where}: missing field {name!r}")
    return obj[name]


# RFC 8259 8.2: a "\ud800" escape without its pair is no Unicode character.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TlsReportError(f"{where}: expected a string, got {type(value).__name__}")
    if _SURROGATE.search(value):
        raise TlsReportError(f"{where}: unpaired surrogate escape")
    return value


def _opt_str(obj: dict[str, Any], name: str, where: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    text = _str(value, f"{where}.{name}")
    # Some reporters send "" for an absent optional field; it means the same.
    return text or None


def _count(value: Any, where: str) -> int:
    # bool is an int subclass in Python; JSON true is no count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TlsReportError(f"{where}: expected an integer, got {type(value).__name__}")
    if value < 0:
        raise TlsReportError(f"{where}: negative count {value}")
    if value > MAX_SESSION_COUNT:
        raise TlsReportError(f"{where}: count {value} exceeds {MAX_SESSION_COUNT}")
    return value


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        # The RFC 8460 4.8 example writes "mx-host" as one string.
        return (value,)
    if not isinstance(value, list):
        raise TlsReportError(f"{where}: expected a list of strings, got {type(value).__name__}")
    return tuple(_str(item, f"{where}[{i}]") for i, item in enumerate(value))


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)


def _datetime(value: Any, where: str) -> datetime:
    text = _str(value, where)
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise TlsReportError(f"{where}: not an RFC 3339 date-time: {text[:60]!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    # RFC 3339 5.6 allows a leap second (60); Python cannot hold it.
    second = min(second, "59")
    micro = (fraction or ".0")[1:7].ljust(6, "0")
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        parsed = datetime.fromisoformat(
            f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro}{zone}"
        )
    except ValueError as exc:
        raise TlsReportError(f"{where}: invalid date-time {text!r}: {exc}") from exc
    return parsed.astimezone(UTC)


def _parse_details(value: Any, where: str) -> FailureDetails:
    obj = _obj(value, where)
    result_type = _str(_field(obj, "result-type", where), f"{where}.result-type")
    if not result_type:
        raise TlsReportError(f"{where}.result-type: empty")
    # Some reporters send the schema's value name "additional-info-uri" as the key.
    info = _opt_str(obj, "additional-information", where)
    if info is None:
        info = _opt_str(obj, "additional-info-uri", where)
    return FailureDetails(
        result_type=ResultType(result_type) if result_type in _KNOWN_TYPES else result_type,
        failed_session_count=_count(
            _field(obj, "failed-session-count", where), f"{where}.failed-session-count"
        ),
        sending_mta_ip=_opt_str(obj, "sending-mta-ip", where),
        receiving_mx_hostname=_opt_str(obj, "receiving-mx-hostname", where),
        receiving_mx_helo=_opt_str(obj, "receiving-mx-helo", where),
        receiving_ip=_opt_str(obj, "receiving-ip", where),
        additional_information=info,
        failure_reason_code=_opt_str(obj, "failure-reason-code", where),
    )


_KNOWN_TYPES = frozenset(t.value for t in ResultType if t is not ResultType.SUCCESS)


def _parse_policy(value: Any, where: str) -> TlsResult:
    obj = _obj(value, where)
    policy = _obj(_field(obj, "policy", where), f"{where}.policy")
    pwhere = f"{where}.policy"
    type_text = _str(_field(policy, "policy-type", pwhere), f"{pwhere}.policy-type")
    try:
        policy_type = PolicyType(type_text)
    except ValueError:
        raise TlsReportError(f"{pwhere}.policy-type: unknown type {type_text[:40]!r}") from None
    domain = _str(_field(policy, "policy-domain", pwhere), f"{pwhere}.policy-domain")
    strings: tuple[str, ...] = ()
    if policy.get("policy-string") is not None:
        strings = _str_list(policy["policy-string"], f"{pwhere}.policy-string")
    mx_hosts: tuple[str, ...] = ()
    # "mx-host" in RFC 8460 4.4; some reporters write the value's name "mx-host-pattern".
    for name in ("mx-host", "mx-host-pattern"):
        if policy.get(name) is not None:
            mx_hosts = _str_list(policy[name], f"{pwhere}.{name}")
            break
    summary = _obj(_field(obj, "summary", where), f"{where}.summary")
    swhere = f"{where}.summary"
    successful = _count(
        _field(summary, "total-successful-session-count", swhere),
        f"{swhere}.total-successful-session-count",
    )
    failed = _count(
        _field(summary, "total-failure-session-count", swhere),
        f"{swhere}.total-failure-session-count",
    )
    details: tuple[FailureDetails, ...] = ()
    raw_details = obj.get("failure-details")
    if raw_details is not None:
        if not isinstance(raw_details, list):
            raise TlsReportError(f"{where}.failure-details: expected a list")
        details = tuple(
            _parse_details(item, f"{where}.failure-details[{i}]")
            for i, item in enumerate(raw_details)
        )
    return TlsResult(Policy(policy_type, domain, strings, mx_hosts), successful, failed, details)


def parse_report(data: bytes, *, max_size: int = MAX_DECOMPRESSED_SIZE) -> Report:
    """Parse a received report: JSON, or gzip-compressed JSON (RFC 8460 4.4, 5.1).

    Raises TlsReportError naming the first problem, with the path of the field.
    Required fields must be present with the right types, counts must be
    non-negative integers; optional fields may be absent, null or "". Gzip input
    may be MAX_REPORT_SIZE bytes, the JSON `max_size` bytes (a store re-reading
    what it wrote passes its length).
    """
    if data.startswith(_GZIP_MAGIC):
        if len(data) > MAX_REPORT_SIZE:
            raise TlsReportError(f"compressed report larger than {MAX_REPORT_SIZE} bytes")
        data = _decompress(data, max_size)
    elif len(data) > max_size:
        raise TlsReportError(f"report larger than {max_size} bytes")
    document = _obj(_decode_json(data), "report")
    organization = _str(_field(document, "organization-name", "report"), "organization-name")
    date_range = _obj(_field(document, "date-range", "report"), "date-range")
    start = _datetime(
        _field(date_range, "start-datetime", "date-range"), "date-range.start-datetime"
    )
    end = _datetime(_field(date_range, "end-datetime", "date-range"), "date-range.end-datetime")
    if end < start:
        raise TlsReportError("date-range: end-datetime is before start-datetime")
    # RFC 8460 4.4 requires contact-info; some reporters leave it out, and nothing
    # depends on it, so it is optional here.
    contact = _opt_str(document, "contact-info", "report") or ""
    report_id = _str(_field(document, "report-id", "report"), "report-id")
    if not report_id:
        raise TlsReportError("report-id: empty")
    raw_policies = _field(document, "policies", "report")
    if not isinstance(raw_policies, list):
        raise TlsReportError("policies: expected a list")
    policies = tuple(_parse_policy(p, f"policies[{i}]") for i, p in enumerate(raw_policies))
    return Report(organization, start, end, contact, report_id, policies)


# ---- report messages (RFC 8460 5.3) -----------------------------------------------------

# RFC 5322 2.1.1: lines SHOULD be no more than 78 characters.
_HEADER_LINE = 78
# RFC 2045 6.8: encoded lines of no more than 76 characters.
_BASE64_LINE = 76


def report_filename(
    report: Report, *, submitter: str, policy_domain: str, extension: str = "json.gz"
) -> str:
    """The RFC 8460 5.1 file name: sender!policy-domain!begin!end!unique-id.extension.

    unique-id = 1*(ALPHA / DIGIT); ours is derived from the report-id.
    """
    begin = int(report.start.timestamp())
    end = int(report.end.timestamp())
    unique = hashlib.sha256(report.report_id.encode("utf-8")).hexdigest()[:16]
    return f"{submitter}!{policy_domain}!{begin}!{end}!{unique}.{extension}"


def _check_header_value(value: str, what: str) -> None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"{what} contains a control character: {value!r}")


def _fold(name: str, words: Sequence[str]) -> str:
    """A header field of words separated by single spaces, folded before a word
    when the line would exceed 78 characters (RFC 5322 2.2.3)."""
    lines = [f"{name}:"]
    for index, word in enumerate(words):
        # The first word stays beside the name: folding there would make the value
        # start with white space for some parsers.
        if index and len(lines[-1]) + 1 + len(word) > _HEADER_LINE:
            lines.append(" " + word)
        else:
            lines[-1] += " " + word
    return "\r\n".join(lines) + "\r\n"


def compose_report_message(
    report: Report,
    *,
    policy_domain: str,
    from_addr: str,
    to_addrs: Sequence[str],
    submitter: str,
    message_id: str,
    now: datetime,
) -> bytes:
    """The report as an RFC 8460 5.3 message: multipart/report; report-type="tlsrpt",
    a text/plain part and the gzip report as application/tlsrpt+gzip.

    `report.report_id` should have the form "left@right", as the Subject's Report-ID
    is an RFC 5322 msg-id. The caller DKIM-signs the result (RFC 8460 5.3: "the
    report SHOULD be DKIM-signed"). Header values with control characters raise
    ValueError (they would allow header injection).
    """
    if not to_addrs:
        raise ValueError("no recipients")
    for value, what in (
        (policy_domain, "policy domain"),
        (from_addr, "from address"),
        (submitter, "submitter"),
        (message_id, "message-id"),
        (report.report_id, "report-id"),
        *((addr, "recipient") for addr in to_addrs),
    ):
        _check_header_value(value, what)
        if not value:
            raise ValueError(f"empty {what}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    compressed = report_gzip(report)
    filename = report_filename(report, submitter=submitter, policy_domain=policy_domain)
    # Derived from the content (no randomness in protocol/): base64 and our text part
    # never contain "=_".
    boundary = "=_tlsrpt_" + hashlib.sha256(compressed).hexdigest()[:32]
    msgid = message_id.strip().removeprefix("<").removesuffix(">")

    header = "".join(
        [
            _fold("From", [f"<{from_addr}>"]),
            _fold("To", [f"<{a}>," for a in to_addrs[:-1]] + [f"<{to_addrs[-1]}>"]),
            # RFC 8460 5.3: tlsrpt-subject = %s"Report" FWS %s"Domain:" FWS domain-name
            # FWS %s"Submitter:" FWS domain-name FWS %s"Report-ID:" FWS "<" id-left "@"
            # id-right ">"
            _fold(
                "Subject",
                [
                    "Report",
                    "Domain:",
                    policy_domain,
                    "Submitter:",
                    submitter,
                    "Report-ID:",
                    f"<{report.report_id}>",
                ],
            ),
            _fold("Date", [format_datetime(now)]),
            _fold("Message-ID", [f"<{msgid}>"]),
            # RFC 8460 5.3: the report domain and submitter as header fields.
            _fold("TLS-Report-Domain", [policy_domain]),
            _fold("TLS-Report-Submitter", [submitter]),
            # RFC 8460 5.3: reports "MUST be delivered despite any TLS-related
            # failures"; RFC 8689 5: TLS-Required: No lets delivery ignore policies.
            "TLS-Required: No\r\n",
            # RFC 3834 5: machine-generated, so no auto-replies.
            "Auto-Submitted: auto-generated\r\n",
            "MIME-Version: 1.0\r\n",
            _fold(
                "Content-Type",
                ["multipart/report;", 'report-type="tlsrpt";', f'boundary="{boundary}"'],
            ),
        ]
    )
    period = f"{_format_datetime(report.start)} to {_format_datetime(report.end)}"
    text = (
        f"This is an aggregate TLS report from {submitter}\r\n"
        f"for policy domain {policy_domain}, {period}.\r\n"
        f"Successful sessions: {report.successful}, failed sessions: {report.failed}.\r\n"
        "Report format: RFC 8460, SMTP TLS Reporting.\r\n"
    )
    encoded = base64.b64encode(compressed).decode("ascii")
    lines = [encoded[i : i + _BASE64_LINE] for i in range(0, len(encoded), _BASE64_LINE)]
    body = "".join(
        [
            "This is a multipart message in MIME format.\r\n",
            f"\r\n--{boundary}\r\n",
            'Content-Type: text/plain; charset="us-ascii"\r\n',
            "Content-Transfer-Encoding: 7bit\r\n",
            "\r\n",
            text,
            f"\r\n--{boundary}\r\n",
            _fold("Content-Type", [f"{MEDIA_TYPE_GZIP};", f'name="{filename}"']),
            "Content-Transfer-Encoding: base64\r\n",
            _fold("Content-Disposition", ["attachment;", f'filename="{filename}"']),
            "\r\n",
            "\r\n".join(lines),
            "\r\n",
            f"\r\n--{boundary}--\r\n",
        ]
    )
    return (header + "\r\n" + body).encode("utf-8")


def _report_parts(part: Part) -> Iterable[Part]:
    yield part
    for child in part.children:
        yield from _report_parts(child)


_REPORT_TYPES = ("tlsrpt+gzip", "tlsrpt+json")
_REPORT_EXTENSIONS = (".json.gz", ".json")


def _filename(part: Part) -> str:
    name = part.param("name") or ""
    if part.disposition is not None:
        for attribute, value in part.disposition[1]:
            if attribute.lower() == "filename":
                name = value
    return name.lower()


def find_report(message: bytes) -> bytes | None:
    """The report in a received message, transfer-decoded (still gzip for +gzip), or None.

    RFC 8460 5.3 names the media types application/tlsrpt+gzip and +json. As a
    fallback, in a message that says it is a TLS report (report-type=tlsrpt or a
    TLS-Report-Domain header), an application/* attachment named *.json or *.json.gz
    is taken too (some reporters label it application/gzip or octet-stream).
    """
    root = parse_message(message)
    parts = list(_report_parts(root))
    chosen = next(
        (
            p
            for p in parts
            if p.media_type.lower() == "application" and p.media_subtype.lower() in _REPORT_TYPES
        ),
        None,
    )
    if chosen is None:
        is_tlsrpt = root.field("tls-report-domain") is not None or any(
            p.is_multipart and (p.param("report-type") or "").lower() == "tlsrpt" for p in parts
        )
        if not is_tlsrpt:
            return None
        chosen = next(
            (
                p
                for p in parts
                if p.media_type.lower() == "application"
                and _filename(p).endswith(_REPORT_EXTENSIONS)
            ),
            None,
        )
        if chosen is None:
            return None
    body = message[chosen.body_start : chosen.end]
    try:
        return decode_transfer_encoding(body, chosen.transfer_encoding)
    except UnknownTransferEncoding:
        return None
