"""parse_command: RFC 3501, RFC 9051, RFC 7162, RFC 4731, RFC 7888 command examples."""

from __future__ import annotations

import datetime

import pytest

from mailactors.protocol.imap import commands as c
from mailactors.protocol.imap.fetchattr import FetchAttr, Section
from mailactors.protocol.imap.framing import NEED_DATA, CommandReader, Continue, RawCommand
from mailactors.protocol.imap.parser import ParseError, decode_sasl_response, parse_command
from mailactors.protocol.imap.searchkey import (
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKeyword,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchText,
)
from mailactors.protocol.imap.sequence import SequenceSet


def parse(data: bytes, utf8: bool = False) -> c.Command:
    """Frame `data` (a full client transcript of one command) and parse it."""
    reader = CommandReader()
    reader.receive_data(data)
    while True:
        event = reader.next_command()
        if isinstance(event, RawCommand):
            return parse_command(event, utf8=utf8)
        assert isinstance(event, Continue), event


def bad(data: bytes) -> bytes:
    with pytest.raises(ParseError) as exc:
        parse(data)
    return exc.value.response


def seq(text: str) -> SequenceSet:
    out: list[tuple[int | None, int | None]] = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        a = None if lo == "*" else int(lo)
        b = a if not hi else (None if hi == "*" else int(hi))
        out.append((a, b))
    return SequenceSet(tuple(out))


# --- RFC 3501 / RFC 9051 section 6 examples -------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"abcd CAPABILITY\r\n", c.Capability("abcd")),
        (b"a002 NOOP\r\n", c.Noop("a002")),
        (b"A023 LOGOUT\r\n", c.Logout("A023")),
        (b"a001 STARTTLS\r\n", c.StartTls("a001")),
        (b"A002 NAMESPACE\r\n", c.Namespace("A002")),
        (b"FXXZ CHECK\r\n", c.Check("FXXZ")),
        (b"A341 CLOSE\r\n", c.Close("A341")),
        (b"A342 UNSELECT\r\n", c.Unselect("A342")),
        (b"A202 EXPUNGE\r\n", c.Expunge("A202")),
        (b"A002 IDLE\r\n", c.Idle("A002")),
        (b"a001 login SMITH SESAME\r\n", c.Login("a001", "SMITH", "SESAME")),
        (b"A142 SELECT INBOX\r\n", c.Select("A142", "INBOX")),
        (b"A932 EXAMINE blurdybloop\r\n", c.Select("A932", "blurdybloop", readonly=True)),
        (b"A003 CREATE owatagusiam/\r\n", c.Create("A003", "owatagusiam/")),
        (b"A683 DELETE blurdybloop\r\n", c.Delete("A683", "blurdybloop")),
        (b"A683 RENAME blurdybloop sarasoop\r\n", c.Rename("A683", "blurdybloop", "sarasoop")),
        (b"A002 SUBSCRIBE #news.comp.mail.mime\r\n", c.Subscribe("A002", "#news.comp.mail.mime")),
        (
            b"A002 UNSUBSCRIBE #news.comp.mail.mime\r\n",
            c.Unsubscribe("A002", "#news.comp.mail.mime"),
        ),
        (b'A101 LIST "" ""\r\n', c.List("A101", "", ("",))),
        (b'A102 LIST #news.comp.mail.misc ""\r\n', c.List("A102", "#news.comp.mail.misc", ("",))),
        (b"A202 LIST ~/Mail/ %\r\n", c.List("A202", "~/Mail/", ("%",))),
        (b'A002 LSUB "#news." "comp.mail.*"\r\n', c.Lsub("A002", "#news.", "comp.mail.*")),
        (
            b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
            c.Status("A042", "blurdybloop", ("UIDNEXT", "MESSAGES")),
        ),
        (b"A003 COPY 2:4 MEETING\r\n", c.Copy("A003", False, seq("2:4"), "MEETING")),
        (b"a UID MOVE 42:69 foo\r\n", c.Move("a", True, seq("42:69"), "foo")),
        # RFC 4315 section 2.1
        (b"A003 UID EXPUNGE 3000:3002\r\n", c.Expunge("A003", seq("3000:3002"))),
        (b"t ENABLE CONDSTORE qresync\r\n", c.Enable("t", ("CONDSTORE", "QRESYNC"))),
        (b"A001 AUTHENTICATE GSSAPI\r\n", c.Authenticate("A001", "GSSAPI", None)),
        # RFC 4959 section 3: AUTHENTICATE PLAIN with an initial response.
        (
            b"a AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
            c.Authenticate("a", "PLAIN", b"test\x00test\x00test"),
        ),
        (b"a AUTHENTICATE EXTERNAL =\r\n", c.Authenticate("a", "EXTERNAL", b"")),
        (b"a authenticate scram-sha-256\r\n", c.Authenticate("a", "SCRAM-SHA-256", None)),
        (b"a ENABLE UTF8=ACCEPT IMAP4rev2\r\n", c.Enable("a", ("UTF8=ACCEPT", "IMAP4REV2"))),
        (b"a UID EXPUNGE $\r\n", c.Expunge("a", SequenceSet.saved_result())),
        # RFC 2971 section 3.1
        (b"a023 ID NIL\r\n", c.Id("a023", None)),
        (
            b'a023 ID ("name" "sodr" "version" "19.34" "vendor" NIL)\r\n',
            c.Id("a023", (("name", "sodr"), ("version", "19.34"), ("vendor", None))),
        ),
    ],
)
def test_rfc_examples(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


def test_rfc3501_login_with_literals() -> None:
    assert parse(b"A001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man\r\n") == c.Login(
        "A001", "FRED FOOBAR", "fat man"
    )


def test_rfc7888_literal_plus_login() -> None:
    assert parse(b"A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n") == c.Login(
        "A001", "FRED FOOBAR", "fat man"
    )


RFC3501_APPEND_MESSAGE = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.COM>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.siam.edu\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)


