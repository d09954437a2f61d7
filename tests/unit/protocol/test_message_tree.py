"""The MIME part tree: offsets, MIME fields, and robustness against broken input."""

from __future__ import annotations

from mailactors.protocol.message import (
    MAX_BODY_PARTS,
    MAX_NESTING_DEPTH,
    Part,
    decode_params,
    parse_message,
    text_contains,
)


def crlf(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


def body(data: bytes, part: Part) -> bytes:
    return data[part.body_start : part.end]


def header(data: bytes, part: Part) -> bytes:
    return data[part.header_start : part.body_start]


PLAIN = crlf(
    "From: Alice <alice@example.com>",
    "To: bob@example.org",
    "Subject: lunch",
    "",
    "Shall we?",
    "A.",
)


def test_plain_message_defaults_to_text_plain_us_ascii() -> None:
    part = parse_message(PLAIN)
    assert (part.media_type, part.media_subtype) == ("text", "plain")
    # RFC 2045 5.2 default.
    assert part.params == (("charset", "us-ascii"),)
    assert part.transfer_encoding is None
    assert header(PLAIN, part).endswith(b"Subject: lunch\r\n\r\n")
    assert body(PLAIN, part) == b"Shall we?\r\nA.\r\n"
    assert part.size == len(b"Shall we?\r\nA.\r\n")
    assert part.lines == 2
    assert part.children == ()
    assert [field.name for field in part.fields] == ["From", "To", "Subject"]
    assert part.fields[0].raw == b"From: Alice <alice@example.com>\r\n"


def test_folded_header_field_keeps_raw_octets_and_unfolds_value() -> None:
    data = crlf("Subject: a long", "\tsubject line", "X-Other:   spaced  ", "", "b")
    part = parse_message(data)
    subject = part.fields[0]
    assert subject.raw == b"Subject: a long\r\n\tsubject line\r\n"
    assert subject.raw_value == b"a long\tsubject line"
    assert subject.value == "a long\tsubject line"
    assert part.fields[1].raw_value == b"spaced"


def test_encoded_words_are_decoded_in_value() -> None:
    data = crlf(
        "Subject: =?UTF-8?B?w6lw?= =?UTF-8?Q?=C3=A9e?= and =?iso-8859-1?q?caf=E9_au_lait?=",
        "",
    )
    field = parse_message(data).fields[0]
    # White space between adjacent encoded words disappears (RFC 2047 6.2).
    assert field.value == "épée and café au lait"


def test_encoded_word_split_inside_multibyte_character() -> None:
    # "é" is C3 A9 in UTF-8; each encoded word carries one octet.
    data = crlf("Subject: =?utf-8?q?=C3?= =?utf-8?q?=A9t=C3=A9?=", "")
    assert parse_message(data).fields[0].value == "été"


def test_multipart_alternative_offsets() -> None:
    data = crlf(
        "Content-Type: multipart/alternative; boundary=\"=_b\"",
        "",
        "preamble",
        "--=_b",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "plain text",
        "--=_b",
        "Content-Type: text/html",
        "",
        "<p>html</p>",
        "",
        "--=_b--",
        "epilogue",
    )
    part = parse_message(data)
    assert part.is_multipart
    assert part.param("BOUNDARY") == "=_b"
    plain, html = part.children
    assert header(data, plain) == b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    # The CRLF before the delimiter belongs to the delimiter (RFC 2046 5.1.1).
    assert body(data, plain) == b"plain text"
    assert body(data, html) == b"<p>html</p>\r\n"
    assert (html.media_type, html.media_subtype, html.params) == ("text", "html", ())
    assert plain.lines == 1
    assert html.lines == 1


def test_nested_multipart_with_attachment_and_message() -> None:
    inner_message = crlf(
        "From: carol@example.net",
        "Subject: forwarded",
        "",
        "inner body",
    )
    data = (
        crlf(
            "Content-Type: multipart/mixed; boundary=outer",
            "",
            "--outer",
            "Content-Type: multipart/alternative; boundary=inner",
            "",
            "--inner",
            "Content-Type: text/plain",
            "",
            "text",
            "--inner",
            "Content-Type: text/html",
            "",
            "<b>text</b>",
            "--inner--",
            "",
            "--outer",
            'Content-Type: application/pdf; name="r.pdf"',
            "Content-Transfer-Encoding: base64",
            "Content-Disposition: attachment;",
            ' filename="report.pdf"; size=3',
            "Content-ID: <id1@example.com>",
            "Content-Description: The report",
            "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
            "Content-Language: en, de",
            "Content-Location: http://example.com/",
            " r.pdf",
            "",
            "YWJj",
            "--outer",
            "Content-Type: message/rfc822",
            "",
        )
        + inner_message
        + crlf("--outer--")
    )
    part = parse_message(data)
    alternative, pdf, message = part.children
    assert [child.media_subtype for child in alternative.children] == ["plain", "html"]
    assert body(data, alternative.children[1]) == b"<b>text</b>"
    assert pdf.media_type == "application"
    assert pdf.transfer_encoding == "base64"
    assert pdf.disposition == ("attachment", (("filename", "report.pdf"), ("size", "3")))
    assert pdf.content_id == "<id1@example.com>"
    assert pdf.description == "The report"
    assert pdf.md5 == "Q2hlY2sgSW50ZWdyaXR5IQ=="
    assert pdf.language == ("en", "de")
    assert pdf.location == "http://example.com/r.pdf"
    assert pdf.lines == 0
    assert body(data, pdf) == b"YWJj"
    assert message.is_message
    (enclosed,) = message.children
    assert enclosed.header_start == message.body_start
    assert body(data, message) == inner_message[:-2]
    assert body(data, enclosed) == b"inner body"
    assert enclosed.field("subject") is not None
    assert message.lines == 4


def test_rfc2231_parameters_are_joined_and_decoded() -> None:
    data = crlf(
        "Content-Type: application/x-stuff;",
        " title*0*=us-ascii'en'This%20is%20even%20more%20;",
        " title*1*=%2A%2A%2Afun%2A%2A%2A%20;",
        ' title*2="isn\'t it!"; other*=utf-8\'\'%C3%A9t%C3%A9; plain=x',
        "",
    )
    part = parse_message(data)
    assert decode_params(part.params) == {
        "title": "This is even more ***fun*** isn't it!",
        "other": "été",
        "plain": "x",
    }


def test_content_type_comments_and_case() -> None:
    data = crlf("Content-Type: Text/HTML (a comment) ; Charset = \"ISO-8859-1\" (c)", "", "x")
    part = parse_message(data)
    assert (part.media_type, part.media_subtype) == ("Text", "HTML")
    assert part.params == (("Charset", "ISO-8859-1"),)
    assert part.is_text


def test_invalid_content_type_falls_back_to_default() -> None:
    for value in ("text", "/plain", "", "text/", ";;"):
        part = parse_message(crlf(f"Content-Type: {value}", "", "x"))
        assert (part.media_type, part.media_subtype, part.params) == (
            "text",
            "plain",
            (("charset", "us-ascii"),),
        ), value


def test_digest_parts_default_to_message_rfc822() -> None:
    data = crlf(
        "Content-Type: multipart/digest; boundary=d",
        "",
        "--d",
        "",
        "Subject: one",
        "",
        "first",
        "--d",
        "Content-Type: text/plain",
        "",
        "second",
        "--d--",
    )
    first, second = parse_message(data).children
    assert (first.media_type, first.media_subtype, first.params) == ("message", "rfc822", ())
    assert first.children[0].field("subject") is not None
    assert body(data, first.children[0]) == b"first"
    assert second.media_type == "text"


def test_bare_lf_line_endings() -> None:
    data = (
        b"Subject: lf\nContent-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\none\ntwo\n--b\n\nthree\n--b--\n"
    )
    part = parse_message(data)
    first, second = part.children
    assert header(data, part) == b"Subject: lf\nContent-Type: multipart/mixed; boundary=b\n\n"
    assert body(data, first) == b"one\ntwo"
    assert first.lines == 2
    assert body(data, second) == b"three"
    assert second.fields == ()
    assert second.media_subtype == "plain"


def test_headers_without_body() -> None:
    data = b"Subject: only a header\r\nFrom: a@b"
    part = parse_message(data)
    assert part.body_start == len(data) == part.end
    assert part.size == 0
    assert part.lines == 0
    assert [field.name for field in part.fields] == ["Subject", "From"]


def test_empty_message() -> None:
    part = parse_message(b"")
    assert (part.header_start, part.body_start, part.end) == (0, 0, 0)
    assert part.fields == ()


def test_line_that_is_not_a_field_starts_the_body() -> None:
    data = b"Subject: x\r\nthis is no header\r\nmore\r\n"
    part = parse_message(data)
    assert [field.name for field in part.fields] == ["Subject"]
    assert body(data, part) == b"this is no header\r\nmore\r\n"


def test_missing_final_boundary_runs_to_end() -> None:
    data = crlf(
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b",
        "",
        "one",
        "--b",
        "",
        "two, and the close delimiter never comes",
    )
    part = parse_message(data)
    assert [body(data, child) for child in part.children] == [
        b"one",
        b"two, and the close delimiter never comes\r\n",
    ]


def test_missing_boundary_gives_multipart_without_parts() -> None:
    no_param = parse_message(crlf("Content-Type: multipart/mixed", "", "--b", "x"))
    assert no_param.is_multipart
    assert no_param.children == ()
    never_used = parse_message(crlf("Content-Type: multipart/mixed; boundary=zz", "", "--b", "x"))
    assert never_used.children == ()


def test_boundary_must_start_a_line_and_end_with_padding_only() -> None:
    data = crlf(
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b  ",
        "",
        "x --b inside a line",
        "--bb is another boundary",
        "--b",
        "",
        "second",
        "--b--",
    )
    first, second = parse_message(data).children
    assert body(data, first) == b"x --b inside a line\r\n--bb is another boundary"
    assert body(data, second) == b"second"


def test_empty_body_parts() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n\r\n--b--\r\n"
    first, second = parse_message(data).children
    assert first.size == 0
    assert second.size == 0
    assert first.fields == ()


def test_eight_bit_junk_in_headers() -> None:
    data = b"Subject: caf\xe9 \xff\xfe\r\nFrom: \xc3\xa9mile <e@x>\r\nContent-Type: text/plain; name=\xe9\r\n\r\nbody\xff"
    part = parse_message(data)
    assert part.fields[0].raw_value == b"caf\xe9 \xff\xfe"
    assert "caf" in part.fields[0].value
    assert part.fields[1].value == "émile <e@x>"
    # Octets survive into the parameter value (surrogate-escaped), to be served as they are.
    assert part.params[0][1].encode("utf-8", "surrogateescape") == b"\xe9"
    assert part.size == 5


def test_nesting_is_limited() -> None:
    depth = MAX_NESTING_DEPTH + 20
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (level, level)
        for level in range(depth)
    )
    data = head + b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    part = parse_message(data)
    levels = 0
    while part.children:
        part = part.children[0]
        levels += 1
    assert levels == MAX_NESTING_DEPTH
    assert part.is_multipart


