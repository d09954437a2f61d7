"""CommandReader: splitting IMAP input into commands, literals, limits (RFC 9051 4.3, RFC 7888)."""

from __future__ import annotations

import pytest

from mailactors.protocol.imap.framing import (
    MAX_LITERAL_MINUS,
    NEED_DATA,
    CommandReader,
    Continue,
    FramingError,
    RawCommand,
)


def drain(reader: CommandReader) -> list[object]:
    """All events until NEED_DATA."""
    events: list[object] = []
    while True:
        event = reader.next_command()
        if event is NEED_DATA:
            return events
        events.append(event)


def test_simple_commands_pipelined() -> None:
    r = CommandReader()
    r.receive_data(b"a001 CAPABILITY\r\na002 NOOP\r\na003 LOG")
    assert drain(r) == [RawCommand("a001", b"a001 CAPABILITY"), RawCommand("a002", b"a002 NOOP")]
    assert r.in_command is False
    r.receive_data(b"OUT\r\n")
    assert drain(r) == [RawCommand("a003", b"a003 LOGOUT")]


def test_bare_lf_is_accepted_as_line_end() -> None:
    r = CommandReader()
    r.receive_data(b"a NOOP\n")
    assert drain(r) == [RawCommand("a", b"a NOOP")]


def test_rfc3501_synchronizing_literals_login() -> None:
    # RFC 3501 section 7.5 / RFC 9051: the client waits for "+" before each literal.
    r = CommandReader()
    r.receive_data(b"A001 LOGIN {11}\r\n")
    assert r.next_command() == Continue("Ready for literal data")
    assert r.next_command() is NEED_DATA
    assert r.in_command
    r.receive_data(b"FRED FOOBAR {7}\r\n")
    assert r.next_command() == Continue("Ready for literal data")
    r.receive_data(b"fat man\r\n")
    assert drain(r) == [RawCommand("A001", b"A001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man")]


def test_rfc7888_literal_plus_no_continuation() -> None:
    # RFC 7888 section 3 example: C: A001 LOGIN {11+} / C: FRED FOOBAR {7+} / C: fat man
    r = CommandReader()
    r.receive_data(b"A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n")
    assert drain(r) == [RawCommand("A001", b"A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man")]


