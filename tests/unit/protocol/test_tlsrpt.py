"""RFC 8460 TLS reporting: the TXT record, the JSON report, report messages."""

from __future__ import annotations

import email
import email.policy
import gzip
import json
import warnings
import zlib
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mailactors.protocol.dns import DnsTemporaryError, InMemoryResolver
from mailactors.protocol.message import parse_message
from mailactors.protocol.tlsrpt import (
    MAX_DECOMPRESSED_SIZE,
    MAX_REPORT_SIZE,
    MAX_SESSION_COUNT,
    FailureDetails,
    Policy,
    PolicyType,
    Report,
    ResultType,
    TlsReportError,
    TlsResult,
    TlsRptRecord,
    TlsRptRecordError,
    build_report,
    compose_report_message,
    day_bounds,
    find_report,
    lookup,
    lookup_record,
    mailto_address,
    make_report_id,
    merge_results,
    parse_record,
    parse_report,
    record_name,
    report_filename,
    report_gzip,
    report_json,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "tlsrpt"


def _parsedmarc() -> ModuleType:
    # Importing parsedmarc leaves /dev/null open (a ResourceWarning); see common rules.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import parsedmarc
    return parsedmarc


# ---- the record ---------------------------------------------------------------------


def test_record_with_one_mailto() -> None:
    record = parse_record("v=TLSRPTv1; rua=mailto:tlsrpt@example.com")
    assert record == TlsRptRecord(rua=("mailto:tlsrpt@example.com",))


def test_record_with_several_uris_white_space_and_trailing_delimiter() -> None:
    record = parse_record(
        "v=TLSRPTv1 ;rua=mailto:a@example.com , https://reports.example.com/tlsrpt ; "
    )
    assert record.rua == ("mailto:a@example.com", "https://reports.example.com/tlsrpt")


def test_record_extensions_are_ignored() -> None:
    record = parse_record("v=TLSRPTv1; x-future=1.2; rua=mailto:a@example.com; ext_2=yes")
    assert record.rua == ("mailto:a@example.com",)


def test_record_drops_unusable_uris_but_keeps_the_rest() -> None:
    record = parse_record(
        "v=TLSRPTv1; rua=ftp://x.example/r,mailto:ok@example.com,http://plain.example/"
    )
    assert record.rua == ("mailto:ok@example.com",)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("v=TLSRPTv2; rua=mailto:a@example.com", "does not start"),
        ("rua=mailto:a@example.com; v=TLSRPTv1", "does not start"),
        ("V=TLSRPTv1; rua=mailto:a@example.com", "does not start"),
        ("v=TLSRPTv1", "no rua"),
        ("v=TLSRPTv1; x=1", "no rua"),
        ("v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", "more than one"),
        ("v=TLSRPTv1; rua=mailto:a@example.com,,mailto:b@example.com", "empty URI"),
        ("v=TLSRPTv1; rua=ftp://example.com/", "no usable"),
        ("v=TLSRPTv1; rua=mailto:a@example.com; bad field", "malformed field"),
        ("v=TLSRPTv1; rua=mailto:a@example.com; -x=1", "malformed field"),
        ("v=TLSRPTv1; rua=mailto:a@example.com; x=a b", "malformed extension"),
        ("v=TLSRPTv1;; rua=mailto:a@example.com", "malformed field"),
    ],
)
def test_invalid_records(text: str, why: str) -> None:
    with pytest.raises(TlsRptRecordError, match=why):
        parse_record(text)


def test_record_mailto_with_header_injection_is_unusable() -> None:
    # A rua from DNS is attacker-controlled: CR LF would end up in the To field.
    with pytest.raises(TlsRptRecordError, match="no usable"):
        parse_record("v=TLSRPTv1; rua=mailto:a@example.com%0D%0ABcc:victim@example.org")


def test_mailto_address() -> None:
    assert mailto_address("mailto:tls%2Breports@example.com?subject=x") == "tls+reports@example.com"
    assert mailto_address("MAILTO:a@example.com") == "a@example.com"
    assert mailto_address("https://example.com/") is None
    assert mailto_address("mailto:no-at-sign") is None
    assert mailto_address("mailto:a b@example.com") is None
    assert mailto_address("mailto:%ff@example.com") is None