def test_nested_messages_are_limited() -> None:
    data = b"Content-Type: message/rfc822\r\n\r\n" * (MAX_NESTING_DEPTH * 3) + b"end"
    part = parse_message(data)
    levels = 0
    while part.children:
        part = part.children[0]
        levels += 1
    assert levels == MAX_NESTING_DEPTH


def test_number_of_body_parts_is_limited() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n" * (MAX_BODY_PARTS + 50)
    part = parse_message(data)
    assert len(part.children) == MAX_BODY_PARTS


def test_pathological_inputs_finish() -> None:
    # Each of these would take minutes with a quadratic scan.
    size = 1_000_000
    cases = [
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--" * size,
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"\n--b x" * (size // 6),
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b" * (size // 3),
        b"X: " + b"y" * size,
        b"X: y\r\n" + b" y\r\n" * (size // 4),
        b"Content-Type: multipart/mixed; boundary=b; " + b"a=" * size + b"\r\n\r\n",
        b"Content-Type: text/plain; x=(" + b"(" * size + b"\r\n\r\n",
        b"Subject: " + b"=?" * size + b"\r\n\r\n",
    ]
    for data in cases:
        part = parse_message(data)
        assert part.end == len(data)
        for header_field in part.fields:
            assert isinstance(header_field.value, str)


def test_non_text_codecs_are_never_used_as_charsets() -> None:
    # "zlib" and "bz2" are Python codecs too, but bytes-to-bytes ones: a charset name must
    # never make us decompress (or crash on) a body or header.
    data = (
        b"Subject: =?zlib?b?eJxLTAQAAhMBBg==?= =?bz2?q?x?= =?hex?q?41?=\r\n"
        b"Content-Type: text/plain; charset=zlib\r\n\r\nx\x9cKL\x04\x00"
    )
    part = parse_message(data)
    assert part.fields[0].value.endswith("x41")
    assert "aaa" not in part.fields[0].value
    assert not text_contains(data, part, "aa", headers=True)
