"""protocol/dmarcrpt: writing, reading and mailing DMARC aggregate reports."""

from __future__ import annotations

import email
import email.policy
import functools
import gzip
import io
import struct
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from xml.etree import ElementTree

import pytest

from mailactors.protocol import dmarcrpt
from mailactors.protocol.dmarcrpt import (
    DkimAuth,
    DmarcReportError,
    Evaluation,
    Feedback,
    PolicyPublished,
    ReportMetadata,
    ReportRecord,
    SpfAuth,
    compose_report_message,
    find_report,
    parse_report,
    records_from_evaluations,
    report_filename,
    report_fits,
    report_subject,
    report_xml,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "dmarc"

EVAL = Evaluation(
    source_ip="192.0.2.1",
    disposition="none",
    dkim_aligned="pass",
    spf_aligned="fail",
    reasons=(),
    header_from="example.org",
    envelope_from="bounces.example.org",
    envelope_to="example.net",
    dkim=(DkimAuth("example.org", "sel1", "pass"),),
    spf=(SpfAuth("bounces.example.org", "mfrom", "pass"),),
)

FEEDBACK = Feedback(
    version="1.0",
    metadata=ReportMetadata(
        org_name="mail.example.net",
        email="postmaster@example.net",
        extra_contact_info=None,
        report_id="20260101T00-example.org",
        begin=1767225600,
        end=1767229199,
    ),
    policy=PolicyPublished(
        domain="example.org", adkim="r", aspf="s", p="reject", sp="quarantine", pct=50, fo="1"
    ),
    records=records_from_evaluations([EVAL, EVAL]),
)


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def fixture_names(suffix: str) -> list[str]:
    return sorted(p.name for p in DATA.iterdir() if p.name.endswith(suffix))


# ---- records_from_evaluations --------------------------------------------------------


def test_equal_evaluations_become_one_record_with_a_count() -> None:
    other = Evaluation(
        source_ip="2001:db8::1",
        disposition="reject",
        dkim_aligned="fail",
        spf_aligned="fail",
        reasons=(("local_policy", "test"),),
        header_from="example.org",
        envelope_from=None,
        envelope_to=None,
        dkim=(),
        spf=(SpfAuth("mx.example.com", "helo", "none"),),
    )
    records = records_from_evaluations([EVAL, other, EVAL, EVAL])
    assert [(r.source_ip, r.count) for r in records] == [("192.0.2.1", 3), ("2001:db8::1", 1)]
    assert records[1].reasons == (("local_policy", "test"),)
    assert records[1].spf == (SpfAuth("mx.example.com", "helo", "none"),)
    assert records_from_evaluations([]) == ()


# ---- report_xml ----------------------------------------------------------------------


def test_report_xml_follows_the_rfc7489_schema_order() -> None:
    xml = report_xml(FEEDBACK)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<feedback>\n')
    root = ElementTree.fromstring(xml)
    assert [c.tag for c in root] == ["version", "report_metadata", "policy_published", "record"]
    assert [c.tag for c in root.find("report_metadata")] == [  # type: ignore[union-attr]
        "org_name",
        "email",
        "report_id",
        "date_range",
    ]
    policy = root.find("policy_published")
    assert policy is not None
    assert [(c.tag, c.text) for c in policy] == [
        ("domain", "example.org"),
        ("adkim", "r"),
        ("aspf", "s"),
        ("p", "reject"),
        ("sp", "quarantine"),
        ("pct", "50"),
        ("fo", "1"),
    ]
    record = root.find("record")
    assert record is not None
    assert [c.tag for c in record] == ["row", "identifiers", "auth_results"]
    assert root.findtext("record/row/count") == "2"
    assert root.findtext("record/row/policy_evaluated/dkim") == "pass"
    assert [c.tag for c in record.find("identifiers")] == [  # type: ignore[union-attr]
        "envelope_to",
        "envelope_from",
        "header_from",
    ]
    assert [c.tag for c in record.find("auth_results")] == ["dkim", "spf"]  # type: ignore[union-attr]


def test_report_xml_writes_rfc7489_defaults_for_absent_policy_fields() -> None:
    policy = PolicyPublished("example.org", None, None, "none", None, None, None)
    xml = report_xml(Feedback("", FEEDBACK.metadata, policy, FEEDBACK.records))
    root = ElementTree.fromstring(xml)
    assert root.findtext("version") == "1.0"
    assert root.findtext("policy_published/adkim") == "r"
    assert root.findtext("policy_published/sp") == "none"
    assert root.findtext("policy_published/pct") == "100"
    assert root.findtext("policy_published/fo") == "0"


def test_report_xml_escapes_markup_and_replaces_impossible_characters() -> None:
    meta = ReportMetadata(
        org_name='<Acme & "Co">',
        email="a@b",
        extra_contact_info="]]> &amp; <!--",
        report_id="id\x00\x1b\ud800x",
        begin=1,
        end=2,
        errors=("bad <xml>",),
    )
    xml = report_xml(Feedback("1.0", meta, FEEDBACK.policy, FEEDBACK.records))
    parsed = parse_report(xml)
    assert parsed.metadata.org_name == '<Acme & "Co">'
    assert parsed.metadata.extra_contact_info == "]]> &amp; <!--"
    assert parsed.metadata.report_id == "id\ufffd\ufffd\ufffdx"
    assert parsed.metadata.errors == ("bad <xml>",)


def test_report_xml_round_trips_through_our_parser_and_gzip() -> None:
    assert parse_report(report_xml(FEEDBACK)) == FEEDBACK
    assert parse_report(gzip.compress(report_xml(FEEDBACK))) == FEEDBACK


# ---- parsing fixtures ----------------------------------------------------------------


def test_dmarc_specification_sample_report() -> None:
    feedback = parse_report(fixture("dmarc-draft-sample.xml"))
    assert feedback.metadata == ReportMetadata(
        org_name="acme.com",
        email="noreply-dmarc-support@acme.com",
        extra_contact_info="http://acme.com/dmarc/support",
        report_id="9391651994964116463",
        begin=1335571200,
        end=1335657599,
    )
    assert feedback.policy == PolicyPublished("example.com", "r", "r", "none", "none", 100, None)
    assert feedback.records == (
        ReportRecord(
            source_ip="72.150.241.94",
            count=2,
            disposition="none",
            dkim_aligned="fail",
            spf_aligned="pass",
            reasons=(),
            header_from="example.com",
            envelope_from=None,
            envelope_to=None,
            dkim=(DkimAuth("example.com", None, "fail", None),),
            spf=(SpfAuth("example.com", "mfrom", "pass"),),
        ),
    )


def test_rfc9990_sample_report_with_namespace() -> None:
    feedback = parse_report(fixture("rfc9990-sample.xml"))
    assert feedback.metadata.org_name == "Sample Reporter"
    assert feedback.metadata.report_id == "3v98abbp8ya9n3va8yr8oa3ya"
    assert (feedback.metadata.begin, feedback.metadata.end) == (302832000, 302918399)
    assert feedback.policy.p == "quarantine"
    assert feedback.policy.sp == "none"
    (record,) = feedback.records
    assert (record.source_ip, record.count, record.disposition) == ("192.0.2.123", 123, "pass")
    assert record.dkim == (DkimAuth("example.com", "abc123", "pass", None),)
    assert record.spf == (SpfAuth("example.com", "mfrom", "fail"),)


def test_parsedmarc_samples() -> None:
    bis = parse_report(fixture("dmarcbis-example.net!example.com!1700000000!1700086399.xml"))
    assert bis.version == "2.0"
    assert [(r.source_ip, r.count, r.disposition) for r in bis.records] == [
        ("198.51.100.1", 5, "none"),
        ("203.0.113.10", 2, "reject"),
    ]
    assert bis.records[1].reasons == (("other", "sender not authorized"),)
    assert bis.records[1].dkim == ()

    empty = parse_report(fixture("empty_reason.xml"))
    assert empty.records[0].reasons == (("", None),)
    assert empty.records[0].dkim[0].human_result == "2048-bit key"
    assert empty.records[0].envelope_to == "example.net"

    stray = parse_report(fixture("example.net!example.com!1529366400!1529452799.xml"))
    assert stray.policy == PolicyPublished("example.com", "r", "r", "none", "none", 100, "0")
    assert stray.records[0].dkim == () and stray.records[0].spf == ()

    outlook = parse_report(fixture("protection.outlook.com!example.com!1711756800!1711843200.xml"))
    assert outlook.metadata.org_name == "Outlook.com"
    assert outlook.records[0].envelope_to == "hotmail.com"

    zoho = parse_report(fixture("zoho.com!example.com!1581753600!1581840000.xml"))
    assert zoho.version == ""
    assert zoho.policy.sp is None
    assert len(zoho.records) == 8
    assert sum(r.count for r in zoho.records) == 9
    assert zoho.records[1].spf == (SpfAuth("", "helo", "none"),)


def test_google_report_message_with_zip_attachment() -> None:
    attachment = find_report(fixture("google-zip-report.eml"))
    assert attachment is not None and attachment.startswith(b"PK\x03\x04")
    feedback = parse_report(attachment)
    assert feedback.metadata.org_name == "google.com"
    assert feedback.metadata.report_id == "949348866075514174"
    assert feedback.policy.domain == "borschow.com"
    assert (feedback.metadata.begin, feedback.metadata.end) == (1549929600, 1550015999)
    assert feedback.records[0].disposition == "reject"


# ---- validation ----------------------------------------------------------------------


def _replace(old: bytes, new: bytes) -> bytes:
    xml = report_xml(FEEDBACK)
    assert old in xml
    return xml.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"<source_ip>192.0.2.1</source_ip>", b"<source_ip>192.0.2.300</source_ip>", "source_ip"),
        (b"<source_ip>192.0.2.1</source_ip>", b"", "no <source_ip>"),
        (b"<count>2</count>", b"<count>-2</count>", "count"),
        (b"<count>2</count>", b"<count>two</count>", "count"),
        (b"<count>2</count>", b"<count>99999999999999999999</count>", "count"),
        (b"<begin>1767225600</begin>", b"<begin>1767239999</begin>", "begins"),
        (b"<begin>1767225600</begin>", b"<begin>yesterday</begin>", "timestamp"),
        (b"<end>1767229199</end>", b"<end>999999999999</end>", "out of range"),
        (b"<report_id>20260101T00-example.org</report_id>", b"", "report_id"),
        (b"<p>reject</p>", b"", "no <p>"),
        (b"<domain>example.org</domain>\n    <adkim>", b"<adkim>", "no <domain>"),
        (b"<pct>50</pct>", b"<pct>150</pct>", "pct"),
        (b"<header_from>example.org</header_from>", b"", "header_from"),
        (b"<disposition>none</disposition>", b"", "disposition"),
        (b"<feedback>", b"<report>", "not <feedback>"),
    ],
)
def test_invalid_reports_are_refused_with_a_reason(old: bytes, new: bytes, message: str) -> None:
    with pytest.raises(DmarcReportError, match=message):
        parse_report(_replace(old, new))


