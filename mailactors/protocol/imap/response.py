"""Formatting IMAP server responses (RFC 9051 section 7, section 9 "response").

Every function returns bytes ready to send; whole responses end in CRLF.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass

from mailactors.protocol.imap.mutf7 import encode_mutf7
from mailactors.protocol.imap.sequence import SequenceSet, format_sequence_set

CRLF = b"\r\n"

# Longer strings go out as literals: easier for clients, no escaping cost.
MAX_QUOTED = 1024

_ATOM_RE = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+\Z")
_ASTRING_RE = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z\[\]^_`a-z|}~]+\Z")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """A resp-text-code: "[" name [SP args] "]" (RFC 9051 section 7.1)."""

    name: str
    args: str = ""

    def format(self) -> str:
        """The code with its brackets."""
        return f"[{self.name} {self.args}]" if self.args else f"[{self.name}]"


# RFC 9051 section 7.1 and RFC 5530 codes without arguments.
ALERT = ResponseCode("ALERT")
PARSE = ResponseCode("PARSE")
READ_ONLY = ResponseCode("READ-ONLY")
READ_WRITE = ResponseCode("READ-WRITE")
TRYCREATE = ResponseCode("TRYCREATE")
NOMODSEQ = ResponseCode("NOMODSEQ")  # RFC 7162 section 3.1.2
CLOSED = ResponseCode("CLOSED")  # RFC 7162 section 3.2.11
TOOBIG = ResponseCode("TOOBIG")  # RFC 5530 / RFC 7889
ALREADYEXISTS = ResponseCode("ALREADYEXISTS")
NONEXISTENT = ResponseCode("NONEXISTENT")
CANNOT = ResponseCode("CANNOT")
LIMIT = ResponseCode("LIMIT")
SERVERBUG = ResponseCode("SERVERBUG")
UNAVAILABLE = ResponseCode("UNAVAILABLE")
AUTHENTICATIONFAILED = ResponseCode("AUTHENTICATIONFAILED")
CONTACTADMIN = ResponseCode("CONTACTADMIN")
BADCHARSET_OURS = ResponseCode("BADCHARSET", "(US-ASCII UTF-8)")


def badcharset(charsets: Iterable[str] = ()) -> ResponseCode:
    """BADCHARSET [SP "(" charset *(SP charset) ")"]"""
    names = " ".join(astring(c).decode("utf-8") for c in charsets)
    return ResponseCode("BADCHARSET", f"({names})" if names else "")


def capability_code(capabilities: Iterable[str]) -> ResponseCode:
    """CAPABILITY SP capability-data"""
    return ResponseCode("CAPABILITY", " ".join(capabilities))


def permanentflags(flags: Iterable[str]) -> ResponseCode:
    """PERMANENTFLAGS SP "(" [flag-perm *(SP flag-perm)] ")" ; flag-perm = flag / "\\*" """
    return ResponseCode("PERMANENTFLAGS", format_flags(flags).decode("utf-8"))


def uidnext(n: int) -> ResponseCode:
    """UIDNEXT SP nz-number"""
    return ResponseCode("UIDNEXT", str(n))


def uidvalidity(n: int) -> ResponseCode:
    """UIDVALIDITY SP nz-number"""
    return ResponseCode("UIDVALIDITY", str(n))


def unseen(n: int) -> ResponseCode:
    """UNSEEN SP nz-number (RFC 3501 only)"""
    return ResponseCode("UNSEEN", str(n))


def highestmodseq(n: int) -> ResponseCode:
    """HIGHESTMODSEQ SP mod-sequence-value (RFC 7162 section 3.1.2.1)"""
    return ResponseCode("HIGHESTMODSEQ", str(n))


def modified(numbers: Iterable[int] | SequenceSet) -> ResponseCode:
    """MODIFIED SP sequence-set (RFC 7162 section 3.1.3): STORE failed UNCHANGEDSINCE."""
    return ResponseCode("MODIFIED", _set_text(numbers))


def appenduid(uid_validity: int, uids: Iterable[int]) -> ResponseCode:
    """APPENDUID SP nz-number SP append-uid (RFC 4315 / RFC 9051; a set for MULTIAPPEND)"""
    return ResponseCode("APPENDUID", f"{uid_validity} {format_sequence_set(uids)}")


def copyuid(uid_validity: int, source: Iterable[int], dest: Iterable[int]) -> ResponseCode:
    """COPYUID SP nz-number SP uid-set SP uid-set, sets in matching order.

    RFC 4315 section 3: the two sets pair up element by element, so they are not
    reordered; consecutive runs are still compressed.
    """
    return ResponseCode("COPYUID", f"{uid_validity} {_ordered_set(source)} {_ordered_set(dest)}")


def _ordered_set(numbers: Iterable[int]) -> str:
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in runs)


def _set_text(numbers: Iterable[int] | SequenceSet) -> str:
    if isinstance(numbers, SequenceSet):
        return numbers.format()
    return format_sequence_set(numbers)


def _code_text(code: ResponseCode | str | None, text: str) -> str:
    if code is None:
        return text
    c = code.format() if isinstance(code, ResponseCode) else code
    return f"{c} {text}" if text else c


def tagged(tag: str, status: str, text: str, code: ResponseCode | str | None = None) -> bytes:
    """response-tagged = tag SP resp-cond-state CRLF; status is OK, NO or BAD."""
    return f"{tag} {status} {_code_text(code, text)}".encode() + CRLF


def untagged(data: str | bytes) -> bytes:
    """response-data = "*" SP (...) CRLF, e.g. untagged("3 EXISTS")."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return b"* " + raw + CRLF


