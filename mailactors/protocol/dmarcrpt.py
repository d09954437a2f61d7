"""DMARC aggregate reports (RFC 7489 section 7.2, appendix C): model, XML, mail.

Outgoing: the reporter groups stored evaluations into records
(`records_from_evaluations`), builds a `Feedback`, writes it as XML (`report_xml`)
and wraps it, gzipped, in a report message (`compose_report_message`); `report_fits`
applies a rua URI's "!size" limit.

Incoming: `find_report` picks the report attachment out of a report message and
`parse_report` reads it (XML, gzip or zip). Reports come from strangers, so parsing
is defensive: no DTDs, entities or external references (defusedxml); the input, the
decompressed size, zip members and records are limited by the named limits below,
enforced while reading, never by trusting sizes declared in headers; every problem
is a `DmarcReportError`.

The XML we write has no namespace, as most reporters' does (and parsedmarc reads);
the parser accepts any namespace, e.g. RFC 9990's "urn:ietf:params:xml:ns:dmarc-2.0".
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import ipaddress
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime
from typing import Literal
from urllib.parse import quote
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from mailactors.protocol.mime.encoding import UnknownTransferEncoding, decode_transfer_encoding
from mailactors.protocol.mime.headers import decode_params
from mailactors.protocol.mime.tree import Part, parse_message

__all__ = [
    "MAX_DECOMPRESSED_SIZE",
    "MAX_PENDING_ELEMENTS",
    "MAX_REPORT_INPUT",
    "MAX_REPORT_RECORDS",
    "MAX_ZIP_MEMBERS",
    "DkimAuth",
    "DmarcReportError",
    "Evaluation",
    "Feedback",
    "PolicyPublished",
    "ReportMetadata",
    "ReportRecord",
    "SpfAuth",
    "compose_report_message",
    "find_report",
    "parse_report",
    "records_from_evaluations",
    "report_filename",
    "report_fits",
    "report_subject",
    "report_xml",
]

# RFC 7489 7.2.1.1 notes that "a commonly observed receiver limit is ten megabytes"
# for report messages; a compressed report larger than this is refused unread.
MAX_REPORT_INPUT = 15 * 1024 * 1024
# RFC 7489 sets no limit on the XML itself; ours, counted while decompressing.
MAX_DECOMPRESSED_SIZE = 20 * 1024 * 1024
# A report zip holds one XML file (RFC 7489 7.2.1.1 describes a single report file);
# more entries than this in the central directory is not a report.
MAX_ZIP_MEMBERS = 10
# No RFC limit; a 20 MiB report holds fewer records than this anyway.
MAX_REPORT_RECORDS = 100_000
# XML elements held in memory at once: everything outside records plus the record
# being read. Records are converted and freed one by one, so this bounds memory on
# hostile input such as a million <dkim/> elements inside one record.
MAX_PENDING_ELEMENTS = 10_000

# Timestamps are seconds since the epoch (RFC 7489 appendix C, DateRangeType);
# anything past the year 9999 is an error, not a date.
_MAX_TIMESTAMP = 253_402_300_799
# Counts are stored in SQLite integers.
_MAX_COUNT = 2**63 - 1

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_ZIP_EMPTY_MAGIC = b"PK\x05\x06"
_READ_CHUNK = 64 * 1024

AlignedResult = Literal["pass", "fail"]


class DmarcReportError(ValueError):
    """A report we received cannot be read: its message says why."""


# ---- model --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportMetadata:
    """RFC 7489 appendix C, ReportMetadataType: who reports, which report, which time."""

    org_name: str
    email: str
    extra_contact_info: str | None
    report_id: str
    begin: int  # seconds since the epoch, UTC
    end: int
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyPublished:
    """RFC 7489 appendix C, PolicyPublishedType: the DMARC record that was applied.

    Optional fields are None when a received report omits them; `report_xml` writes
    the RFC 7489 6.3 defaults for them (adkim/aspf "r", sp = p, pct 100, fo "0").
    """

    domain: str
    adkim: str | None
    aspf: str | None
    p: str
    sp: str | None
    pct: int | None
    fo: str | None


@dataclass(frozen=True, slots=True)
class DkimAuth:
    """RFC 7489 appendix C, DKIMAuthResultType: one DKIM signature's result."""

    domain: str
    selector: str | None
    result: str  # none / pass / fail / policy / neutral / temperror / permerror
    human_result: str | None = None


