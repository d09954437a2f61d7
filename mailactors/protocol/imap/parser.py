"""Parsing a framed IMAP command into a command dataclass (RFC 9051 section 6, section 9).

    command         = tag SP (command-any / command-auth / command-nonauth /
                      command-select) CRLF
    uid             = "UID" SP (copy / move / fetch / search / store / uid-expunge)

`parse_command(raw)` raises ParseError whose `response` is the tagged BAD (or
NO with a response code, e.g. BADCHARSET) to send back.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from mailactors.protocol.imap import commands as c
from mailactors.protocol.imap.fetchattr import parse_fetch_atts
from mailactors.protocol.imap.framing import RawCommand
from mailactors.protocol.imap.grammar import (
    MAX_NUMBER64,
    GrammarError,
    at_end,
    decode_mailbox,
    decode_text,
    expect,
    is_literal8,
    parse_astring,
    parse_astring_text,
    parse_atom,
    parse_date_time,
    parse_flag_list,
    parse_list_mailbox,
    parse_literal,
    parse_mailbox,
    parse_nstring,
    parse_number,
    parse_nz_number,
    parse_paren_atoms,
    parse_sequence_set,
    parse_sp,
    parse_store_flags,
    parse_string,
    peek,
)
from mailactors.protocol.imap.response import BADCHARSET_OURS, tagged
from mailactors.protocol.imap.searchkey import SearchAnd, parse_search_keys
from mailactors.protocol.imap.sequence import SequenceSet


class ParseError(ValueError):
    """The client sent a command we cannot accept; `response` is the reply to send."""

    def __init__(self, tag: str | None, response: bytes) -> None:
        super().__init__(response.decode("utf-8", "replace").rstrip())
        self.tag = tag
        self.response = response


class _Refused(Exception):
    """Parsed fine but refused with NO and a response code (e.g. BADCHARSET)."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


# RFC 2971 section 3.3: "Field strings MUST NOT be longer than 30 octets. Value
# strings MUST NOT be longer than 1024 octets. Implementations MUST NOT send more
# than 30 field-value pairs."
MAX_ID_FIELD = 30
MAX_ID_VALUE = 1024
MAX_ID_PAIRS = 30

# RFC 9051 section 6.3.11 / RFC 7889 / RFC 8438 / RFC 7162: the STATUS items we know.
STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "SIZE",
        "RECENT",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
    }
)
# RFC 5258 section 3.1 / RFC 6154 section 5.1: list-select-opt.
LIST_SELECTION_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
# RFC 5258 section 3.2 / RFC 6154 / RFC 5819: return-option.
LIST_RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})
# RFC 4731 section 3.1 / RFC 5182: search-return-opt.
SEARCH_RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
# RFC 9051 section 6.4.4: "US-ASCII MUST be supported; other [CHARSET]s MAY be supported."
SEARCH_CHARSETS = frozenset({"US-ASCII", "UTF-8"})
# RFC 6154 section 2: use-attr.
SPECIAL_USE = frozenset(
    {"\\ALL", "\\ARCHIVE", "\\DRAFTS", "\\FLAGGED", "\\JUNK", "\\SENT", "\\TRASH"}
)

_NAME_RE = re.compile(rb"[A-Za-z0-9]+")
_BASE64_RE = re.compile(rb"[A-Za-z0-9+/]*={0,2}")

_Parser = Callable[[str, bytes, int, bool, bool], tuple[c.Command, int]]


