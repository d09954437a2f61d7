"""Pure, resumable parsers for the IMAP primitives (RFC 9051 section 9, RFC 3501 section 9).

Every rule is a function `parse_x(buf, pos) -> (value, newpos)` over one framed
command (literals inline as "{n}" CRLF octets, see framing.py). A mismatch
raises GrammarError with a short explanation for the BAD response.
"""

from __future__ import annotations

import datetime
import re

from mailactors.protocol.imap.mutf7 import MailboxNameError, decode_mutf7
from mailactors.protocol.imap.sequence import MAX_NZ_NUMBER, SequenceSet

# RFC 9051 section 9: number = 1*DIGIT ; Unsigned 32-bit integer
MAX_NUMBER = 4294967295
# RFC 9051 section 9: number64 = 1*DIGIT ; Unsigned 63-bit integer (mod-sequence values)
MAX_NUMBER64 = 9223372036854775807


class GrammarError(ValueError):
    """The command does not match the grammar; str() is the reason to send."""


# ATOM-CHAR = <any CHAR except atom-specials>
# atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
_ATOM_RE = re.compile(rb"[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+")
# ASTRING-CHAR = ATOM-CHAR / resp-specials
_ASTRING_RE = re.compile(rb"[!#$&'+,\-./0-9:;<=>?@A-Z\[\]^_`a-z|}~]+")
# list-char = ATOM-CHAR / list-wildcards / resp-specials
_LIST_CHAR_RE = re.compile(rb"[!#$%&'*+,\-./0-9:;<=>?@A-Z\[\]^_`a-z|}~]+")
_DIGITS_RE = re.compile(rb"[0-9]+")
# literal = "{" number64 ["+"] "}" CRLF *CHAR8   (RFC 9051, RFC 7888)
# literal8 = "~{" number64 ["+"] "}" CRLF *OCTET (RFC 3516)
_LITERAL_RE = re.compile(rb"(~?)\{([0-9]{1,20})\+?\}\r\n")


def at_end(buf: bytes, pos: int) -> bool:
    """Whether the command ends at pos."""
    return pos >= len(buf)


def peek(buf: bytes, pos: int, text: bytes) -> bool:
    """Case-insensitive lookahead for a fixed token."""
    return buf[pos : pos + len(text)].upper() == text


def expect(buf: bytes, pos: int, text: bytes) -> int:
    """Consume a fixed token (case-insensitive, as RFC 9051 section 9 says)."""
    if not peek(buf, pos, text):
        raise GrammarError(f"expected {text.decode('ascii')!r}")
    return pos + len(text)


def parse_sp(buf: bytes, pos: int) -> int:
    """SP = %x20"""
    if buf[pos : pos + 1] != b" ":
        raise GrammarError("expected a space")
    return pos + 1


def parse_atom(buf: bytes, pos: int) -> tuple[str, int]:
    """atom = 1*ATOM-CHAR"""
    m = _ATOM_RE.match(buf, pos)
    if m is None:
        raise GrammarError("expected an atom")
    return m.group().decode("ascii"), m.end()


def parse_number(buf: bytes, pos: int, maximum: int = MAX_NUMBER) -> tuple[int, int]:
    """number = 1*DIGIT ; Unsigned 32-bit integer (number64 with maximum=MAX_NUMBER64)"""
    m = _DIGITS_RE.match(buf, pos)
    if m is None:
        raise GrammarError("expected a number")
    if len(m.group()) > 20 or int(m.group()) > maximum:
        raise GrammarError("number out of range")
    return int(m.group()), m.end()


def parse_nz_number(buf: bytes, pos: int, maximum: int = MAX_NZ_NUMBER) -> tuple[int, int]:
    """nz-number = digit-nz *DIGIT ; Non-zero unsigned 32-bit integer"""
    n, end = parse_number(buf, pos, maximum)
    if n == 0 or buf[pos : pos + 1] == b"0":
        raise GrammarError("expected a non-zero number")
    return n, end


def parse_quoted(buf: bytes, pos: int) -> tuple[bytes, int]:
    """quoted = DQUOTE *QUOTED-CHAR DQUOTE

    QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\\" quoted-specials / UTF8-2/3/4
    quoted-specials = DQUOTE / "\\"
    """
    if buf[pos : pos + 1] != b'"':
        raise GrammarError("expected a quoted string")
    out = bytearray()
    i = pos + 1
    n = len(buf)
    while i < n:
        c = buf[i]
        if c == 0x22:
            return bytes(out), i + 1
        if c == 0x5C:
            if i + 1 < n and buf[i + 1] in b'"\\':
                out.append(buf[i + 1])
                i += 2
                continue
            raise GrammarError("invalid escape in quoted string")
        if c in (0x00, 0x0A, 0x0D):
            raise GrammarError("invalid character in quoted string")
        out.append(c)
        i += 1
    raise GrammarError("unterminated quoted string")


