"""BODY and BODYSTRUCTURE (RFC 3501 7.4.2 and 9), expected bytes written from the RFC."""

from __future__ import annotations

from mailactors.protocol.message import MAX_NESTING_DEPTH, bodystructure, parse_message


def crlf(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


def rfc3501_example() -> bytes:
    first = b"".join(b"x" * 48 + b"\r\n" for _ in range(22)) + b"y" * 50 + b"\r\n"
    second = b"".join(b"A" * 60 + b"\r\n" for _ in range(72)) + b"B" * 88 + b"\r\n"
    assert (len(first), len(second)) == (1152, 4554)
    return (
        crlf(
            "From: Terry Gray <gray@cac.washington.edu>",
            "MIME-Version: 1.0",
            'Content-Type: MULTIPART/MIXED; BOUNDARY="b1"',
            "",
            "--b1",
            "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII",
            "Content-Transfer-Encoding: 7BIT",
            "",
        )
        + first
        + b"\r\n"
        + crlf(
            "--b1",
            "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff",
            "Content-ID: <960723163407.20117h@cac.washington.edu>",
            "Content-Description: Compiler diff",
            "Content-Transfer-Encoding: BASE64",
            "",
        )
        + second
        + b"\r\n"
        + crlf("--b1--")
    )


def test_rfc3501_example_body() -> None:
    # RFC 3501 7.4.2, the example of the BODYSTRUCTURE fetch item (in its non-extensible form).
    assert bodystructure(parse_message(rfc3501_example()), False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")'
    )


def test_rfc3501_example_bodystructure_extension_data() -> None:
    assert bodystructure(parse_message(rfc3501_example()), True) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23 NIL NIL NIL NIL)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73 '
        b'NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "b1") NIL NIL NIL)'
    )


def test_plain_message_defaults() -> None:
    data = crlf("Subject: x", "", "one", "two")
    part = parse_message(data)
    # body-type-text with the RFC 2045 default type and "7bit" for an absent encoding.
    assert bodystructure(part, False) == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 2)'
    assert (
        bodystructure(part, True)
        == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 2 NIL NIL NIL NIL)'
    )


def test_basic_part_with_all_extension_fields() -> None:
    data = crlf(
        "Content-Type: multipart/mixed; boundary=b",
        "Content-Disposition: inline",
        "Content-Language: en",
        "",
        "--b",
        "Content-Type: image/png; name=a.png",
        "Content-Transfer-Encoding: base64",
        "Content-ID: <img@x>",
        "Content-MD5: aGFzaA==",
        "Content-Disposition: attachment; filename=a.png",
        "Content-Language: en, fr",
        "Content-Location: http://x/a.png",
        "",
        "iVBORw==",
        "--b--",
    )
    assert bodystructure(parse_message(data), True) == (
        b'(("image" "png" ("name" "a.png") "<img@x>" NIL "base64" 8 "aGFzaA==" '
        b'("attachment" ("filename" "a.png")) ("en" "fr") "http://x/a.png") '
        b'"mixed" ("boundary" "b") ("inline" NIL) "en" NIL)'
    )
    assert bodystructure(parse_message(data), False) == (
        b'(("image" "png" ("name" "a.png") "<img@x>" NIL "base64" 8) "mixed")'
    )


def test_message_rfc822_part() -> None:
    enclosed = crlf(
        "From: Bob <bob@x.org>",
        "Subject: hi",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "hello",
    )
    data = (
        crlf(
            "Content-Type: multipart/mixed; boundary=b",
            "",
            "--b",
            "Content-Type: message/rfc822",
            "",
        )
        + enclosed
        + crlf("--b--")
    )
    size = len(enclosed) - 2
    # body-type-msg = media-message SP body-fields SP envelope SP body SP body-fld-lines
    assert bodystructure(parse_message(data), False) == (
        b'(("message" "rfc822" NIL NIL NIL "7bit" %d '
        b'(NIL "hi" (("Bob" NIL "bob" "x.org")) (("Bob" NIL "bob" "x.org")) '
        b'(("Bob" NIL "bob" "x.org")) NIL NIL NIL NIL NIL) '
        b'("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 1) 5) "mixed")' % size
    )


def test_multipart_without_parts_shows_one_empty_text_part() -> None:
    data = crlf("Content-Type: multipart/mixed; boundary=missing", "", "no delimiter here")
    assert bodystructure(parse_message(data), False) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")'
    )
    assert bodystructure(parse_message(data), True) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) '
        b'"mixed" ("boundary" "missing") NIL NIL NIL)'
    )


def test_message_past_depth_limit_still_has_valid_syntax() -> None:
    level = b"From: a@b\r\nContent-Type: message/rfc822\r\n\r\n"
    data = level * (MAX_NESTING_DEPTH + 1) + b"x"
    out = bodystructure(parse_message(data), False)
    assert out.count(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)") == 1
    assert out.count(b"(") == out.count(b")")


def test_non_ascii_parameter_is_sent_as_literal() -> None:
    data = b'Content-Type: application/octet-stream; name="r\xc3\xa9sum\xc3\xa9.pdf"\r\n\r\nx'
    assert bodystructure(parse_message(data), False) == (
        b'("application" "octet-stream" ("name" {12}\r\nr\xc3\xa9sum\xc3\xa9.pdf) '
        b'NIL NIL "7bit" 1)'
    )


def test_quoted_specials_are_escaped() -> None:
    data = b'Content-Type: text/plain; name="a\\"b\\\\c"\r\nContent-Description: say "hi"\r\n\r\n'
    assert bodystructure(parse_message(data), False) == (
        b'("text" "plain" ("name" "a\\"b\\\\c") NIL "say \\"hi\\"" "7bit" 0 0)'
    )