def test_lookup_one_record_among_other_txt() -> None:
    resolver = InMemoryResolver(
        {
            ("_smtp._tls.example.com", "TXT"): [
                "v=spf1 -all",
                "v=TLSRPTv1; rua=mailto:tlsrpt@example.com",
            ]
        }
    )
    assert lookup(resolver, "Example.COM.") == TlsRptRecord(("mailto:tlsrpt@example.com",))
    assert resolver.queries == [("_smtp._tls.example.com", "TXT")]


def test_lookup_several_records_means_none() -> None:
    resolver = InMemoryResolver(
        {
            ("_smtp._tls.example.com", "TXT"): [
                "v=TLSRPTv1; rua=mailto:a@example.com",
                "v=TLSRPTv1;rua=mailto:b@example.com",
            ]
        }
    )
    found = lookup_record(resolver, "example.com")
    assert found.record is None
    assert found.error == "2 TLSRPT records"
    assert len(found.txt) == 2
    assert lookup(resolver, "example.com") is None


def test_lookup_without_record_and_with_invalid_record() -> None:
    resolver = InMemoryResolver({("_smtp._tls.bad.example", "TXT"): ["v=TLSRPTv1; x=1"]})
    assert lookup_record(resolver, "none.example").error is None
    assert lookup(resolver, "none.example") is None
    bad = lookup_record(resolver, "bad.example")
    assert bad.record is None
    assert bad.error is not None and "no rua" in bad.error


def test_lookup_temporary_error_propagates() -> None:
    resolver = InMemoryResolver(temporary=frozenset({("_smtp._tls.example.com", "TXT")}))
    with pytest.raises(DnsTemporaryError):
        lookup(resolver, "example.com")


def test_record_name() -> None:
    assert record_name("Mail.Example.com.") == "_smtp._tls.mail.example.com"


# ---- reports ------------------------------------------------------------------------


def test_rfc8460_example_report_parses() -> None:
    report = parse_report((DATA / "rfc8460-example.json").read_bytes())
    assert report.organization_name == "Company-X"
    assert report.start == datetime(2016, 4, 1, tzinfo=UTC)
    assert report.end == datetime(2016, 4, 1, 23, 59, 59, tzinfo=UTC)
    assert report.contact_info == "sts-reporting@company-x.example"
    assert report.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    (result,) = report.policies
    assert result.policy == Policy(
        PolicyType.STS,
        "company-y.example",
        ("version: STSv1", "mode: testing", "mx: *.mail.company-y.example", "max_age: 86400"),
        ("*.mail.company-y.example",),
    )
    assert (result.successful, result.failed) == (5326, 303)
    expired, starttls, validation = result.failure_details
    assert expired == FailureDetails(
        ResultType.CERTIFICATE_EXPIRED,
        100,
        sending_mta_ip="2001:db8:abcd:0012::1",
        receiving_mx_hostname="mx1.mail.company-y.example",
    )
    assert starttls.result_type is ResultType.STARTTLS_NOT_SUPPORTED
    assert starttls.receiving_ip == "203.0.113.56"
    assert starttls.failed_session_count == 200
    assert starttls.additional_information == (
        "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported"
    )
    assert validation.failure_reason_code == "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
    assert validation.failed_session_count == 3


def test_reports_from_the_wild_parse() -> None:
    sample = parse_report((DATA / "parsedmarc-smtp_tls.json").read_bytes())
    assert sample.policies[0].failed == 3
    assert [d.failed_session_count for d in sample.policies[0].failure_details] == [2, 1]

    mailru = parse_report((DATA / "parsedmarc-mail.ru.json").read_bytes())
    assert mailru.organization_name == "Mail.ru"
    assert mailru.end == datetime(2024, 2, 23, tzinfo=UTC)
    fetch_404, fetch_500 = mailru.policies[0].failure_details
    assert fetch_404.result_type is ResultType.STS_POLICY_FETCH_ERROR
    assert fetch_404.sending_mta_ip is None
    assert fetch_500.failure_reason_code == "bad https response code: 500"

    empty = parse_report((DATA / "parsedmarc-empty_failure_detail_fields.json").read_bytes())
    (detail,) = empty.policies[0].failure_details
    assert detail.sending_mta_ip is None
    assert detail.receiving_ip is None
    assert detail.receiving_mx_hostname is None
    assert detail.additional_information is None
    assert detail.failure_reason_code == "no-policy-served"