def test_rfc3501_append_example() -> None:
    assert len(RFC3501_APPEND_MESSAGE) == 310
    reader = CommandReader()
    reader.receive_data(b"A003 APPEND saved-messages (\\Seen) {310}\r\n")
    assert reader.next_command() == Continue("Ready for literal data")
    assert reader.next_command() is NEED_DATA
    reader.receive_data(RFC3501_APPEND_MESSAGE + b"\r\n")
    raw = reader.next_command()
    assert isinstance(raw, RawCommand)
    assert parse_command(raw) == c.Append(
        "A003", "saved-messages", (c.AppendMessage(RFC3501_APPEND_MESSAGE, ("\\Seen",)),)
    )


def test_multiappend_with_dates_flags_and_literal8() -> None:
    # RFC 3502 section 6.3.11 style: several messages; RFC 3516 literal8; RFC 6855 UTF8.
    cmd = parse(
        b'A003 APPEND saved-messages (\\Seen $Junk) " 7-Feb-1994 21:52:25 -0800" {5+}\r\n'
        b"hello (\\Answered) ~{3+}\r\na\x00b {2+}\r\nhi UTF8 (~{2+}\r\n\xc3\xa9)\r\n"
    )
    tz = datetime.timezone(-datetime.timedelta(hours=8))
    assert cmd == c.Append(
        "A003",
        "saved-messages",
        (
            c.AppendMessage(
                b"hello", ("\\Seen", "$Junk"), datetime.datetime(1994, 2, 7, 21, 52, 25, tzinfo=tz)
            ),
            c.AppendMessage(b"a\x00b", ("\\Answered",), None, binary=True),
            c.AppendMessage(b"hi"),
            c.AppendMessage(b"\xc3\xa9", (), None, binary=True),
        ),
    )


def test_append_errors() -> None:
    assert bad(b"a APPEND INBOX\r\n") == b"a BAD Syntax error: expected a space\r\n"
    assert bad(b'a APPEND INBOX "text"\r\n').startswith(b"a BAD Syntax error:")
    assert bad(b"a APPEND INBOX (\\Recent) {1+}\r\nx\r\n").startswith(b"a BAD")
    assert bad(b"a APPEND INBOX UTF8 ({1+}\r\nx)\r\n").startswith(b"a BAD")