def parse_literal(buf: bytes, pos: int, binary: bool = False) -> tuple[bytes, int]:
    """literal = "{" number64 ["+"] "}" CRLF *CHAR8; with binary=True also literal8 (RFC 3516).

    CHAR8 excludes NUL, but a NUL inside a plain literal is accepted: refusing
    it would only make clients fail on messages they already hold.
    """
    m = _LITERAL_RE.match(buf, pos)
    if m is None:
        raise GrammarError("expected a literal")
    if m.group(1) and not binary:
        raise GrammarError("literal8 not allowed here")
    size = int(m.group(2))
    end = m.end() + size
    if end > len(buf):
        raise GrammarError("truncated literal")
    return buf[m.end() : end], end


def is_literal8(buf: bytes, pos: int) -> bool:
    """Whether a literal8 ("~{") starts at pos."""
    return buf[pos : pos + 2] == b"~{"


def parse_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    """string = quoted / literal"""
    if buf[pos : pos + 1] == b'"':
        return parse_quoted(buf, pos)
    if buf[pos : pos + 1] == b"{":
        return parse_literal(buf, pos)
    raise GrammarError("expected a string")


def parse_astring(buf: bytes, pos: int) -> tuple[bytes, int]:
    """astring = 1*ASTRING-CHAR / string"""
    if buf[pos : pos + 1] in (b'"', b"{"):
        return parse_string(buf, pos)
    m = _ASTRING_RE.match(buf, pos)
    if m is None:
        raise GrammarError("expected an astring")
    return m.group(), m.end()