def _no_args(cls: Callable[[str], c.Command]) -> _Parser:
    def parse(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
        return cls(tag), pos

    return parse


def _parse_id(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """id = "ID" SP id-params-list ; id-params-list = "(" *(string SP nstring) ")" / nil"""
    pos = parse_sp(buf, pos)
    if peek(buf, pos, b"NIL"):
        return c.Id(tag, None), pos + 3
    pos = expect(buf, pos, b"(")
    params: list[tuple[str, str | None]] = []
    while buf[pos : pos + 1] != b")":
        if params:
            pos = parse_sp(buf, pos)
        field, pos = parse_string(buf, pos)
        value, pos = parse_nstring(buf, parse_sp(buf, pos))
        if len(field) > MAX_ID_FIELD or (value is not None and len(value) > MAX_ID_VALUE):
            raise GrammarError("ID field or value too long")
        params.append((decode_text(field), None if value is None else decode_text(value)))
        if len(params) > MAX_ID_PAIRS:
            raise GrammarError("too many ID fields")
    return c.Id(tag, tuple(params)), pos + 1


def _parse_authenticate(
    tag: str, buf: bytes, pos: int, uid: bool, utf8: bool
) -> tuple[c.Command, int]:
    """authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")]   (RFC 4959)"""
    mech, pos = parse_atom(buf, parse_sp(buf, pos))
    initial: bytes | None = None
    if buf[pos : pos + 1] == b" ":
        pos += 1
        if buf[pos : pos + 1] == b"=" and at_end(buf, pos + 1):
            # RFC 4959 section 3: "=" is a zero-length initial response.
            return c.Authenticate(tag, mech.upper(), b""), pos + 1
        m = _BASE64_RE.match(buf, pos)
        if m is None or not m.group():
            raise GrammarError("expected a base64 initial response")
        initial = decode_base64(m.group())
        pos = m.end()
    return c.Authenticate(tag, mech.upper(), initial), pos


def decode_base64(data: bytes) -> bytes:
    """Strict base64 (RFC 4648) as SASL exchanges use; GrammarError when malformed."""
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        raise GrammarError("invalid base64") from None


def decode_sasl_response(tag: str, line: bytes) -> bytes:
    """Decode one AUTHENTICATE client response line (from CommandReader.read_line()).

    RFC 9051 section 6.2.2: "If the client wishes to cancel an authentication
    exchange, it issues a line consisting of a single "*". If the server receives
    such a response, or if it receives an invalid BASE64 string ..., it MUST
    reject the AUTHENTICATE command by sending a tagged BAD response." Both raise
    ParseError carrying that BAD. An empty line is an empty response.
    """
    if line == b"*":
        raise ParseError(tag, tagged(tag, "BAD", "Authentication cancelled"))
    try:
        return decode_base64(line)
    except GrammarError:
        raise ParseError(tag, tagged(tag, "BAD", "Invalid base64 in SASL response")) from None


def _parse_login(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """login = "LOGIN" SP userid SP password ; userid = astring ; password = astring"""
    user, pos = parse_astring_text(buf, parse_sp(buf, pos))
    password, pos = parse_astring_text(buf, parse_sp(buf, pos))
    return c.Login(tag, user, password), pos


def _parse_enable(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """enable = "ENABLE" 1*(SP capability)   (RFC 5161)"""
    caps: list[str] = []
    while buf[pos : pos + 1] == b" " or not caps:
        cap, pos = parse_atom(buf, parse_sp(buf, pos))
        caps.append(cap.upper())
    return c.Enable(tag, tuple(caps)), pos


def _parse_uid_set(buf: bytes, pos: int) -> tuple[SequenceSet, int]:
    """known-uids = sequence-set ; "*" is not allowed (RFC 7162 section 3.2.5)"""
    seq, end = parse_sequence_set(buf, pos)
    if seq.saved or any(lo is None or hi is None for lo, hi in seq.ranges):
        raise GrammarError("'*' and '$' are not allowed here")
    return seq, end


def _parse_qresync(buf: bytes, pos: int) -> tuple[c.QresyncParams, int]:
    """qresync-param = "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
                       [SP seq-match-data] ")"
    seq-match-data  = "(" known-sequence-set SP known-uid-set ")"
    """
    pos = expect(buf, parse_sp(buf, pos), b"(")
    validity, pos = parse_nz_number(buf, pos)
    modseq, pos = parse_nz_number(buf, parse_sp(buf, pos), MAX_NUMBER64)
    known: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    if buf[pos : pos + 1] == b" " and buf[pos + 1 : pos + 2] != b"(":
        known, pos = _parse_uid_set(buf, pos + 1)
    if buf[pos : pos + 1] == b" ":
        pos = expect(buf, pos + 1, b"(")
        seqs, pos = _parse_uid_set(buf, pos)
        uids, pos = _parse_uid_set(buf, parse_sp(buf, pos))
        pos = expect(buf, pos, b")")
        match = (seqs, uids)
    pos = expect(buf, pos, b")")
    return c.QresyncParams(validity, modseq, known, match), pos


def _select(readonly: bool) -> _Parser:
    def parse(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
        """select = "SELECT" SP mailbox [select-params]
        select-params = SP "(" select-param *(SP select-param) ")"   (RFC 4466, RFC 7162)
        """
        mailbox, pos = parse_mailbox(buf, parse_sp(buf, pos), utf8)
        condstore = False
        qresync: c.QresyncParams | None = None
        if buf[pos : pos + 1] == b" ":
            pos = expect(buf, pos + 1, b"(")
            while True:
                name, pos = parse_atom(buf, pos)
                name = name.upper()
                if name == "CONDSTORE" and not condstore:
                    condstore = True
                elif name == "QRESYNC" and qresync is None:
                    qresync, pos = _parse_qresync(buf, pos)
                else:
                    raise GrammarError(f"unknown or repeated select parameter {name}")
                if buf[pos : pos + 1] != b" ":
                    break
                pos += 1
            pos = expect(buf, pos, b")")
        return c.Select(tag, mailbox, readonly, condstore, qresync), pos

    return parse


def _parse_create(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """create = "CREATE" SP mailbox [create-params]
    create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"   (RFC 6154 section 3)
    """
    mailbox, pos = parse_mailbox(buf, parse_sp(buf, pos), utf8)
    uses: tuple[str, ...] = ()
    if buf[pos : pos + 1] == b" ":
        pos = expect(buf, expect(buf, pos + 1, b"("), b"USE ")
        flags, pos = parse_flag_list(buf, pos)
        for flag in flags:
            if flag.upper() not in SPECIAL_USE:
                raise _Refused("[USEATTR]", f"Unsupported special-use attribute {flag}")
        uses = flags
        pos = expect(buf, pos, b")")
    return c.Create(tag, mailbox, uses), pos


def _one_mailbox(cls: Callable[[str, str], c.Command]) -> _Parser:
    def parse(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
        mailbox, pos = parse_mailbox(buf, parse_sp(buf, pos), utf8)
        return cls(tag, mailbox), pos

    return parse


def _parse_rename(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """rename = "RENAME" SP mailbox SP mailbox"""
    old, pos = parse_mailbox(buf, parse_sp(buf, pos), utf8)
    new, pos = parse_mailbox(buf, parse_sp(buf, pos), utf8)
    return c.Rename(tag, old, new), pos


def _parse_reference(buf: bytes, pos: int, utf8: bool) -> tuple[str, int]:
    """The LIST reference name: a mailbox astring that may be empty."""
    raw, pos = parse_astring(buf, pos)
    return (decode_mailbox(raw, utf8) if raw else ""), pos


def _parse_status_atts(buf: bytes, pos: int) -> tuple[tuple[str, ...], int]:
    """ "(" status-att *(SP status-att) ")" """
    items, pos = parse_paren_atoms(buf, pos)
    if not items:
        raise GrammarError("empty status item list")
    for item in items:
        if item not in STATUS_ITEMS:
            raise GrammarError(f"unknown status item {item}")
    return items, pos


def _parse_list(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]

    mbox-or-pat = list-mailbox / patterns ; patterns = "(" list-mailbox *(SP list-mailbox) ")"
    list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
    return-option =/ "STATUS" SP "(" status-att *(SP status-att) ")"   (RFC 5819)
    """
    pos = parse_sp(buf, pos)
    extended = False
    selection: frozenset[str] = frozenset()
    if buf[pos : pos + 1] == b"(":
        extended = True
        opts, pos = parse_paren_atoms(buf, pos)
        unknown = set(opts) - LIST_SELECTION_OPTIONS
        if unknown:
            raise GrammarError(f"unknown LIST selection option {sorted(unknown)[0]}")
        selection = frozenset(opts)
        # RFC 5258 section 3.1: RECURSIVEMATCH "MUST NOT occur as the only selection
        # option (or only with REMOTE)".
        if "RECURSIVEMATCH" in selection and not selection - {"RECURSIVEMATCH", "REMOTE"}:
            raise GrammarError("RECURSIVEMATCH needs another selection option")
        pos = parse_sp(buf, pos)
    reference, pos = _parse_reference(buf, pos, utf8)
    pos = parse_sp(buf, pos)
    patterns: list[str] = []
    if buf[pos : pos + 1] == b"(":
        extended = True
        pos += 1
        while True:
            pattern, pos = parse_list_mailbox(buf, pos, utf8)
            patterns.append(pattern)
            if buf[pos : pos + 1] != b" ":
                break
            pos += 1
        pos = expect(buf, pos, b")")
    else:
        pattern, pos = parse_list_mailbox(buf, pos, utf8)
        patterns.append(pattern)
    returns: set[str] = set()
    status: tuple[str, ...] | None = None
    if buf[pos : pos + 1] == b" ":
        extended = True
        pos = expect(buf, expect(buf, pos + 1, b"RETURN "), b"(")
        while buf[pos : pos + 1] != b")":
            if returns:
                pos = parse_sp(buf, pos)
            name, pos = parse_atom(buf, pos)
            name = name.upper()
            if name not in LIST_RETURN_OPTIONS:
                raise GrammarError(f"unknown LIST return option {name}")
            if name == "STATUS":
                status, pos = _parse_status_atts(buf, parse_sp(buf, pos))
            returns.add(name)
        pos += 1
    return (
        c.List(tag, reference, tuple(patterns), selection, frozenset(returns), status, extended),
        pos,
    )


def _parse_lsub(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """lsub = "LSUB" SP mailbox SP list-mailbox"""
    reference, pos = _parse_reference(buf, parse_sp(buf, pos), utf8)
    pattern, pos = parse_list_mailbox(buf, parse_sp(buf, pos), utf8)
    return c.Lsub(tag, reference, pattern), pos


def _parse_status(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")" """
    mailbox, pos = parse_mailbox(buf, parse_sp(buf, pos), utf8)
    items, pos = _parse_status_atts(buf, parse_sp(buf, pos))
    return c.Status(tag, mailbox, items), pos


def _parse_append(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """append = "APPEND" SP mailbox 1*append-message                 (RFC 3502)

    append-message = append-opts SP append-data
    append-opts    = [SP flag-list] [SP date-time]
    append-data    = literal / literal8 / "UTF8" SP "(" literal8 ")"  (RFC 3516, RFC 6855)
    """
    mailbox, pos = parse_mailbox(buf, parse_sp(buf, pos), utf8)
    messages: list[c.AppendMessage] = []
    while not messages or not at_end(buf, pos):
        pos = parse_sp(buf, pos)
        flags: tuple[str, ...] = ()
        if buf[pos : pos + 1] == b"(":
            flags, pos = parse_flag_list(buf, pos)
            pos = parse_sp(buf, pos)
        date = None
        if buf[pos : pos + 1] == b'"':
            date, pos = parse_date_time(buf, pos)
            pos = parse_sp(buf, pos)
        if peek(buf, pos, b"UTF8 ("):
            pos += 6
            if not is_literal8(buf, pos):
                raise GrammarError("UTF8 APPEND needs a literal8")
            data, pos = parse_literal(buf, pos, binary=True)
            pos = expect(buf, pos, b")")
            binary = True
        else:
            binary = is_literal8(buf, pos)
            data, pos = parse_literal(buf, pos, binary=True)
        messages.append(c.AppendMessage(data, flags, date, binary))
    return c.Append(tag, mailbox, tuple(messages)), pos


def _parse_expunge(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """expunge = "EXPUNGE" ; uid-expunge = "EXPUNGE" SP sequence-set   (RFC 4315)"""
    if not uid:
        return c.Expunge(tag), pos
    seq, pos = parse_sequence_set(buf, parse_sp(buf, pos))
    return c.Expunge(tag, seq), pos


def _parse_search(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """search = "SEARCH" [search-return-opts] SP search-program

    search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
    search-program     = ["CHARSET" SP charset SP] search-key *(SP search-key)
    """
    pos = parse_sp(buf, pos)
    returns: tuple[str, ...] | None = None
    if peek(buf, pos, b"RETURN "):
        opts, pos = parse_paren_atoms(buf, pos + 7)
        for opt in opts:
            if opt not in SEARCH_RETURN_OPTIONS:
                raise GrammarError(f"unknown search return option {opt}")
        returns = tuple(dict.fromkeys(opts))
        pos = parse_sp(buf, pos)
    charset: str | None = None
    if peek(buf, pos, b"CHARSET "):
        raw, pos = parse_astring(buf, pos + 8)
        charset = raw.decode("ascii", "replace").upper()
        pos = parse_sp(buf, pos)
    keys, pos = parse_search_keys(buf, pos)
    if charset is not None and charset not in SEARCH_CHARSETS:
        # RFC 9051 section 6.4.4: "If the server does not support the specified
        # [CHARSET], it MUST return a tagged NO response (not a BAD)" with BADCHARSET.
        raise _Refused(BADCHARSET_OURS.format(), f"Charset {charset} not supported")
    return c.Search(tag, uid, SearchAnd(keys), charset, returns), pos


def _parse_fetch(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
               "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
    fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"
    fetch-modifier  = "CHANGEDSINCE" SP mod-sequence-value / "VANISHED"   (RFC 7162)
    """
    seq, pos = parse_sequence_set(buf, parse_sp(buf, pos))
    atts, pos = parse_fetch_atts(buf, parse_sp(buf, pos))
    changedsince: int | None = None
    vanished = False
    if buf[pos : pos + 1] == b" ":
        mods, end = _parse_modifier_list(buf, pos + 1)
        pos = end
        for name, value in mods:
            if name == "CHANGEDSINCE" and changedsince is None and value is not None:
                changedsince = value
            elif name == "VANISHED" and not vanished and value is None:
                vanished = True
            else:
                raise GrammarError(f"unknown or repeated fetch modifier {name}")
        # RFC 7162 section 3.2.6: "The VANISHED UID FETCH modifier MUST only be
        # specified together with the CHANGEDSINCE UID FETCH modifier" and only
        # for UID FETCH; otherwise the server MUST reply BAD.
        if vanished and (not uid or changedsince is None):
            raise GrammarError("VANISHED needs UID FETCH with CHANGEDSINCE")
    return c.Fetch(tag, uid, seq, atts, changedsince, vanished), pos


def _parse_modifier_list(buf: bytes, pos: int) -> tuple[list[tuple[str, int | None]], int]:
    """ "(" modifier *(SP modifier) ")" where a modifier is a name with an optional number."""
    pos = expect(buf, pos, b"(")
    mods: list[tuple[str, int | None]] = []
    while True:
        m = _NAME_RE.match(buf, pos)
        if m is None:
            raise GrammarError("expected a modifier")
        name = m.group().decode("ascii").upper()
        pos = m.end()
        value: int | None = None
        if name in ("CHANGEDSINCE", "UNCHANGEDSINCE"):
            value, pos = parse_number(buf, parse_sp(buf, pos), MAX_NUMBER64)
            # mod-sequence-value (CHANGEDSINCE) is positive; UNCHANGEDSINCE takes valzer.
            if name == "CHANGEDSINCE" and value == 0:
                raise GrammarError("CHANGEDSINCE must be positive")
        mods.append((name, value))
        if buf[pos : pos + 1] != b" ":
            break
        pos += 1
    return mods, expect(buf, pos, b")")


_STORE_RE = re.compile(rb"([+-]?)FLAGS(\.SILENT)?", re.IGNORECASE)


def _parse_store(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
    """store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags

    store-modifiers = SP "(" store-modifier *(SP store-modifier) ")"
    store-modifier  = "UNCHANGEDSINCE" SP mod-sequence-valzer           (RFC 7162)
    store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
    """
    seq, pos = parse_sequence_set(buf, parse_sp(buf, pos))
    pos = parse_sp(buf, pos)
    unchangedsince: int | None = None
    if buf[pos : pos + 1] == b"(":
        mods, pos = _parse_modifier_list(buf, pos)
        for name, value in mods:
            if name != "UNCHANGEDSINCE" or unchangedsince is not None or value is None:
                raise GrammarError(f"unknown or repeated store modifier {name}")
            unchangedsince = value
        pos = parse_sp(buf, pos)
    m = _STORE_RE.match(buf, pos)
    if m is None:
        raise GrammarError("expected FLAGS, +FLAGS or -FLAGS")
    mode = {b"": "replace", b"+": "add", b"-": "remove"}[m.group(1)]
    flags, pos = parse_store_flags(buf, parse_sp(buf, m.end()))
    return c.Store(tag, uid, seq, mode, m.group(2) is not None, flags, unchangedsince), pos


def _copy_or_move(cls: type[c.Copy] | type[c.Move]) -> _Parser:
    def parse(tag: str, buf: bytes, pos: int, uid: bool, utf8: bool) -> tuple[c.Command, int]:
        """copy = "COPY" SP sequence-set SP mailbox ; move = "MOVE" SP sequence-set SP mailbox"""
        seq, pos = parse_sequence_set(buf, parse_sp(buf, pos))
        mailbox, pos = parse_mailbox(buf, parse_sp(buf, pos), utf8)
        return cls(tag, uid, seq, mailbox), pos

    return parse


_COMMANDS: dict[str, _Parser] = {
    "CAPABILITY": _no_args(c.Capability),
    "NOOP": _no_args(c.Noop),
    "LOGOUT": _no_args(c.Logout),
    "ID": _parse_id,
    "STARTTLS": _no_args(c.StartTls),
    "AUTHENTICATE": _parse_authenticate,
    "LOGIN": _parse_login,
    "ENABLE": _parse_enable,
    "SELECT": _select(readonly=False),
    "EXAMINE": _select(readonly=True),
    "CREATE": _parse_create,
    "DELETE": _one_mailbox(c.Delete),
    "RENAME": _parse_rename,
    "SUBSCRIBE": _one_mailbox(c.Subscribe),
    "UNSUBSCRIBE": _one_mailbox(c.Unsubscribe),
    "LIST": _parse_list,
    "LSUB": _parse_lsub,
    "NAMESPACE": _no_args(c.Namespace),
    "STATUS": _parse_status,
    "APPEND": _parse_append,
    "IDLE": _no_args(c.Idle),
    "CHECK": _no_args(c.Check),
    "CLOSE": _no_args(c.Close),
    "UNSELECT": _no_args(c.Unselect),
    "EXPUNGE": _parse_expunge,
    "SEARCH": _parse_search,
    "FETCH": _parse_fetch,
    "STORE": _parse_store,
    "COPY": _copy_or_move(c.Copy),
    "MOVE": _copy_or_move(c.Move),
}

# uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)
_UID_COMMANDS = frozenset({"COPY", "MOVE", "FETCH", "SEARCH", "STORE", "EXPUNGE"})


def parse_command(raw: RawCommand, *, utf8: bool = False) -> c.Command:
    """Parse one framed command; raise ParseError with the response to send.

    `utf8` is True once the client enabled UTF8=ACCEPT or IMAP4rev2: mailbox
    names are then UTF-8 rather than modified UTF-7.
    """
    tag = raw.tag
    if tag is None:
        raise ParseError(None, b"* BAD Missing or invalid command tag\r\n")
    buf = raw.line
    try:
        pos = len(tag)
        if at_end(buf, pos):
            raise GrammarError("missing command")
        pos = parse_sp(buf, pos)
        m = _NAME_RE.match(buf, pos)
        if m is None:
            raise GrammarError("missing command")
        name = m.group().decode("ascii").upper()
        pos = m.end()
        uid = False
        if name == "UID":
            m = _NAME_RE.match(buf, parse_sp(buf, pos))
            if m is None or m.group().decode("ascii").upper() not in _UID_COMMANDS:
                raise GrammarError(
                    "UID must be followed by COPY, MOVE, FETCH, SEARCH, STORE or EXPUNGE"
                )
            name = m.group().decode("ascii").upper()
            pos = m.end()
            uid = True
        parser = _COMMANDS.get(name)
        if parser is None:
            raise ParseError(tag, tagged(tag, "BAD", f"Unknown command {name[:40]}"))
        command, pos = parser(tag, buf, pos, uid, utf8)
        if not at_end(buf, pos):
            raise GrammarError("unexpected characters after the command")
    except GrammarError as e:
        raise ParseError(tag, tagged(tag, "BAD", f"Syntax error: {e}")) from None
    except _Refused as e:
        raise ParseError(tag, tagged(tag, "NO", e.text, e.code)) from None
    return command
