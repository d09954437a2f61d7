"""The Authentication-Results header field (RFC 8601): building, parsing, is_ours."""

from __future__ import annotations

# The independent implementation, installed as a dependency of dkimpy and parsedmarc.
import authres  # type: ignore[import-untyped]
import pytest

from mailactors.protocol.authres import (
    AuthResults,
    AuthResultsSyntaxError,
    MethodResult,
    ResultProperty,
    authentication_results,
    dkim_method,
    dmarc_method,
    format_authentication_results,
    iprev_method,
    is_ours,
    parse_authentication_results,
    spf_method,
)
from mailactors.protocol.dmarc import DkimInput, SpfInput, evaluate
from mailactors.protocol.dns import InMemoryResolver


def _value(field: str) -> str:
    name, colon, value = field.partition(":")
    assert (name, colon) == ("Authentication-Results", ":")
    return value


def _message_results() -> str:
    resolver = InMemoryResolver(
        records={("_dmarc.example.com", "TXT"): ["v=DMARC1; p=reject; sp=quarantine; pct=50"]}
    )
    dkim = [
        DkimInput("pass", "example.com", "2024a", "aBc/dE+f", "@example.com"),
        DkimInput("fail", "list.example", "s", "Zz9", None),
    ]
    evaluation = evaluate(
        resolver,
        from_domain="example.com",
        spf=SpfInput("softfail", "bounce.example.net"),
        dkim=dkim,
        pct_draw=80,
    )
    return authentication_results(
        "mx.example.org",
        iprev=iprev_method("pass", "192.0.2.10", ["mail.example.com"]),
        spf=spf_method("softfail", mailfrom="bounces@bounce.example.net", helo="mail.example.com"),
        dkim=[dkim_method(d) for d in dkim],
        dmarc=dmarc_method(evaluation),
    )


def test_message_field_golden() -> None:
    assert _message_results() == (
        "Authentication-Results: mx.example.org;\r\n"
        "\tiprev=pass (mail.example.com) policy.iprev=192.0.2.10;\r\n"
        "\tspf=softfail smtp.mailfrom=bounces@bounce.example.net;\r\n"
        '\tdkim=pass header.d=example.com header.s=2024a header.b="aBc/dE+f"\r\n'
        "\theader.i=@example.com;\r\n"
        "\tdkim=fail header.d=list.example header.s=s header.b=Zz9;\r\n"
        "\tdmarc=pass (p=reject sp=quarantine pct=50 dis=none) header.from=example.com\r\n"
    )


def test_message_field_parses_back() -> None:
    parsed = parse_authentication_results(_value(_message_results()))
    assert parsed.authserv_id == "mx.example.org"
    assert parsed.version is None
    assert [(r.method, r.result) for r in parsed.results] == [
        ("iprev", "pass"),
        ("spf", "softfail"),
        ("dkim", "pass"),
        ("dkim", "fail"),
        ("dmarc", "pass"),
    ]
    assert parsed.results[0].comment == "mail.example.com"
    assert parsed.results[2].properties == (
        ResultProperty("header", "d", "example.com"),
        ResultProperty("header", "s", "2024a"),
        ResultProperty("header", "b", "aBc/dE+f"),
        ResultProperty("header", "i", "@example.com"),
    )
    assert parsed.results[4].comment == "p=reject sp=quarantine pct=50 dis=none"


def _authres_view(field: str) -> list[tuple[str, str, str | None, list[tuple[str, str, str]]]]:
    header = authres.AuthenticationResultsHeader.parse(field.rstrip("\r\n"))
    return [
        (
            r.method,
            r.result,
            r.reason,
            [
                (p.type, p.name, p.value)
                for p in r.properties
                if (p.type, p.name) != ("header", "b")
            ],
        )
        for r in header.results
    ]


