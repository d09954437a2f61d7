"""The ENVELOPE fetch item (RFC 3501 7.4.2, RFC 9051 7.5.2)."""

from __future__ import annotations

from dataclasses import dataclass

from mailactors.protocol.mime.address import Address, parse_address_list
from mailactors.protocol.mime.imapstring import NIL, imap_nstring
from mailactors.protocol.mime.tree import Part

__all__ = ["Envelope", "envelope", "format_envelope"]


@dataclass(frozen=True, slots=True)
class Envelope:
    """The envelope of a message; raw header octets, encoded words left for the client.

    An empty address tuple is NIL.
    """

    date: bytes | None
    subject: bytes | None
    from_: tuple[Address, ...]
    sender: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    in_reply_to: bytes | None
    message_id: bytes | None


def _raw(part: Part, name: str) -> bytes | None:
    header_field = part.field(name)
    return None if header_field is None else header_field.raw_value


def _addresses(part: Part, name: str) -> tuple[Address, ...]:
    raw = _raw(part, name)
    return () if raw is None else parse_address_list(raw)


def envelope(part: Part) -> Envelope:
    """The envelope of the message whose top-level entity is `part`."""
    from_ = _addresses(part, "from")
    # RFC 3501 7.4.2: "If the Sender or Reply-To lines are absent in the [RFC-2822]
    # header, or are present but empty, the server sets the corresponding member of
    # the envelope to be the same value as the from member".
    sender = _addresses(part, "sender") or from_
    reply_to = _addresses(part, "reply-to") or from_
    return Envelope(
        date=_raw(part, "date"),
        subject=_raw(part, "subject"),
        from_=from_,
        sender=sender,
        reply_to=reply_to,
        to=_addresses(part, "to"),
        cc=_addresses(part, "cc"),
        bcc=_addresses(part, "bcc"),
        in_reply_to=_raw(part, "in-reply-to"),
        message_id=_raw(part, "message-id"),
    )


def _format_addresses(addresses: tuple[Address, ...]) -> bytes:
    if not addresses:
        return NIL
    # RFC 3501 9: address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"
    return (
        b"("
        + b"".join(
            b"("
            + b" ".join(
                imap_nstring(value)
                for value in (address.name, address.adl, address.mailbox, address.host)
            )
            + b")"
            for address in addresses
        )
        + b")"
    )


def format_envelope(env: Envelope) -> bytes:
    """The envelope in IMAP syntax, parentheses included (RFC 3501 9 `envelope`)."""
    # envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
    #            env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"
    items = (
        imap_nstring(env.date),
        imap_nstring(env.subject),
        _format_addresses(env.from_),
        _format_addresses(env.sender),
        _format_addresses(env.reply_to),
        _format_addresses(env.to),
        _format_addresses(env.cc),
        _format_addresses(env.bcc),
        imap_nstring(env.in_reply_to),
        imap_nstring(env.message_id),
    )
    return b"(" + b" ".join(items) + b")"
