"""Any byte stream, in any chunking, through CommandReader + parse_command: no crash, bounded memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.protocol.imap.framing import (
    NEED_DATA,
    CommandReader,
    Continue,
    FramingError,
    RawCommand,
)
from mailactors.protocol.imap.parser import ParseError, parse_command

MAX_LITERAL = 64
MAX_LINE = 256
MAX_COMMAND = 160
# Worst case: a full partial command, a line just under the limit, the discard tail.
MEMORY_BOUND = MAX_COMMAND + MAX_LINE + 64

TOKENS = [
    b"a ",
    b"A1 ",
    b"* ",
    b"+ ",
    b"UID ",
    b"FETCH ",
    b"STORE ",
    b"SEARCH ",
    b"APPEND ",
    b"LOGIN ",
    b"SELECT ",
    b"LIST ",
    b"STATUS ",
    b"ID ",
    b"AUTHENTICATE ",
    b"ENABLE ",
    b"COPY ",
    b"MOVE ",
    b"EXPUNGE",
    b"IDLE",
    b"NOOP",
    b"INBOX ",
    b"{3}\r\n",
    b"{2+}\r\n",
    b"~{1}\r\n",
    b"{999}\r\n",
    b"{70+}\r\n",
    b"{5000+}\r\n",
    b"\r\n",
    b"\n",
    b" ",
    b"(",
    b")",
    b"[",
    b"]",
    b"<0.5>",
    b'"',
    b"\\",
    b"1:*",
    b"$",
    b"2,4:7",
    b"BODY.PEEK[1.HEADER.FIELDS (From)]",
    b"FLAGS",
    b"\\Seen",
    b"NIL",
    b"OR",
    b"NOT",
    b"CHARSET",
    b"RETURN",
    b"(CHANGEDSINCE 5 VANISHED)",
    b"QRESYNC",
    b'"17-Jul-1996 02:44:25 -0700"',
    b"1-Feb-1994",
    b"&ZeVnLIqe-",
    b"\xc3\xa9",
    b"\x00",
    b"x" * 40,
]

imap_ish = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, prev = [], 0
    for p in [*points, len(data)]:
        chunks.append(data[prev:p])
        prev = p
    return chunks


def check_stream(chunks: list[bytes], utf8: bool, literal_plus: bool) -> None:
    reader = CommandReader(
        max_literal=MAX_LITERAL,
        literal_plus=literal_plus,
        max_command_line=MAX_LINE,
        max_command_size=MAX_COMMAND,
    )
    for chunk in chunks:
        reader.receive_data(chunk)
        for _ in range(10_000):
            event = reader.next_command()
            if event is NEED_DATA:
                break
            if isinstance(event, RawCommand):
                try:
                    parse_command(event, utf8=utf8)
                except ParseError as e:
                    assert e.response.startswith((f"{e.tag} ".encode(), b"* "))
                    assert e.response.endswith(b"\r\n")
                    assert e.response.count(b"\n") == 1
            elif isinstance(event, FramingError):
                assert event.response.startswith((f"{event.tag} ".encode(), b"* "))
                assert event.response.endswith(b"\r\n")
            else:
                assert isinstance(event, Continue)
        else:
            raise AssertionError("next_command() never returned NEED_DATA")
        assert reader.buffered <= MEMORY_BOUND + len(chunk)
    assert reader.buffered <= MEMORY_BOUND


@settings(max_examples=1500, deadline=None)
@given(
    st.binary(max_size=2000),
    st.lists(st.integers(0, 4000), max_size=8),
    st.booleans(),
    st.booleans(),
)
def test_random_bytes(data: bytes, cuts: list[int], utf8: bool, literal_plus: bool) -> None:
    check_stream(split(data, cuts), utf8, literal_plus)


@settings(max_examples=2000, deadline=None)
@given(imap_ish, st.lists(st.integers(0, 4000), max_size=8), st.booleans(), st.booleans())
def test_imap_like_bytes(data: bytes, cuts: list[int], utf8: bool, literal_plus: bool) -> None:
    check_stream(split(data, cuts), utf8, literal_plus)


@settings(max_examples=1000, deadline=None)
@given(imap_ish, st.lists(st.integers(0, 4000), max_size=8))
def test_chunking_does_not_change_events(data: bytes, cuts: list[int]) -> None:
    def events(chunks: list[bytes]) -> list[object]:
        reader = CommandReader(
            max_literal=MAX_LITERAL, max_command_line=MAX_LINE, max_command_size=MAX_COMMAND
        )
        out: list[object] = []
        for chunk in chunks:
            reader.receive_data(chunk)
            while (event := reader.next_command()) is not NEED_DATA:
                out.append(event)
        return out

    assert events(split(data, cuts)) == events([data])


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 1000), max_size=6))
def test_read_line_random(data: bytes, cuts: list[int]) -> None:
    reader = CommandReader(max_command_line=MAX_LINE)
    for chunk in split(data, cuts):
        reader.receive_data(chunk)
        while True:
            line = reader.read_line()
            if line is NEED_DATA:
                break
            if isinstance(line, FramingError):
                assert line.response == b"* BAD Line too long\r\n"
            else:
                assert isinstance(line, bytes) and b"\n" not in line and len(line) <= MAX_LINE
        assert reader.buffered <= MAX_LINE + len(chunk) + 64


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.binary(max_size=300), imap_ish), st.booleans())
def test_parse_command_on_unframed_bytes(data: bytes, utf8: bool) -> None:
    # parse_command is public: RawCommands not produced by CommandReader (bare
    # markers, truncated literals) must still give a command or a ParseError.
    try:
        parse_command(RawCommand("t", b"t " + data), utf8=utf8)
    except ParseError as e:
        assert e.tag == "t"
        assert e.response.startswith(b"t BAD ") or e.response.startswith(b"t NO [")
        assert e.response.endswith(b"\r\n")
