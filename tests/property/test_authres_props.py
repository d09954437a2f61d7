"""Property tests: Authentication-Results parsing is total, building round-trips, and the
independent `authres` package reads what we write."""

from __future__ import annotations

import authres  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.protocol.authres import (
    AuthResults,
    AuthResultsSyntaxError,
    MethodResult,
    ResultProperty,
    format_authentication_results,
    is_ours,
    parse_authentication_results,
)

# Printable text (no control characters), Unicode included, as RFC 6532 allows.
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs"))
TEXT = st.text(PRINTABLE, max_size=30)
KEYWORD = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
VERSION = st.none() | st.integers(0, 999_999_999)
DOMAIN = st.from_regex(r"[a-z0-9]{1,8}(?:\.[a-z0-9]{1,8}){1,3}", fullmatch=True)
ADDRESS = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.from_regex(r"[a-z0-9.+_-]{0,8}", fullmatch=True).filter(
        lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s
    ),
    DOMAIN,
)
VALUE = TEXT | DOMAIN | ADDRESS

PROPERTY = st.builds(ResultProperty, KEYWORD, KEYWORD, VALUE)
METHOD_RESULT = st.builds(
    MethodResult,
    method=KEYWORD,
    result=KEYWORD,
    version=VERSION,
    reason=st.none() | VALUE,
    comment=st.none() | TEXT,
    properties=st.lists(PROPERTY, max_size=4).map(tuple),
)
AUTH_RESULTS = st.builds(
    AuthResults,
    authserv_id=DOMAIN | TEXT,
    results=st.lists(METHOD_RESULT, max_size=4).map(tuple),
    version=VERSION,
)

# Text made of the grammar's own characters reaches deeper into the parser than random text.
GRAMMAR_TEXT = st.text(st.sampled_from(list(' \t\r\n;=./@"()\\:,-') + list("ab19xü")), max_size=80)


@given(st.text(max_size=200) | GRAMMAR_TEXT)
def test_parser_is_total(value: str) -> None:
    try:
        parsed = parse_authentication_results(value)
    except AuthResultsSyntaxError:
        return
    assert isinstance(parsed, AuthResults)


@given(st.text(max_size=100) | GRAMMAR_TEXT, DOMAIN)
def test_is_ours_is_total(value: str, authserv_id: str) -> None:
    assert isinstance(is_ours(value, authserv_id), bool)


@settings(max_examples=300)
@given(AUTH_RESULTS)
def test_build_parse_roundtrip(results: AuthResults) -> None:
    field = format_authentication_results(results)
    assert field.startswith("Authentication-Results: ") and field.endswith("\r\n")
    assert "\r\n" not in field[:-2].replace("\r\n\t", "")
    assert all(len(line) <= 998 for line in field.split("\r\n"))
    value = field.partition(":")[2]
    assert parse_authentication_results(value) == results
    assert is_ours(value, results.authserv_id)


# The package loses a quoted property value that another property follows, so only the
# last property may need quoting; it may not be empty or blank either, which the package
# also loses.
PLAIN_VALUE = DOMAIN | ADDRESS
LAST_VALUE = PLAIN_VALUE | st.from_regex(
    r"[A-Za-z0-9/=+:]([A-Za-z0-9/=+: ]{0,10}[A-Za-z0-9/=+:])?", fullmatch=True
)
PACKAGE_PTYPE = st.sampled_from(["smtp", "header", "policy"])


@st.composite
def package_properties(draw: st.DrawFn) -> tuple[ResultProperty, ...]:
    plain = draw(
        st.lists(st.builds(ResultProperty, PACKAGE_PTYPE, KEYWORD, PLAIN_VALUE), max_size=2)
    )
    last = draw(st.lists(st.builds(ResultProperty, PACKAGE_PTYPE, KEYWORD, LAST_VALUE), max_size=1))
    return tuple(plain + last)


@given(
    st.lists(
        st.builds(
            MethodResult,
            method=KEYWORD.filter(lambda k: not k[0].isdigit()),
            result=KEYWORD.filter(lambda k: not k[0].isdigit()),
            properties=package_properties(),
        ),
        max_size=4,
    ),
    DOMAIN,
)
def test_authres_package_reads_our_fields(results: list[MethodResult], authserv_id: str) -> None:
    field = format_authentication_results(AuthResults(authserv_id, tuple(results)))
    theirs = authres.AuthenticationResultsHeader.parse(field.rstrip("\r\n"))
    assert theirs.authserv_id == authserv_id
    assert [(r.method, r.result) for r in theirs.results] == [(r.method, r.result) for r in results]
    for their, our in zip(theirs.results, results, strict=True):
        assert [(p.type, p.name, p.value) for p in their.properties] == [
            (p.ptype, p.name, p.value) for p in our.properties
        ]