def test_google_report_message() -> None:
    message = (DATA / "parsedmarc-google.com_smtp_tls_report.eml").read_bytes()
    payload = find_report(message)
    assert payload is not None and payload.startswith(b"\x1f\x8b")
    report = parse_report(payload)
    assert report.organization_name == "Google Inc."
    assert report.report_id == "2024-09-03T00:00:00Z_cardinalhealth.ca"
    (result,) = report.policies
    assert result.policy == Policy(PolicyType.NO_POLICY_FOUND, "cardinalhealth.ca")
    assert (result.successful, result.failed, result.failure_details) == (48, 0, ())


def _policy(domain: str = "example.com") -> Policy:
    return Policy(
        PolicyType.STS,
        domain,
        ("version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 86400"),
        ("mx.example.com",),
    )


def _detail(result_type: ResultType = ResultType.CERTIFICATE_EXPIRED, **kw: Any) -> FailureDetails:
    fields: dict[str, Any] = {
        "sending_mta_ip": "192.0.2.1",
        "receiving_mx_hostname": "mx.example.com",
        "receiving_ip": "198.51.100.7",
    }
    fields.update(kw)
    return FailureDetails(result_type, **fields)


def _sample_report() -> Report:
    policy = _policy()
    dane = Policy(PolicyType.TLSA, "mx.example.com", ("3 1 1 abcdef",), ("mx.example.com",))
    results = [
        TlsResult.success(policy),
        TlsResult.success(policy),
        TlsResult.failure(policy, _detail()),
        TlsResult.failure(policy, _detail()),
        TlsResult.failure(
            policy, _detail(ResultType.STS_POLICY_FETCH_ERROR, failure_reason_code="http 404")
        ),
        TlsResult.failure(dane, _detail(ResultType.TLSA_INVALID, receiving_mx_helo="mx")),
    ]
    return build_report(
        results,
        organization="mail.sender.example",
        contact="postmaster@mail.sender.example",
        report_id="20261123.1@mail.sender.example",
        day_start=datetime(2026, 11, 23, tzinfo=UTC),
        day_end=datetime(2026, 11, 24, tzinfo=UTC),
    )


def test_build_report_merges_per_policy_and_details() -> None:
    report = _sample_report()
    sts, dane = report.policies
    assert (sts.successful, sts.failed) == (2, 3)
    assert [(d.result_type, d.failed_session_count) for d in sts.failure_details] == [
        (ResultType.CERTIFICATE_EXPIRED, 2),
        (ResultType.STS_POLICY_FETCH_ERROR, 1),
    ]
    assert (dane.successful, dane.failed) == (0, 1)
    assert dane.failure_details[0].receiving_mx_helo == "mx"
    assert (report.successful, report.failed) == (2, 4)


def test_merge_results_adds_counts_of_aggregates() -> None:
    policy = _policy()
    merged = merge_results(
        [
            TlsResult(policy, 5, 2, (_detail(failed_session_count=2),)),
            TlsResult(policy, 1, 3, (_detail(failed_session_count=3),)),
        ]
    )
    assert merged == (TlsResult(policy, 6, 5, (_detail(failed_session_count=5),)),)


def test_build_report_needs_aware_ordered_period() -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_report(
            [],
            organization="o",
            contact="c",
            report_id="r",
            day_start=datetime(2026, 1, 1),
            day_end=datetime(2026, 1, 2),
        )
    with pytest.raises(ValueError, match="ends before"):
        build_report(
            [],
            organization="o",
            contact="c",
            report_id="r",
            day_start=datetime(2026, 1, 2, tzinfo=UTC),
            day_end=datetime(2026, 1, 1, tzinfo=UTC),
        )


