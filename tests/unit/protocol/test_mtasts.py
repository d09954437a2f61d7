"""MTA-STS records, policies, MX matching and selection (RFC 8461)."""

from __future__ import annotations

import pytest

from mailactors.protocol.dns import InMemoryResolver
from mailactors.protocol.mtasts import (
    MAX_AGE_LIMIT,
    RecordStatus,
    StsMode,
    StsPolicy,
    StsPolicyError,
    StsRecord,
    StsRecordError,
    lookup_record,
    mx_matches,
    parse_policy,
    parse_record,
    policy_host,
    policy_url,
    record_name,
    select,
)

# RFC 8461 section 3.2, the example policy.
RFC_POLICY = (
    b"version: STSv1\r\n"
    b"mode: enforce\r\n"
    b"mx: mail.example.com\r\n"
    b"mx: *.example.net\r\n"
    b"mx: backupmx.example.com\r\n"
    b"max_age: 604800\r\n"
)


def test_names() -> None:
    assert record_name("Example.COM.") == "_mta-sts.example.com"
    assert policy_host("example.com") == "mta-sts.example.com"
    assert policy_url("example.com") == "https://mta-sts.example.com/.well-known/mta-sts.txt"


@pytest.mark.parametrize(
    ("text", "record"),
    [
        # RFC 8461 section 3.1 example.
        ("v=STSv1; id=20160831085700Z;", StsRecord("20160831085700Z")),
        ("v=STSv1;id=abc", StsRecord("abc")),
        ("v=STSv1 ;\tid=abc ; ", StsRecord("abc")),
        ("v=STSv1; id=" + "a" * 32, StsRecord("a" * 32)),
        ("v=STSv1; id=1; ext_1=va:lue", StsRecord("1", (("ext_1", "va:lue"),))),
    ],
)
def test_parse_record_valid(text: str, record: StsRecord) -> None:
    assert parse_record(text) == record


@pytest.mark.parametrize(
    "text",
    [
        "v=STSv1",
        "v=STSv1;",
        "v=STSv1; ",
        "v=STSv2; id=1",
        "v=stsv1; id=1",
        "v=STSv1; id=",
        "v=STSv1; id=" + "a" * 33,
        "v=STSv1; id=a-b",
        "v=STSv1; id=1; id=2",
        "v=STSv1; ext=1",
        "v=STSv1; id=1;; ",
        "v=STSv1; id=1; bad",
        "v=STSv1; id=1; _x=1",
        " v=STSv1; id=1",
    ],
)
def test_parse_record_invalid(text: str) -> None:
    with pytest.raises(StsRecordError):
        parse_record(text)


def _resolver(*txt: str, **kw: object) -> InMemoryResolver:
    return InMemoryResolver({("_mta-sts.example.com", "TXT"): txt}, **kw)  # type: ignore[arg-type]


def test_lookup_record_found_ignores_other_txt() -> None:
    r = _resolver("v=spf1 -all", "v=STSv1; id=20190429T010101;")
    got = lookup_record(r, "Example.com")
    assert got.status is RecordStatus.FOUND
    assert got.record == StsRecord("20190429T010101")
    assert r.queries == [("_mta-sts.example.com", "TXT")]


@pytest.mark.parametrize(
    "records",
    [
        (),
        ("v=spf1 -all",),
        ("v=STSv1; id=1", "v=STSv1; id=2"),  # several -> no policy (RFC 8461 3.1)
        ("v=STSv1; id=!",),  # invalid -> no policy
        ("v=STSv10; id=1",),
    ],
)
def test_lookup_record_none(records: tuple[str, ...]) -> None:
    assert lookup_record(_resolver(*records), "example.com").status is RecordStatus.NONE


def test_lookup_record_nxdomain_is_none() -> None:
    got = lookup_record(InMemoryResolver({}), "example.com")
    assert got.status is RecordStatus.NONE
    assert got.record is None


def test_lookup_record_temperror() -> None:
    r = _resolver(temporary=frozenset({("_mta-sts.example.com", "TXT")}))
    got = lookup_record(r, "example.com")
    assert got.status is RecordStatus.TEMPERROR
    assert "SERVFAIL" in got.detail


def test_parse_policy_rfc_example() -> None:
    policy = parse_policy(RFC_POLICY)
    assert policy == StsPolicy(
        "STSv1",
        StsMode.ENFORCE,
        ("mail.example.com", "*.example.net", "backupmx.example.com"),
        604800,
    )


def test_parse_policy_lf_lines_spaces_and_extensions() -> None:
    text = (
        b"version:STSv1\nmode:   testing  \nmx: MX.Example.org.\nmax_age: 0\nfoo.bar: some value\n"
    )
    policy = parse_policy(text)
    assert policy.mode is StsMode.TESTING
    assert policy.mx == ("mx.example.org",)
    assert policy.max_age == 0
    assert policy.extensions == (("foo.bar", "some value"),)


