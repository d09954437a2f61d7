"""BODY[section] (RFC 3501 6.4.5) and BINARY[section] (RFC 3516)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailactors.protocol.message import (
    SectionSpec,
    Summary,
    UnknownTransferEncoding,
    binary_section,
    parse_message,
    parse_section_spec,
    section,
    summarize,
)


def crlf(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


def rfc3501_parts_example() -> bytes:
    """The message structure of the RFC 3501 6.4.5 example, with recognisable bodies."""
    return crlf(
        "Subject: top",
        "Content-Type: MULTIPART/MIXED; boundary=t",
        "",
        "--t",
        "Content-Type: TEXT/PLAIN",
        "",
        "part 1",
        "--t",
        "Content-Type: APPLICATION/OCTET-STREAM",
        "Content-Transfer-Encoding: base64",
        "",
        "cGFydCAy",
        "--t",
        "Content-Type: MESSAGE/RFC822",
        "",
        "Subject: three",
        "Content-Type: MULTIPART/MIXED; boundary=m3",
        "",
        "--m3",
        "Content-Type: TEXT/PLAIN",
        "",
        "part 3.1",
        "--m3",
        "Content-Type: APPLICATION/OCTET-STREAM",
        "",
        "part 3.2",
        "--m3--",
        "--t",
        "Content-Type: MULTIPART/MIXED; boundary=m4",
        "",
        "--m4",
        "Content-Type: IMAGE/GIF",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "GIF=3D4.1=",
        "",
        "--m4",
        "Content-Type: MESSAGE/RFC822",
        "",
        "Subject: four two",
        "From: x@y",
        "Content-Type: MULTIPART/MIXED; boundary=m42",
        "",
        "--m42",
        "Content-Type: TEXT/PLAIN",
        "",
        "part 4.2.1",
        "--m42",
        "Content-Type: MULTIPART/ALTERNATIVE; boundary=alt",
        "",
        "--alt",
        "Content-Type: TEXT/PLAIN",
        "",
        "part 4.2.2.1",
        "--alt",
        "Content-Type: TEXT/RICHTEXT",
        "",
        "part 4.2.2.2",
        "--alt--",
        "--m42--",
        "--m4--",
        "--t--",
    )


EXAMPLE = rfc3501_parts_example()
EXAMPLE_PART = parse_message(EXAMPLE)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1", b"part 1"),
        ("2", b"cGFydCAy"),
        ("3.1", b"part 3.1"),
        ("3.2", b"part 3.2"),
        ("4.1", b"GIF=3D4.1=\r\n"),
        ("4.1.MIME", b"Content-Type: IMAGE/GIF\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"),
        ("4.2.1", b"part 4.2.1"),
        ("4.2.2.1", b"part 4.2.2.1"),
        ("4.2.2.2", b"part 4.2.2.2"),
        ("3.HEADER", b"Subject: three\r\nContent-Type: MULTIPART/MIXED; boundary=m3\r\n\r\n"),
        ("4.2.HEADER.FIELDS (subject)", b"Subject: four two\r\n\r\n"),
        ("4.2.HEADER.FIELDS.NOT (SUBJECT content-type)", b"From: x@y\r\n\r\n"),
        ("HEADER", b"Subject: top\r\nContent-Type: MULTIPART/MIXED; boundary=t\r\n\r\n"),
        ("header.fields (Subject)", b"Subject: top\r\n\r\n"),
        ('HEADER.FIELDS ("Subject" X-None)', b"Subject: top\r\n\r\n"),
        ("HEADER.FIELDS (X-None)", b"\r\n"),
    ],
)
def test_rfc3501_part_numbers(spec: str, expected: bytes) -> None:
    assert section(EXAMPLE, EXAMPLE_PART, spec) == expected


def test_rfc3501_text_sections() -> None:
    text_3 = section(EXAMPLE, EXAMPLE_PART, "3.TEXT")
    assert text_3 is not None
    assert text_3.startswith(b"--m3\r\n") and text_3.endswith(b"--m3--")
    text_4_2 = section(EXAMPLE, EXAMPLE_PART, "4.2.TEXT")
    assert text_4_2 is not None
    assert text_4_2.startswith(b"--m42\r\n") and text_4_2.endswith(b"--m42--")
    assert section(EXAMPLE, EXAMPLE_PART, "") == EXAMPLE
    assert section(EXAMPLE, EXAMPLE_PART, "TEXT") == EXAMPLE[EXAMPLE.index(b"\r\n\r\n") + 4 :]
    # BODY[3] of a message/rfc822 part is the whole enclosed message.
    assert section(EXAMPLE, EXAMPLE_PART, "3") == (
        section(EXAMPLE, EXAMPLE_PART, "3.HEADER") or b""
    ) + (text_3 or b"")


@pytest.mark.parametrize(
    "spec",
    ["5", "0", "1.1", "2.HEADER", "4.HEADER", "4.3", "4.1.TEXT", "3.3", "1.2.3.4", "MIME", "BOGUS",
     "HEADER.FIELDS", "HEADER.FIELDS ()", "1.", "1..2", "1.MIMEX"],
)
def test_nonexistent_or_invalid_sections(spec: str) -> None:
    assert section(EXAMPLE, EXAMPLE_PART, spec) is None


def test_non_multipart_message_has_only_part_one() -> None:
    data = crlf("Subject: single", "", "the body")
    part = parse_message(data)
    assert section(data, part, "1") == b"the body\r\n"
    assert section(data, part, "TEXT") == b"the body\r\n"
    assert section(data, part, "1.MIME") == b"Subject: single\r\n\r\n"
    assert section(data, part, "2") is None
    assert section(data, part, "1.1") is None
    assert section(data, part, "1.HEADER") is None


def test_non_multipart_enclosed_message() -> None:
    data = crlf(
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b",
        "Content-Type: message/rfc822",
        "",
        "Subject: inner",
        "",
        "inner body",
        "--b--",
    )
    part = parse_message(data)
    # The enclosed message is not multipart: its only part, 1.1, is its body.
    assert section(data, part, "1.1") == b"inner body"
    assert section(data, part, "1.2") is None
    assert section(data, part, "1.TEXT") == b"inner body"
    assert section(data, part, "1.1.MIME") == b"Subject: inner\r\n\r\n"


def test_section_spec_parsing() -> None:
    assert parse_section_spec("") == SectionSpec()
    assert parse_section_spec(b"1.2.3") == SectionSpec((1, 2, 3))
    assert parse_section_spec("2.mime") == SectionSpec((2,), "MIME")
    assert parse_section_spec('1.HEADER.FIELDS.NOT (A "b c" D)') == SectionSpec(
        (1,), "HEADER.FIELDS.NOT", ("A", "b c", "D")
    )
    assert parse_section_spec("HEADER.FIELDS(To)") == SectionSpec((), "HEADER.FIELDS", ("To",))
    assert parse_section_spec("01") is None


def test_binary_decodes_transfer_encodings() -> None:
    assert binary_section(EXAMPLE, EXAMPLE_PART, "2") == b"part 2"
    assert binary_section(EXAMPLE, EXAMPLE_PART, (2,)) == b"part 2"
    assert binary_section(EXAMPLE, EXAMPLE_PART, "4.1") == b"GIF=4.1"
    assert binary_section(EXAMPLE, EXAMPLE_PART, "1") == b"part 1"
    assert binary_section(EXAMPLE, EXAMPLE_PART, "") == EXAMPLE
    assert binary_section(EXAMPLE, EXAMPLE_PART, "9") is None
    assert binary_section(EXAMPLE, EXAMPLE_PART, "1.MIME") is None


def test_binary_base64_is_lenient() -> None:
    data = crlf(
        "Content-Transfer-Encoding: BASE64",
        "",
        "aGVs",
        "bG8gd29y!!",
        "bGQ",
    )
    part = parse_message(data)
    assert binary_section(data, part, "1") == b"hello world"


def test_binary_unknown_encoding_raises() -> None:
    data = crlf("Content-Transfer-Encoding: x-uuencode", "", "begin 644 x")
    part = parse_message(data)
    with pytest.raises(UnknownTransferEncoding) as caught:
        binary_section(data, part, "1")
    assert caught.value.encoding == "x-uuencode"
    # BODY[] still serves the raw octets.
    assert section(data, part, "1") == b"begin 644 x\r\n"


def test_sections_from_a_cached_summary() -> None:
    summary = Summary.from_bytes(summarize(EXAMPLE))
    for spec in ("", "1", "3.HEADER", "4.2.2.2", "4.1.MIME", "4.2.HEADER.FIELDS (From)", "TEXT", "7"):
        assert section(EXAMPLE, summary.outline, spec) == section(EXAMPLE, EXAMPLE_PART, spec), spec
    assert binary_section(EXAMPLE, summary.outline, "4.1") == b"GIF=4.1"


@dataclass(frozen=True)
class ImapSection:
    """The shape of the IMAP command parser's section (text None when absent)."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()


def test_sections_from_another_parsers_objects() -> None:
    assert section(EXAMPLE, EXAMPLE_PART, ImapSection()) == EXAMPLE
    assert section(EXAMPLE, EXAMPLE_PART, ImapSection((4, 2), "HEADER.FIELDS", ("subject",))) == (
        b"Subject: four two\r\n\r\n"
    )
    assert section(EXAMPLE, EXAMPLE_PART, ImapSection((4, 1), "mime")) == section(
        EXAMPLE, EXAMPLE_PART, "4.1.MIME"
    )
    assert binary_section(EXAMPLE, EXAMPLE_PART, ImapSection((2,))) == b"part 2"
    assert binary_section(EXAMPLE, EXAMPLE_PART, ImapSection((2,), "TEXT")) is None