def parse_nstring(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    """nstring = string / nil"""
    if peek(buf, pos, b"NIL") and not _ASTRING_RE.match(buf, pos + 3):
        return None, pos + 3
    return parse_string(buf, pos)


def decode_text(raw: bytes) -> str:
    """Strings are UTF-8 (RFC 9051 section 4.3; US-ASCII is a subset)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise GrammarError("string is not valid UTF-8") from None


def parse_astring_text(buf: bytes, pos: int) -> tuple[str, int]:
    """An astring decoded as UTF-8."""
    raw, end = parse_astring(buf, pos)
    return decode_text(raw), end


def decode_mailbox(raw: bytes, utf8: bool) -> str:
    """Decode a mailbox name; "INBOX" in any case is INBOX.

    RFC 9051 section 9: mailbox = "INBOX" / astring ; INBOX is case-insensitive.
    Without UTF8=ACCEPT/IMAP4rev2 names are modified UTF-7 (RFC 3501 section
    5.1.3); a name carrying raw UTF-8 is accepted as UTF-8, as IMAP4rev2 does.
    """
    if utf8 or any(b > 0x7F for b in raw):
        name = decode_text(raw)
    else:
        try:
            name = decode_mutf7(raw)
        except MailboxNameError as e:
            raise GrammarError(str(e)) from None
    if name.upper() == "INBOX":
        return "INBOX"
    if name.upper().startswith("INBOX/"):
        return "INBOX" + name[5:]
    return name


def parse_mailbox(buf: bytes, pos: int, utf8: bool = False) -> tuple[str, int]:
    """mailbox = "INBOX" / astring"""
    raw, end = parse_astring(buf, pos)
    if not raw:
        raise GrammarError("empty mailbox name")
    return decode_mailbox(raw, utf8), end


def parse_list_mailbox(buf: bytes, pos: int, utf8: bool = False) -> tuple[str, int]:
    """list-mailbox = 1*list-char / string  (a LIST pattern, may contain % and *)"""
    if buf[pos : pos + 1] in (b'"', b"{"):
        raw, end = parse_string(buf, pos)
    else:
        m = _LIST_CHAR_RE.match(buf, pos)
        if m is None:
            raise GrammarError("expected a mailbox pattern")
        raw, end = m.group(), m.end()
    if utf8 or any(b > 0x7F for b in raw):
        return decode_text(raw), end
    try:
        return decode_mutf7(raw), end
    except MailboxNameError as e:
        raise GrammarError(str(e)) from None


SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")
_SYSTEM_BY_UPPER = {f.upper(): f for f in SYSTEM_FLAGS}


def parse_flag(buf: bytes, pos: int, allow_recent: bool = False) -> tuple[str, int]:
    """flag = "\\Answered" / "\\Flagged" / "\\Deleted" / "\\Seen" / "\\Draft" / flag-keyword / flag-extension

    flag-keyword = "$MDNSent" / "$Forwarded" / ... / atom
    flag-extension = "\\" atom
    System flags are returned in their canonical case. RFC 3501 section 2.3.2:
    "\\Recent ... cannot be altered by the client", so it is refused unless
    `allow_recent` (search and fetch answers may name it).
    """
    if buf[pos : pos + 1] == b"\\":
        name, end = parse_atom(buf, pos + 1)
        flag = "\\" + name
        canonical = _SYSTEM_BY_UPPER.get(flag.upper())
        if canonical == "\\Recent" and not allow_recent:
            raise GrammarError("\\Recent cannot be set by clients")
        return (canonical or flag), end
    return parse_atom(buf, pos)


def parse_flag_list(buf: bytes, pos: int) -> tuple[tuple[str, ...], int]:
    """flag-list = "(" [flag *(SP flag)] ")" """
    if buf[pos : pos + 1] != b"(":
        raise GrammarError("expected a flag list")
    pos += 1
    flags: list[str] = []
    if buf[pos : pos + 1] != b")":
        while True:
            flag, pos = parse_flag(buf, pos)
            flags.append(flag)
            if buf[pos : pos + 1] != b" ":
                break
            pos += 1
    if buf[pos : pos + 1] != b")":
        raise GrammarError("expected ')' after flags")
    return _dedupe(flags), pos + 1


def _dedupe(flags: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for f in flags:
        if f.upper() not in seen:
            seen.add(f.upper())
            out.append(f)
    return tuple(out)


def parse_store_flags(buf: bytes, pos: int) -> tuple[tuple[str, ...], int]:
    """store-att-flags value: flag-list / (flag *(SP flag))"""
    if buf[pos : pos + 1] == b"(":
        return parse_flag_list(buf, pos)
    flags: list[str] = []
    while True:
        flag, pos = parse_flag(buf, pos)
        flags.append(flag)
        if buf[pos : pos + 1] != b" ":
            return _dedupe(flags), pos
        pos += 1


MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

# date-text = date-day "-" date-month "-" date-year
# date-day = 1*2DIGIT ; date-month = "Jan" / "Feb" / ... ; date-year = 4DIGIT
_DATE_TEXT_RE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
# date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
# date-day-fixed = (SP DIGIT) / 2DIGIT ; time = 2DIGIT ":" 2DIGIT ":" 2DIGIT
# zone = ("+" / "-") 4DIGIT
_DATE_TIME_RE = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)


def _month(name: bytes) -> int:
    try:
        return MONTHS.index(name.upper().decode("ascii")) + 1
    except ValueError:
        raise GrammarError("invalid month") from None


def parse_date(buf: bytes, pos: int) -> tuple[datetime.date, int]:
    """date = date-text / DQUOTE date-text DQUOTE"""
    quoted = buf[pos : pos + 1] == b'"'
    m = _DATE_TEXT_RE.match(buf, pos + quoted)
    if m is None:
        raise GrammarError("expected a date like 1-Feb-1994")
    end = m.end()
    if quoted:
        if buf[end : end + 1] != b'"':
            raise GrammarError("unterminated date")
        end += 1
    try:
        value = datetime.date(int(m.group(3)), _month(m.group(2)), int(m.group(1)))
    except ValueError:
        raise GrammarError("invalid date") from None
    return value, end


def parse_date_time(buf: bytes, pos: int) -> tuple[datetime.datetime, int]:
    """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE"""
    m = _DATE_TIME_RE.match(buf, pos)
    if m is None:
        raise GrammarError('expected a date-time like "17-Jul-1996 02:44:25 -0700"')
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    try:
        offset = datetime.timedelta(hours=int(zh), minutes=int(zm))
        if offset >= datetime.timedelta(hours=24):
            raise ValueError("zone out of range")
        tz = datetime.timezone(-offset if sign == b"-" else offset)
        value = datetime.datetime(
            int(year), _month(mon), int(day.strip()), int(hh), int(mm), int(ss), tzinfo=tz
        )
    except ValueError:
        raise GrammarError("invalid date-time") from None
    return value, m.end()


def parse_seq_number(buf: bytes, pos: int) -> tuple[int | None, int]:
    """seq-number = nz-number / "*" """
    if buf[pos : pos + 1] == b"*":
        return None, pos + 1
    return parse_nz_number(buf, pos)


def parse_sequence_set(buf: bytes, pos: int) -> tuple[SequenceSet, int]:
    """sequence-set = (seq-number / seq-range) ["," sequence-set] / "$"  (RFC 5182)

    seq-range = seq-number ":" seq-number
    """
    if buf[pos : pos + 1] == b"$":
        return SequenceSet.saved_result(), pos + 1
    ranges: list[tuple[int | None, int | None]] = []
    while True:
        lo, pos = parse_seq_number(buf, pos)
        hi = lo
        if buf[pos : pos + 1] == b":":
            hi, pos = parse_seq_number(buf, pos + 1)
        ranges.append((lo, hi))
        if buf[pos : pos + 1] != b",":
            return SequenceSet(tuple(ranges)), pos
        pos += 1


def parse_paren_atoms(buf: bytes, pos: int) -> tuple[tuple[str, ...], int]:
    """ "(" [atom *(SP atom)] ")", atoms upper-cased (option lists, STATUS items)."""
    if buf[pos : pos + 1] != b"(":
        raise GrammarError("expected '('")
    pos += 1
    items: list[str] = []
    if buf[pos : pos + 1] != b")":
        while True:
            atom, pos = parse_atom(buf, pos)
            items.append(atom.upper())
            if buf[pos : pos + 1] != b" ":
                break
            pos += 1
    if buf[pos : pos + 1] != b")":
        raise GrammarError("expected ')'")
    return tuple(items), pos + 1
