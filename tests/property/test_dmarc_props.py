"""Property tests: DMARC record parsing is total and round-trips; alignment, sampling and the
disposition keep their invariants (RFC 7489)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.protocol.dmarc import (
    DkimInput,
    DmarcRecord,
    DmarcSyntaxError,
    ReportUri,
    SpfInput,
    aligned,
    evaluate,
    format_record,
    parse_record,
)
from mailactors.protocol.dns import InMemoryResolver
from mailactors.protocol.orgdomain import organizational_domain

POLICY = st.sampled_from(["none", "quarantine", "reject"])
ALIGNMENT = st.sampled_from(["r", "s"])
LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
SUFFIX = st.sampled_from(["com", "co.uk", "org", "kawasaki.jp", "blogspot.com", "xn--55qx5d.cn"])
DOMAIN = st.builds(
    lambda labels, suffix: ".".join([*labels, suffix]), st.lists(LABEL, max_size=3), SUFFIX
)
MAILTO = st.builds(
    lambda local, domain, size: ReportUri(f"mailto:{local}@{domain}", f"{local}@{domain}", size),
    st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,8}", fullmatch=True),
    DOMAIN,
    st.none() | st.integers(0, 10**6) | st.integers(0, 100).map(lambda n: n * 2**20),
)
HTTPS = st.builds(lambda domain: ReportUri(f"https://{domain}/r", None, None), DOMAIN)
RECORD = st.builds(
    DmarcRecord,
    policy=POLICY,
    subdomain_policy=st.none() | POLICY,
    adkim=ALIGNMENT,
    aspf=ALIGNMENT,
    pct=st.integers(0, 100),
    rua=st.lists(MAILTO | HTTPS, max_size=3).map(tuple),
    ruf=st.lists(MAILTO, max_size=2).map(tuple),
    fo=st.lists(st.sampled_from("01ds"), min_size=1, max_size=4).map(tuple),
    rf=st.sampled_from([("afrf",), ("iodef",), ("afrf", "iodef")]),
    ri=st.integers(0, 2**32 - 1),
)

TAG_SOUP = st.lists(
    st.sampled_from(list("vV=DMARC1;pPrsn ,:!tkmgo\t@.") + ["mailto:", "pct", "rua", "none"]),
    max_size=60,
).map("".join)


@given(st.text(max_size=200) | TAG_SOUP | TAG_SOUP.map(lambda t: "v=DMARC1;" + t))
def test_parse_record_is_total(text: str) -> None:
    try:
        record = parse_record(text)
    except DmarcSyntaxError:
        return
    assert record.policy in ("none", "quarantine", "reject")
    assert 0 <= record.pct <= 100


@given(RECORD)
def test_format_parse_roundtrip(record: DmarcRecord) -> None:
    assert parse_record(format_record(record)) == record


@given(DOMAIN, DOMAIN)
def test_alignment_invariants(left: str, right: str) -> None:
    strict = aligned(left, right, "s")
    relaxed = aligned(left, right, "r")
    # Strict implies relaxed; both are symmetric; every domain aligns with itself.
    assert not strict or relaxed
    assert relaxed == aligned(right, left, "r")
    assert strict == (left == right)
    assert aligned(left, left, "s") and aligned(left.upper(), left, "r")
    assert relaxed == (organizational_domain(left) == organizational_domain(right))


@given(DOMAIN)
def test_organizational_domain_invariants(domain: str) -> None:
    org = organizational_domain(domain)
    assert domain == org or domain.endswith("." + org)
    assert organizational_domain(org) == org


_LOWER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


@settings(max_examples=200)
@given(
    RECORD,
    st.booleans(),
    st.sampled_from(["none", "pass", "fail", "softfail", "temperror"]),
    st.sampled_from(["pass", "fail", "temperror", "policy"]),
    st.booleans(),
    st.integers(0, 99),
)
def test_evaluate_invariants(
    record: DmarcRecord,
    subdomain: bool,
    spf_status: str,
    dkim_status: str,
    foreign_dkim: bool,
    draw: int,
) -> None:
    resolver = InMemoryResolver(records={("_dmarc.example.com", "TXT"): [format_record(record)]})
    from_dom = "mail.example.com" if subdomain else "example.com"
    dkim = [DkimInput(dkim_status, "other.example" if foreign_dkim else "example.com", "s")]  # type: ignore[arg-type]
    result = evaluate(
        resolver,
        from_domain=from_dom,
        spf=SpfInput(spf_status, "example.com"),  # type: ignore[arg-type]
        dkim=dkim,
        pct_draw=draw,
    )
    requested = record.policy
    if subdomain and record.subdomain_policy is not None:
        requested = record.subdomain_policy
    assert result.policy == requested
    assert result.reportable == bool(record.rua)
    # SPF checked example.com, DKIM example.com or other.example: strict alignment fails
    # for the subdomain.
    spf_aligns = record.aspf == "r" or not subdomain
    dkim_aligns = not foreign_dkim and (record.adkim == "r" or not subdomain)
    passing = (spf_status == "pass" and spf_aligns) or (dkim_status == "pass" and dkim_aligns)
    temporary = (spf_status == "temperror" and spf_aligns) or (
        dkim_status == "temperror" and dkim_aligns
    )
    assert result.aligned_spf == (spf_status == "pass" and spf_aligns)
    assert result.aligned_dkim == (dkim_status == "pass" and dkim_aligns)
    if passing:
        assert (result.status, result.disposition) == ("pass", "none")
    elif temporary:
        assert (result.status, result.disposition) == ("temperror", "none")
    else:
        assert result.status == "fail"
        sampled = requested == "none" or draw < record.pct
        expected = requested if sampled else _LOWER[requested]
        assert result.disposition == expected
        assert result.policy_applied == sampled
        assert [r.type for r in result.reasons] == ([] if sampled else ["sampled_out"])