def untagged_status(status: str, text: str, code: ResponseCode | str | None = None) -> bytes:
    """An untagged OK/NO/BAD/BYE/PREAUTH with an optional response code."""
    return untagged(f"{status} {_code_text(code, text)}")


def continue_req(text: str = "Ready") -> bytes:
    """continue-req = "+" SP (resp-text / base64) CRLF"""
    return b"+ " + text.encode("utf-8") + CRLF


def is_atom(text: str) -> bool:
    """Whether text can be sent as an atom."""
    return bool(_ATOM_RE.match(text))


def can_quote(data: bytes, utf8: bool = True) -> bool:
    """Whether data fits in a quoted string (no CR, LF or NUL; 8-bit only with UTF-8)."""
    if len(data) > MAX_QUOTED or any(b in (0, 10, 13) for b in data):
        return False
    if any(b > 0x7F for b in data):
        if not utf8:
            return False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def quote_string(value: str | bytes) -> bytes:
    """quoted = DQUOTE *QUOTED-CHAR DQUOTE; raise ValueError for CR, LF or NUL."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if any(b in (0, 10, 13) for b in data):
        raise ValueError("CR, LF and NUL cannot be quoted; use a literal")
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(data: bytes, binary: bool = False) -> bytes:
    """literal = "{" number64 "}" CRLF *CHAR8; literal8 "~{n}" when binary (RFC 3516)."""
    return (b"~{" if binary else b"{") + str(len(data)).encode("ascii") + b"}\r\n" + data


def string(value: str | bytes, utf8: bool = True) -> bytes:
    """string = quoted / literal: quoted when safe, a literal otherwise.

    Data with NUL needs a literal8 (RFC 3516), chosen automatically.
    """
    data = value.encode("utf-8") if isinstance(value, str) else value
    if can_quote(data, utf8):
        return quote_string(data)
    return literal(data, binary=b"\x00" in data)


def astring(value: str | bytes, utf8: bool = True) -> bytes:
    """astring = 1*ASTRING-CHAR / string; "NIL" is quoted so it is never read as nil."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if _ASTRING_RE.match(text) and text.upper() != "NIL":
        return text.encode("ascii")
    return string(value, utf8)


def nstring(value: str | bytes | None, utf8: bool = True) -> bytes:
    """nstring = string / nil"""
    return b"NIL" if value is None else string(value, utf8)


def format_flags(flags: Iterable[str]) -> bytes:
    """flag-list = "(" [flag *(SP flag)] ")" """
    return b"(" + " ".join(flags).encode("utf-8") + b")"