def test_day_bounds_and_report_ids() -> None:
    start, end = day_bounds(date(2016, 4, 1))
    assert (start, end) == (
        datetime(2016, 4, 1, tzinfo=UTC),
        datetime(2016, 4, 1, 23, 59, 59, tzinfo=UTC),
    )
    report_id = make_report_id(date(2026, 11, 23), "Example.COM.", "mail.sender.example")
    assert report_id == "20261123.example.com@mail.sender.example"
    data = _message(Report("o", start, end, "", report_id, ()))
    subject = email.message_from_bytes(data, policy=email.policy.default)["Subject"]
    assert subject.endswith("Report-ID: <20261123.example.com@mail.sender.example>")


def test_report_json_shape() -> None:
    document = json.loads(report_json(_sample_report()))
    assert list(document) == [
        "organization-name",
        "date-range",
        "contact-info",
        "report-id",
        "policies",
    ]
    assert document["date-range"] == {
        "start-datetime": "2026-11-23T00:00:00Z",
        "end-datetime": "2026-11-24T00:00:00Z",
    }
    sts = document["policies"][0]
    assert sts["policy"]["policy-type"] == "sts"
    assert sts["policy"]["mx-host"] == ["mx.example.com"]
    assert sts["summary"] == {
        "total-successful-session-count": 2,
        "total-failure-session-count": 3,
    }
    assert sts["failure-details"][0] == {
        "result-type": "certificate-expired",
        "sending-mta-ip": "192.0.2.1",
        "receiving-mx-hostname": "mx.example.com",
        "receiving-ip": "198.51.100.7",
        "failed-session-count": 2,
    }


def test_report_round_trips_through_json_and_gzip() -> None:
    report = _sample_report()
    assert parse_report(report_json(report)) == report
    compressed = report_gzip(report)
    assert compressed == report_gzip(report)
    assert compressed[4:8] == b"\0\0\0\0"  # gzip MTIME 0 (RFC 1952 2.3.1)
    assert gzip.decompress(compressed) == report_json(report)
    assert parse_report(compressed) == report


def test_parsedmarc_reads_our_report() -> None:
    report = _sample_report()
    parsed = _parsedmarc().parse_smtp_tls_report_json(report_json(report))
    assert parsed["organization_name"] == "mail.sender.example"
    assert parsed["report_id"] == "20261123.1@mail.sender.example"
    sts, dane = parsed["policies"]
    assert (sts["successful_session_count"], sts["failed_session_count"]) == (2, 3)
    assert sts["policy_strings"] == list(_policy().policy_strings)
    assert sts["failure_details"][1] == {
        "result_type": "sts-policy-fetch-error",
        "failed_session_count": 1,
        "sending_mta_ip": "192.0.2.1",
        "receiving_ip": "198.51.100.7",
        "receiving_mx_hostname": "mx.example.com",
        "failure_reason_code": "http 404",
    }
    assert dane["policy_type"] == "tlsa"
    assert dane["failure_details"][0]["receiving_mx_helo"] == "mx"


# ---- hostile and invalid reports ------------------------------------------------------


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DATA / "rfc8460-example.json").read_bytes())
    document.update(changes)
    return document


def _parse(document: Any) -> Report:
    return parse_report(json.dumps(document).encode())


def test_gzip_bomb_is_refused_while_decompressing() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = b"".join(compressor.compress(b"\0" * (1 << 20)) for _ in range(32))
    bomb += compressor.flush()  # 32 MiB of zeros in about 32 KiB
    assert len(bomb) < 64 * 1024
    with pytest.raises(TlsReportError, match="decompresses to more than"):
        parse_report(bomb)


def test_decompressed_limit_is_exact() -> None:
    exact = b" " * (MAX_DECOMPRESSED_SIZE - 2) + b"{}"
    with pytest.raises(TlsReportError, match="missing field"):
        parse_report(gzip.compress(exact))
    with pytest.raises(TlsReportError, match="more than"):
        parse_report(gzip.compress(exact + b" "))