def test_literal_data_may_contain_crlf_and_markers() -> None:
    r = CommandReader()
    body = b"line {5}\r\n\r\nA NOOP\r\n"
    r.receive_data(b"t APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
    assert drain(r) == [RawCommand("t", b"t APPEND INBOX {%d+}\r\n" % len(body) + body)]


def test_literal8_binary() -> None:
    # RFC 3516 section 4.1: literal8 = "~{" number64 ["+"] "}" CRLF *OCTET
    r = CommandReader()
    r.receive_data(b"A003 APPEND Drafts ~{3}\r\n")
    assert r.next_command() == Continue("Ready for literal data")
    r.receive_data(b"\x00\xff\n\r\n")
    assert drain(r) == [RawCommand("A003", b"A003 APPEND Drafts ~{3}\r\n\x00\xff\n")]


def test_literal_split_over_many_reads() -> None:
    r = CommandReader()
    data = b"x APPEND INBOX {10+}\r\n0123456789\r\n"
    events: list[object] = []
    for i in range(len(data)):
        r.receive_data(data[i : i + 1])
        events.extend(drain(r))
    assert events == [RawCommand("x", b"x APPEND INBOX {10+}\r\n0123456789")]


def test_sync_literal_too_big_refused_before_continuation() -> None:
    # RFC 7889 section 4 / RFC 4469: refuse with NO [TOOBIG]; no "+" is sent, so
    # the client does not send the literal and the next line is a new command.
    r = CommandReader(max_literal=100)
    r.receive_data(b"A1 APPEND INBOX {101}\r\nA2 NOOP\r\n")
    assert drain(r) == [
        FramingError("A1", b"A1 NO [TOOBIG] Literal too big\r\n"),
        RawCommand("A2", b"A2 NOOP"),
    ]


def test_nonsync_literal_too_big_is_read_and_discarded() -> None:
    r = CommandReader(max_literal=100)
    r.receive_data(b"A1 APPEND INBOX {200+}\r\n")
    assert drain(r) == [FramingError("A1", b"A1 BAD [TOOBIG] Literal too big\r\n")]
    for _ in range(4):
        r.receive_data(b"A2 NOOP\r\n" + b"x" * 41)  # 50 octets of discarded literal
        assert drain(r) == []
    assert r.buffered == 0
    # The rest of the refused command (after the literal) is discarded too,
    # including another non-synchronizing literal.
    r.receive_data(b" more {3+}\r\nabc tail\r\nA3 NOOP\r\n")
    assert drain(r) == [RawCommand("A3", b"A3 NOOP")]


def test_literal_minus_limits_nonsync_literals() -> None:
    # RFC 7888 section 4: LITERAL- allows non-synchronizing literals up to 4096 octets.
    r = CommandReader(literal_plus=False)
    ok = b"a LOGIN {4096+}\r\n" + b"u" * MAX_LITERAL_MINUS + b" p\r\n"
    r.receive_data(ok)
    assert drain(r) == [RawCommand("a", ok[:-2])]
    r.receive_data(b"b APPEND INBOX {4097+}\r\n" + b"m" * 4097 + b"\r\nc NOOP\r\n")
    events = drain(r)
    assert events[0] == FramingError(
        "b", b"b BAD [TOOBIG] Non-synchronizing literal over 4096 octets\r\n"
    )
    assert events[1:] == [RawCommand("c", b"c NOOP")]
    # Synchronizing literals above 4096 remain fine with LITERAL-.
    r.receive_data(b"d APPEND INBOX {5000}\r\n")
    assert r.next_command() == Continue("Ready for literal data")


def test_total_command_size_bounded() -> None:
    r = CommandReader(max_literal=100, max_command_size=150)
    r.receive_data(b"a APPEND INBOX {90+}\r\n" + b"x" * 90 + b" {90}\r\n")
    assert drain(r) == [FramingError("a", b"a NO [TOOBIG] Literal too big\r\n")]
    r.receive_data(b"b NOOP\r\n")
    assert drain(r) == [RawCommand("b", b"b NOOP")]


def test_command_line_too_long_without_lf_is_discarded() -> None:
    r = CommandReader(max_command_line=100)
    r.receive_data(b"t1 SEARCH " + b"X" * 200)
    assert drain(r) == [FramingError("t1", b"t1 BAD Command line too long\r\n")]
    assert r.buffered <= 32
    r.receive_data(b"Y" * 10_000)
    assert drain(r) == []
    assert r.buffered <= 32
    r.receive_data(b"\r\nt2 NOOP\r\n")
    assert drain(r) == [RawCommand("t2", b"t2 NOOP")]


def test_command_line_too_long_with_lf() -> None:
    r = CommandReader(max_command_line=20)
    r.receive_data(b"t1 SEARCH SUBJECT abcdefghijklmnop\r\nt2 NOOP\r\n")
    assert drain(r) == [
        FramingError("t1", b"t1 BAD Command line too long\r\n"),
        RawCommand("t2", b"t2 NOOP"),
    ]


def test_line_limit_counts_all_lines_of_a_command() -> None:
    r = CommandReader(max_command_line=40)
    r.receive_data(b"a LOGIN {1+}\r\nx " + b"y" * 30 + b" {1+}\r\nz\r\n")
    assert drain(r) == [FramingError("a", b"a BAD Command line too long\r\n")]
    r.receive_data(b"b NOOP\r\n")
    assert drain(r) == [RawCommand("b", b"b NOOP")]


def test_overlong_discarded_line_ending_in_nonsync_literal() -> None:
    r = CommandReader(max_command_line=50)
    r.receive_data(b"a APPEND INBOX " + b"(" * 100 + b" {5+}\r\n)))))\r\nb NOOP\r\n")
    assert drain(r) == [
        FramingError("a", b"a BAD Command line too long\r\n"),
        RawCommand("b", b"b NOOP"),
    ]


def test_invalid_tag_and_empty_line() -> None:
    r = CommandReader()
    r.receive_data(b"\r\n+ NOOP\r\n* NOOP\r\n(x LOGIN {3}\r\nok NOOP\r\n")
    assert drain(r) == [
        FramingError(None, b"* BAD Empty command line\r\n"),
        FramingError(None, b"* BAD Missing or invalid command tag\r\n"),
        FramingError(None, b"* BAD Missing or invalid command tag\r\n"),
        FramingError(None, b"* BAD Missing or invalid command tag\r\n"),
        RawCommand("ok", b"ok NOOP"),
    ]


def test_huge_literal_count_does_not_overflow() -> None:
    r = CommandReader()
    r.receive_data(b"a APPEND INBOX {99999999999999999999999999999}\r\nb NOOP\r\n")
    assert drain(r) == [
        FramingError("a", b"a NO [TOOBIG] Literal too big\r\n"),
        RawCommand("b", b"b NOOP"),
    ]


def test_read_line_for_idle_done() -> None:
    # RFC 2177: after "+ idling" the client sends "DONE" on its own line.
    r = CommandReader()
    r.receive_data(b"A002 IDLE\r\nDO")
    assert drain(r) == [RawCommand("A002", b"A002 IDLE")]
    assert r.read_line() is NEED_DATA
    r.receive_data(b"NE\r\nA003 NOOP\r\n")
    assert r.read_line() == b"DONE"
    assert drain(r) == [RawCommand("A003", b"A003 NOOP")]


def test_read_line_for_sasl_and_limit() -> None:
    r = CommandReader(max_command_line=10)
    r.receive_data(b"dGVzdA==\r\n")
    assert r.read_line() == b"dGVzdA=="
    r.receive_data(b"A" * 30)
    assert r.read_line() == FramingError(None, b"* BAD Line too long\r\n")
    r.receive_data(b"A" * 30 + b"\r\n*\r\n")
    assert r.read_line() == b"*"


def test_read_line_refused_mid_command() -> None:
    r = CommandReader()
    r.receive_data(b"a LOGIN {3}\r\n")
    assert isinstance(r.next_command(), Continue)
    with pytest.raises(RuntimeError):
        r.read_line()


def test_discard_buffered_after_starttls() -> None:
    # STARTTLS command injection: plaintext pipelined after STARTTLS is dropped.
    r = CommandReader()
    r.receive_data(b"a STARTTLS\r\nb LOGIN evil evil\r\n")
    assert r.next_command() == RawCommand("a", b"a STARTTLS")
    assert r.discard_buffered() == len(b"b LOGIN evil evil\r\n")
    assert r.next_command() is NEED_DATA
