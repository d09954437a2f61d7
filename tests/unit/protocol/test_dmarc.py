"""DMARC (RFC 7489): record parsing, policy discovery, alignment, disposition, From domain."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailactors.protocol.dmarc import (
    DkimInput,
    DmarcFromError,
    DmarcRecord,
    DmarcSyntaxError,
    PolicyOverrideReason,
    ReportUri,
    SpfInput,
    aligned,
    evaluate,
    format_record,
    from_domain,
    lookup,
    parse_record,
    reject_reply,
    verify_external_destination,
)
from mailactors.protocol.dns import DnsTemporaryError, InMemoryResolver
from mailactors.protocol.mime.headers import scan_header

# ---------------------------------------------------------------------------------------
# parse_record


def test_appendix_b_2_1_monitoring() -> None:
    # RFC 7489 B.2.1: entire domain, monitoring only.
    record = parse_record("v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com")
    assert record == DmarcRecord(
        policy="none",
        rua=(ReportUri("mailto:dmarc-feedback@example.com", "dmarc-feedback@example.com", None),),
    )
    assert (record.adkim, record.aspf, record.pct, record.ri, record.fo, record.rf) == (
        "r",
        "r",
        100,
        86400,
        ("0",),
        ("afrf",),
    )


def test_appendix_b_2_3_third_party_failure_reports() -> None:
    # RFC 7489 B.2.3: per-message failure reports directed to a third party.
    record = parse_record(
        "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; "
        "ruf=mailto:auth-reports@thirdparty.example.net"
    )
    assert record.ruf == (
        ReportUri(
            "mailto:auth-reports@thirdparty.example.net",
            "auth-reports@thirdparty.example.net",
            None,
        ),
    )


def test_appendix_b_2_4_sampling_and_multiple_destinations() -> None:
    # RFC 7489 B.2.4: quarantine 25% of the failing mail, two report destinations, one
    # with a 10 MB limit.
    record = parse_record(
        "v=DMARC1; p=quarantine; "
        "rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m; "
        "pct=25"
    )
    assert record.policy == "quarantine"
    assert record.pct == 25
    assert record.rua == (
        ReportUri("mailto:dmarc-feedback@example.com", "dmarc-feedback@example.com", None),
        ReportUri(
            "mailto:tld-test@thirdparty.example.net",
            "tld-test@thirdparty.example.net",
            10 * 2**20,
        ),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DMARC1; p=reject", DmarcRecord("reject")),
        ("v=DMARC1;p=reject;", DmarcRecord("reject")),
        ("v = DMARC1 ;\tp = Reject ; ", DmarcRecord("reject")),
        ("v=DMARC1; p=quarantine; sp=none", DmarcRecord("quarantine", "none")),
        ("v=DMARC1; p=none; adkim=s; aspf=S", DmarcRecord("none", adkim="s", aspf="s")),
        ("v=DMARC1; p=none; pct=0", DmarcRecord("none", pct=0)),
        ("v=DMARC1; p=none; pct=100", DmarcRecord("none", pct=100)),
        ("v=DMARC1; p=none; ri=3600", DmarcRecord("none", ri=3600)),
        ("v=DMARC1; p=none; fo=1:d : s", DmarcRecord("none", fo=("1", "d", "s"))),
        ("v=DMARC1; p=none; rf=afrf:iodef", DmarcRecord("none", rf=("afrf", "iodef"))),
        # Unknown tags are ignored (6.3).
        ("v=DMARC1; p=none; future=yes; np=reject; x_y2=1", DmarcRecord("none")),
        # "p" later than second: accepted.
        ("v=DMARC1; pct=50; p=reject", DmarcRecord("reject", pct=50)),
    ],
)
def test_parse_record(text: str, expected: DmarcRecord) -> None:
    assert parse_record(text) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mailto:a@example.com!0", ReportUri("mailto:a@example.com", "a@example.com", 0)),
        ("mailto:a@example.com!5", ReportUri("mailto:a@example.com", "a@example.com", 5)),
        ("mailto:a@example.com!2k", ReportUri("mailto:a@example.com", "a@example.com", 2048)),
        ("mailto:a@Example.COM!1G", ReportUri("mailto:a@Example.COM", "a@example.com", 2**30)),
        ("mailto:a@example.com!3t", ReportUri("mailto:a@example.com", "a@example.com", 3 * 2**40)),
        (
            "mailto:a%2Bb@example.com",
            ReportUri("mailto:a%2Bb@example.com", "a+b@example.com", None),
        ),
        (
            "mailto:r@example.com?subject=x",
            ReportUri("mailto:r@example.com?subject=x", "r@example.com", None),
        ),
        ("https://r.example/dmarc", ReportUri("https://r.example/dmarc", None, None)),
    ],
)
def test_report_uris(uri: str, expected: ReportUri) -> None:
    assert parse_record(f"v=DMARC1; p=none; rua={uri}").rua == (expected,)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "p=reject; v=DMARC1",
        "v=DMARC2; p=reject",
        "v=dmarc1; p=reject",
        "v=DMARC1 p=reject",
        "v=DMARC1x; p=reject",
        "v=DMARC1",
        "v=DMARC1; p=bounce",
        "v=DMARC1; sp=reject",
        "v=DMARC1; p=none; p=reject",
        "v=DMARC1; p=none; adkim=x",
        "v=DMARC1; p=none; aspf=",
        "v=DMARC1; p=none; pct=101",
        "v=DMARC1; p=none; pct=-1",
        "v=DMARC1; p=none; pct=0050",
        "v=DMARC1; p=none; ri=1h",
        "v=DMARC1; p=none; ri=99999999999",
        "v=DMARC1; p=none; fo=2",
        "v=DMARC1; p=none; rf=a b",
        "v=DMARC1; p=none; rua=",
        "v=DMARC1; p=none; rua=dmarc@example.com",
        "v=DMARC1; p=none; rua=mailto:example.com",
        "v=DMARC1; p=none; rua=mailto:a@example.com!10x",
        "v=DMARC1; p=none; rua=mailto:a@example.com!9999999999999999",
        "v=DMARC1; p=none; noequals",
        "v=DMARC1; p=none; =value",
        "v=DMARC1; p=none; 1x=2",
        "v=DMARC1; p=none; a-b=2",
    ],
)
def test_invalid_records(text: str) -> None:
    with pytest.raises(DmarcSyntaxError):
        parse_record(text)


@pytest.mark.parametrize(
    "text",
    [
        "v=DMARC1; rua=mailto:d@example.com",
        "v=DMARC1; p=bogus; rua=mailto:d@example.com",
        "v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.com",
    ],
)
def test_invalid_policy_with_rua_is_p_none(text: str) -> None:
    # RFC 7489 6.6.3 step 6: act as if "p=none" was published.
    record = parse_record(text)
    assert (record.policy, record.subdomain_policy, record.policy_fallback) == ("none", None, True)
    assert record.rua[0].address == "d@example.com"


# ---------------------------------------------------------------------------------------
# lookup


def _resolver(records: dict[str, list[str]], temporary: tuple[str, ...] = ()) -> InMemoryResolver:
    return InMemoryResolver(
        records={(name, "TXT"): values for name, values in records.items()},
        temporary=frozenset((name, "TXT") for name in temporary),
    )


def test_lookup_at_from_domain() -> None:
    resolver = _resolver({"_dmarc.example.com": ["v=DMARC1; p=reject"]})
    found = lookup(resolver, "Example.COM")
    assert (found.status, found.record_domain, found.org_domain) == (
        "found",
        "example.com",
        "example.com",
    )
    assert found.record == DmarcRecord("reject")
    assert resolver.queries == [("_dmarc.example.com", "TXT")]


def test_lookup_falls_back_to_org_domain() -> None:
    resolver = _resolver({"_dmarc.example.co.uk": ["v=DMARC1; p=quarantine"]})
    found = lookup(resolver, "a.b.example.co.uk")
    assert (found.status, found.record_domain, found.org_domain) == (
        "found",
        "example.co.uk",
        "example.co.uk",
    )
    # RFC 7489 6.6.3: the From domain, then the Organizational Domain; nothing between.
    assert resolver.queries == [
        ("_dmarc.a.b.example.co.uk", "TXT"),
        ("_dmarc.example.co.uk", "TXT"),
    ]


def test_lookup_ignores_txt_records_that_are_not_dmarc() -> None:
    resolver = _resolver(
        {"_dmarc.example.com": ["v=spf1 -all", "some verification text", "v=DMARC1; p=none"]}
    )
    assert lookup(resolver, "example.com").status == "found"


@pytest.mark.parametrize(
    ("records", "temporary", "status"),
    [
        ({}, (), "none"),
        ({"_dmarc.mail.example.com": ["not dmarc"]}, (), "none"),
        # Several records: policy discovery terminates (6.6.3 step 5), no fallback.
        (
            {
                "_dmarc.mail.example.com": ["v=DMARC1; p=none", "v=DMARC1; p=reject"],
                "_dmarc.example.com": ["v=DMARC1; p=reject"],
            },
            (),
            "none",
        ),
        ({"_dmarc.example.com": ["v=DMARC1; p=none", "v=DMARC1; p=reject"]}, (), "none"),
        ({"_dmarc.mail.example.com": ["v=DMARC1; p=bogus"]}, (), "permerror"),
        ({"_dmarc.example.com": ["v=DMARC1; pct=7"]}, (), "permerror"),
        ({}, ("_dmarc.mail.example.com",), "temperror"),
        ({}, ("_dmarc.example.com",), "temperror"),
    ],
)
def test_lookup_outcomes(
    records: dict[str, list[str]], temporary: tuple[str, ...], status: str
) -> None:
    found = lookup(_resolver(records, temporary), "mail.example.com")
    assert found.status == status
    assert found.record is None
    assert found.org_domain == "example.com"


def test_lookup_invalid_from_domain() -> None:
    assert lookup(_resolver({}), "a..example.com").status == "permerror"


# ---------------------------------------------------------------------------------------
# alignment (RFC 7489 3.1, examples of appendix B.1)


@pytest.mark.parametrize(
    ("identifier", "from_dom", "relaxed", "strict"),
    [
        # B.1.1 SPF: MAIL FROM example.com, From example.com.
        ("example.com", "example.com", True, True),
        # B.1.1: MAIL FROM child.example.com, From example.com: relaxed only.
        ("child.example.com", "example.com", True, False),
        ("example.com", "child.example.com", True, False),
        ("EXAMPLE.com.", "example.COM", True, True),
        # B.1.3: unrelated domains never align.
        ("sample.net", "example.com", False, False),
        ("example.co.uk", "other.co.uk", False, False),
        ("a.example.co.uk", "b.example.co.uk", True, False),
        ("co.uk", "example.co.uk", False, False),
        ("foo.blogspot.com", "bar.blogspot.com", False, False),
        ("a..b", "example.com", False, False),
    ],
)
def test_alignment(identifier: str, from_dom: str, relaxed: bool, strict: bool) -> None:
    assert aligned(identifier, from_dom, "r") is relaxed
    assert aligned(identifier, from_dom, "s") is strict


# ---------------------------------------------------------------------------------------
# evaluate

_RECORDS = {
    "_dmarc.example.com": [
        "v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@example.com; pct=100"
    ],
    "_dmarc.own.example.com": ["v=DMARC1; p=none"],
    "_dmarc.strict.example": ["v=DMARC1; p=reject; adkim=s; aspf=s"],
    "_dmarc.sampled.example": ["v=DMARC1; p=reject; pct=25; rua=mailto:r@sampled.example"],
    "_dmarc.qsampled.example": ["v=DMARC1; p=quarantine; pct=0"],
    "_dmarc.monitor.example": ["v=DMARC1; p=none"],
    "_dmarc.broken.example": ["v=DMARC1; p=reject; adkim=x"],
}

NO_SPF = SpfInput("none", "other.example")


def _dkim(domain: str, status: str = "pass") -> DkimInput:
    return DkimInput(status, domain, "sel", "abcdefgh", None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("from_dom", "spf", "dkim", "draw", "status", "disposition", "policy", "applied"),
    [
        # Aligned SPF or DKIM passes.
        ("example.com", SpfInput("pass", "example.com"), [], 0, "pass", "none", "reject", False),
        (
            "example.com",
            SpfInput("pass", "bounce.example.com"),
            [],
            0,
            "pass",
            "none",
            "reject",
            False,
        ),
        ("example.com", NO_SPF, [_dkim("example.com")], 0, "pass", "none", "reject", False),
        (
            "example.com",
            NO_SPF,
            [_dkim("other.example"), _dkim("mail.example.com")],
            0,
            "pass",
            "none",
            "reject",
            False,
        ),
        # Nothing aligned: the policy.
        ("example.com", SpfInput("pass", "other.example"), [], 0, "fail", "reject", "reject", True),
        ("example.com", SpfInput("fail", "example.com"), [], 0, "fail", "reject", "reject", True),
        (
            "example.com",
            SpfInput("softfail", "example.com"),
            [],
            0,
            "fail",
            "reject",
            "reject",
            True,
        ),
        (
            "example.com",
            NO_SPF,
            [_dkim("example.com", "fail")],
            0,
            "fail",
            "reject",
            "reject",
            True,
        ),
        (
            "example.com",
            NO_SPF,
            [_dkim("example.com", "policy")],
            0,
            "fail",
            "reject",
            "reject",
            True,
        ),
        ("example.com", NO_SPF, [_dkim("other.example")], 99, "fail", "reject", "reject", True),
        # A subdomain without its own record: "sp" of the Organizational Domain.
        ("mail.example.com", NO_SPF, [], 0, "fail", "quarantine", "quarantine", True),
        (
            "mail.example.com",
            NO_SPF,
            [_dkim("example.com")],
            0,
            "pass",
            "none",
            "quarantine",
            False,
        ),
        # A subdomain with its own record: its "p".
        ("own.example.com", NO_SPF, [], 0, "fail", "none", "none", True),
        # Strict alignment.
        (
            "strict.example",
            SpfInput("pass", "mail.strict.example"),
            [],
            0,
            "fail",
            "reject",
            "reject",
            True,
        ),
        (
            "strict.example",
            NO_SPF,
            [_dkim("mail.strict.example")],
            0,
            "fail",
            "reject",
            "reject",
            True,
        ),
        ("strict.example", NO_SPF, [_dkim("STRICT.example")], 0, "pass", "none", "reject", False),
        (
            "mail.strict.example",
            NO_SPF,
            [_dkim("mail.strict.example")],
            0,
            "pass",
            "none",
            "reject",
            False,
        ),
        # p=none: monitoring only.
        ("monitor.example", NO_SPF, [], 0, "fail", "none", "none", True),
        # No record / broken record.
        ("nothing.example", NO_SPF, [], 0, "none", "none", None, False),
        ("broken.example", NO_SPF, [], 0, "permerror", "none", None, False),
        # A temporary failure of an identifier that could align: temperror.
        (
            "example.com",
            SpfInput("temperror", "example.com"),
            [],
            0,
            "temperror",
            "none",
            "reject",
            False,
        ),
        (
            "example.com",
            NO_SPF,
            [_dkim("example.com", "temperror")],
            0,
            "temperror",
            "none",
            "reject",
            False,
        ),
        (
            "example.com",
            SpfInput("temperror", "other.example"),
            [],
            0,
            "fail",
            "reject",
            "reject",
            True,
        ),
        (
            "example.com",
            SpfInput("temperror", "example.com"),
            [_dkim("example.com")],
            0,
            "pass",
            "none",
            "reject",
            False,
        ),
    ],
)
def test_evaluate(
    from_dom: str,
    spf: SpfInput,
    dkim: list[DkimInput],
    draw: int,
    status: str,
    disposition: str,
    policy: str | None,
    applied: bool,
) -> None:
    result = evaluate(_resolver(_RECORDS), from_domain=from_dom, spf=spf, dkim=dkim, pct_draw=draw)
    assert (result.status, result.disposition, result.policy, result.policy_applied) == (
        status,
        disposition,
        policy,
        applied,
    )
    assert result.from_domain == from_dom
    assert result.reasons == ()
    assert len(result.dkim) == len(dkim)
    assert [item.result for item in result.dkim] == dkim
    assert result.spf.result == spf
    if status == "pass":
        assert result.aligned_spf or result.aligned_dkim
    else:
        assert not result.aligned_spf and not result.aligned_dkim


def test_evaluate_alignment_flags_per_result() -> None:
    dkim = [_dkim("other.example"), _dkim("example.com"), _dkim("example.com", "fail")]
    result = evaluate(
        _resolver(_RECORDS),
        from_domain="example.com",
        spf=SpfInput("pass", "bounces.example.com"),
        dkim=dkim,
        pct_draw=0,
    )
    assert result.aligned_spf and result.aligned_dkim and result.spf.aligned
    assert [item.aligned for item in result.dkim] == [False, True, False]
    assert result.record_domain == "example.com"
    assert result.org_domain == "example.com"
    assert result.reportable


@pytest.mark.parametrize(
    ("draw", "disposition", "applied"),
    [
        (0, "reject", True),
        (24, "reject", True),
        (25, "quarantine", False),
        (99, "quarantine", False),
    ],
)
def test_pct_sampling_downgrades_reject(draw: int, disposition: str, applied: bool) -> None:
    # RFC 7489 6.6.4: a message not sampled gets the next-lower policy.
    result = evaluate(
        _resolver(_RECORDS), from_domain="sampled.example", spf=NO_SPF, dkim=[], pct_draw=draw
    )
    assert (result.status, result.disposition, result.policy_applied) == (
        "fail",
        disposition,
        applied,
    )
    assert result.reasons == (() if applied else (PolicyOverrideReason("sampled_out", "pct=25"),))
    assert result.reportable


@pytest.mark.parametrize("draw", [0, 50, 99])
def test_pct_zero_quarantine_becomes_none(draw: int) -> None:
    result = evaluate(
        _resolver(_RECORDS), from_domain="qsampled.example", spf=NO_SPF, dkim=[], pct_draw=draw
    )
    assert (result.status, result.disposition, result.policy) == ("fail", "none", "quarantine")
    assert [reason.type for reason in result.reasons] == ["sampled_out"]
    assert not result.reportable


def test_evaluate_dns_temperror() -> None:
    resolver = _resolver({}, temporary=("_dmarc.example.com",))
    result = evaluate(resolver, from_domain="example.com", spf=NO_SPF, dkim=[], pct_draw=0)
    assert (result.status, result.disposition, result.record) == ("temperror", "none", None)


@pytest.mark.parametrize("draw", [-1, 100, 1000])
def test_pct_draw_range(draw: int) -> None:
    with pytest.raises(ValueError):
        evaluate(_resolver(_RECORDS), from_domain="example.com", spf=NO_SPF, dkim=[], pct_draw=draw)


def test_reject_reply() -> None:
    result = evaluate(
        _resolver(_RECORDS), from_domain="mail.example.com", spf=NO_SPF, dkim=[], pct_draw=0
    )
    reply = reject_reply(replace(result, disposition="reject"))
    assert (reply.code, reply.enhanced) == (550, "5.7.1")
    assert reply.to_bytes() == b"550 5.7.1 rejected by the DMARC policy of example.com\r\n"


# ---------------------------------------------------------------------------------------
# from_domain (RFC 7489 6.6.1)


@pytest.mark.parametrize(
    ("header", "domain"),
    [
        (b"From: mjl@Example.ORG\r\nTo: x@y.example\r\n\r\nbody", "example.org"),
        (b"from: Mechiel <mjl@mail.example.org>\r\n\r\n", "mail.example.org"),
        (b'FROM: "Last, First" <f.l@example.org> (comment)\r\n\r\n', "example.org"),
        (b"From:\r\n  Folded Name\r\n  <a@example.org>\r\nSubject: x\r\n\r\n", "example.org"),
        ("From: Ünïcode <user@bücher.example>\r\n\r\n".encode(), "xn--bcher-kva.example"),
        (b"Subject: s\r\nFrom: a@example.org\r\n", "example.org"),
    ],
)
def test_from_domain(header: bytes, domain: str) -> None:
    assert from_domain(header) == domain
    assert from_domain(scan_header(header, 0, len(header))[0]) == domain


@pytest.mark.parametrize(
    "header",
    [
        b"To: a@example.org\r\n\r\n",
        b"From: a@example.org\r\nFrom: b@example.org\r\n\r\n",
        b"From: a@example.org, b@example.net\r\n\r\n",
        b"From: a@example.org, b@example.org\r\n\r\n",
        b"From: \r\n\r\n",
        b"From: Undisclosed:;\r\n\r\n",
        b"From: nodomain\r\n\r\n",
        b"From: <a@>\r\n\r\n",
        b"From: a@exa mple..org\r\n\r\n",
        b"From: a@[192.0.2.1]\r\n\r\n",
    ],
)
def test_from_domain_refused(header: bytes) -> None:
    with pytest.raises(DmarcFromError) as info:
        from_domain(header)
    assert (info.value.reply.code, info.value.reply.enhanced) == (550, "5.7.1")


# ---------------------------------------------------------------------------------------
# verify_external_destination (RFC 7489 7.1)


def test_external_destination_same_organization_needs_no_lookup() -> None:
    resolver = _resolver({})
    assert verify_external_destination(resolver, "mail.example.com", "reports.example.com")
    assert resolver.queries == []


def test_external_destination_authorized() -> None:
    # RFC 7489 7.1 / B.2.3: thirdparty.example.net publishes
    # example.com._report._dmarc.thirdparty.example.net TXT "v=DMARC1".
    resolver = _resolver(
        {"example.com._report._dmarc.thirdparty.example.net": ["other", "v=DMARC1"]}
    )
    assert verify_external_destination(resolver, "Example.com", "thirdparty.example.NET.")
    assert resolver.queries == [("example.com._report._dmarc.thirdparty.example.net", "TXT")]


@pytest.mark.parametrize(
    "records",
    [
        {},
        {"example.com._report._dmarc.thirdparty.example.net": ["v=spf1 -all"]},
        {"example.com._report._dmarc.thirdparty.example.net": ["v=DMARC1; bad tag"]},
        {"other.example._report._dmarc.thirdparty.example.net": ["v=DMARC1"]},
    ],
)
def test_external_destination_not_authorized(records: dict[str, list[str]]) -> None:
    assert not verify_external_destination(
        _resolver(records), "example.com", "thirdparty.example.net"
    )


def test_external_destination_temporary_error_raises() -> None:
    resolver = _resolver({}, temporary=("example.com._report._dmarc.thirdparty.example.net",))
    with pytest.raises(DnsTemporaryError):
        verify_external_destination(resolver, "example.com", "thirdparty.example.net")


# ---------------------------------------------------------------------------------------
# format_record


@pytest.mark.parametrize(
    ("record", "text"),
    [
        (DmarcRecord("reject"), "v=DMARC1; p=reject"),
        (
            DmarcRecord(
                "quarantine",
                "none",
                adkim="s",
                aspf="s",
                pct=5,
                rua=(ReportUri("mailto:d@example.com", "d@example.com", 10 * 2**20),),
                ruf=(ReportUri("mailto:f@example.com", "f@example.com", 1000),),
                fo=("1", "d"),
                rf=("iodef",),
                ri=3600,
            ),
            "v=DMARC1; p=quarantine; sp=none; rua=mailto:d@example.com!10m; "
            "ruf=mailto:f@example.com!1000; adkim=s; aspf=s; ri=3600; fo=1:d; rf=iodef; pct=5",
        ),
    ],
)
def test_format_record(record: DmarcRecord, text: str) -> None:
    assert format_record(record) == text
    assert parse_record(text) == record


@pytest.mark.parametrize("uri", ["mailto:a,b@example.com", "mailto:a!b@example.com", "no-scheme"])
def test_format_record_refuses_unwritable_uris(uri: str) -> None:
    with pytest.raises(ValueError):
        format_record(DmarcRecord("none", rua=(ReportUri(uri, None, None),)))
