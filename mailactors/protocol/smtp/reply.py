"""SMTP replies (RFC 5321 section 4.2) with enhanced status codes (RFC 2034, RFC 3463)."""

from __future__ import annotations

from dataclasses import dataclass


class LocalProtocolError(Exception):
    """We misused the protocol API (a bug in the caller), e.g. answering when nothing is pending."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply; `text` is a single line or a tuple of lines (a multi-line reply).

    RFC 5321 4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
                               Reply-code [ SP textstring ] CRLF
    RFC 2034 section 3: the enhanced code follows the reply code on every line.
    """

    code: int
    enhanced: str | None
    text: str | tuple[str, ...]

    def __post_init__(self) -> None:
        # RFC 5321 4.2: reply codes are three digits, first digit 2..5.
        if not 200 <= self.code <= 599:
            raise LocalProtocolError(f"invalid SMTP reply code {self.code}")
        if self.enhanced is not None:
            parts = self.enhanced.split(".")
            if len(parts) != 3 or not all(p.isdigit() for p in parts):
                raise LocalProtocolError(f"invalid enhanced status code {self.enhanced!r}")
            if parts[0] != str(self.code)[0]:
                raise LocalProtocolError("enhanced status class must match the reply code class")
        for line in self.lines:
            if "\r" in line or "\n" in line:
                raise LocalProtocolError("reply text must not contain CR or LF")

    @property
    def lines(self) -> tuple[str, ...]:
        """The reply text as a tuple of lines (at least one)."""
        if isinstance(self.text, str):
            return (self.text,)
        return self.text or ("",)

    @property
    def is_positive(self) -> bool:
        """2xx (completion) or 3xx (intermediate) reply."""
        return self.code < 400

    def to_bytes(self) -> bytes:
        """Wire form: "250-first" ... "250 last", each ending in CRLF."""
        lines = self.lines
        out: list[bytes] = []
        for index, line in enumerate(lines):
            sep = " " if index == len(lines) - 1 else "-"
            text = f"{self.enhanced} {line}" if self.enhanced is not None else line
            out.append(f"{self.code}{sep}{text}\r\n".encode())
        return b"".join(out)


class RemoteProtocolError(Exception):
    """The peer misbehaved; `reply` is what to send back."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"{reply.code} {reply.enhanced or ''} {reply.lines[0]}".strip())
        self.reply = reply