def test_oversized_input_is_refused() -> None:
    with pytest.raises(TlsReportError, match="report larger than"):
        parse_report(b" " * (MAX_DECOMPRESSED_SIZE + 1))
    with pytest.raises(TlsReportError, match="compressed report larger than"):
        parse_report(b"\x1f\x8b" + b" " * MAX_REPORT_SIZE)
    with pytest.raises(TlsReportError, match="report larger than 10 bytes"):
        parse_report(b"{" + b" " * 10 + b"}", max_size=10)


def test_unpaired_surrogates_are_refused() -> None:
    data = report_json(_sample_report()).replace(b"mail.sender.example", b"\\ud800x", 1)
    with pytest.raises(TlsReportError, match="organization-name: unpaired surrogate"):
        parse_report(data)


def test_broken_gzip() -> None:
    good = report_gzip(_sample_report())
    with pytest.raises(TlsReportError, match="truncated"):
        parse_report(good[: len(good) // 2])
    with pytest.raises(TlsReportError, match="trailing data"):
        parse_report(good + b"junk")
    with pytest.raises(TlsReportError, match="invalid gzip"):
        parse_report(b"\x1f\x8b\x08\x00garbage-garbage-garbage")
    # Concatenated gzip members decompress as one stream (RFC 1952 2.2).
    text = report_json(_sample_report())
    members = gzip.compress(text[:100]) + gzip.compress(text[100:])
    assert parse_report(members) == _sample_report()


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"[" * 100_000,
    ],
)
def test_deep_nesting_is_refused(data: bytes) -> None:
    with pytest.raises(TlsReportError, match="nested deeper"):
        parse_report(data)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    report = _parse(_document(**{"organization-name": '[[[[{{{{"\\' * 50}))
    assert report.organization_name.startswith("[[[[")


@pytest.mark.parametrize(
    ("count", "why"),
    [
        (-1, "negative"),
        (MAX_SESSION_COUNT + 1, "exceeds"),
        (1.5, "expected an integer"),
        (1.0, "expected an integer"),
        (True, "expected an integer"),
        ("5", "expected an integer"),
        (None, "expected an integer"),
    ],
)
def test_bad_counts(count: Any, why: str) -> None:
    document = _document()
    document["policies"][0]["summary"]["total-failure-session-count"] = count
    with pytest.raises(TlsReportError, match=why) as info:
        _parse(document)
    assert "policies[0].summary.total-failure-session-count" in str(info.value)


def test_huge_numbers_are_refused_before_conversion() -> None:
    text = (DATA / "rfc8460-example.json").read_text().replace("5326", "9" * 100_000)
    with pytest.raises(TlsReportError, match="digits"):
        parse_report(text.encode())
    text = (DATA / "rfc8460-example.json").read_text().replace("5326", "1e999")
    with pytest.raises(TlsReportError, match="out of range"):
        parse_report(text.encode())
    text = (DATA / "rfc8460-example.json").read_text().replace("5326", "NaN")
    with pytest.raises(TlsReportError, match="not a JSON value"):
        parse_report(text.encode())


@pytest.mark.parametrize(
    ("path", "why"),
    [
        (("organization-name",), "missing field 'organization-name'"),
        (("date-range",), "missing field 'date-range'"),
        (("date-range", "end-datetime"), "missing field 'end-datetime'"),
        (("report-id",), "missing field 'report-id'"),
        (("policies",), "missing field 'policies'"),
        (("policies", 0, "policy"), "policies\\[0\\]: missing field 'policy'"),
        (("policies", 0, "policy", "policy-type"), "missing field 'policy-type'"),
        (("policies", 0, "policy", "policy-domain"), "missing field 'policy-domain'"),
        (("policies", 0, "summary"), "missing field 'summary'"),
        (("policies", 0, "summary", "total-successful-session-count"), "missing field"),
        (("policies", 0, "failure-details", 1, "result-type"), "missing field 'result-type'"),
        (("policies", 0, "failure-details", 0, "failed-session-count"), "missing field"),
    ],
)
def test_missing_required_fields(path: tuple[Any, ...], why: str) -> None:
    document = _document()
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    with pytest.raises(TlsReportError, match=why):
        _parse(document)