@dataclass(frozen=True, slots=True)
class SpfAuth:
    """RFC 7489 appendix C, SPFAuthResultType: the SPF result of one identity."""

    domain: str
    scope: str  # "mfrom" or "helo"
    result: str  # none / neutral / pass / fail / softfail / temperror / permerror


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """RFC 7489 appendix C, RecordType: `count` messages that were evaluated alike.

    `reasons` holds (type, comment) pairs of PolicyOverrideReason (comment optional).
    """

    source_ip: str
    count: int
    disposition: str  # none / quarantine / reject
    dkim_aligned: str  # DMARC-aligned DKIM result: "pass" / "fail"
    spf_aligned: str
    reasons: tuple[tuple[str, str | None], ...]
    header_from: str
    envelope_from: str | None
    envelope_to: str | None
    dkim: tuple[DkimAuth, ...]
    spf: tuple[SpfAuth, ...]


@dataclass(frozen=True, slots=True)
class Feedback:
    """One aggregate report (RFC 7489 appendix C, the "feedback" element)."""

    version: str
    metadata: ReportMetadata
    policy: PolicyPublished
    records: tuple[ReportRecord, ...]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What the DMARC evaluation of one incoming message contributes to a report.

    Equal evaluations become one `ReportRecord` with their number as its count.
    """

    source_ip: str
    disposition: str
    dkim_aligned: AlignedResult
    spf_aligned: AlignedResult
    reasons: tuple[tuple[str, str | None], ...]
    header_from: str
    envelope_from: str | None
    envelope_to: str | None
    dkim: tuple[DkimAuth, ...]
    spf: tuple[SpfAuth, ...]


def records_from_evaluations(evaluations: Iterable[Evaluation]) -> tuple[ReportRecord, ...]:
    """Group equal evaluations into records with counts, in order of first appearance."""
    counts: dict[Evaluation, int] = {}
    for evaluation in evaluations:
        counts[evaluation] = counts.get(evaluation, 0) + 1
    return tuple(
        ReportRecord(
            source_ip=e.source_ip,
            count=n,
            disposition=e.disposition,
            dkim_aligned=e.dkim_aligned,
            spf_aligned=e.spf_aligned,
            reasons=e.reasons,
            header_from=e.header_from,
            envelope_from=e.envelope_from,
            envelope_to=e.envelope_to,
            dkim=e.dkim,
            spf=e.spf,
        )
        for e, n in counts.items()
    )


# ---- writing XML --------------------------------------------------------------------

# XML 1.0 section 2.2: Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
# [#x10000-#x10FFFF]. Anything else cannot be written, escaped or not.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return escape(_NOT_XML_CHAR.sub("\ufffd", value))


class _XmlWriter:
    __slots__ = ("depth", "lines")

    def __init__(self) -> None:
        self.lines: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>']
        self.depth = 0

    def open(self, name: str) -> None:
        self.lines.append(f"{'  ' * self.depth}<{name}>")
        self.depth += 1

    def close(self, name: str) -> None:
        self.depth -= 1
        self.lines.append(f"{'  ' * self.depth}</{name}>")

    def leaf(self, name: str, value: str | int | None) -> None:
        if value is None:
            return
        self.lines.append(f"{'  ' * self.depth}<{name}>{_text(str(value))}</{name}>")

    def data(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode("utf-8")


def report_xml(feedback: Feedback) -> bytes:
    """The report as XML in the element order of RFC 7489 appendix C, UTF-8, no namespace."""
    out = _XmlWriter()
    meta, policy = feedback.metadata, feedback.policy
    out.open("feedback")
    out.leaf("version", feedback.version or "1.0")
    out.open("report_metadata")
    out.leaf("org_name", meta.org_name)
    out.leaf("email", meta.email)
    out.leaf("extra_contact_info", meta.extra_contact_info)
    out.leaf("report_id", meta.report_id)
    out.open("date_range")
    out.leaf("begin", meta.begin)
    out.leaf("end", meta.end)
    out.close("date_range")
    for error in meta.errors:
        out.leaf("error", error)
    out.close("report_metadata")
    # RFC 7489 appendix C lists sp, pct and fo as required; absent ones get the
    # defaults of RFC 7489 6.3 (sp: "If absent, the policy specified by the p tag
    # MUST be applied for subdomains"; pct: default 100; fo: default "0"; adkim and
    # aspf: default "r").
    out.open("policy_published")
    out.leaf("domain", policy.domain)
    out.leaf("adkim", policy.adkim or "r")
    out.leaf("aspf", policy.aspf or "r")
    out.leaf("p", policy.p)
    out.leaf("sp", policy.sp or policy.p)
    out.leaf("pct", 100 if policy.pct is None else policy.pct)
    out.leaf("fo", policy.fo or "0")
    out.close("policy_published")
    for record in feedback.records:
        _write_record(out, record)
    out.close("feedback")
    return out.data()


def _write_record(out: _XmlWriter, record: ReportRecord) -> None:
    out.open("record")
    out.open("row")
    out.leaf("source_ip", record.source_ip)
    out.leaf("count", record.count)
    out.open("policy_evaluated")
    out.leaf("disposition", record.disposition)
    out.leaf("dkim", record.dkim_aligned)
    out.leaf("spf", record.spf_aligned)
    for kind, comment in record.reasons:
        out.open("reason")
        out.leaf("type", kind)
        out.leaf("comment", comment)
        out.close("reason")
    out.close("policy_evaluated")
    out.close("row")
    out.open("identifiers")
    out.leaf("envelope_to", record.envelope_to)
    out.leaf("envelope_from", record.envelope_from)
    out.leaf("header_from", record.header_from)
    out.close("identifiers")
    # RFC 7489 appendix C, AuthResultType: a sequence of dkim elements, then spf ones.
    out.open("auth_results")
    for dkim in record.dkim:
        out.open("dkim")
        out.leaf("domain", dkim.domain)
        out.leaf("selector", dkim.selector)
        out.leaf("result", dkim.result)
        out.leaf("human_result", dkim.human_result)
        out.close("dkim")
    for spf in record.spf:
        out.open("spf")
        out.leaf("domain", spf.domain)
        out.leaf("scope", spf.scope)
        out.leaf("result", spf.result)
        out.close("spf")
    out.close("auth_results")
    out.close("record")


# ---- reading: containers ------------------------------------------------------------


def parse_report(data: bytes) -> Feedback:
    """Read an aggregate report given as XML, gzip or zip; raise DmarcReportError."""
    if len(data) > MAX_REPORT_INPUT:
        raise DmarcReportError(
            f"report of {len(data)} bytes is larger than the limit of {MAX_REPORT_INPUT}"
        )
    if data.startswith(_GZIP_MAGIC):
        xml = _gunzip(data)
    elif data.startswith((_ZIP_MAGIC, _ZIP_EMPTY_MAGIC)):
        xml = _unzip(data)
    else:
        xml = data
    return _parse_xml(xml)


def _gunzip(data: bytes) -> bytes:
    """Decompress all gzip members (RFC 1952 2.2), counting the output as it grows."""
    out = bytearray()
    rest = data
    try:
        # Some writers pad the file with zero bytes after the last member.
        while rest.strip(b"\0"):
            if not rest.startswith(_GZIP_MAGIC):
                raise DmarcReportError("gzip data is followed by something that is not gzip")
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = rest
            while pending and not decompressor.eof:
                room = MAX_DECOMPRESSED_SIZE - len(out)
                out += decompressor.decompress(pending, room + 1)
                if len(out) > MAX_DECOMPRESSED_SIZE:
                    raise DmarcReportError(
                        f"decompressed report is larger than the limit of {MAX_DECOMPRESSED_SIZE}"
                    )
                pending = decompressor.unconsumed_tail
            if not decompressor.eof:
                raise DmarcReportError("gzip data is truncated")
            rest = decompressor.unused_data
    except zlib.error as exc:
        raise DmarcReportError(f"gzip data is corrupt: {exc}") from exc
    return bytes(out)


def _zip_entry_count(data: bytes) -> int:
    """Entries in the zip's central directory, from its end record (APPNOTE 4.3.16)."""
    # The end of central directory record is 22 bytes plus a comment of up to 65535
    # bytes; the real one is the signature whose comment length reaches the end of the
    # data exactly (a comment may itself contain the signature).
    window_start = max(0, len(data) - 22 - 0xFFFF)
    pos = data.rfind(_ZIP_EMPTY_MAGIC, window_start)
    while pos >= 0:
        if len(data) - pos >= 22:
            fields = struct.unpack("<4s4H2LH", data[pos : pos + 22])
            total, comment_length = fields[4], fields[7]
            if pos + 22 + comment_length == len(data):
                if total == 0xFFFF:
                    # ZIP64 end records are for archives far beyond MAX_REPORT_INPUT.
                    raise DmarcReportError("zip64 archives are not accepted for reports")
                return int(total)
        pos = data.rfind(_ZIP_EMPTY_MAGIC, window_start, pos)
    raise DmarcReportError("zip archive has no end of central directory record")


