"""Incremental decoder for the DATA command's message content (RFC 5321 4.1.1.4 and 4.5.2).

Only <CRLF>.<CRLF> ends the data. A bare LF or bare CR anywhere marks the message as
malformed (SMTP smuggling defense: "\\n.\\n", "\\n.\\r\\n" and "\\r\\n.\\n" never end it, and a
message containing them is refused after the real end).
"""

from __future__ import annotations

_END_LINE = b".\r\n"


class DotDecoder:
    """Consumes DATA bytes from a buffer; yields unstuffed message bytes and detects the end."""

    __slots__ = ("_at_line_start", "bare_line_ending", "size", "finished")

    def __init__(self) -> None:
        # The DATA command line ended with CRLF, so the content starts at a line start.
        self._at_line_start = True
        self.bare_line_ending = False
        self.size = 0
        self.finished = False

    def step(self, buf: bytearray) -> bytes | None:
        """Consume some bytes of buf; return message bytes (maybe b""), None if more are needed.

        After the terminating ".\\r\\n" is consumed, `finished` is set and b"" is returned.
        """
        if self._at_line_start:
            if not buf:
                return None
            if buf[0] == 0x2E:  # "."
                if buf[:3] == _END_LINE:
                    del buf[:3]
                    self.finished = True
                    return b""
                if len(buf) < 3 and _END_LINE.startswith(bytes(buf)):
                    return None
                # RFC 5321 4.5.2: "If the first character is a period and there are other
                # characters on the line, the first character is deleted."
                del buf[:1]
                self._at_line_start = False
                return b""
        idx = buf.find(b"\r\n.")
        if idx >= 0:
            end = idx + 2
            self._at_line_start = True
        else:
            end = len(buf)
            if buf.endswith(b"\r"):
                # Keep a trailing CR: the LF that makes it a line ending may follow.
                end -= 1
            if end == 0:
                return None
            self._at_line_start = buf[end - 2 : end] == b"\r\n"
        chunk = bytes(buf[:end])
        del buf[:end]
        crlf = chunk.count(b"\r\n")
        if chunk.count(b"\r") != crlf or chunk.count(b"\n") != crlf:
            self.bare_line_ending = True
        self.size += len(chunk)
        return chunk