@pytest.mark.parametrize(
    ("path", "value", "why"),
    [
        (("organization-name",), 5, "organization-name: expected a string"),
        (("date-range",), [], "date-range: expected an object"),
        (("date-range", "start-datetime"), "2016-04-01", "not an RFC 3339"),
        (("date-range", "start-datetime"), "2016-13-01T00:00:00Z", "invalid date-time"),
        (("date-range", "start-datetime"), "2016-04-02T00:00:00Z", "before start"),
        (("report-id",), "", "report-id: empty"),
        (("policies",), {}, "policies: expected a list"),
        (("policies", 0), "x", "policies\\[0\\]: expected an object"),
        (("policies", 0, "policy", "policy-type"), "dmarc", "unknown type"),
        (("policies", 0, "policy", "policy-string"), [1], "policy-string\\[0\\]"),
        (("policies", 0, "policy", "mx-host"), {"a": 1}, "mx-host: expected a list"),
        (("policies", 0, "failure-details"), {}, "failure-details: expected a list"),
        (("policies", 0, "failure-details", 0, "receiving-ip"), 7, "receiving-ip: expected"),
        (("policies", 0, "failure-details", 0, "result-type"), "", "result-type: empty"),
    ],
)
def test_wrong_types(path: tuple[Any, ...], value: Any, why: str) -> None:
    document = _document()
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(TlsReportError, match=why):
        _parse(document)


def test_not_json_not_utf8_not_object() -> None:
    for data, why in [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[]", "expected an object"),
        (b"null", "expected an object"),
    ]:
        with pytest.raises(TlsReportError, match=why):
            parse_report(data)


def test_lenient_where_reporters_differ() -> None:
    document = _document()
    del document["contact-info"]
    policy = document["policies"][0]
    del policy["policy"]["mx-host"]
    policy["policy"]["mx-host-pattern"] = ["*.mail.company-y.example"]
    policy["policy"]["policy-string"] = None
    details = policy["failure-details"][0]
    details["additional-info-uri"] = "https://info.example/"
    details["result-type"] = "some-future-type"
    details["unknown-extra"] = {"x": [1, 2]}
    report = parse_report(b"\xef\xbb\xbf" + json.dumps(document).encode())
    assert report.contact_info == ""
    result = report.policies[0]
    assert result.policy.mx_hosts == ("*.mail.company-y.example",)
    assert result.policy.policy_strings == ()
    assert result.failure_details[0].additional_information == "https://info.example/"
    assert result.failure_details[0].result_type == "some-future-type"


