"""Format-then-parse round trips: astring, mailbox names, sequence sets, flags, date-time."""

from __future__ import annotations

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.protocol.imap import grammar as g
from mailactors.protocol.imap import response as r
from mailactors.protocol.imap.commands import Fetch, Store
from mailactors.protocol.imap.framing import RawCommand
from mailactors.protocol.imap.mutf7 import MailboxNameError, decode_mutf7, encode_mutf7
from mailactors.protocol.imap.parser import parse_command
from mailactors.protocol.imap.sequence import SequenceSet, format_sequence_set

texts_without_nul = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]))


@given(texts_without_nul, st.booleans())
def test_astring_round_trip(value: str, utf8: bool) -> None:
    wire = r.astring(value, utf8=utf8)
    parsed, end = g.parse_astring(wire, 0)
    assert end == len(wire)
    assert parsed.decode("utf-8") == value


@given(st.binary())
def test_string_round_trip_bytes(value: bytes) -> None:
    wire = r.string(value)
    if wire.startswith(b"~"):
        parsed, end = g.parse_literal(wire, 0, binary=True)
    else:
        parsed, end = g.parse_string(wire, 0)
    assert (parsed, end) == (value, len(wire))


@given(st.text())
def test_mutf7_round_trip(name: str) -> None:
    encoded = encode_mutf7(name)
    assert all(0x20 <= ord(ch) <= 0x7E for ch in encoded)
    assert decode_mutf7(encoded.encode("ascii")) == name


@given(st.binary(max_size=64))
def test_mutf7_decode_never_crashes(data: bytes) -> None:
    try:
        decoded = decode_mutf7(data)
    except MailboxNameError:
        return
    # Whatever decodes re-encodes to a valid name that decodes the same way.
    assert decode_mutf7(encode_mutf7(decoded).encode("ascii")) == decoded


mailbox_names = st.text(min_size=1).filter(lambda s: not s.upper().startswith("INBOX"))


@given(mailbox_names, st.booleans())
def test_mailbox_name_round_trip(name: str, utf8: bool) -> None:
    if utf8 and "\x00" in name:
        name = name.replace("\x00", "")
        if not name or name.upper().startswith("INBOX"):
            return
    wire = r.encode_mailbox(name, utf8=utf8)
    parsed, end = g.parse_mailbox(wire, 0, utf8=utf8)
    assert (parsed, end) == (name, len(wire))


@given(st.sampled_from(["inbox", "INBOX", "Inbox", "iNbOx"]), st.booleans())
def test_inbox_round_trip(name: str, utf8: bool) -> None:
    assert g.parse_mailbox(r.encode_mailbox(name, utf8), 0, utf8)[0] == "INBOX"


@given(st.sets(st.integers(1, 5000), min_size=1))
def test_sequence_numbers_round_trip(numbers: set[int]) -> None:
    text = format_sequence_set(numbers)
    parsed, end = g.parse_sequence_set(text.encode(), 0)
    assert end == len(text)
    assert set(parsed.iter(5000)) == numbers
    assert SequenceSet.from_numbers(numbers) == parsed


seq_numbers = st.one_of(st.none(), st.integers(1, 2**32 - 1))


@given(st.lists(st.tuples(seq_numbers, seq_numbers), min_size=1, max_size=10))
def test_sequence_set_format_round_trip(ranges: list[tuple[int | None, int | None]]) -> None:
    s = SequenceSet(tuple(ranges))
    parsed, _ = g.parse_sequence_set(s.format().encode(), 0)
    assert parsed == s


@given(st.lists(st.tuples(seq_numbers, seq_numbers), min_size=1, max_size=6), st.integers(0, 60))
def test_sequence_set_semantics(ranges: list[tuple[int | None, int | None]], largest: int) -> None:
    small = [
        (None if a is None else a % 80 + 1, None if b is None else b % 80 + 1) for a, b in ranges
    ]
    s = SequenceSet(tuple(small))
    members = set(s.iter(largest))
    for n in range(1, largest + 1):
        assert s.contains(n, largest) == (n in members)
    assert all(1 <= n <= largest for n in members)
    assert list(s.iter(largest)) == sorted(members)


system_flags = st.sampled_from(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"])
keywords = st.from_regex(r"\A[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|}~]{1,20}\Z")
extension_flags = keywords.map(lambda k: "\\" + k).filter(lambda f: f.upper() != "\\RECENT")
flags = st.one_of(system_flags, keywords, extension_flags)


@given(st.lists(flags, max_size=10))
def test_flag_list_round_trip(flag_list: list[str]) -> None:
    wire = r.format_flags(flag_list)
    parsed, end = g.parse_flag_list(wire, 0)
    assert end == len(wire)
    expected: list[str] = []
    for f in flag_list:
        if f.upper() not in {e.upper() for e in expected}:
            expected.append(f)
    canonical = {
        f.upper(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
    }
    assert parsed == tuple(canonical.get(f.upper(), f) for f in expected)


@given(st.lists(flags, min_size=1, max_size=5), st.sampled_from(["", "+", "-"]), st.booleans())
def test_store_command_round_trip(flag_list: list[str], sign: str, silent: bool) -> None:
    line = f"t STORE 1:* {sign}FLAGS{'.SILENT' if silent else ''} ".encode() + r.format_flags(
        flag_list
    )
    cmd = parse_command(RawCommand("t", line))
    assert isinstance(cmd, Store)
    assert cmd.mode == {"": "replace", "+": "add", "-": "remove"}[sign]
    assert cmd.silent == silent
    assert len(cmd.flags) <= len(flag_list)


offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: datetime.timedelta(minutes=m))


@given(
    st.datetimes(
        min_value=datetime.datetime(1000, 1, 1), max_value=datetime.datetime(9999, 12, 31)
    ),
    offsets,
)
def test_date_time_round_trip(naive: datetime.datetime, offset: datetime.timedelta) -> None:
    value = naive.replace(microsecond=0, tzinfo=datetime.timezone(offset))
    wire = r.format_date_time(value)
    parsed, end = g.parse_date_time(wire, 0)
    assert end == len(wire)
    assert parsed == value and parsed.utcoffset() == value.utcoffset()


@given(st.dates(min_value=datetime.date(1000, 1, 1)))
def test_search_date_round_trip(value: datetime.date) -> None:
    text = f"{value.day}-{value.strftime('%b')}-{value.year:04d}".encode()
    assert g.parse_date(text, 0) == (value, len(text))


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.integers(1, 9), st.integers(0, 99), st.integers(1, 99)), min_size=1, max_size=4
    )
)
def test_fetch_response_names_reparse(parts: list[tuple[int, int, int]]) -> None:
    items = " ".join(f"BODY.PEEK[{a}.{a}.MIME]<{b}.{c}>" for a, b, c in parts)
    cmd = parse_command(RawCommand("t", f"t FETCH 1 ({items})".encode()))
    assert isinstance(cmd, Fetch)
    for att, (a, b, c) in zip(cmd.attributes, parts, strict=True):
        assert att.response_name() == f"BODY[{a}.{a}.MIME]<{b}>"
        assert att.partial == (b, c) and att.peek
