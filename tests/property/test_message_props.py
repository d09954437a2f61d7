"""Property tests of protocol/message: any bytes are survived; built trees come back."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.protocol.message import (
    Part,
    Summary,
    UnknownTransferEncoding,
    binary_section,
    bodystructure,
    decode_transfer_encoding,
    envelope,
    format_envelope,
    header_values,
    parse_message,
    section,
    sent_date,
    summarize,
    text_contains,
)


def _check_offsets(part: Part, start: int, end: int) -> int:
    """Offsets nest and never overlap; returns the number of parts."""
    assert start <= part.header_start <= part.body_start <= part.end <= end
    count = 1
    position = part.body_start
    for child in part.children:
        assert child.header_start >= position
        count += _check_offsets(child, part.body_start, part.end)
        position = child.end
    return count


def _exercise(data: bytes) -> None:
    part = parse_message(data)
    _check_offsets(part, 0, len(data))
    format_envelope(envelope(part))
    assert bodystructure(part, True).startswith(b"(")
    assert bodystructure(part, False).endswith(b")")
    summary = Summary.from_bytes(summarize(data))
    assert summary.size == len(data)
    sent_date(part)
    header_values(part, "subject")
    text_contains(data, part, "needle", headers=True)
    for spec in ("", "1", "1.1", "2.MIME", "HEADER", "TEXT", "1.HEADER", "HEADER.FIELDS (Subject)"):
        assert section(data, part, spec) == section(data, summary.outline, spec)
    for spec in ("1", "1.2", "2"):
        try:
            binary_section(data, part, spec)
        except UnknownTransferEncoding:
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_never_raise(data: bytes) -> None:
    _exercise(data)


_FRAGMENTS = [
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: multipart/alternative; boundary=\"c\"\n",
    b"Content-Type: multipart/digest; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; charset=\"utf-8\"; name*0*=utf-8''%C3; name*1=x\r\n",
    b"Content-Type: text\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Transfer-Encoding: x-uue\r\n",
    b"Content-Disposition: attachment; filename=\"a\r\n",
    b"Content-Language: en,\r\n",
    b"From: \"a\" <b@c>, g: d@e;\r\n",
    b"To: (x <y@z\r\n",
    b"Subject: =?utf-8?q?=C3?= =?x?b?@@?=\r\n",
    b"Date: 31 Feb 2020\r\n",
    b"\r\n",
    b"\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"--c\n",
    b"--c--",
    b" folded\r\n",
    b"text line\r\n",
    b"aGVsbG8=\r\n",
    b"=3D=\r\n",
    b"\xff\xfe\x00",
    b"\r",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=40).map(b"".join))
def test_mime_shaped_bytes_never_raise(data: bytes) -> None:
    _exercise(data)


@dataclass(frozen=True)
class Built:
    """What a generated message was built from: type, decoded body, children."""

    content_type: str
    content: bytes | None
    children: tuple[Built, ...]


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.just("\n"), max_size=80)
_SUBJECT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=60)
_ASCII_TEXT = st.text(alphabet=st.sampled_from("abc XYZ-.:=\n"), max_size=80)


@st.composite
def _leaf(draw: st.DrawFn) -> tuple[Message, Built]:
    kind = draw(st.sampled_from(["utf-8 text", "ascii text", "binary"]))
    if kind == "utf-8 text":
        text = draw(_TEXT)
        subtype = draw(st.sampled_from(["plain", "html"]))
        return MIMEText(text, subtype, "utf-8"), Built(f"text/{subtype}", text.encode(), ())
    if kind == "ascii text":
        text = draw(_ASCII_TEXT)
        return MIMEText(text, "plain", "us-ascii"), Built("text/plain", text.encode(), ())
    blob = draw(st.binary(max_size=200))
    subtype = draw(st.sampled_from(["octet-stream", "pdf"]))
    return MIMEApplication(blob, subtype), Built(f"application/{subtype}", blob, ())


def _extend(children: st.SearchStrategy[tuple[Message, Built]]) -> st.SearchStrategy[tuple[Message, Built]]:
    @st.composite
    def multipart(draw: st.DrawFn) -> tuple[Message, Built]:
        subtype = draw(st.sampled_from(["mixed", "alternative", "related"]))
        parts = draw(st.lists(children, min_size=1, max_size=4))
        container = MIMEMultipart(subtype)
        for message, _ in parts:
            container.attach(message)
        return container, Built(f"multipart/{subtype}", None, tuple(built for _, built in parts))

    @st.composite
    def enclosed(draw: st.DrawFn) -> tuple[Message, Built]:
        inner, built = draw(children)
        inner["Subject"] = "enclosed"
        wrapper = MIMEMessage(inner)
        return wrapper, Built("message/rfc822", None, (built,))

    return multipart() | enclosed()


_TREES = st.recursive(_leaf(), _extend, max_leaves=8)


def _compare(data: bytes, part: Part, built: Built, normalise: bool) -> None:
    assert f"{part.media_type}/{part.media_subtype}".lower() == built.content_type
    assert len(part.children) == len(built.children)
    if built.content_type == "message/rfc822":
        enclosed = part.children[0]
        assert header_values(enclosed, "subject") == ["enclosed"]
        _compare(data, enclosed, built.children[0], normalise)
        return
    for child, expected in zip(part.children, built.children, strict=True):
        _compare(data, child, expected, normalise)
    if built.content is not None:
        decoded = decode_transfer_encoding(data[part.body_start : part.end], part.transfer_encoding)
        if normalise and (part.transfer_encoding or "7bit").lower() == "7bit":
            decoded = decoded.replace(b"\r\n", b"\n")
        assert decoded == built.content


@settings(max_examples=150, deadline=None)
@given(_TREES, _SUBJECT, st.sampled_from(["\n", "\r\n"]))
def test_built_trees_come_back(tree: tuple[Message, Built], subject: str, linesep: str) -> None:
    message, built = tree
    message["Subject"] = Header(subject, "utf-8")  # type: ignore[assignment]
    data = message.as_bytes(policy=email.policy.compat32.clone(linesep=linesep))
    part = parse_message(data)
    # 7bit text is sent with the generator's line ends; encoded bodies keep their own.
    _compare(data, part, built, normalise=linesep == "\r\n")
    # An unencoded subject's white space at its ends is not part of the value.
    assert [value.strip(" ") for value in header_values(part, "subject")] == [subject.strip(" ")]
    summary = Summary.from_bytes(summarize(data))
    assert summary.bodystructure == bodystructure(part, True)
    for policy in (email.policy.compat32, email.policy.default):
        _same_shape_as_stdlib(part, email.message_from_bytes(data, policy=policy))


def _same_shape_as_stdlib(part: Part, theirs: Message) -> None:
    assert f"{part.media_type}/{part.media_subtype}".lower() == theirs.get_content_type()
    payload = theirs.get_payload()
    children = [item for item in payload if isinstance(item, Message)] if isinstance(payload, list) else []
    assert len(part.children) == len(children)
    for mine, other in zip(part.children, children, strict=True):
        _same_shape_as_stdlib(mine, other)