# --- SELECT / CONDSTORE / QRESYNC (RFC 7162) -----------------------------------------


def test_rfc7162_select_condstore() -> None:
    assert parse(b"A160 SELECT INBOX (CONDSTORE)\r\n") == c.Select("A160", "INBOX", condstore=True)


def test_rfc7162_qresync_select_example() -> None:
    # RFC 7162 section 3.2.5.1
    cmd = parse(b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n")
    assert cmd == c.Select(
        "A02",
        "INBOX",
        qresync=c.QresyncParams(67890007, 20050715194045000, seq("41,43:211,214:541")),
    )


def test_rfc7162_qresync_select_with_seq_match_data() -> None:
    # RFC 7162 section 3.2.5.2
    cmd = parse(
        b"B02 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 "
        b"(5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,"
        b"29988,29991,29994,29997)))\r\n"
    )
    assert isinstance(cmd, c.Select)
    assert cmd.qresync == c.QresyncParams(
        67890007,
        90060115194045000,
        seq("1:29997"),
        (
            seq("5000,7500,9000,9990:9999"),
            seq("15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997"),
        ),
    )


def test_qresync_seq_match_without_known_uids_and_errors() -> None:
    cmd = parse(b"a EXAMINE INBOX (QRESYNC (1 2 (1:2 5:6)))\r\n")
    assert isinstance(cmd, c.Select)
    assert cmd.readonly
    assert cmd.qresync == c.QresyncParams(1, 2, None, (seq("1:2"), seq("5:6")))
    assert bad(b"a SELECT INBOX (QRESYNC (0 2))\r\n").startswith(b"a BAD")
    assert bad(b"a SELECT INBOX (QRESYNC (1 2 1:*))\r\n").startswith(b"a BAD")
    assert bad(b"a SELECT INBOX (FOO)\r\n").startswith(b"a BAD")
    assert bad(b"a SELECT INBOX (CONDSTORE CONDSTORE)\r\n").startswith(b"a BAD")


# --- FETCH ---------------------------------------------------------------------------


def test_rfc3501_fetch_header_fields() -> None:
    cmd = parse(b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n")
    assert cmd == c.Fetch(
        "A654",
        False,
        seq("2:4"),
        (FetchAttr("FLAGS"), FetchAttr("BODY", Section((), "HEADER.FIELDS", ("DATE", "FROM")))),
    )
    assert isinstance(cmd, c.Fetch)
    assert cmd.attributes[1].response_name() == "BODY[HEADER.FIELDS (DATE FROM)]"
    assert cmd.attributes[1].sets_seen


def test_rfc3501_uid_fetch_and_macros() -> None:
    assert parse(b"A999 UID FETCH 4827313:4828442 FLAGS\r\n") == c.Fetch(
        "A999", True, seq("4827313:4828442"), (FetchAttr("FLAGS"),)
    )
    full = parse(b"a003 fetch 12 full\r\n")
    assert isinstance(full, c.Fetch)
    assert [a.name for a in full.attributes] == [
        "FLAGS",
        "INTERNALDATE",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODY",
    ]
    fast = parse(b"a FETCH 1 FAST\r\n")
    assert isinstance(fast, c.Fetch)
    assert len(fast.attributes) == 3
    all_ = parse(b"a FETCH 1:* ALL\r\n")
    assert isinstance(all_, c.Fetch)
    assert len(all_.attributes) == 4
    # RFC 3501 section 8 sample session
    body = parse(b"a004 fetch 12 body[header]\r\n")
    assert isinstance(body, c.Fetch)
    assert body.attributes == (FetchAttr("BODY", Section((), "HEADER")),)


def test_fetch_every_attribute() -> None:
    cmd = parse(
        b"a FETCH 1 (FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE ENVELOPE "
        b"BODY BODYSTRUCTURE UID MODSEQ BODY[] BODY.PEEK[1.2.MIME]<10.20> BODY[3.TEXT] "
        b"BODY[4.HEADER.FIELDS.NOT (Received X-Spam)] BINARY[1]<0.5> BINARY.PEEK[] "
        b"BINARY.SIZE[2.1])\r\n"
    )
    assert isinstance(cmd, c.Fetch)
    names = [a.response_name() for a in cmd.attributes]
    assert names == [
        "FLAGS",
        "INTERNALDATE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.TEXT",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",
        "BODY[]",
        "BODY[1.2.MIME]<10>",
        "BODY[3.TEXT]",
        "BODY[4.HEADER.FIELDS.NOT (Received X-Spam)]",
        "BINARY[1]<0>",
        "BINARY[]",
        "BINARY.SIZE[2.1]",
    ]
    peek = cmd.attributes[12]
    assert peek == FetchAttr("BODY", Section((1, 2), "MIME"), (10, 20), peek=True)
    assert not peek.sets_seen
    assert [a.sets_seen for a in cmd.attributes].count(True) == 6


@pytest.mark.parametrize(
    "line",
    [
        b"a FETCH 1 (FLAGS\r\n",
        b"a FETCH 1 BODY[MIME]\r\n",
        b"a FETCH 1 BODY[1.FOO]\r\n",
        b"a FETCH 1 BODY[HEADER.FIELDS]\r\n",
        b"a FETCH 1 BODY[0]\r\n",
        b"a FETCH 1 BODY[1]<1.0>\r\n",
        b"a FETCH 1 BINARY[TEXT]\r\n",
        b"a FETCH 1 BINARY.SIZE[1]<0.1>\r\n",
        b"a FETCH 1 FLAGS[1]\r\n",
        b"a FETCH 1 NONSENSE\r\n",
        b"a FETCH 0 FLAGS\r\n",
        b"a FETCH 1:4294967296 FLAGS\r\n",
        b"a FETCH 1 (FLAGS) (VANISHED)\r\n",
        b"a FETCH 1 (FLAGS) (CHANGEDSINCE 5 VANISHED)\r\n",
        b"a UID FETCH 1 (FLAGS) (CHANGEDSINCE 0)\r\n",
        b"a UID FETCH 1 (FLAGS) (CHANGEDSINCE 5 CHANGEDSINCE 6)\r\n",
        b"a FETCH 1 ALL extra\r\n",
    ],
)
def test_fetch_syntax_errors(line: bytes) -> None:
    assert bad(line).startswith(b"a BAD Syntax error: ")


def test_rfc7162_fetch_changedsince_and_vanished() -> None:
    # RFC 7162 section 3.1.4.1 and section 3.2.6 examples.
    assert parse(b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n") == c.Fetch(
        "s100", True, seq("1:*"), (FetchAttr("FLAGS"),), changedsince=12345
    )
    assert parse(b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n") == c.Fetch(
        "s100", True, seq("300:500"), (FetchAttr("FLAGS"),), changedsince=12345, vanished=True
    )


# --- STORE ---------------------------------------------------------------------------


def test_rfc3501_store_examples() -> None:
    assert parse(b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n") == c.Store(
        "A003", False, seq("2:4"), "add", False, ("\\Deleted",)
    )
    assert parse(b"a005 store 12 +flags \\deleted\r\n") == c.Store(
        "a005", False, seq("12"), "add", False, ("\\Deleted",)
    )
    assert parse(b"a UID STORE 1 FLAGS.SILENT ()\r\n") == c.Store(
        "a", True, seq("1"), "replace", True, ()
    )
    assert parse(b"a STORE $ -FLAGS $Junk \\Seen\r\n") == c.Store(
        "a", False, SequenceSet.saved_result(), "remove", False, ("$Junk", "\\Seen")
    )


def test_rfc7162_store_unchangedsince() -> None:
    # RFC 7162 section 3.1.3 examples.
    assert parse(
        b"a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)\r\n"
    ) == (c.Store("a103", True, seq("6,4,8"), "add", True, ("\\Deleted",), 12121230045))
    assert parse(b"a104 STORE 7,5,9 (UNCHANGEDSINCE 0) FLAGS.SILENT (\\Seen)\r\n") == (
        c.Store("a104", False, seq("7,5,9"), "replace", True, ("\\Seen",), 0)
    )


@pytest.mark.parametrize(
    "line",
    [
        b"a STORE 1 FLAGS\r\n",
        b"a STORE 1 *FLAGS (\\Seen)\r\n",
        b"a STORE 1 FLAGS (\\Recent)\r\n",
        b"a STORE 1 (CHANGEDSINCE 5) FLAGS (\\Seen)\r\n",
        b"a STORE 1 (UNCHANGEDSINCE 5 UNCHANGEDSINCE 6) FLAGS (\\Seen)\r\n",
    ],
)
def test_store_errors(line: bytes) -> None:
    assert bad(line).startswith(b"a BAD")


# --- SEARCH (RFC 3501, RFC 9051, RFC 4731, RFC 7162) ---------------------------------


def test_rfc3501_search_examples() -> None:
    cmd = parse(b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n')
    assert cmd == c.Search(
        "A282",
        False,
        SearchAnd(
            (
                SearchFlag("FLAGGED"),
                SearchDate("SINCE", datetime.date(1994, 2, 1)),
                SearchNot(SearchText("FROM", "Smith")),
            )
        ),
    )
    assert parse(b'A283 SEARCH TEXT "string not in mailbox"\r\n') == c.Search(
        "A283", False, SearchAnd((SearchText("TEXT", "string not in mailbox"),))
    )
    # RFC 3501 section 6.4.4: CHARSET with a literal search string.
    assert parse(b"A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX\r\n") == c.Search(
        "A284", False, SearchAnd((SearchText("TEXT", "XXXXXX"),)), charset="UTF-8"
    )


def test_rfc4731_search_return() -> None:
    cmd = parse(b'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n')
    assert isinstance(cmd, c.Search)
    assert cmd.return_options == ("MIN", "COUNT")
    cmd = parse(b'A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n')
    assert isinstance(cmd, c.Search)
    assert cmd.return_options == ()
    cmd = parse(b"A301 UID SEARCH RETURN (SAVE MAX ALL) UNSEEN\r\n")
    assert isinstance(cmd, c.Search)
    assert cmd.uid and cmd.return_options == ("SAVE", "MAX", "ALL")
    assert bad(b"a SEARCH RETURN (PARTIAL) ALL\r\n").startswith(b"a BAD")


def test_every_search_key() -> None:
    cmd = parse(
        b"a SEARCH ALL ANSWERED BCC b BEFORE 1-Jan-2020 BODY x CC y DELETED DRAFT FLAGGED "
        b'FROM f HEADER Message-ID "<x@y>" KEYWORD $Junk LARGER 100 NEW NOT SEEN OLD '
        b'ON "2-Mar-2021" OR RECENT UNSEEN SENTBEFORE 1-Jan-2001 SENTON 2-Jan-2001 '
        b"SENTSINCE 3-Jan-2001 SINCE 4-Jan-2001 SMALLER 5 SUBJECT s TEXT t TO u "
        b"UID 1:*,7 UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD foo 2,4:5 $ "
        b"(SEEN (DELETED)) MODSEQ 7\r\n"
    )
    assert isinstance(cmd, c.Search)
    assert isinstance(cmd.criteria, SearchAnd)
    keys = cmd.criteria.keys
    assert SearchText("BCC", "b") in keys
    assert SearchHeader("Message-ID", "<x@y>") in keys
    assert SearchKeyword("$Junk", True) in keys
    assert SearchKeyword("foo", False) in keys
    assert SearchSize(True, 100) in keys and SearchSize(False, 5) in keys
    assert SearchNot(SearchFlag("SEEN")) in keys
    assert SearchOr(SearchFlag("RECENT"), SearchFlag("UNSEEN")) in keys
    assert SearchDate("ON", datetime.date(2021, 3, 2)) in keys
    assert SearchSet(seq("1:*,7"), uid=True) in keys
    assert SearchSet(seq("2,4:5"), uid=False) in keys
    assert SearchSet(SequenceSet.saved_result(), uid=False) in keys
    assert SearchAnd((SearchFlag("SEEN"), SearchFlag("DELETED"))) in keys
    assert keys[-1] == SearchModseq(7)
    assert len(keys) == 36


def test_rfc7162_search_modseq() -> None:
    # RFC 7162 section 3.1.5 example.
    cmd = parse(b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338\r\n')
    assert isinstance(cmd, c.Search)
    assert cmd.criteria == SearchAnd((SearchModseq(620162338, "/flags/\\draft", "all"),))
    assert bad(b'a SEARCH MODSEQ "/x" all 5\r\n').startswith(b"a BAD")
    assert bad(b'a SEARCH MODSEQ "/flags/x" every 5\r\n').startswith(b"a BAD")


def test_search_badcharset_is_no() -> None:
    # RFC 9051 section 6.4.4: unsupported charset -> tagged NO [BADCHARSET].
    assert bad(b"A285 SEARCH CHARSET WHATEVER TEXT x\r\n") == (
        b"A285 NO [BADCHARSET (US-ASCII UTF-8)] Charset WHATEVER not supported\r\n"
    )
    cmd = parse(b"a SEARCH CHARSET us-ascii ALL\r\n")
    assert isinstance(cmd, c.Search)
    assert cmd.charset == "US-ASCII"


@pytest.mark.parametrize(
    "line",
    [
        b"a SEARCH\r\n",
        b"a SEARCH FOO\r\n",
        b"a SEARCH NOT\r\n",
        b"a SEARCH OR SEEN\r\n",
        b"a SEARCH (SEEN\r\n",
        b"a SEARCH BEFORE 31-Feb-2020\r\n",
        b"a SEARCH BEFORE 1-Foo-2020\r\n",
        b"a SEARCH LARGER x\r\n",
        b"a SEARCH " + b"NOT " * 200 + b"ALL\r\n",
        b"a SEARCH " + b"(" * 200 + b"ALL" + b")" * 200 + b"\r\n",
    ],
)
def test_search_errors(line: bytes) -> None:
    assert bad(line).startswith(b"a BAD Syntax error:")


# --- LIST (RFC 5258, RFC 5819, RFC 6154), STATUS, CREATE ------------------------------


def test_rfc5258_list_extended() -> None:
    cmd = parse(b'A02 LIST (SUBSCRIBED) "" "*"\r\n')
    assert cmd == c.List("A02", "", ("*",), frozenset({"SUBSCRIBED"}), extended=True)
    cmd = parse(b'A04 LIST (REMOTE) "" "*" RETURN (CHILDREN)\r\n')
    assert cmd == c.List(
        "A04", "", ("*",), frozenset({"REMOTE"}), frozenset({"CHILDREN"}), extended=True
    )
    cmd = parse(b'A05 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)\r\n')
    assert isinstance(cmd, c.List)
    assert cmd.selection == {"SUBSCRIBED", "RECURSIVEMATCH"}
    cmd = parse(b'A06 LIST "" ("INBOX" "Drafts" "Sent/%")\r\n')
    assert isinstance(cmd, c.List)
    assert cmd.patterns == ("INBOX", "Drafts", "Sent/%") and cmd.extended
    # RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE
    cmd = parse(b'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN) SPECIAL-USE)\r\n')
    assert isinstance(cmd, c.List)
    assert cmd.status_items == ("MESSAGES", "UNSEEN")
    assert cmd.return_options == {"STATUS", "SPECIAL-USE"}
    assert bad(b'a LIST (RECURSIVEMATCH) "" "*"\r\n').startswith(b"a BAD")
    assert bad(b'a LIST (FOO) "" "*"\r\n').startswith(b"a BAD")
    assert bad(b'a LIST "" "*" RETURN (BAR)\r\n').startswith(b"a BAD")


def test_status_items() -> None:
    cmd = parse(
        b"a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT "
        b"HIGHESTMODSEQ APPENDLIMIT)\r\n"
    )
    assert isinstance(cmd, c.Status)
    assert len(cmd.items) == 9
    assert bad(b"a STATUS INBOX ()\r\n").startswith(b"a BAD")
    assert bad(b"a STATUS INBOX (BOGUS)\r\n").startswith(b"a BAD")


def test_create_special_use() -> None:
    # RFC 6154 section 5.3 example.
    assert parse(b"t1 CREATE MySpecialArchive (USE (\\Archive))\r\n") == c.Create(
        "t1", "MySpecialArchive", ("\\Archive",)
    )
    assert bad(b"t1 CREATE x (USE (\\Bogus))\r\n") == (
        b"t1 NO [USEATTR] Unsupported special-use attribute \\Bogus\r\n"
    )


# --- Mailbox names -------------------------------------------------------------------


def test_inbox_is_case_insensitive() -> None:
    assert parse(b"a SELECT inbox\r\n") == c.Select("a", "INBOX")
    assert parse(b'a SELECT "InBoX"\r\n') == c.Select("a", "INBOX")
    assert parse(b"a CREATE inbox/sub\r\n") == c.Create("a", "INBOX/sub")
    assert parse(b"a SELECT Inboxes\r\n") == c.Select("a", "Inboxes")


def test_modified_utf7_mailbox_names() -> None:
    # RFC 3501 section 5.1.3 example: "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    cmd = parse(b"a CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-\r\n")
    assert cmd == c.Create("a", "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e")
    assert parse(b"a DELETE Tom&-Jerry\r\n") == c.Delete("a", "Tom&Jerry")
    assert bad(b"a DELETE &Jjo!\r\n").startswith(b"a BAD")


def test_utf8_mailbox_names() -> None:
    # RFC 6855 / RFC 9051: UTF-8 names; "&" is then literal.
    assert parse(b'a SELECT "Gr\xc3\xbc&-e"\r\n', utf8=True) == c.Select("a", "Gr\u00fc&-e")
    # Raw UTF-8 from an IMAP4rev1 client is accepted as UTF-8.
    assert parse(b'a SELECT "Gr\xc3\xbc\xc3\x9fe"\r\n') == c.Select("a", "Gr\u00fc\u00dfe")
    assert bad(b'a SELECT "\xff"\r\n').startswith(b"a BAD")


# --- General errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "response"),
    [
        (b"a\r\n", b"a BAD Syntax error: missing command\r\n"),
        (b"a FROB\r\n", b"a BAD Unknown command FROB\r\n"),
        (
            b"a UID NOOP\r\n",
            b"a BAD Syntax error: UID must be followed by COPY, MOVE, FETCH, "
            b"SEARCH, STORE or EXPUNGE\r\n",
        ),
        (b"a NOOP extra\r\n", b"a BAD Syntax error: unexpected characters after the command\r\n"),
        (b"a LOGIN user\r\n", b"a BAD Syntax error: expected a space\r\n"),
        (b'a LOGIN "user pass\r\n', b"a BAD Syntax error: unterminated quoted string\r\n"),
        (
            b"a AUTHENTICATE PLAIN !!\r\n",
            b"a BAD Syntax error: expected a base64 initial response\r\n",
        ),
        (b"a AUTHENTICATE PLAIN abc\r\n", b"a BAD Syntax error: invalid base64\r\n"),
        (b"a ENABLE\r\n", b"a BAD Syntax error: expected a space\r\n"),
        (b'a SELECT ""\r\n', b"a BAD Syntax error: empty mailbox name\r\n"),
    ],
)
def test_errors(line: bytes, response: bytes) -> None:
    assert bad(line) == response


def test_id_limits() -> None:
    many = b" ".join(b'"f%d" "v"' % i for i in range(31))
    assert bad(b"a ID (" + many + b")\r\n").startswith(b"a BAD")
    assert bad(b'a ID ("' + b"f" * 31 + b'" "v")\r\n').startswith(b"a BAD")


def test_parse_error_without_tag() -> None:
    with pytest.raises(ParseError) as exc:
        parse_command(RawCommand(None, b"+ NOOP"))
    assert exc.value.response == b"* BAD Missing or invalid command tag\r\n"
    assert exc.value.tag is None


def test_decode_sasl_response() -> None:
    assert decode_sasl_response("a1", b"dGVzdA==") == b"test"
    assert decode_sasl_response("a1", b"") == b""
    with pytest.raises(ParseError) as exc:
        decode_sasl_response("a1", b"*")
    assert exc.value.response == b"a1 BAD Authentication cancelled\r\n"
    with pytest.raises(ParseError) as exc:
        decode_sasl_response("a1", b"dGV=zdA")
    assert exc.value.response == b"a1 BAD Invalid base64 in SASL response\r\n"
