"""SequenceSet and the sequence-set grammar (RFC 9051 section 9, RFC 5182)."""

from __future__ import annotations

import pytest

from mailactors.protocol.imap.grammar import GrammarError, parse_sequence_set
from mailactors.protocol.imap.sequence import SequenceSet, format_sequence_set


def parsed(text: str) -> SequenceSet:
    value, end = parse_sequence_set(text.encode(), 0)
    assert end == len(text)
    return value


def test_rfc9051_example_set() -> None:
    # RFC 9051 section 9: for a mailbox with 15 messages, "2,4:7,9,12:*" is
    # 2,4,5,6,7,9,12,13,14,15.
    s = parsed("2,4:7,9,12:*")
    assert list(s.iter(15)) == [2, 4, 5, 6, 7, 9, 12, 13, 14, 15]
    assert s.contains(13, 15) and not s.contains(8, 15) and not s.contains(16, 15)


def test_reversed_ranges_and_star_below_start() -> None:
    # "2:4 and 4:2 are equivalent"; "*:4" with 3 messages is 3:4.
    assert list(parsed("4:2").iter(10)) == [2, 3, 4]
    assert parsed("*:4").to_ranges(3) == ((3, 4),)
    assert list(parsed("*:4").iter(3)) == [3]
    assert parsed("*").to_ranges(0) == ((0, 0),)
    assert list(parsed("*").iter(0)) == []


def test_to_ranges_merges() -> None:
    assert parsed("5,1:3,4,10:8,20:*").to_ranges(25) == ((1, 5), (8, 10), (20, 25))


def test_iter_clips_to_largest() -> None:
    assert list(parsed("1:4294967295").iter(3)) == [1, 2, 3]


def test_saved_result() -> None:
    s = parsed("$")
    assert s.saved and s.format() == "$"
    with pytest.raises(ValueError):
        s.contains(1, 1)
    with pytest.raises(ValueError):
        list(s.iter(5))


def test_format() -> None:
    assert parsed("1:3,5,7:*").format() == "1:3,5,7:*"
    assert str(parsed("*")) == "*"
    assert format_sequence_set([9, 1, 2, 3, 5, 7, 8, 2]) == "1:3,5,7:9"
    assert format_sequence_set([]) == ""
    assert SequenceSet.from_numbers([3, 1, 2, 10]).format() == "1:3,10"
    with pytest.raises(ValueError):
        format_sequence_set([0])


@pytest.mark.parametrize("text", ["", "0", "1:", ",1", "1:0", "a", "4294967296"])
def test_invalid(text: str) -> None:
    with pytest.raises(GrammarError):
        parse_sequence_set(text.encode(), 0)


def test_trailing_comma_stops_at_comma() -> None:
    with pytest.raises(GrammarError):
        parse_sequence_set(b"1,", 0)
    value, end = parse_sequence_set(b"1:2 FLAGS", 0)
    assert value.format() == "1:2" and end == 3
