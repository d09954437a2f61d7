"""IMAP sequence sets (RFC 9051 section 9, RFC 5182 "$").

    seq-number      = nz-number / "*"
    seq-range       = seq-number ":" seq-number
                        ; two seq-number values and all values between
                        ; these two regardless of order.
                        ; Example: 2:4 and 4:2 are equivalent.
    sequence-set    = (seq-number / seq-range) ["," sequence-set]
    sequence-set    =/ seq-last-command        ; RFC 5182 SEARCHRES
    seq-last-command = "$"

A range end of None stands for "*", "the largest number in use" (the number of
messages for sequence numbers, the largest UID for UIDs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# RFC 9051 section 9: nz-number = digit-nz *DIGIT ; Non-zero unsigned 32-bit integer.
MAX_NZ_NUMBER = 4294967295

SeqNumber = int | None  # None is "*"


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed sequence set; `saved` is the RFC 5182 "$" (the last saved SEARCH result)."""

    ranges: tuple[tuple[SeqNumber, SeqNumber], ...] = ()
    saved: bool = False

    @classmethod
    def from_numbers(cls, numbers: Iterable[int]) -> SequenceSet:
        """Build the most compact set covering exactly `numbers`."""
        return cls(tuple((lo, hi) for lo, hi in _collapse(numbers)))

    @classmethod
    def saved_result(cls) -> SequenceSet:
        """The "$" set (RFC 5182 section 2.1)."""
        return cls((), saved=True)

    def _require_concrete(self) -> None:
        if self.saved:
            raise ValueError("'$' must be resolved to the saved search result first")

    def contains(self, n: int, largest: int) -> bool:
        """Whether n is in the set, with "*" meaning `largest`."""
        self._require_concrete()
        for lo, hi in self.ranges:
            a = largest if lo is None else lo
            b = largest if hi is None else hi
            if min(a, b) <= n <= max(a, b):
                return True
        return False

    def to_ranges(self, largest: int) -> tuple[tuple[int, int], ...]:
        """Sorted, merged, inclusive (low, high) ranges with "*" replaced by `largest`."""
        self._require_concrete()
        spans = sorted(
            (min(a, b), max(a, b))
            for a, b in (
                (largest if lo is None else lo, largest if hi is None else hi)
                for lo, hi in self.ranges
            )
        )
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        return tuple(merged)

    def iter(self, largest: int) -> Iterator[int]:
        """The numbers of the set in ascending order, limited to 1..largest.

        Numbers above `largest` are not in use, so they are never produced:
        "1:4294967295" costs no more than "1:*".
        """
        for lo, hi in self.to_ranges(largest):
            yield from range(max(lo, 1), min(hi, largest) + 1)

    def format(self) -> str:
        """The set in IMAP syntax, e.g. "1:3,5,7:*"."""
        if self.saved:
            return "$"
        parts = []
        for lo, hi in self.ranges:
            a = "*" if lo is None else str(lo)
            if lo == hi:
                parts.append(a)
            else:
                parts.append(a + ":" + ("*" if hi is None else str(hi)))
        return ",".join(parts)

    def __str__(self) -> str:
        return self.format()


def _collapse(numbers: Iterable[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in sorted(set(numbers)):
        if n < 1:
            raise ValueError(f"sequence numbers start at 1, got {n}")
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def format_sequence_set(numbers: Iterable[int]) -> str:
    """Compact IMAP syntax for a collection of numbers: [1, 2, 3, 5] -> "1:3,5"."""
    return ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in _collapse(numbers))
