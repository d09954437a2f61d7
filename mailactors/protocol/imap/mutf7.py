"""Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3).

IMAP4rev1 clients that have not enabled UTF8=ACCEPT (RFC 6855) or IMAP4rev2
(RFC 9051, which uses UTF-8 names) send and receive mailbox names in this form.
"""

from __future__ import annotations

import base64
import binascii


class MailboxNameError(ValueError):
    """A mailbox name is not valid modified UTF-7."""


def encode_mutf7(name: str) -> str:
    """Encode a mailbox name to modified UTF-7.

    RFC 3501 section 5.1.3: "printable US-ASCII characters, except for "&",
    represent themselves ... "&" is used to shift to modified BASE64 and "-" to
    shift back to US-ASCII ... "&" itself is represented by "&-"" and "," is used
    instead of "/" in modified BASE64.
    """
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be", "surrogatepass")
            b64 = base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")
            out.append("&" + b64 + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


_B64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def decode_mutf7(name: bytes) -> str:
    """Decode a modified UTF-7 mailbox name; raise MailboxNameError when malformed."""
    out: list[str] = []
    i = 0
    n = len(name)
    while i < n:
        c = name[i]
        if c != 0x26:  # "&"
            if not 0x20 <= c <= 0x7E:
                raise MailboxNameError("mailbox name has a byte outside printable US-ASCII")
            out.append(chr(c))
            i += 1
            continue
        end = name.find(b"-", i + 1)
        if end < 0:
            raise MailboxNameError("unterminated modified BASE64 in mailbox name")
        run = name[i + 1 : end]
        i = end + 1
        if not run:
            out.append("&")
            continue
        if not all(b in _B64_CHARS for b in run) or len(run) % 4 == 1:
            raise MailboxNameError("invalid modified BASE64 in mailbox name")
        padded = run.replace(b",", b"/") + b"=" * (-len(run) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
        except binascii.Error:
            raise MailboxNameError("invalid modified BASE64 in mailbox name") from None
        if len(raw) % 2:
            raise MailboxNameError("modified BASE64 is not whole UTF-16 units")
        try:
            text = raw.decode("utf-16-be")
        except UnicodeDecodeError:
            raise MailboxNameError("modified BASE64 is not valid UTF-16") from None
        out.append(text)
    return "".join(out)