def test_other_root_element_is_refused() -> None:
    with pytest.raises(DmarcReportError, match="not <feedback>"):
        parse_report(b"<html><body/></html>")


def test_missing_sections_are_refused() -> None:
    with pytest.raises(DmarcReportError, match="report_metadata"):
        parse_report(b"<feedback><policy_published/></feedback>")
    metadata = ElementTree.fromstring(report_xml(FEEDBACK)).find("report_metadata")
    assert metadata is not None
    meta = ElementTree.tostring(metadata)
    with pytest.raises(DmarcReportError, match="policy_published"):
        parse_report(b"<feedback>" + meta + b"</feedback>")


def test_org_name_falls_back_to_the_email_domain() -> None:
    xml = _replace(b"<org_name>mail.example.net</org_name>", b"")
    assert parse_report(xml).metadata.org_name == "example.net"


def test_fractional_timestamps_and_identities_are_accepted() -> None:
    xml = _replace(b"<begin>1767225600</begin>", b"<begin>1767225600.0</begin>")
    xml = xml.replace(b"identifiers>", b"identities>")
    feedback = parse_report(xml)
    assert feedback.metadata.begin == 1767225600
    assert feedback.records[0].header_from == "example.org"


def test_ipv6_source_is_normalized() -> None:
    xml = _replace(b"<source_ip>192.0.2.1</source_ip>", b"<source_ip>2001:DB8:0::1</source_ip>")
    assert parse_report(xml).records[0].source_ip == "2001:db8::1"