def format_date_time(value: datetime.datetime) -> bytes:
    """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE

    A naive datetime is taken as UTC.
    """
    offset = value.utcoffset() or datetime.timedelta(0)
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    return (
        f'"{value.day:2d}-{_MONTHS[value.month - 1]}-{value.year:04d} '
        f'{value.hour:02d}:{value.minute:02d}:{value.second:02d} {sign}{hh:02d}{mm:02d}"'
    ).encode("ascii")


def encode_mailbox(name: str, utf8: bool = False) -> bytes:
    """A mailbox name as an astring: modified UTF-7 unless UTF8=ACCEPT/IMAP4rev2 is on."""
    return astring(name if utf8 else encode_mutf7(name), utf8)


def format_search(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """mailbox-data =/ "SEARCH" *(SP nz-number) [SP search-sort-mod-seq] (RFC 7162 3.1.5)"""
    text = "SEARCH" + "".join(f" {n}" for n in numbers)
    if modseq is not None:
        text += f" (MODSEQ {modseq})"
    return untagged(text)


def format_esearch(
    tag: str | None,
    uid: bool,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    count: int | None = None,
    all_numbers: Iterable[int] | None = None,
    modseq: int | None = None,
) -> bytes:
    """esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)

    RFC 4731 section 3.1: search-correlator = SP "(" "TAG" SP tag-string ")";
    return data MIN / MAX / ALL sequence-set / COUNT; MODSEQ from RFC 7162.
    An empty result omits MIN, MAX and ALL (RFC 4731 section 3.1).
    """
    text = "ESEARCH"
    if tag is not None:
        text += f" (TAG {quote_string(tag).decode('utf-8')})"
    if uid:
        text += " UID"
    if minimum is not None:
        text += f" MIN {minimum}"
    if maximum is not None:
        text += f" MAX {maximum}"
    if all_numbers is not None:
        numbers = list(all_numbers)
        if numbers:
            text += f" ALL {format_sequence_set(numbers)}"
    if count is not None:
        text += f" COUNT {count}"
    if modseq is not None:
        text += f" MODSEQ {modseq}"
    return untagged(text)


def format_vanished(uids: Iterable[int] | SequenceSet, earlier: bool = False) -> bytes:
    """message-data =/ "VANISHED" [SP "(EARLIER)"] SP known-uids (RFC 7162 section 3.2.10)"""
    text = _set_text(uids)
    return untagged(f"VANISHED (EARLIER) {text}" if earlier else f"VANISHED {text}")


def format_fetch(number: int, items: Iterable[tuple[str, bytes]]) -> bytes:
    """message-data = nz-number SP "FETCH" SP msg-att, e.g. b"* 12 FETCH (UID 4 FLAGS ())".

    Each item is (response name, already formatted value), see FetchAttr.response_name().
    """
    body = b" ".join(name.encode("ascii") + b" " + value for name, value in items)
    return b"* " + str(number).encode("ascii") + b" FETCH (" + body + b")" + CRLF


def format_list(
    attributes: Iterable[str],
    delimiter: str | None,
    name: str,
    *,
    utf8: bool = False,
    extended: str = "",
    command: str = "LIST",
) -> bytes:
    """mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
    [SP mbox-list-extended]; `command` may be "LSUB". `extended` is preformatted
    extended data such as ("CHILDINFO" ("SUBSCRIBED")) (RFC 5258 section 3.5).
    """
    delim = b"NIL" if delimiter is None else quote_string(delimiter)
    line = (
        command.encode("ascii")
        + b" "
        + format_flags(attributes)
        + b" "
        + delim
        + b" "
        + encode_mailbox(name, utf8)
    )
    if extended:
        line += b" " + extended.encode("utf-8")
    return untagged(line)


def format_status(name: str, items: Iterable[tuple[str, int]], utf8: bool = False) -> bytes:
    """mailbox-data =/ "STATUS" SP mailbox SP "(" [status-att-list] ")" """
    values = " ".join(f"{item} {value}" for item, value in items).encode("ascii")
    return untagged(b"STATUS " + encode_mailbox(name, utf8) + b" (" + values + b")")
