"""A sorted list of UIDs stored as runs of consecutive values.

UIDs of a mailbox are mostly consecutive (every delivery takes UIDNEXT), so a
10,000-message mailbox is usually a handful of runs: a few bytes per session instead
of 40 KB, which matters with hundreds of IDLE sessions. Index (message number - 1)
and UID lookups are binary searches over the runs.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator


class UidList:
    """Ascending, distinct UIDs; `starts[r]` is the first UID of run r and `offsets[r]`
    the index of that UID in the whole list."""

    __slots__ = ("_starts", "_offsets", "_count")

    def __init__(self, uids: Iterable[int] = ()) -> None:
        self._starts = array("I")
        self._offsets = array("I")
        self._count = 0
        self.extend(uids)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        for r, start in enumerate(self._starts):
            yield from range(start, start + self._run_length(r))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, UidList):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"UidList({list(self)!r})"

    def _run_length(self, r: int) -> int:
        end = self._offsets[r + 1] if r + 1 < len(self._offsets) else self._count
        return end - self._offsets[r]

    @property
    def max(self) -> int:
        """The largest UID, 0 when empty."""
        if not self._count:
            return 0
        r = len(self._starts) - 1
        return self._starts[r] + self._run_length(r) - 1

    def __getitem__(self, index: int) -> int:
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        r = bisect.bisect_right(self._offsets, index) - 1
        return self._starts[r] + index - self._offsets[r]

    def index(self, uid: int) -> int | None:
        """The position of `uid` (message number - 1), or None if absent."""
        r = bisect.bisect_right(self._starts, uid) - 1
        if r < 0:
            return None
        delta = uid - self._starts[r]
        if delta < self._run_length(r):
            return self._offsets[r] + delta
        return None

    def extend(self, uids: Iterable[int]) -> None:
        """Append ascending UIDs, each above the current maximum."""
        last = self.max
        for uid in uids:
            if uid <= last:
                raise ValueError(f"uid {uid} not above {last}")
            if not self._count or uid != last + 1:
                self._starts.append(uid)
                self._offsets.append(self._count)
            self._count += 1
            last = uid

    def between(self, lo: int, hi: int) -> list[int]:
        """The UIDs u with lo <= u <= hi."""
        out: list[int] = []
        r = max(bisect.bisect_right(self._starts, lo) - 1, 0)
        while r < len(self._starts) and self._starts[r] <= hi:
            start = self._starts[r]
            end = start + self._run_length(r) - 1
            a, b = max(lo, start), min(hi, end)
            if a <= b:
                out.extend(range(a, b + 1))
            r += 1
        return out

    def slice(self, a: int, b: int) -> list[int]:
        """The UIDs at positions a .. b-1."""
        return [self[i] for i in range(max(a, 0), min(b, self._count))]

    def remove(self, uids: Iterable[int]) -> None:
        """Drop the given UIDs (absent ones are ignored)."""
        gone = sorted({u for u in uids if self.index(u) is not None})
        if not gone:
            return
        runs: list[tuple[int, int]] = []
        g = 0
        for r, start in enumerate(self._starts):
            end = start + self._run_length(r)  # exclusive
            cur = start
            while g < len(gone) and gone[g] < end:
                if gone[g] > cur:
                    runs.append((cur, gone[g] - cur))
                cur = gone[g] + 1
                g += 1
            if cur < end:
                runs.append((cur, end - cur))
        self._starts = array("I")
        self._offsets = array("I")
        self._count = 0
        for start, length in runs:
            self._starts.append(start)
            self._offsets.append(self._count)
            self._count += length
