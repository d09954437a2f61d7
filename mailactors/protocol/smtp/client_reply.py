"""Reading SMTP replies and EHLO capabilities on the client side (RFC 5321 4.2, RFC 2034).

`take_reply(buf)` is a pure, resumable parser: it consumes one complete reply from the
front of a buffer, or nothing when the reply is not complete yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailactors.protocol.smtp.reply import RemoteProtocolError, Reply

# RFC 5321 4.5.3.1.5: "The maximum total length of a reply line including the reply
# code and the <CRLF> is 512 octets."
MAX_REPLY_LINE = 512
# Our bound on the lines of one multi-line reply (RFC 5321 sets none); EHLO replies of
# real servers have a dozen or two.
MAX_REPLY_LINES = 100

# RFC 3463 section 2: status-code = class "." subject "." detail;
# subject = 1*3digit; detail = 1*3digit. RFC 2034 section 4: the code follows the
# reply code and a space on every line.
_ENHANCED = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})(?: |$)", re.ASCII)
# RFC 5321 4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
_EHLO_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*", re.ASCII)


def protocol_violation(text: str) -> RemoteProtocolError:
    """The server broke the protocol: a temporary failure for the recipients (4.5.0)."""
    return RemoteProtocolError(Reply(451, "4.5.0", f"remote server protocol violation: {text}"))


def _parse_line(raw: bytes) -> tuple[int, bool, str]:
    """One reply line -> (code, is last line, text).

    RFC 5321 4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
                               Reply-code [ SP textstring ] CRLF
                  Reply-code = %x32-35 %x30-35 %x30-39
    """
    if len(raw) < 3:
        raise protocol_violation("reply line too short")
    code_text = raw[:3]
    if not (
        0x32 <= code_text[0] <= 0x35 and 0x30 <= code_text[1] <= 0x35 and code_text[2:3].isdigit()
    ):
        raise protocol_violation("malformed reply code")
    sep = raw[3:4]
    if sep not in (b"", b" ", b"-"):
        raise protocol_violation("malformed reply line")
    text = raw[4:].decode("utf-8", "replace").replace("\r", " ")
    return int(code_text), sep != b"-", text


def _split_enhanced(code: int, lines: list[str]) -> tuple[str | None, tuple[str, ...]]:
    """Strip the enhanced status code that servers put on each line (RFC 2034 section 4)."""
    first = _ENHANCED.match(lines[0])
    if first is None or first.group(1) != str(code)[0]:
        return None, tuple(lines)
    enhanced = ".".join(first.groups())
    prefix = first.group(0).rstrip(" ")
    out: list[str] = []
    for line in lines:
        if line.startswith(prefix) and line[len(prefix) : len(prefix) + 1] in ("", " "):
            line = line[len(prefix) + 1 :]
        out.append(line)
    return enhanced, tuple(out)


def take_reply(buf: bytearray, *, enhanced: bool = True) -> Reply | None:
    """Consume one complete reply from the front of buf; None if more bytes are needed.

    With `enhanced`, a leading enhanced status code is split off the text (RFC 2034);
    the greeting and EHLO replies carry none (RFC 2034 section 3).

    Lines end in CRLF; a bare LF is tolerated as a line end. Raises RemoteProtocolError
    for malformed replies, over-long lines, too many lines and mixed codes.
    """
    lines: list[str] = []
    code = 0
    start = 0
    while True:
        end = buf.find(b"\n", start)
        if end < 0:
            if len(buf) - start > MAX_REPLY_LINE:
                raise protocol_violation("reply line too long")
            return None
        raw = bytes(buf[start:end])
        if len(raw) + 1 > MAX_REPLY_LINE:
            raise protocol_violation("reply line too long")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        line_code, last, text = _parse_line(raw)
        if lines and line_code != code:
            # RFC 5321 4.2.1: every line of a multi-line reply carries the same code.
            raise protocol_violation("reply code changed within a multi-line reply")
        code = line_code
        lines.append(text)
        start = end + 1
        if last:
            break
        if len(lines) >= MAX_REPLY_LINES:
            raise protocol_violation("too many reply lines")
    del buf[:start]
    status, texts = _split_enhanced(code, lines) if enhanced else (None, tuple(lines))
    return Reply(code, status, texts if len(texts) > 1 else texts[0])


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the server announced in its EHLO reply (RFC 5321 4.1.1.1, RFC 1869)."""

    domain: str
    keywords: frozenset[str]  # upper case
    size: int | None  # RFC 1870 SIZE limit; None when absent or 0 (no fixed limit)

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.keywords  # RFC 2920

    @property
    def starttls(self) -> bool:
        return "STARTTLS" in self.keywords  # RFC 3207

    @property
    def eightbitmime(self) -> bool:
        return "8BITMIME" in self.keywords  # RFC 6152

    @property
    def smtputf8(self) -> bool:
        return "SMTPUTF8" in self.keywords  # RFC 6531

    @property
    def requiretls(self) -> bool:
        return "REQUIRETLS" in self.keywords  # RFC 8689

    @property
    def enhancedstatuscodes(self) -> bool:
        return "ENHANCEDSTATUSCODES" in self.keywords  # RFC 2034

    @property
    def chunking(self) -> bool:
        return "CHUNKING" in self.keywords  # RFC 3030


NO_CAPABILITIES = Capabilities("", frozenset(), None)
"""After HELO: no service extensions."""


def parse_capabilities(reply: Reply) -> Capabilities:
    """The capabilities of a 250 EHLO reply; malformed extension lines are ignored.

    RFC 5321 4.1.1.1: ehlo-ok-rsp = ( "250" SP Domain [ SP ehlo-greet ] CRLF )
                 / ( "250-" Domain [ SP ehlo-greet ] CRLF
                     *( "250-" ehlo-line CRLF ) "250" SP ehlo-line CRLF )
                 ehlo-line = ehlo-keyword *( SP ehlo-param )
    """
    lines = reply.lines
    domain = lines[0].split(" ", 1)[0]
    keywords: set[str] = set()
    size: int | None = None
    for line in lines[1:]:
        words = line.split()
        if not words or not _EHLO_KEYWORD.fullmatch(words[0]):
            continue
        keyword = words[0].upper()
        keywords.add(keyword)
        if keyword == "SIZE" and len(words) > 1:
            # RFC 1870 section 4: size-param = [1*DIGIT]; 0 means no fixed maximum.
            value = words[1]
            if value.isascii() and value.isdigit() and len(value) <= 20 and int(value) > 0:
                size = int(value)
    return Capabilities(domain, frozenset(keywords), size)
