"""SEARCH evaluation against message rows and parsed messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailactors.actors.imap.search import Candidate, matches, uses_modseq, uses_saved
from mailactors.protocol.imap.searchkey import SearchAnd, parse_search_keys
from mailactors.storage.account import MessageInfo

MESSAGE = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: Quarterly report\r\n"
    b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nX-Tag: blue\r\n\r\nThe zebrafish numbers.\r\n"
)


def candidate(
    flags: tuple[str, ...] = ("\\Seen", "$Work"), uid: int = 4, msn: int = 2
) -> Candidate:
    info = MessageInfo(
        1, 1, uid, 17, 3, flags, len(MESSAGE), datetime(2026, 11, 24, 9, tzinfo=UTC), False
    )
    return Candidate(
        info,
        msn,
        5,
        9,
        lambda: MESSAGE,
        frozenset({4}),
        flags_lower=frozenset(f.lower() for f in flags),
    )


def crit(text: str) -> SearchAnd:
    keys, _ = parse_search_keys(text.encode(), 0)
    return SearchAnd(keys)


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("ALL", True),
        ("SEEN", True),
        ("UNSEEN", False),
        ("KEYWORD $work", True),
        ("UNKEYWORD $Work", False),
        ("NOT FLAGGED", True),
        ("OR FLAGGED DELETED", False),
        ("NEW", False),
        ("OLD", True),
        ("FROM alice", True),
        ("TO carol", False),
        ("SUBJECT quarterly", True),
        ("HEADER X-Tag blue", True),
        ('HEADER X-Other ""', False),
        ("BODY zebrafish", True),
        ("BODY Quarterly", False),
        ("TEXT quarterly", True),
        ("SENTON 23-Nov-2026", True),
        ("SENTBEFORE 23-Nov-2026", False),
        ("ON 24-Nov-2026", True),
        ("SINCE 25-Nov-2026", False),
        ("BEFORE 25-Nov-2026", True),
        ("LARGER 10 SMALLER 100000", True),
        ("UID 4", True),
        ("UID 5:*", False),
        ("2", True),
        ("3:*", False),
        ("$", True),
        ("MODSEQ 17", True),
        ("MODSEQ 18", False),
        ("(SEEN (FROM alice NOT TO bob))", False),
    ],
)
def test_matches(criteria: str, expected: bool) -> None:
    assert matches(crit(criteria), candidate()) is expected


def test_criteria_properties() -> None:
    assert uses_modseq(crit("OR SEEN NOT MODSEQ 3"))
    assert not uses_modseq(crit("SEEN"))
    assert uses_saved(crit("NOT $")) and not uses_saved(crit("1:3"))
