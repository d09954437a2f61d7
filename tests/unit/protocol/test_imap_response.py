"""Response formatting: status responses, codes, strings, ESEARCH, VANISHED (RFC 9051 section 7)."""

from __future__ import annotations

import datetime

import pytest

from mailactors.protocol.imap import response as r
from mailactors.protocol.imap.sequence import SequenceSet


def test_tagged_and_untagged() -> None:
    assert r.tagged("A142", "OK", "SELECT completed", r.READ_WRITE) == (
        b"A142 OK [READ-WRITE] SELECT completed\r\n"
    )
    assert r.tagged("a", "BAD", "Syntax error") == b"a BAD Syntax error\r\n"
    assert r.untagged("172 EXISTS") == b"* 172 EXISTS\r\n"
    assert r.untagged(b"1 RECENT") == b"* 1 RECENT\r\n"
    assert r.untagged_status("OK", "Predicted next UID", r.uidnext(4392)) == (
        b"* OK [UIDNEXT 4392] Predicted next UID\r\n"
    )
    assert r.untagged_status("BYE", "Server shutting down", r.UNAVAILABLE) == (
        b"* BYE [UNAVAILABLE] Server shutting down\r\n"
    )
    assert r.continue_req("Ready for additional command text") == (
        b"+ Ready for additional command text\r\n"
    )
    assert r.continue_req("") == b"+ \r\n"


def test_response_codes() -> None:
    # RFC 9051 section 7.1, RFC 4315, RFC 7162, RFC 5530 codes.
    assert r.uidvalidity(3857529045).format() == "[UIDVALIDITY 3857529045]"
    assert r.unseen(12).format() == "[UNSEEN 12]"
    assert r.permanentflags(["\\Deleted", "\\Seen", "\\*"]).format() == (
        "[PERMANENTFLAGS (\\Deleted \\Seen \\*)]"
    )
    assert (
        r.capability_code(["IMAP4rev1", "IMAP4rev2"]).format() == "[CAPABILITY IMAP4rev1 IMAP4rev2]"
    )
    assert r.badcharset(["US-ASCII", "UTF-8"]).format() == "[BADCHARSET (US-ASCII UTF-8)]"
    assert r.badcharset().format() == "[BADCHARSET]"
    assert r.highestmodseq(715194045007).format() == "[HIGHESTMODSEQ 715194045007]"
    assert r.modified([7, 9]).format() == "[MODIFIED 7,9]"
    assert r.modified(SequenceSet(((1, 3),))).format() == "[MODIFIED 1:3]"
    assert r.appenduid(38505, [3955]).format() == "[APPENDUID 38505 3955]"
    # RFC 4315 section 3: COPYUID sets keep the pairing order.
    assert r.copyuid(38505, [304, 319, 320], [3956, 3957, 3958]).format() == (
        "[COPYUID 38505 304,319:320 3956:3958]"
    )
    assert r.copyuid(1, [3, 2, 1], [10, 11, 12]).format() == "[COPYUID 1 3,2,1 10:12]"
    names = [
        code.format()
        for code in (
            r.ALERT,
            r.PARSE,
            r.READ_ONLY,
            r.TRYCREATE,
            r.NOMODSEQ,
            r.CLOSED,
            r.TOOBIG,
            r.ALREADYEXISTS,
            r.NONEXISTENT,
            r.CANNOT,
            r.LIMIT,
            r.SERVERBUG,
            r.AUTHENTICATIONFAILED,
            r.CONTACTADMIN,
        )
    ]
    assert names[0] == "[ALERT]" and names[2] == "[READ-ONLY]" and names[-1] == "[CONTACTADMIN]"
    assert r.tagged("A003", "NO", "Mailbox doesn't exist", r.TRYCREATE) == (
        b"A003 NO [TRYCREATE] Mailbox doesn't exist\r\n"
    )


