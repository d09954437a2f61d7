"""Grammar-generated IMAP commands: valid ones parse, mutated ones never crash the parser."""

from __future__ import annotations

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.protocol.imap import commands as c
from mailactors.protocol.imap import response as r
from mailactors.protocol.imap.framing import NEED_DATA, CommandReader, Continue, RawCommand
from mailactors.protocol.imap.parser import ParseError, parse_command
from mailactors.protocol.imap.searchkey import SearchAnd

text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=12)
astrings = text.map(r.astring)
numbers = st.integers(1, 2**32 - 1).map(lambda n: str(n).encode())
seq_number = st.one_of(numbers, st.just(b"*"))
seq_item = st.one_of(
    seq_number, st.tuples(seq_number, seq_number).map(lambda t: t[0] + b":" + t[1])
)
seq_sets = st.one_of(st.just(b"$"), st.lists(seq_item, min_size=1, max_size=4).map(b",".join))
dates = st.dates(min_value=datetime.date(1000, 1, 1)).map(
    lambda d: f"{d.day}-{d.strftime('%b')}-{d.year:04d}".encode()
)
flag = st.sampled_from([b"\\Seen", b"\\Deleted", b"\\flagged", b"$Junk", b"NonJunk", b"\\Ext"])
flag_lists = st.lists(flag, max_size=4).map(lambda fs: b"(" + b" ".join(fs) + b")")

search_leaf = st.one_of(
    st.sampled_from(
        [b"ALL", b"ANSWERED", b"DELETED", b"DRAFT", b"FLAGGED", b"NEW", b"OLD", b"RECENT", b"SEEN"]
        + [b"UNANSWERED", b"UNDELETED", b"UNDRAFT", b"UNFLAGGED", b"UNSEEN"]
    ),
    st.tuples(
        st.sampled_from([b"BCC", b"BODY", b"CC", b"FROM", b"SUBJECT", b"TEXT", b"TO"]), astrings
    ).map(b" ".join),
    st.tuples(
        st.sampled_from([b"BEFORE", b"ON", b"SINCE", b"SENTBEFORE", b"SENTON", b"SENTSINCE"]),
        dates,
    ).map(b" ".join),
    st.tuples(st.sampled_from([b"LARGER", b"SMALLER"]), numbers).map(b" ".join),
    st.tuples(st.just(b"HEADER"), astrings, astrings).map(b" ".join),
    st.tuples(st.sampled_from([b"KEYWORD", b"UNKEYWORD"]), st.sampled_from([b"$Junk", b"x"])).map(
        b" ".join
    ),
    seq_sets,
    seq_sets.map(lambda s: b"UID " + s),
    numbers.map(lambda n: b"MODSEQ " + n),
    numbers.map(lambda n: b'MODSEQ "/flags/\\\\Seen" priv ' + n),
)
search_keys = st.recursive(
    search_leaf,
    lambda inner: st.one_of(
        inner.map(lambda k: b"NOT " + k),
        st.tuples(inner, inner).map(lambda t: b"OR " + t[0] + b" " + t[1]),
        st.lists(inner, min_size=1, max_size=3).map(lambda ks: b"(" + b" ".join(ks) + b")"),
    ),
    max_leaves=8,
)
search_commands = st.tuples(
    st.sampled_from([b"SEARCH", b"UID SEARCH"]),
    st.sampled_from([b"", b" RETURN ()", b" RETURN (MIN MAX)", b" RETURN (SAVE COUNT ALL)"]),
    st.sampled_from([b"", b" CHARSET UTF-8", b" CHARSET us-ascii"]),
    st.lists(search_keys, min_size=1, max_size=3).map(b" ".join),
).map(lambda t: t[0] + t[1] + t[2] + b" " + t[3])

