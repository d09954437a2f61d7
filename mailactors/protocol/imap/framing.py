"""Splitting the client's byte stream into complete IMAP commands.

Theory of operation: an IMAP command is one or more lines; a line that ends in
a literal marker ("{n}", "{n+}", "~{n}", "~{n+}") is followed by exactly n
octets of literal data and then the rest of the command (RFC 9051 section 4.3,
RFC 7888, RFC 3516). The reader keeps one state:

    LINE             collecting a command line up to LF
    LITERAL          copying n literal octets into the command
    DISCARD_LITERAL  skipping the octets of a refused non-synchronizing literal
    DISCARD_LINE     skipping the rest of a refused command, up to LF

| state            | input                          | next state / event                   |
| ---------------- | ------------------------------ | ------------------------------------ |
| LINE             | line without marker            | LINE, RawCommand                     |
| LINE             | line with accepted "{n}"       | LITERAL, Continue                    |
| LINE             | line with accepted "{n+}"      | LITERAL                              |
| LINE             | line with refused "{n}"        | LINE, FramingError (client never     |
|                  |                                |   gets "+", so it sends nothing)     |
| LINE             | line with refused "{n+}"       | DISCARD_LITERAL, FramingError        |
| LINE             | too long without LF            | DISCARD_LINE, FramingError           |
| LITERAL          | n octets                       | LINE                                 |
| DISCARD_LITERAL  | n octets                       | DISCARD_LINE                         |
| DISCARD_LINE     | line ending in "{n+}"          | DISCARD_LITERAL                      |
| DISCARD_LINE     | other line                     | LINE                                 |

The assembled command keeps each literal as "{n}" CRLF followed by the n
octets (a bare LF line end is accepted and normalized), so the parser works on
one flat buffer. Memory stays below max_command_size + MAX_COMMAND_LINE.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

# Not an RFC number: RFC 9051 section 4 sets no limit, but RFC 7162 section 4
# asks servers to accept command lines of at least 8192 octets; 64 KiB is what
# deployed servers use. Counts the non-literal octets of one command.
MAX_COMMAND_LINE = 65536

# RFC 7888 section 4 (LITERAL-) and RFC 9051 section 4.3: "non-synchronizing
# literals MUST NOT be larger than 4096 octets" unless LITERAL+ is advertised.
MAX_LITERAL_MINUS = 4096

# APPENDLIMIT (RFC 7889): the largest literal we accept by default.
DEFAULT_MAX_LITERAL = 64 * 1024 * 1024

# Keep this many octets of a line being discarded, enough to see a literal
# marker ("~{" 20 digits "+}") that straddles two reads.
_DISCARD_TAIL = 32

# tag = 1*<any ASTRING-CHAR except "+">   (RFC 9051 section 9)
_TAG_RE = re.compile(rb"([!#$&',\-./0-9:;<=>?@A-Z\[\]^_`a-z|}~]+)(?: |\r?$)")
# literal = "{" number64 ["+"] "}" CRLF *CHAR8 ; literal8 = "~{" number64 ["+"] "}" CRLF *OCTET
_MARKER_RE = re.compile(rb"(~?)\{([0-9]+)(\+?)\}\r?$")


class NeedData(enum.Enum):
    """Sentinel type: no complete event yet; feed more bytes."""

    NEED_DATA = "NEED_DATA"


NEED_DATA = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class RawCommand:
    """One complete command: its tag and its bytes, literals inline, final CRLF removed."""

    tag: str | None
    line: bytes


@dataclass(frozen=True, slots=True)
class Continue:
    """Send a continuation request ("+ text") so the client sends its literal."""

    text: str


@dataclass(frozen=True, slots=True)
class FramingError:
    """The command was refused while framing; send `response` (tagged or "*")."""

    tag: str | None
    response: bytes


class _State(enum.Enum):
    LINE = enum.auto()
    LITERAL = enum.auto()
    DISCARD_LITERAL = enum.auto()
    DISCARD_LINE = enum.auto()


def _extract_tag(line: bytes) -> str | None:
    m = _TAG_RE.match(line)
    if m is None:
        return None
    return m.group(1).decode("ascii")


def _error(tag: str | None, status: str, text: str) -> FramingError:
    return FramingError(tag, f"{tag or '*'} {status} {text}\r\n".encode("ascii"))


class CommandReader:
    """Frames IMAP commands from client bytes; see the module docstring."""

    def __init__(
        self,
        *,
        max_literal: int = DEFAULT_MAX_LITERAL,
        literal_plus: bool = True,
        max_command_line: int = MAX_COMMAND_LINE,
        max_command_size: int | None = None,
    ) -> None:
        """`literal_plus` False means LITERAL- (RFC 7888 section 4).

        `max_command_size` bounds all octets of one command (MULTIAPPEND carries
        several literals); it defaults to four times `max_literal`.
        """
        self.max_literal = max_literal
        self.literal_plus = literal_plus
        self.max_command_line = max_command_line
        self.max_command_size = (
            max_command_size if max_command_size is not None else 4 * max_literal
        )
        self._buf = bytearray()
        self._scan = 0  # bytes of _buf already searched for LF
        self._state = _State.LINE
        self._command = bytearray()
        self._text_len = 0  # non-literal octets of the current command
        self._tag: str | None = None
        self._remaining = 0  # literal octets still to copy or discard

    @property
    def buffered(self) -> int:
        """Octets held in memory (unparsed input plus the partial command)."""
        return len(self._buf) + len(self._command)

    @property
    def in_command(self) -> bool:
        """Whether a command is partly received (e.g. waiting for a literal)."""
        return bool(self._command) or self._state is not _State.LINE

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the connection."""
        self._buf += data

    def discard_buffered(self) -> int:
        """Drop all unprocessed input; return how many octets were dropped.

        After STARTTLS, plaintext pipelined behind the command must be thrown away
        (RFC 9051 section 6.2.1, the STARTTLS command injection attack).
        """
        dropped = len(self._buf)
        self._buf.clear()
        self._scan = 0
        return dropped

    def _take_line(self) -> bytes | None:
        """Remove and return one line (without LF, with any CR) from the buffer."""
        idx = self._buf.find(b"\n", self._scan)
        if idx < 0:
            self._scan = len(self._buf)
            return None
        line = bytes(self._buf[:idx])
        del self._buf[: idx + 1]
        self._scan = 0
        return line

    def _reset_command(self) -> None:
        self._command.clear()
        self._text_len = 0
        self._tag = None

    def _refuse(self, error: FramingError, line: bytes | None) -> FramingError:
        """Abandon the current command; skip what the client still sends of it.

        `line` is the last complete line received (None when the line is
        still incomplete and must be discarded up to its LF).
        """
        self._reset_command()
        if line is None:
            self._state = _State.DISCARD_LINE
            self._trim_discard()
        else:
            self._after_discarded_line(line)
        return error

    def _after_discarded_line(self, line: bytes) -> None:
        m = _MARKER_RE.search(line)
        if m is not None and m.group(3) == b"+":
            # A non-synchronizing literal arrives without our "+": skip it.
            digits = m.group(2)
            self._remaining = int(digits) if len(digits) <= 20 else 1 << 70
            self._state = _State.DISCARD_LITERAL
        else:
            # A synchronizing literal will not be sent: we never send "+".
            self._state = _State.LINE

    def _trim_discard(self) -> None:
        if len(self._buf) > _DISCARD_TAIL:
            del self._buf[: len(self._buf) - _DISCARD_TAIL]
        self._scan = 0

    def _skip_discarded(self) -> bool:
        """Advance through discard states; True once back at a command boundary."""
        while True:
            if self._state is _State.DISCARD_LITERAL:
                n = min(self._remaining, len(self._buf))
                del self._buf[:n]
                self._remaining -= n
                if self._remaining:
                    return False
                self._state = _State.DISCARD_LINE
            elif self._state is _State.DISCARD_LINE:
                line = self._take_line()
                if line is None:
                    self._trim_discard()
                    return False
                self._after_discarded_line(line)
            else:
                return True

    def next_command(self) -> RawCommand | NeedData | Continue | FramingError:
        """The next event: a complete command, a continuation to send, or an error."""
        while True:
            if not self._skip_discarded():
                return NEED_DATA
            if self._state is _State.LITERAL:
                n = min(self._remaining, len(self._buf))
                self._command += self._buf[:n]
                del self._buf[:n]
                self._remaining -= n
                if self._remaining:
                    return NEED_DATA
                self._state = _State.LINE
                self._scan = 0
                continue
            line = self._take_line()
            if line is None:
                if self._text_len + len(self._buf) > self.max_command_line:
                    tag = self._tag if self._command else _extract_tag(bytes(self._buf[:256]))
                    return self._refuse(_error(tag, "BAD", "Command line too long"), None)
                return NEED_DATA
            event = self._on_line(line)
            if event is not None:
                return event

    def _on_line(self, line: bytes) -> RawCommand | Continue | FramingError | None:
        first = not self._command
        if first:
            if not line.strip(b"\r"):
                return _error(None, "BAD", "Empty command line")
            self._tag = _extract_tag(line)
            if self._tag is None:
                return self._refuse(_error(None, "BAD", "Missing or invalid command tag"), line)
        tag = self._tag
        self._text_len += len(line)
        if self._text_len > self.max_command_line:
            return self._refuse(_error(tag, "BAD", "Command line too long"), line)
        m = _MARKER_RE.search(line)
        if m is None:
            self._command += line[:-1] if line.endswith(b"\r") else line
            raw = RawCommand(tag, bytes(self._command))
            self._reset_command()
            return raw
        digits = m.group(2)
        size = int(digits) if len(digits) <= 20 else 1 << 70
        sync = m.group(3) != b"+"
        if size > self.max_literal or (
            len(self._command) + len(line) + size > self.max_command_size
        ):
            if sync:
                # RFC 7889 section 3 / RFC 4469: refuse before "+" with NO [TOOBIG].
                return self._refuse(_error(tag, "NO", "[TOOBIG] Literal too big"), line)
            return self._refuse(_error(tag, "BAD", "[TOOBIG] Literal too big"), line)
        if not sync and not self.literal_plus and size > MAX_LITERAL_MINUS:
            # RFC 7888 section 4 (LITERAL-, also RFC 9051 section 4.3): non-synchronizing
            # literals are limited to 4096 octets; a larger one is refused with a
            # tagged BAD carrying TOOBIG, and its octets are read and discarded.
            return self._refuse(
                _error(tag, "BAD", "[TOOBIG] Non-synchronizing literal over 4096 octets"), line
            )
        body = line[:-1] if line.endswith(b"\r") else line
        self._command += body + b"\r\n"
        self._state = _State.LITERAL
        self._remaining = size
        if sync:
            return Continue("Ready for literal data")
        return None

    def read_line(self) -> bytes | NeedData | FramingError:
        """One raw line without CRLF, for IDLE's "DONE" and AUTHENTICATE responses.

        Call only between commands (after the IDLE or AUTHENTICATE command was
        returned). A line over the command line limit is discarded up to its LF.
        """
        if self._command or self._state is _State.LITERAL:
            raise RuntimeError("read_line() called in the middle of a command")
        if not self._skip_discarded():
            return NEED_DATA
        line = self._take_line()
        if line is None:
            if len(self._buf) > self.max_command_line:
                self._state = _State.DISCARD_LINE
                self._trim_discard()
                return _error(None, "BAD", "Line too long")
            return NEED_DATA
        if len(line) > self.max_command_line:
            return _error(None, "BAD", "Line too long")
        return line[:-1] if line.endswith(b"\r") else line