def test_datetime_offsets_and_fractions_are_normalized_to_utc() -> None:
    document = _document()
    document["date-range"] = {
        "start-datetime": "2016-04-01T02:00:00.5+02:00",
        "end-datetime": "2016-04-01t23:59:60z",
    }
    report = _parse(document)
    assert report.start == datetime(2016, 4, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert report.end == datetime(2016, 4, 1, 23, 59, 59, tzinfo=UTC)


# ---- report messages ----------------------------------------------------------------


def _message(report: Report | None = None, **kw: Any) -> bytes:
    args: dict[str, Any] = {
        "policy_domain": "example.com",
        "from_addr": "postmaster@mail.sender.example",
        "to_addrs": ["tlsrpt@example.com", "tls@reports.example.net"],
        "submitter": "mail.sender.example",
        "message_id": "<tlsrpt.1@mail.sender.example>",
        "now": datetime(2026, 11, 24, 0, 5, tzinfo=UTC),
    }
    args.update(kw)
    return compose_report_message(report or _sample_report(), **args)


def test_report_message_headers_and_parts() -> None:
    report = _sample_report()
    data = _message(report)
    header, _, _ = data.partition(b"\r\n\r\n")
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message["Subject"] == (
        "Report Domain: example.com Submitter: mail.sender.example "
        "Report-ID: <20261123.1@mail.sender.example>"
    )
    assert message["TLS-Report-Domain"] == "example.com"
    assert message["TLS-Report-Submitter"] == "mail.sender.example"
    assert message["TLS-Required"] == "No"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == "<tlsrpt.1@mail.sender.example>"
    assert message["Date"] == "Tue, 24 Nov 2026 00:05:00 +0000"
    assert [a.addr_spec for a in message["To"].addresses] == [
        "tlsrpt@example.com",
        "tls@reports.example.net",
    ]
    assert message["From"].addresses[0].addr_spec == "postmaster@mail.sender.example"
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "tlsrpt"
    text, attachment = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert "aggregate TLS report from mail.sender.example" in text.get_content()
    assert attachment.get_content_type() == "application/tlsrpt+gzip"
    name = report_filename(report, submitter="mail.sender.example", policy_domain="example.com")
    assert attachment.get_filename() == name
    # RFC 8460 5.1: sender "!" policy-domain "!" begin "!" end "!" unique-id ".json.gz"
    sender, domain, begin, end, rest = name.split("!")
    assert (sender, domain, begin, end) == (
        "mail.sender.example",
        "example.com",
        "1795392000",
        "1795478400",
    )
    assert rest.endswith(".json.gz") and rest.removesuffix(".json.gz").isalnum()
    assert attachment.get_content() == report_gzip(report)


def test_report_message_is_found_and_parsed_by_us() -> None:
    report = _sample_report()
    data = _message(report)
    assert find_report(data) == report_gzip(report)
    assert parse_report(find_report(data) or b"") == report
    part = parse_message(data)
    assert [c.media_subtype for c in part.children] == ["plain", "tlsrpt+gzip"]


def test_parsedmarc_reads_our_report_message() -> None:
    parsed = _parsedmarc().parse_report_email(_message(), offline=True)
    assert parsed["report_type"] == "smtp_tls"
    tls = parsed["report"]
    assert tls["report_id"] == "20261123.1@mail.sender.example"
    assert [p["failed_session_count"] for p in tls["policies"]] == [3, 1]


def test_report_message_is_deterministic_and_folds_long_subjects() -> None:
    assert _message() == _message()
    long_domain = ("a" * 60 + ".") * 3 + "example"
    data = _message(policy_domain=long_domain)
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message["TLS-Report-Domain"] == long_domain
    assert long_domain in str(message["Subject"])
    header = data.partition(b"\r\n\r\n")[0]
    assert all(len(line) <= 998 for line in header.split(b"\r\n"))


@pytest.mark.parametrize(
    "changes",
    [
        {"to_addrs": ["a@example.com\r\nBcc: x@example.org"]},
        {"policy_domain": "example.com\nX-Evil: 1"},
        {"submitter": "sub\x00mitter"},
        {"from_addr": ""},
        {"to_addrs": []},
        {"now": datetime(2026, 1, 1)},
    ],
)
def test_report_message_refuses_bad_header_values(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="control character|empty|no recipients|aware"):
        _message(**changes)


# ---- finding reports in received mail -------------------------------------------------


def _mail(content_type: str, body: bytes, *, cte: str = "7bit", extra: str = "") -> bytes:
    return (
        (
            f"From: a@example.net\r\nSubject: r\r\n{extra}MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            f"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
            f"--b\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
        ).encode()
        + body
        + b"\r\n--b--\r\n"
    )


def test_find_report_json_part() -> None:
    body = report_json(_sample_report()).replace(b"\n", b"\r\n")
    found = find_report(_mail("application/tlsrpt+json", body))
    assert found == body
    assert parse_report(found) == _sample_report()


def test_find_report_fallback_by_file_name_only_in_tls_reports() -> None:
    import base64

    payload = base64.encodebytes(report_gzip(_sample_report()))
    ctype = 'application/gzip; name="x!example.com!1!2.json.gz"'
    assert find_report(_mail(ctype, payload, cte="base64")) is None
    found = find_report(
        _mail(ctype, payload, cte="base64", extra="TLS-Report-Domain: example.com\r\n")
    )
    assert found == report_gzip(_sample_report())


def test_find_report_none_for_ordinary_mail_and_unknown_encodings() -> None:
    assert find_report(b"Subject: hi\r\n\r\nhello\r\n") is None
    assert find_report(b"") is None
    assert find_report(_mail("application/tlsrpt+gzip", b"xx", cte="x-uuencode")) is None