# ---- hostile input -------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<feedback><report_metadata><org_name>&lol9;</org_name></report_metadata></feedback>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE feedback SYSTEM "http://127.0.0.1:9/evil.dtd">
<feedback/>
"""


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _encrypted_zip() -> bytes:
    """A zip whose member says it is encrypted (general purpose flag bit 0)."""
    data = bytearray(_zip({"report.xml": report_xml(FEEDBACK)}, zipfile.ZIP_STORED))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.find(signature)
        (flags,) = struct.unpack_from("<H", data, pos + flag_offset)
        struct.pack_into("<H", data, pos + flag_offset, flags | 0x1)
    return bytes(data)


@functools.cache
def _gzip_bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1024 * 1024)
    parts = [compressor.compress(b"<feedback>")]
    parts += [compressor.compress(chunk) for _ in range(256)]  # 256 MiB of zeros
    parts.append(compressor.flush())
    return b"".join(parts)


HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "billion laughs": (lambda: BILLION_LAUGHS, "DTDForbidden"),
    "external entity": (lambda: EXTERNAL_ENTITY, "DTDForbidden"),
    "external dtd": (lambda: EXTERNAL_DTD, "DTDForbidden"),
    "undefined entity": (lambda: b"<feedback>&lol;</feedback>", "not acceptable XML"),
    "gzip bomb": (_gzip_bomb, "larger than the limit"),
    "zip bomb": (
        lambda: _zip({"report.xml": b"<feedback>" + b" " * (64 * 1024 * 1024)}),
        "larger than the limit",
    ),
    "zip with 1000 members": (
        lambda: _zip({f"r{i}.xml": b"<feedback/>" for i in range(1000)}),
        "1000 entries",
    ),
    "encrypted zip": (_encrypted_zip, "encrypted"),
    "nested zip": (lambda: _zip({"inner.zip": _zip({"r.xml": b"<feedback/>"})}), "nested"),
    "gzip in zip": (lambda: _zip({"r.xml": gzip.compress(b"<feedback/>")}), "nested"),
    "zip without xml": (lambda: _zip({"a.txt": b"x", "b.txt": b"y"}), "no .xml"),
    "empty zip": (lambda: _zip({}), "no .xml"),
    "broken zip": (lambda: b"PK\x03\x04" + b"\0" * 100, "end of central directory"),
    "huge file": (lambda: b"<feedback>" + b" " * (16 * 1024 * 1024), "larger than the limit"),
    "non-XML": (lambda: b"%PDF-1.4 not a report", "not XML, gzip or zip"),
    "empty": (lambda: b"", "not XML, gzip or zip"),
    "truncated gzip": (lambda: gzip.compress(report_xml(FEEDBACK))[:-20], "truncated"),
    "corrupt gzip": (lambda: b"\x1f\x8b\x08\x00" + b"\xff" * 40, "gzip"),
    "gzip with trailing junk": (lambda: gzip.compress(b"<feedback/>") + b"junk", "not gzip"),
    "truncated XML": (lambda: report_xml(FEEDBACK)[:300], "not acceptable XML"),
    "a million elements in a record": (
        lambda: b"<feedback><record>" + b"<dkim/>" * 1_000_000 + b"</record></feedback>",
        "more than 10000 elements",
    ),
    "deep nesting": (lambda: b"<feedback>" + b"<a>" * 100_000, "elements"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_is_refused_quickly_with_bounded_memory(name: str) -> None:
    make, message = HOSTILE[name]
    data = make()
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(DmarcReportError, match=message):
            parse_report(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5
    # Python-level allocations while refusing: at most the decompression limit
    # plus working space, whatever the input claims to expand to.
    assert peak < dmarcrpt.MAX_DECOMPRESSED_SIZE * 2 + 16 * 1024 * 1024


def test_too_many_records_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dmarcrpt, "MAX_REPORT_RECORDS", 3)
    many = Feedback(
        FEEDBACK.version,
        FEEDBACK.metadata,
        FEEDBACK.policy,
        tuple(
            ReportRecord(
                f"192.0.2.{i}", 1, "none", "pass", "pass", (), "a.example", None, None, (), ()
            )
            for i in range(4)
        ),
    )
    with pytest.raises(DmarcReportError, match="more than 3 records"):
        parse_report(report_xml(many))
    assert len(parse_report(report_xml(replace(many, records=many.records[:3]))).records) == 3


def test_zip_with_one_non_xml_member_is_read() -> None:
    feedback = parse_report(_zip({"report": report_xml(FEEDBACK)}))
    assert feedback == FEEDBACK


def test_zip_with_a_directory_and_an_xml_member_is_read() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("dir/", b"")
        archive.writestr("dir/notes.txt", b"hello")
        archive.writestr("dir/report.XML", report_xml(FEEDBACK))
    assert parse_report(buffer.getvalue()) == FEEDBACK


def test_zip_member_lying_about_its_size_is_refused() -> None:
    xml = report_xml(FEEDBACK)
    data = bytearray(_zip({"report.xml": xml}, zipfile.ZIP_STORED))
    # Claim a smaller uncompressed size in both headers: the CRC no longer matches.
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(signature)
        struct.pack_into("<L", data, pos + size_offset, 10)
    with pytest.raises(DmarcReportError, match="zip"):
        parse_report(bytes(data))


def test_multi_member_gzip_is_read() -> None:
    xml = report_xml(FEEDBACK)
    assert parse_report(gzip.compress(xml[:100]) + gzip.compress(xml[100:])) == FEEDBACK


# ---- find_report ---------------------------------------------------------------------


def _message(attachments: list[tuple[bytes, str, str, str | None]]) -> bytes:
    message = EmailMessage()
    message["From"] = "dmarc@example.net"
    message["To"] = "reports@example.org"
    message["Subject"] = "Report"
    message.set_content("A report.\n")
    for data, maintype, subtype, filename in attachments:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=email.policy.SMTP)


@pytest.mark.parametrize(
    ("maintype", "subtype", "filename", "encode"),
    [
        ("application", "gzip", "a!b!1!2.xml.gz", gzip.compress),
        ("application", "x-gzip", None, gzip.compress),
        ("application", "zip", "a!b!1!2.zip", lambda d: _zip({"r.xml": d})),
        ("text", "xml", None, lambda d: d),
        ("application", "xml", "r.xml", lambda d: d),
        ("application", "octet-stream", "a!b!1!2.xml.gz", gzip.compress),
        ("application", "octet-stream", "report.zip", lambda d: _zip({"r.xml": d})),
    ],
)
def test_find_report_takes_the_report_attachment(
    maintype: str, subtype: str, filename: str | None, encode: Callable[[bytes], bytes]
) -> None:
    payload = encode(report_xml(FEEDBACK))
    message = _message(
        [(b"%PDF", "application", "pdf", "x.pdf"), (payload, maintype, subtype, filename)]
    )
    found = find_report(message)
    assert found is not None and found == payload
    assert parse_report(found) == FEEDBACK


def test_find_report_ignores_messages_without_a_report() -> None:
    assert find_report(_message([])) is None
    assert find_report(_message([(b"data", "application", "octet-stream", "x.bin")])) is None
    assert find_report(b"") is None


def test_find_report_of_a_single_part_message() -> None:
    xml = report_xml(FEEDBACK)
    message = b"From: a@example.net\r\nContent-Type: text/xml\r\n\r\n" + xml
    assert find_report(message) == xml


# ---- report messages -----------------------------------------------------------------

NOW = datetime(2026, 1, 1, 1, 2, 3, tzinfo=UTC)


def _compose(feedback: Feedback = FEEDBACK, now: datetime = NOW) -> bytes:
    return compose_report_message(
        feedback,
        from_addr="postmaster@mail.example.net",
        to_addrs=["dmarc@example.org", "rua@thirdparty.example"],
        submitter="mail.example.net",
        message_id="dmarc-1@mail.example.net",
        now=now,
    )


def test_report_filename_and_subject_follow_rfc7489() -> None:
    assert report_filename(FEEDBACK, "mail.example.net") == (
        "mail.example.net!example.org!1767225600!1767229199.xml.gz"
    )
    assert report_subject(FEEDBACK, "mail.example.net") == (
        "Report Domain: example.org Submitter: mail.example.net "
        "Report-ID: <20260101T00-example.org>"
    )


def test_report_message_parses_with_the_stdlib_and_carries_the_report() -> None:
    raw = _compose()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == report_subject(FEEDBACK, "mail.example.net")
    assert message["From"] == "postmaster@mail.example.net"
    assert message["To"] == "dmarc@example.org, rua@thirdparty.example"
    assert message["Message-ID"] == "<dmarc-1@mail.example.net>"
    assert message["Date"].datetime == NOW
    assert message.get_content_type() == "multipart/mixed"
    text, attachment = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert "example.org" in text.get_content()
    assert attachment.get_content_type() == "application/gzip"
    assert attachment.get_filename() == "mail.example.net!example.org!1767225600!1767229199.xml.gz"
    assert attachment.get_content_disposition() == "attachment"
    assert gzip.decompress(attachment.get_content()) == report_xml(FEEDBACK)
    found = find_report(raw)
    assert found is not None and parse_report(found) == FEEDBACK


def test_report_message_is_deterministic() -> None:
    assert _compose() == _compose()
    later = _compose(now=NOW + timedelta(seconds=1))
    assert later != _compose()
    # Only the Date differs: the gzip carries no timestamp.
    assert later.replace(b"01:02:04", b"01:02:03") == _compose()


def test_report_message_date_is_utc_from_any_zone() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=5)))
    assert _compose(now=local) == _compose()
    with pytest.raises(ValueError, match="timezone"):
        _compose(now=datetime(2026, 1, 1))


def test_report_message_lines_stay_short_with_long_names() -> None:
    long_domain = ".".join(["d" * 60] * 4)
    policy = PolicyPublished(long_domain, "r", "r", "none", "none", 100, "0")
    raw = _compose(Feedback("1.0", FEEDBACK.metadata, policy, FEEDBACK.records))
    header = raw.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in header.split(b"\r\n")) <= 998
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == report_subject(
        Feedback("1.0", FEEDBACK.metadata, policy, FEEDBACK.records), "mail.example.net"
    )


def test_report_fits_the_size_limit() -> None:
    assert report_fits(10_000, None)
    assert report_fits(10_000, 10_000)
    assert not report_fits(10_001, 10_000)


def test_gzip_with_zero_padding_is_read() -> None:
    assert parse_report(gzip.compress(report_xml(FEEDBACK)) + b"\0" * 512) == FEEDBACK


def _zip_with_comment(comment: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("report.xml", report_xml(FEEDBACK))
        archive.comment = comment
    return buffer.getvalue()


def test_zip_with_an_archive_comment_is_read() -> None:
    assert parse_report(_zip_with_comment(b"made by a reporter")) == FEEDBACK


def test_zip_comment_with_a_fake_end_record_is_refused() -> None:
    # zipfile takes the last signature it finds; we do not read past a confused archive.
    fake = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 5000, 5000, 0, 0, 0)
    with pytest.raises(DmarcReportError, match="zip"):
        parse_report(_zip_with_comment(b"x" + fake))