def _unzip(data: bytes) -> bytes:
    count = _zip_entry_count(data)
    if count > MAX_ZIP_MEMBERS:
        raise DmarcReportError(f"zip archive has {count} entries, more than {MAX_ZIP_MEMBERS}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) > MAX_ZIP_MEMBERS:
                raise DmarcReportError(f"zip archive has more than {MAX_ZIP_MEMBERS} members")
            xml_members = [m for m in members if m.filename.lower().endswith(".xml")]
            if xml_members:
                member = xml_members[0]
            elif len(members) == 1:
                member = members[0]
            else:
                raise DmarcReportError("zip archive holds no .xml file")
            # APPNOTE 4.4.4: bit 0 = encrypted, bit 6 = strong encryption.
            if member.flag_bits & 0x41:
                raise DmarcReportError(f"zip member {member.filename!r} is encrypted")
            if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise DmarcReportError(
                    f"zip member {member.filename!r} uses compression method "
                    f"{member.compress_type}, not stored or deflated"
                )
            if member.filename.lower().endswith((".zip", ".gz", ".gzip")):
                raise DmarcReportError(f"zip member {member.filename!r} is a nested archive")
            out = bytearray()
            with archive.open(member) as stream:
                while True:
                    chunk = stream.read(_READ_CHUNK)
                    if not chunk:
                        break
                    out += chunk
                    if len(out) > MAX_DECOMPRESSED_SIZE:
                        raise DmarcReportError(
                            "decompressed report is larger than the limit of "
                            f"{MAX_DECOMPRESSED_SIZE}"
                        )
    except DmarcReportError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError) as exc:
        raise DmarcReportError(f"zip archive cannot be read: {exc}") from exc
    except (ValueError, OverflowError, struct.error) as exc:
        raise DmarcReportError(f"zip archive is malformed: {exc}") from exc
    if out.startswith((_GZIP_MAGIC, _ZIP_MAGIC, _ZIP_EMPTY_MAGIC)):
        raise DmarcReportError(f"zip member {member.filename!r} is a nested archive")
    return bytes(out)