fetch_att = st.one_of(
    st.sampled_from(
        [b"FLAGS", b"INTERNALDATE", b"RFC822", b"RFC822.HEADER", b"RFC822.TEXT", b"RFC822.SIZE"]
        + [b"ENVELOPE", b"BODY", b"BODYSTRUCTURE", b"UID", b"MODSEQ", b"BINARY.SIZE[1]"]
    ),
    st.tuples(
        st.sampled_from([b"BODY", b"BODY.PEEK"]),
        st.sampled_from(
            [b"[]", b"[HEADER]", b"[TEXT]", b"[1]", b"[1.2.MIME]", b"[2.HEADER.FIELDS (From To)]"]
            + [b'[HEADER.FIELDS.NOT ("X-Spam" Received)]', b"[3.1.TEXT]"]
        ),
        st.sampled_from([b"", b"<0.100>", b"<17.1>"]),
    ).map(b"".join),
    st.tuples(
        st.sampled_from([b"BINARY", b"BINARY.PEEK"]),
        st.sampled_from([b"[]", b"[1]", b"[1.2]"]),
        st.sampled_from([b"", b"<5.5>"]),
    ).map(b"".join),
)
fetch_commands = st.tuples(
    st.sampled_from([b"FETCH", b"UID FETCH"]),
    seq_sets,
    st.one_of(
        st.sampled_from([b"ALL", b"FAST", b"FULL"]),
        fetch_att,
        st.lists(fetch_att, min_size=1, max_size=5).map(lambda a: b"(" + b" ".join(a) + b")"),
    ),
).map(
    lambda t: (
        t[0]
        + b" "
        + t[1]
        + b" "
        + t[2]
        + (b" (CHANGEDSINCE 5 VANISHED)" if t[0].startswith(b"UID") else b" (CHANGEDSINCE 9)")
    )
)
store_commands = st.tuples(
    st.sampled_from([b"STORE", b"UID STORE"]),
    seq_sets,
    st.sampled_from([b"", b" (UNCHANGEDSINCE 0)", b" (UNCHANGEDSINCE 77)"]),
    st.sampled_from([b"FLAGS", b"+FLAGS", b"-FLAGS.SILENT"]),
    flag_lists,
).map(lambda t: t[0] + b" " + t[1] + t[2] + b" " + t[3] + b" " + t[4])
mailboxes = text.filter(bool).map(r.encode_mailbox)
append_messages = st.tuples(
    st.one_of(st.just(b""), flag_lists.map(lambda f: b" " + f)),
    st.one_of(st.just(b""), st.just(b' "17-Jul-1996 02:44:25 -0700"')),
    st.binary(max_size=20).map(lambda d: b" " + r.literal(d, binary=b"\x00" in d)),
).map(b"".join)
other_commands = st.one_of(
    st.tuples(st.just(b"APPEND"), mailboxes, st.lists(append_messages, min_size=1, max_size=3)).map(
        lambda t: t[0] + b" " + t[1] + b"".join(t[2])
    ),
    st.tuples(st.sampled_from([b"COPY", b"UID MOVE"]), seq_sets, mailboxes).map(b" ".join),
    st.tuples(st.sampled_from([b"SELECT", b"EXAMINE"]), mailboxes).map(
        lambda t: t[0] + b" " + t[1] + b" (QRESYNC (1 2 1:5 (1,3 7,9)) CONDSTORE)"
    ),
    st.tuples(st.just(b"LIST (SUBSCRIBED)"), mailboxes, mailboxes).map(
        lambda t: b" ".join(t) + b" RETURN (CHILDREN STATUS (MESSAGES SIZE))"
    ),
    st.tuples(st.just(b"LOGIN"), astrings, astrings).map(b" ".join),
    mailboxes.map(lambda m: b"STATUS " + m + b" (UIDNEXT HIGHESTMODSEQ)"),
    st.tuples(st.just(b"RENAME"), mailboxes, mailboxes).map(b" ".join),
)
commands = st.one_of(search_commands, fetch_commands, store_commands, other_commands)


def frame(data: bytes, strict: bool = True) -> list[RawCommand]:
    """Send data through a CommandReader, return the commands it produced.

    With `strict`, anything but commands and continuations fails the test.
    """
    reader = CommandReader()
    reader.receive_data(data)
    out: list[RawCommand] = []
    while (event := reader.next_command()) is not NEED_DATA:
        if isinstance(event, RawCommand):
            out.append(event)
        elif strict:
            assert isinstance(event, Continue), event
    return out


@settings(max_examples=600, deadline=None)
@given(commands)
def test_generated_commands_parse(body: bytes) -> None:
    (raw,) = frame(b"t " + body + b"\r\n")
    cmd = parse_command(raw)
    assert cmd.tag == "t"
    word = body.split(b" ")[1] if body.startswith(b"UID ") else body.split(b" ")[0]
    expected: dict[bytes, type] = {
        b"SEARCH": c.Search,
        b"FETCH": c.Fetch,
        b"STORE": c.Store,
        b"APPEND": c.Append,
        b"COPY": c.Copy,
        b"MOVE": c.Move,
        b"SELECT": c.Select,
        b"EXAMINE": c.Select,
        b"LIST": c.List,
        b"LOGIN": c.Login,
        b"STATUS": c.Status,
        b"RENAME": c.Rename,
    }
    assert isinstance(cmd, expected[word])
    if isinstance(cmd, c.Search):
        assert isinstance(cmd.criteria, SearchAnd)
    if isinstance(cmd, c.Fetch):
        assert cmd.attributes and cmd.changedsince in (5, 9)


@settings(max_examples=800, deadline=None)
@given(commands, st.integers(0, 10_000), st.integers(0, 20), st.binary(max_size=3))
def test_mutated_commands_never_crash(body: bytes, at: int, cut: int, insert: bytes) -> None:
    line = b"t " + body
    i = at % (len(line) + 1)
    mutated = line[:i] + insert + line[i + cut :]
    for raw in frame(mutated + b"\r\n", strict=False):
        try:
            parse_command(raw)
        except ParseError as e:
            assert e.response.startswith((f"{raw.tag} BAD ".encode(), f"{raw.tag} NO [".encode()))
    try:
        parse_command(RawCommand("t", mutated))
    except ParseError as e:
        assert e.response.startswith((b"t BAD ", b"t NO ["))
