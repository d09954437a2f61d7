"""Parsers for SMTP command arguments (RFC 5321 section 4.1, RFC 1869/5321 ESMTP parameters)."""

from __future__ import annotations

from mailactors.protocol.address import AddressError, split_path
from mailactors.protocol.smtp.events import Params
from mailactors.protocol.smtp.reply import RemoteProtocolError, Reply

# RFC 5321 4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
_KEYWORD_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_KEYWORD_REST = _KEYWORD_FIRST | {"-"}


def syntax_error(text: str) -> RemoteProtocolError:
    """A 501 5.5.4 syntax error in parameters or arguments (RFC 3463 5.5.4)."""
    return RemoteProtocolError(Reply(501, "5.5.4", text))


def split_command(line: str) -> tuple[str, str]:
    """Split a command line into (VERB uppercased, arguments)."""
    verb, _, args = line.partition(" ")
    return verb.upper(), args


def parse_params(text: str, *, smtputf8: bool) -> Params:
    """Parse `esmtp-param *(SP esmtp-param)` into ((KEYWORD, value or None), ...).

    RFC 5321 4.1.2:
        esmtp-param   = esmtp-keyword ["=" esmtp-value]
        esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
        esmtp-value   = 1*(%d33-60 / %d62-126)
    RFC 6531 3.3: esmtp-value =/ UTF8-non-ascii.
    Keywords are case-insensitive and returned uppercased; duplicates are a syntax error.
    """
    params: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for word in text.split():
        keyword, eq, value = word.partition("=")
        keyword = keyword.upper()
        if (
            not keyword
            or keyword[0] not in _KEYWORD_FIRST
            or any(c not in _KEYWORD_REST for c in keyword)
        ):
            raise syntax_error("invalid parameter keyword")
        if eq:
            if not value or any(
                c == "=" or ord(c) < 33 or ord(c) == 127 or (ord(c) > 127 and not smtputf8)
                for c in value
            ):
                raise syntax_error("invalid parameter value")
        if keyword in seen:
            raise syntax_error("duplicate parameter")
        seen.add(keyword)
        params.append((keyword, value if eq else None))
    return tuple(params)


def parse_path_argument(args: str, prefix: str) -> tuple[str, str]:
    """Parse `FROM:<path> params` / `TO:<path> params` -> (mailbox text, params text).

    RFC 5321 4.1.1.2: "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF.
    We accept spaces after the colon, which many clients send.
    """
    if args[: len(prefix)].upper() != prefix:
        raise syntax_error(f"expected {prefix}<address>")
    rest = args[len(prefix) :].lstrip(" ")
    try:
        mailbox, params = split_path(rest)
    except AddressError as exc:
        raise RemoteProtocolError(
            Reply(501, "5.1.7" if prefix == "FROM:" else "5.1.3", str(exc))
        ) from None
    if params and not params.startswith(" "):
        raise syntax_error("expected a space between path and parameters")
    return mailbox, params