def _our_view(field: str) -> list[tuple[str, str, str | None, list[tuple[str, str, str]]]]:
    parsed = parse_authentication_results(_value(field))
    # The authres package loses a quoted property value that another property follows
    # (header.b here): compare without header.b.
    return [
        (
            r.method,
            r.result,
            r.reason,
            [
                (p.ptype, p.name, p.value)
                for p in r.properties
                if (p.ptype, p.name) != ("header", "b")
            ],
        )
        for r in parsed.results
    ]


@pytest.mark.parametrize(
    "field",
    [
        _message_results(),
        authentication_results("mx.example.org"),
        authentication_results(
            "mx.example.org",
            spf=spf_method("none", mailfrom=None, helo="helo.example"),
            dkim=[dkim_method(DkimInput("neutral", "x.example", "sel", "", "user@x.example"))],
        ),
        format_authentication_results(
            AuthResults(
                "mx.example.org",
                (MethodResult("x-test", "pass", reason="looks good", comment="(nested)"),),
            )
        ),
    ],
)
def test_authres_package_agrees(field: str) -> None:
    assert _authres_view(field) == _our_view(field)
    assert (
        authres.AuthenticationResultsHeader.parse(field.rstrip("\r\n")).authserv_id
        == parse_authentication_results(_value(field)).authserv_id
    )


def test_no_result() -> None:
    field = authentication_results("mx.example.org")
    assert field == "Authentication-Results: mx.example.org; none\r\n"
    assert parse_authentication_results(_value(field)) == AuthResults("mx.example.org", ())


def test_spf_identity() -> None:
    assert spf_method("pass", mailfrom="a@example.com", helo="h.example").properties == (
        ResultProperty("smtp", "mailfrom", "a@example.com"),
    )
    # A null reverse-path: the HELO identity was checked (RFC 7208 2.4).
    assert spf_method("pass", mailfrom="", helo="h.example").properties == (
        ResultProperty("smtp", "helo", "h.example"),
    )
    assert spf_method("none", mailfrom=None, helo=None).properties == ()


def test_dmarc_method_without_record() -> None:
    evaluation = evaluate(
        InMemoryResolver(),
        from_domain="example.com",
        spf=SpfInput("none", "example.com"),
        dkim=[],
        pct_draw=0,
    )
    assert dmarc_method(evaluation) == MethodResult(
        "dmarc", "none", properties=(ResultProperty("header", "from", "example.com"),)
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("example.com", "example.com"),
        ("user@example.com", "user@example.com"),
        ("@example.com", "@example.com"),
        ('"john doe"@example.com', '"john doe"@example.com'),
        ("a/b=", '"a/b="'),
        ("2001:db8::1", '"2001:db8::1"'),
        ("two words", '"two words"'),
        ('q"uo\\te', '"q\\"uo\\\\te"'),
        ("", '""'),
        ("ünï@bücher.example", "ünï@bücher.example"),
        ("ünï", '"ünï"'),
    ],
)
def test_property_values_quoted_when_needed(value: str, written: str) -> None:
    field = format_authentication_results(
        AuthResults(
            "h", (MethodResult("x", "pass", properties=(ResultProperty("p", "q", value),)),)
        )
    )
    assert field == f"Authentication-Results: h;\r\n\tx=pass p.q={written}\r\n"
    assert parse_authentication_results(_value(field)).results[0].properties[0].value == value


def test_comment_escaping() -> None:
    result = MethodResult("x", "pass", comment="a (b) \\ c")
    field = format_authentication_results(AuthResults("h", (result,)))
    assert "(a \\(b\\) \\\\ c)" in field
    assert parse_authentication_results(_value(field)).results == (result,)