def test_strings() -> None:
    assert r.quote_string('a "b" \\c') == b'"a \\"b\\" \\\\c"'
    with pytest.raises(ValueError):
        r.quote_string("a\r\nb")
    assert r.string("hello") == b'"hello"'
    assert r.string("two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert r.string(b"nul\x00") == b"~{4}\r\nnul\x00"
    assert r.string("\u00e9") == b'"\xc3\xa9"'
    assert r.string("\u00e9", utf8=False) == b"{2}\r\n\xc3\xa9"
    assert r.string("x" * 2000).startswith(b"{2000}\r\n")
    assert r.astring("INBOX") == b"INBOX"
    assert r.astring("a]b") == b"a]b"
    assert r.astring("two words") == b'"two words"'
    assert r.astring("NIL") == b'"NIL"'
    assert r.astring("") == b'""'
    assert r.nstring(None) == b"NIL"
    assert r.nstring("x") == b'"x"'
    assert r.literal(b"abc") == b"{3}\r\nabc"
    assert r.literal(b"abc", binary=True) == b"~{3}\r\nabc"
    assert r.is_atom("FLAGS") and not r.is_atom("a b") and not r.is_atom("")


def test_flags_and_dates() -> None:
    assert r.format_flags(["\\Seen", "$Forwarded"]) == b"(\\Seen $Forwarded)"
    assert r.format_flags([]) == b"()"
    tz = datetime.timezone(-datetime.timedelta(hours=7))
    # RFC 3501 section 7.4.2 example: INTERNALDATE "17-Jul-1996 02:44:25 -0700"
    assert r.format_date_time(datetime.datetime(1996, 7, 17, 2, 44, 25, tzinfo=tz)) == (
        b'"17-Jul-1996 02:44:25 -0700"'
    )
    # date-day-fixed pads with a space.
    assert r.format_date_time(datetime.datetime(2024, 2, 4, 9, 5, 0)) == (
        b'" 4-Feb-2024 09:05:00 +0000"'
    )
    ist = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    assert r.format_date_time(datetime.datetime(2024, 12, 31, 23, 59, 59, tzinfo=ist)).endswith(
        b' +0530"'
    )


def test_mailbox_encoding() -> None:
    # RFC 3501 section 5.1.3 example.
    assert r.encode_mailbox("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e") == (
        b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    )
    assert r.encode_mailbox("Tom & Jerry") == b'"Tom &- Jerry"'
    assert r.encode_mailbox("Gr\u00fc\u00dfe", utf8=True) == b'"Gr\xc3\xbc\xc3\x9fe"'


def test_search_and_esearch() -> None:
    assert r.format_search([2, 84, 882]) == b"* SEARCH 2 84 882\r\n"
    assert r.format_search([]) == b"* SEARCH\r\n"
    # RFC 7162 section 3.1.5 example
    assert r.format_search([2, 5, 6, 7, 11, 12, 18, 19, 20, 23], modseq=917162500) == (
        b"* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n"
    )
    # RFC 4731 section 3.1 examples
    assert r.format_esearch("A282", False, minimum=2, count=3) == (
        b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n'
    )
    assert r.format_esearch("A283", False, all_numbers=[2, 10, 11]) == (
        b'* ESEARCH (TAG "A283") ALL 2,10:11\r\n'
    )
    assert r.format_esearch("A285", True, minimum=7, maximum=3800) == (
        b'* ESEARCH (TAG "A285") UID MIN 7 MAX 3800\r\n'
    )
    assert r.format_esearch("A286", False, count=15) == b'* ESEARCH (TAG "A286") COUNT 15\r\n'
    # An empty result has no ALL.
    assert r.format_esearch("t", True, all_numbers=[], count=0) == (
        b'* ESEARCH (TAG "t") UID COUNT 0\r\n'
    )
    assert r.format_esearch(None, False, modseq=5, count=1) == b"* ESEARCH COUNT 1 MODSEQ 5\r\n"


def test_vanished() -> None:
    # RFC 7162 section 3.2.6 example: * VANISHED (EARLIER) 300:310,405,411
    uids = [*range(300, 311), 405, 411]
    assert r.format_vanished(uids, earlier=True) == b"* VANISHED (EARLIER) 300:310,405,411\r\n"
    assert r.format_vanished([405, 407, 410, 425]) == b"* VANISHED 405,407,410,425\r\n"
    assert r.format_vanished(SequenceSet(((1, 3),))) == b"* VANISHED 1:3\r\n"


def test_fetch_list_status() -> None:
    # RFC 9051 section 7.5.2 / RFC 3501 examples
    assert r.format_fetch(
        23, [("FLAGS", r.format_flags(["\\Seen"])), ("RFC822.SIZE", b"44827")]
    ) == (b"* 23 FETCH (FLAGS (\\Seen) RFC822.SIZE 44827)\r\n")
    assert (
        r.format_fetch(12, [("BODY[]", r.literal(b"abc"))]) == b"* 12 FETCH (BODY[] {3}\r\nabc)\r\n"
    )
    assert r.format_list(["\\Noselect"], "/", "~/Mail/foo") == (
        b'* LIST (\\Noselect) "/" ~/Mail/foo\r\n'
    )
    assert r.format_list([], None, "") == b'* LIST () NIL ""\r\n'
    assert r.format_list(["\\HasNoChildren"], "/", "\u65e5\u672c") == (
        b'* LIST (\\HasNoChildren) "/" &ZeVnLA-\r\n'
    )
    assert (
        r.format_list(
            ["\\Subscribed"], "/", "Foo", extended='("CHILDINFO" ("SUBSCRIBED"))', command="LSUB"
        )
        == b'* LSUB (\\Subscribed) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    )
    assert r.format_status("blurdybloop", [("MESSAGES", 231), ("UIDNEXT", 44292)]) == (
        b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"
    )
    assert r.format_status("my box", []) == b'* STATUS "my box" ()\r\n'