# ---- reading: XML -------------------------------------------------------------------


def _local(tag: object) -> str:
    """The element name without its namespace ("{urn:...}feedback" -> "feedback")."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _children(element: Element) -> dict[str, list[Element]]:
    named: dict[str, list[Element]] = {}
    for child in element:
        named.setdefault(_local(child.tag), []).append(child)
    return named


def _text_of(element: Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip()


def _first(named: dict[str, list[Element]], name: str) -> Element | None:
    found = named.get(name)
    return found[0] if found else None


def _optional(named: dict[str, list[Element]], name: str) -> str | None:
    return _text_of(_first(named, name))


def _required(named: dict[str, list[Element]], name: str, where: str) -> str:
    value = _optional(named, name)
    if value is None:
        raise DmarcReportError(f"{where} has no <{name}> element")
    return value


def _word(value: str | None) -> str | None:
    """An enumerated value (result, disposition, scope, mode), lower case."""
    return None if value is None else value.lower()


_DECIMAL_TIME = re.compile(r"\d{1,12}(?:\.\d*)?")


def _timestamp(value: str, where: str) -> int:
    # Some reporters write "1529366400.0"; the fraction is dropped.
    if not _DECIMAL_TIME.fullmatch(value):
        raise DmarcReportError(f"{where} is not a timestamp: {value[:40]!r}")
    seconds = int(value.split(".", 1)[0])
    if seconds > _MAX_TIMESTAMP:
        raise DmarcReportError(f"{where} is out of range: {value[:40]!r}")
    return seconds


def _parse_metadata(element: Element | None) -> ReportMetadata:
    if element is None:
        raise DmarcReportError("report has no <report_metadata> element")
    named = _children(element)
    org_name = _optional(named, "org_name") or ""
    email = _optional(named, "email") or ""
    if not org_name:
        # Some reporters leave org_name out; their address names them well enough.
        org_name = email.rpartition("@")[2]
    if not org_name:
        raise DmarcReportError("report_metadata has neither <org_name> nor <email>")
    report_id = _required(named, "report_id", "report_metadata")
    if not report_id:
        raise DmarcReportError("report_metadata has an empty <report_id>")
    date_range = _first(named, "date_range")
    if date_range is None:
        raise DmarcReportError("report_metadata has no <date_range> element")
    dates = _children(date_range)
    begin = _timestamp(_required(dates, "begin", "date_range"), "date_range begin")
    end = _timestamp(_required(dates, "end", "date_range"), "date_range end")
    if begin > end:
        raise DmarcReportError(f"date_range begins ({begin}) after it ends ({end})")
    errors = tuple(text for e in named.get("error", []) if (text := _text_of(e)))
    return ReportMetadata(
        org_name=org_name,
        email=email,
        extra_contact_info=_optional(named, "extra_contact_info"),
        report_id=report_id,
        begin=begin,
        end=end,
        errors=errors,
    )


def _parse_policy(element: Element | None) -> PolicyPublished:
    if element is None:
        raise DmarcReportError("report has no <policy_published> element")
    named = _children(element)
    domain = _required(named, "domain", "policy_published")
    if not domain:
        raise DmarcReportError("policy_published has an empty <domain>")
    p = _word(_required(named, "p", "policy_published"))
    assert p is not None
    pct_text = _optional(named, "pct")
    pct: int | None = None
    if pct_text:
        if not pct_text.isdigit() or len(pct_text) > 3 or int(pct_text) > 100:
            raise DmarcReportError(f"policy_published pct is not 0-100: {pct_text[:40]!r}")
        pct = int(pct_text)
    return PolicyPublished(
        domain=domain,
        adkim=_word(_optional(named, "adkim")) or None,
        aspf=_word(_optional(named, "aspf")) or None,
        p=p,
        sp=_word(_optional(named, "sp")) or None,
        pct=pct,
        fo=_optional(named, "fo") or None,
    )


def _parse_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise DmarcReportError(f"record source_ip is not an IP address: {value[:60]!r}") from None


def _parse_count(value: str) -> int:
    if not value.isdigit() or len(value) > 19 or int(value) > _MAX_COUNT:
        raise DmarcReportError(f"record count is not a number >= 0: {value[:40]!r}")
    return int(value)


def _parse_record(element: Element) -> ReportRecord:
    named = _children(element)
    row = _first(named, "row")
    if row is None:
        raise DmarcReportError("record has no <row> element")
    row_named = _children(row)
    source_ip = _parse_ip(_required(row_named, "source_ip", "row"))
    count = _parse_count(_required(row_named, "count", "row"))
    evaluated = _first(row_named, "policy_evaluated")
    if evaluated is None:
        raise DmarcReportError("row has no <policy_evaluated> element")
    policy = _children(evaluated)
    disposition = _word(_required(policy, "disposition", "policy_evaluated"))
    assert disposition is not None
    reasons: list[tuple[str, str | None]] = []
    for reason in policy.get("reason", []):
        parts = _children(reason)
        reasons.append((_optional(parts, "type") or "", _optional(parts, "comment") or None))
    # Some old reporters wrote "identities" for "identifiers".
    identifiers = _first(named, "identifiers")
    if identifiers is None:
        identifiers = _first(named, "identities")
    if identifiers is None:
        raise DmarcReportError("record has no <identifiers> element")
    ids = _children(identifiers)
    header_from = _required(ids, "header_from", "identifiers")
    dkim: list[DkimAuth] = []
    spf: list[SpfAuth] = []
    auth = _first(named, "auth_results")
    if auth is not None:
        results = _children(auth)
        for item in results.get("dkim", []):
            fields = _children(item)
            dkim.append(
                DkimAuth(
                    domain=_optional(fields, "domain") or "",
                    selector=_optional(fields, "selector") or None,
                    result=_word(_optional(fields, "result")) or "none",
                    human_result=_optional(fields, "human_result") or None,
                )
            )
        for item in results.get("spf", []):
            fields = _children(item)
            spf.append(
                SpfAuth(
                    domain=_optional(fields, "domain") or "",
                    scope=_word(_optional(fields, "scope")) or "mfrom",
                    result=_word(_optional(fields, "result")) or "none",
                )
            )
    return ReportRecord(
        source_ip=source_ip,
        count=count,
        disposition=disposition,
        dkim_aligned=_word(_optional(policy, "dkim")) or "fail",
        spf_aligned=_word(_optional(policy, "spf")) or "fail",
        reasons=tuple(reasons),
        header_from=header_from,
        envelope_from=_optional(ids, "envelope_from") or None,
        envelope_to=_optional(ids, "envelope_to") or None,
        dkim=tuple(dkim),
        spf=tuple(spf),
    )


def _events(xml: bytes) -> Iterator[tuple[str, Element]]:
    # forbid_dtd: a DOCTYPE is refused outright, which also stops entity expansion
    # attacks ("billion laughs") and external entities before they start.
    events: Iterator[tuple[str, Element]] = iterparse(
        io.BytesIO(xml),
        events=("start", "end"),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    return events


def _parse_xml(xml: bytes) -> Feedback:
    head = xml[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<"):
        raise DmarcReportError("report is not XML, gzip or zip")
    root: Element | None = None
    records: list[ReportRecord] = []
    pending = 0
    depth = 0
    try:
        for event, element in _events(xml):
            if event == "start":
                depth += 1
                pending += 1
                if root is None:
                    root = element
                    if _local(element.tag) != "feedback":
                        raise DmarcReportError(
                            f"root element is <{_local(element.tag)}>, not <feedback>"
                        )
                if pending > MAX_PENDING_ELEMENTS:
                    raise DmarcReportError(
                        f"report has more than {MAX_PENDING_ELEMENTS} elements outside records"
                        " or in one record"
                    )
                continue
            depth -= 1
            if depth == 1 and _local(element.tag) == "record":
                if len(records) >= MAX_REPORT_RECORDS:
                    raise DmarcReportError(f"report has more than {MAX_REPORT_RECORDS} records")
                records.append(_parse_record(element))
                # Free the record: memory stays bounded however many records follow.
                assert root is not None
                pending -= sum(1 for _ in element.iter())
                root.remove(element)
    except (ParseError, DefusedXmlException) as exc:
        raise DmarcReportError(f"report is not acceptable XML: {exc}") from exc
    if root is None:
        raise DmarcReportError("report is empty")
    named = _children(root)
    version = _optional(named, "version") or ""
    return Feedback(
        version=version,
        metadata=_parse_metadata(_first(named, "report_metadata")),
        policy=_parse_policy(_first(named, "policy_published")),
        records=tuple(records),
    )


# ---- report messages ----------------------------------------------------------------

# Media types of a report attachment (RFC 7489 7.2.1.1: "application/gzip" when
# compressed, "text/xml" otherwise); the others are seen in the wild.
_REPORT_TYPES = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/zip",
        "application/x-zip-compressed",
        "application/x-zip",
        "text/xml",
        "application/xml",
    }
)
_REPORT_EXTENSIONS = (".xml", ".gz", ".gzip", ".zip")


def _leaves(part: Part) -> Iterator[Part]:
    if part.children:
        for child in part.children:
            yield from _leaves(child)
    else:
        yield part


def _filename(part: Part) -> str:
    names: dict[str, str] = {}
    if part.disposition is not None:
        names = decode_params(part.disposition[1])
    name = names.get("filename") or decode_params(part.params).get("name") or ""
    return name.strip().lower()


def find_report(message: bytes) -> bytes | None:
    """The decoded report attachment (XML, gzip or zip) of a report message, if any."""
    root = parse_message(message)
    for part in _leaves(root):
        media = f"{part.media_type}/{part.media_subtype}".lower()
        name = _filename(part)
        if media not in _REPORT_TYPES and not (
            media == "application/octet-stream" and name.endswith(_REPORT_EXTENSIONS)
        ):
            continue
        try:
            return decode_transfer_encoding(
                message[part.body_start : part.end], part.transfer_encoding
            )
        except (UnknownTransferEncoding, binascii.Error):
            continue
    return None


def report_filename(feedback: Feedback, receiver: str) -> str:
    """RFC 7489 7.2.1.1: receiver "!" policy-domain "!" begin "!" end ".xml.gz"."""
    meta = feedback.metadata
    # "For the GZIP file itself, the extension MUST be "gz"; for the XML report,
    # the extension MUST be "xml"."
    return f"{receiver}!{feedback.policy.domain}!{meta.begin}!{meta.end}.xml.gz"


def report_subject(feedback: Feedback, submitter: str) -> str:
    """RFC 7489 7.2.1.1: "Report Domain: " domain " Submitter: " domain " Report-ID: " msg-id."""
    return (
        f"Report Domain: {feedback.policy.domain} Submitter: {submitter} "
        f"Report-ID: <{feedback.metadata.report_id}>"
    )


def report_fits(size: int, max_size: int | None) -> bool:
    """Whether a report of `size` bytes may go to a rua URI with this "!size" limit.

    RFC 7489 7.2.1.1 (and 6.2, "!" size): a report larger than the limit given with a
    URI is not sent to that URI. None means the URI has no limit.
    """
    return max_size is None or size <= max_size


def _gzip(xml: bytes) -> bytes:
    buffer = io.BytesIO()
    # mtime fixed and no file name: the same report always compresses the same.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressor:
        compressor.write(xml)
    return buffer.getvalue()


def _base64_lines(data: bytes) -> bytes:
    # RFC 2045 6.8: encoded lines are no more than 76 characters long.
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76))


def _header(name: str, value: str) -> bytes:
    charset = "us-ascii" if value.isascii() else "utf-8"
    folded = Header(value, charset=charset, header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}\r\n".encode("ascii")


def _param(name: str, value: str) -> str:
    """A MIME parameter: a quoted-string (RFC 2045 5.1), or RFC 2231 encoded if not ASCII."""
    if value.isascii():
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{name}="{quoted}"'
    return f"{name}*=utf-8''{quote(value, safe='!.-_')}"


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def compose_report_message(
    feedback: Feedback,
    *,
    from_addr: str,
    to_addrs: Iterable[str],
    submitter: str,
    message_id: str,
    now: datetime,
) -> bytes:
    """The report message of RFC 7489 7.2.1.1: a short text part and the gzipped report.

    `submitter` is our host name (the receiver in the file name), `message_id` the
    Message-ID without or with angle brackets. Output is the same for the same input.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    meta = feedback.metadata
    attachment = _gzip(report_xml(feedback))
    filename = report_filename(feedback, submitter)
    boundary = "=_dmarc_" + hashlib.sha256(attachment).hexdigest()[:32]
    text = (
        f"This is an aggregate DMARC report (RFC 7489) for domain {feedback.policy.domain}\r\n"
        f"from {submitter}, covering {_utc(meta.begin)} to {_utc(meta.end)}.\r\n"
        f"Report-ID: {meta.report_id}\r\n"
        f"Records: {len(feedback.records)}, messages: "
        f"{sum(r.count for r in feedback.records)}\r\n"
    )
    if text.isascii():
        text_part = (
            b'Content-Type: text/plain; charset="us-ascii"\r\n'
            b"Content-Transfer-Encoding: 7bit\r\n\r\n" + text.encode("ascii")
        )
    else:
        text_part = (
            b'Content-Type: text/plain; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + _base64_lines(text.encode("utf-8"))
        )
    bracketed = message_id if message_id.startswith("<") else f"<{message_id}>"
    name_param = _param("name", filename)
    filename_param = _param("filename", filename)
    head = b"".join(
        [
            _header("From", from_addr),
            _header("To", ", ".join(to_addrs)),
            _header("Subject", report_subject(feedback, submitter)),
            _header("Date", format_datetime(now.astimezone(UTC))),
            _header("Message-ID", bracketed),
            # RFC 3834 5: reports are generated automatically; no auto-replies please.
            b"Auto-Submitted: auto-generated\r\n",
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n'.encode("ascii"),
        ]
    )
    delimiter = f"--{boundary}\r\n".encode("ascii")
    return b"".join(
        [
            head,
            b"\r\n",
            b"This is a multi-part message in MIME format.\r\n\r\n",
            delimiter,
            text_part,
            b"\r\n",
            delimiter,
            f"Content-Type: application/gzip; {name_param}\r\n".encode("ascii"),
            f"Content-Disposition: attachment; {filename_param}\r\n".encode("ascii"),
            b"Content-Transfer-Encoding: base64\r\n\r\n",
            _base64_lines(attachment),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        ]
    )