def test_folding() -> None:
    props = tuple(ResultProperty("header", f"p{i}", "v" * 20) for i in range(8))
    field = format_authentication_results(
        AuthResults("mx.example.org", (MethodResult("x", "pass", properties=props),), version=1)
    )
    lines = field.split("\r\n")
    assert lines[0] == "Authentication-Results: mx.example.org 1;"
    assert lines[-1] == ""
    assert all(len(line) <= 78 for line in lines)
    assert all(line.startswith("\t") for line in lines[1:-1])
    assert len(lines) > 4
    assert parse_authentication_results(_value(field)).results[0].properties == props


def test_long_piece_stays_whole_until_998() -> None:
    long = MethodResult("x", "pass", properties=(ResultProperty("p", "q", "v" * 500),))
    field = format_authentication_results(AuthResults("h", (long,)))
    assert max(len(line) for line in field.split("\r\n")) > 500
    too_long = MethodResult("x", "pass", properties=(ResultProperty("p", "q", "v" * 1000),))
    with pytest.raises(ValueError):
        format_authentication_results(AuthResults("h", (too_long,)))


@pytest.mark.parametrize(
    "results",
    [
        AuthResults("bad\r\nid"),
        AuthResults("h", (MethodResult("bad method", "pass"),)),
        AuthResults("h", (MethodResult("x", "pass-"),)),
        AuthResults("h", (MethodResult("x", "pass", comment="a\nb"),)),
        AuthResults("h", (MethodResult("x", "pass", reason="\x00"),)),
        AuthResults("h", (MethodResult("x", "pass", comment="next\x85line"),)),
        AuthResults(
            "h", (MethodResult("x", "pass", properties=(ResultProperty("a.b", "c", "d"),)),)
        ),
        AuthResults("h", (MethodResult("x", "pass", properties=(ResultProperty("a", "", "d"),)),)),
    ],
)
def test_unwritable_results(results: AuthResults) -> None:
    with pytest.raises(ValueError):
        format_authentication_results(results)