def test_parse_policy_first_occurrence_wins() -> None:
    text = b"version: STSv1\nmode: none\nmode: enforce\nmax_age: 10\nmax_age: 20\n"
    policy = parse_policy(text)
    assert (policy.mode, policy.max_age, policy.mx) == (StsMode.NONE, 10, ())


def test_parse_policy_max_age_limit() -> None:
    base = b"version: STSv1\nmode: none\nmax_age: "
    assert parse_policy(base + str(MAX_AGE_LIMIT).encode()).max_age == MAX_AGE_LIMIT
    with pytest.raises(StsPolicyError):
        parse_policy(base + str(MAX_AGE_LIMIT + 1).encode())


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"\n",
        b"version: STSv2\nmode: none\nmax_age: 1\n",
        b"mode: none\nmax_age: 1\n",
        b"version: STSv1\nmax_age: 1\n",
        b"version: STSv1\nmode: none\n",
        b"version: STSv1\nmode: enforce\nmax_age: 1\n",  # mx missing
        b"version: STSv1\nmode: testing\nmax_age: 1\n",
        b"version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",
        b"version: STSv1\nmode: none\nmax_age: -1\n",
        b"version: STSv1\nmode: none\nmax_age: 12345678901\n",
        b"version: STSv1\nmode: none\nmax_age: 1x\n",
        b"version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1\n",
        b"version: STSv1\nmode: enforce\nmx: *example.com\nmax_age: 1\n",
        b"version: STSv1\nmode: enforce\nmx: **.example.com\nmax_age: 1\n",
        b"version: STSv1\nmode: none\nmax_age: 1\nno colon here\n",
        b"version: STSv1\nmode: none\nmax_age: 1\n-bad: x\n",
        b"version: STSv1\rmode: none\rmax_age: 1\r",
        b"version: STSv1\nmode: none\nmax_age: 1\n\xff: x\n",
        b"version: STSv1\nmode: none\nmax_age: 1\next: \x01\n",
    ],
)
def test_parse_policy_invalid(text: bytes) -> None:
    with pytest.raises(StsPolicyError) as info:
        parse_policy(text)
    assert info.value.result_type == "sts-policy-invalid"


# RFC 8461 section 4.1 examples: "*.example.com" matches mx1/mx2.example.com,
# not foo.mx1.example.com nor example.com.
@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("mx1.example.com", True),
        ("MX2.Example.COM.", True),
        ("foo.mx1.example.com", False),
        ("example.com", False),
        ("mail.example.org", True),
        ("xmail.example.org", False),
        ("mail.example.org.evil", False),
        ("", False),
    ],
)
def test_mx_matches(host: str, expected: bool) -> None:
    policy = StsPolicy("STSv1", StsMode.ENFORCE, ("*.example.com", "mail.example.org"), 60)
    assert mx_matches(policy, host) is expected


ENFORCE = StsPolicy("STSv1", StsMode.ENFORCE, ("mx1.example.com", "*.backup.example"), 86400)


def test_select_enforce_keeps_only_matching() -> None:
    got = select(ENFORCE, ["mx1.example.com", "evil.example.net", "b.backup.example"])
    assert got.mode is StsMode.ENFORCE
    assert [c.host for c in got.candidates] == ["mx1.example.com", "b.backup.example"]
    assert all(c.pkix_required and c.report_failures and c.matches for c in got.candidates)
    assert got.rejected == ("evil.example.net",)


def test_select_enforce_nothing_matches() -> None:
    got = select(ENFORCE, ["evil.example.net"])
    assert got.candidates == ()
    assert got.rejected == ("evil.example.net",)


def test_select_testing_keeps_all_and_reports() -> None:
    policy = StsPolicy("STSv1", StsMode.TESTING, ENFORCE.mx, 60)
    got = select(policy, ["evil.example.net", "mx1.example.com"])
    assert [(c.host, c.matches) for c in got.candidates] == [
        ("evil.example.net", False),
        ("mx1.example.com", True),
    ]
    assert not any(c.pkix_required for c in got.candidates)
    assert all(c.report_failures for c in got.candidates)
    assert got.rejected == ()


@pytest.mark.parametrize("policy", [None, StsPolicy("STSv1", StsMode.NONE, (), 60)])
def test_select_none_or_no_policy(policy: StsPolicy | None) -> None:
    got = select(policy, ["a.example", "b.example"])
    assert got.mode is (None if policy is None else StsMode.NONE)
    assert [c.host for c in got.candidates] == ["a.example", "b.example"]
    assert not any(c.pkix_required or c.report_failures for c in got.candidates)
