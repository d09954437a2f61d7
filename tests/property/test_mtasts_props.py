"""Property tests for the MTA-STS record and policy parsers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailactors.protocol.mtasts import (
    MAX_AGE_LIMIT,
    StsMode,
    StsPolicy,
    StsPolicyError,
    StsRecordError,
    mx_matches,
    parse_policy,
    parse_record,
)

_label = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,10}[a-z0-9])?", fullmatch=True)
_domain = st.lists(_label, min_size=2, max_size=4).map(".".join)
_pattern = st.one_of(_domain, _domain.map(lambda d: "*." + d))


@st.composite
def policies(draw: st.DrawFn) -> StsPolicy:
    mode = draw(st.sampled_from(list(StsMode)))
    min_mx = 0 if mode is StsMode.NONE else 1
    mx = tuple(draw(st.lists(_pattern, min_size=min_mx, max_size=4)))
    max_age = draw(st.integers(0, MAX_AGE_LIMIT))
    return StsPolicy("STSv1", mode, mx, max_age)


def _render(policy: StsPolicy, order: list[int], term: str) -> bytes:
    lines = [
        "version: STSv1",
        f"mode: {policy.mode.value}",
        f"max_age: {policy.max_age}",
    ]
    fields = [lines[i] for i in order] + [f"mx: {m}" for m in policy.mx]
    return (term.join(fields) + term).encode()


@given(policies(), st.permutations([0, 1, 2]), st.sampled_from(["\n", "\r\n"]))
def test_policy_roundtrip(policy: StsPolicy, order: list[int], term: str) -> None:
    assert parse_policy(_render(policy, order, term)) == policy


@given(st.binary(max_size=300))
def test_parse_policy_arbitrary_bytes(data: bytes) -> None:
    try:
        policy = parse_policy(data)
    except StsPolicyError:
        return
    assert policy.version == "STSv1"
    assert 0 <= policy.max_age <= MAX_AGE_LIMIT
    assert policy.mx or policy.mode is StsMode.NONE


@given(st.text(max_size=100))
def test_parse_record_arbitrary_text(text: str) -> None:
    try:
        record = parse_record(text)
    except StsRecordError:
        return
    assert 1 <= len(record.id) <= 32 and record.id.isascii() and record.id.isalnum()


@given(_label, _domain)
def test_wildcard_matches_exactly_one_label(first: str, domain: str) -> None:
    policy = StsPolicy("STSv1", StsMode.ENFORCE, ("*." + domain,), 1)
    assert mx_matches(policy, f"{first}.{domain}")
    assert not mx_matches(policy, domain)
    assert not mx_matches(policy, f"{first}.{first}.{domain}")