# RFC 8601 appendix B examples (B.2 to B.7) and other forms found in the wild.
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" example.org 1; none", AuthResults("example.org", (), 1)),
        (
            " example.com; spf=pass smtp.mailfrom=example.net",
            AuthResults(
                "example.com",
                (
                    MethodResult(
                        "spf",
                        "pass",
                        properties=(ResultProperty("smtp", "mailfrom", "example.net"),),
                    ),
                ),
            ),
        ),
        (
            " example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n"
            "          spf=pass smtp.mailfrom=example.net",
            AuthResults(
                "example.com",
                (
                    MethodResult(
                        "auth",
                        "pass",
                        comment="cram-md5",
                        properties=(ResultProperty("smtp", "auth", "sender@example.net"),),
                    ),
                    MethodResult(
                        "spf",
                        "pass",
                        properties=(ResultProperty("smtp", "mailfrom", "example.net"),),
                    ),
                ),
            ),
        ),
        (
            " example.com; iprev=pass\r\n          policy.iprev=192.0.2.200",
            AuthResults(
                "example.com",
                (
                    MethodResult(
                        "iprev",
                        "pass",
                        properties=(ResultProperty("policy", "iprev", "192.0.2.200"),),
                    ),
                ),
            ),
        ),
        (
            " example.com;\r\n      dkim=pass (good signature) header.d=mail-router.example.net;\r\n"
            "      dkim=fail (bad signature) header.d=newyork.example.com",
            AuthResults(
                "example.com",
                (
                    MethodResult(
                        "dkim",
                        "pass",
                        comment="good signature",
                        properties=(ResultProperty("header", "d", "mail-router.example.net"),),
                    ),
                    MethodResult(
                        "dkim",
                        "fail",
                        comment="bad signature",
                        properties=(ResultProperty("header", "d", "newyork.example.com"),),
                    ),
                ),
            ),
        ),
        # RFC 8601 B.7, the comment-heavy example.
        (
            " foo.example.net (foobar) 1 (baz);\r\n"
            "    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n"
            "      policy (A dot can go here) . (like that) expired\r\n"
            "      (this surprised me) = (as I wasn't expecting it) 1362471462",
            AuthResults(
                "foo.example.net",
                (
                    MethodResult(
                        "dkim",
                        "fail",
                        version=1,
                        properties=(ResultProperty("policy", "expired", "1362471462"),),
                    ),
                ),
                1,
            ),
        ),
        (
            ' "quoted id"; SPF=Pass reason="all good" Smtp.MailFrom=a@b.example;',
            AuthResults(
                "quoted id",
                (
                    MethodResult(
                        "spf",
                        "pass",
                        reason="all good",
                        properties=(ResultProperty("smtp", "mailfrom", "a@b.example"),),
                    ),
                ),
            ),
        ),
        (
            " mx.google.com; dkim=pass header.i=@gmail.com header.s=20230601 header.b=Ab/Cd+E=;"
            " spf=pass (google.com: domain of a@gmail.com designates 2001:db8::1 as permitted"
            " sender) smtp.mailfrom=a@gmail.com; dmarc=pass (p=NONE sp=QUARANTINE dis=NONE)"
            " header.from=gmail.com",
            AuthResults(
                "mx.google.com",
                (
                    MethodResult(
                        "dkim",
                        "pass",
                        properties=(
                            ResultProperty("header", "i", "@gmail.com"),
                            ResultProperty("header", "s", "20230601"),
                            ResultProperty("header", "b", "Ab/Cd+E="),
                        ),
                    ),
                    MethodResult(
                        "spf",
                        "pass",
                        comment="google.com: domain of a@gmail.com designates 2001:db8::1 as permitted sender",
                        properties=(ResultProperty("smtp", "mailfrom", "a@gmail.com"),),
                    ),
                    MethodResult(
                        "dmarc",
                        "pass",
                        comment="p=NONE sp=QUARANTINE dis=NONE",
                        properties=(ResultProperty("header", "from", "gmail.com"),),
                    ),
                ),
            ),
        ),
        (" none.example; none=pass", AuthResults("none.example", (MethodResult("none", "pass"),))),
    ],
)
def test_parse(value: str, expected: AuthResults) -> None:
    assert parse_authentication_results(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "(only a comment)",
        "example.com",
        "example.com 1",
        "example.com;",
        "example.com; spf",
        "example.com; spf=",
        "example.com; spf=pass smtp",
        "example.com; spf=pass smtp.mailfrom",
        "example.com; spf=pass smtp.mailfrom=",
        "example.com; spf=pass .mailfrom=x",
        "example.com; spf/=pass",
        "example.com; spf/1234567890=pass",
        "example.com; =pass",
        "example.com; spf=pass (unterminated",
        'example.com; spf=pass reason="unterminated',
        "example.com; spf=pass;;",
        "example.com; none; spf=pass",
        "example.com 99999999999; none",
        "example.com; spf=pass\r\nsmtp.mailfrom=x",
        "example.com; spf=pass smtp.mailfrom=a\x00b",
        "example.com; spf=pa-",
    ],
)
def test_parse_errors(value: str) -> None:
    with pytest.raises(AuthResultsSyntaxError):
        parse_authentication_results(value)


@pytest.mark.parametrize(
    ("value", "ours"),
    [
        (" mx.example.org; spf=pass smtp.mailfrom=a@b.example", True),
        ("MX.Example.ORG; none", True),
        ("mx.example.org.; none", True),
        ('(forged) "mx.example.org" 1; dkim=pass', True),
        # Malformed after the authserv-id: still ours, still removed.
        ("mx.example.org; garbage (((", True),
        ("mx.example.org", True),
        ("other.example.org; spf=pass", False),
        ("mx.example.org.evil; spf=pass", False),
        ("example.org; spf=pass", False),
        ("", False),
        ("(unterminated", False),
        ("\r\n", False),
    ],
)
def test_is_ours(value: str, ours: bool) -> None:
    assert is_ours(value, "mx.example.org") is ours
