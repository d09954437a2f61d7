"""Delivery status notifications (RFC 3464, RFC 3462/6522 multipart/report, RFC 6533).

`compose_dsn` writes the DSN our queue sends to a message's sender when delivery
failed permanently or is delayed; `parse_dsn` reads a DSN back (tests, and the queue
recognizing DSNs it receives). Both are pure: bytes in, bytes or values out.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import quopri
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import format_datetime, parsedate_to_datetime
from typing import Literal, get_args

__all__ = [
    "Action",
    "Dsn",
    "DsnError",
    "RecipientStatus",
    "compose_dsn",
    "parse_dsn",
]

Action = Literal["failed", "delayed", "delivered", "relayed", "expanded"]
_ACTIONS: frozenset[str] = frozenset(get_args(Action))

# RFC 3464 2.3.4: status-code = DIGIT "." 1*3DIGIT "." 1*3DIGIT (class 2, 4 or 5).
_STATUS = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}", re.ASCII)
# RFC 5322 2.1.1: lines SHOULD be at most 78 characters; we fold fields there.
_FOLD_AT = 78


class DsnError(ValueError):
    """The message is not a well-formed DSN, or a DSN cannot be composed from the input."""


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient's fields in a DSN (RFC 3464 section 2.3)."""

    address: str  # Final-Recipient
    action: Action
    status: str  # e.g. "5.1.1"
    remote_mta: str | None = None  # host name of the server that gave the diagnostic
    diagnostic: str | None = None  # the SMTP reply, e.g. "550 5.1.1 no such user"
    last_attempt: datetime.datetime | None = None
    will_retry_until: datetime.datetime | None = None
    original_recipient: str | None = None  # ORCPT, when known


@dataclass(frozen=True, slots=True)
class Dsn:
    """A parsed DSN."""

    reporting_mta: str
    original_envelope_id: str | None
    arrival: datetime.datetime | None
    recipients: tuple[RecipientStatus, ...]
    human_text: str
    original: bytes | None  # the returned message or its header
    original_type: str | None  # e.g. "text/rfc822-headers", "message/global"
    international: bool  # message/global-delivery-status (RFC 6533)


# --- composing ------------------------------------------------------------------------


def _date(when: datetime.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return format_datetime(when)


def _clean(text: str, *, utf8: bool) -> str:
    """One line of field text: control characters become spaces; non-ASCII "?" unless utf8."""
    out = []
    for c in text:
        if ord(c) < 32 or ord(c) == 127:
            out.append(" ")
        elif ord(c) > 127 and not utf8:
            out.append("?")
        else:
            out.append(c)
    return " ".join("".join(out).split())


def _field(name: str, value: str) -> str:
    """`Name: value` folded at spaces before 78 characters (RFC 5322 2.2.3), CRLF-terminated."""
    words = value.split(" ")
    lines: list[str] = []
    current = f"{name}:"
    for word in words:
        if len(current) + 1 + len(word) > _FOLD_AT and current != f"{name}:":
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    return "\r\n".join(lines) + "\r\n"


def _address_field(name: str, address: str, *, utf8: bool) -> str:
    # RFC 3464 2.3.2: "rfc822" address-type; RFC 6533 section 3: "utf-8" address-type
    # for internationalized addresses in message/global-delivery-status.
    if address.isascii():
        return _field(name, f"rfc822; {_clean(address, utf8=False)}")
    if not utf8:
        raise DsnError("non-ASCII recipient address needs an SMTPUTF8 DSN")
    return _field(name, f"utf-8; {_clean(address, utf8=True)}")


def _delivery_status(
    reporting_mta: str,
    original_envelope_id: str | None,
    arrival: datetime.datetime | None,
    recipients: Sequence[RecipientStatus],
    *,
    utf8: bool,
) -> str:
    # RFC 3464 2.1: delivery-status-content = per-message-fields 1*( CRLF per-recipient-fields )
    block = [_field("Reporting-MTA", f"dns; {_clean(reporting_mta, utf8=False)}")]
    if original_envelope_id:
        block.append(_field("Original-Envelope-Id", _clean(original_envelope_id, utf8=False)))
    if arrival is not None:
        block.append(_field("Arrival-Date", _date(arrival)))
    blocks = ["".join(block)]
    for r in recipients:
        if r.action not in _ACTIONS:
            raise DsnError(f"invalid action {r.action!r}")
        if not _STATUS.fullmatch(r.status):
            raise DsnError(f"invalid status {r.status!r}")
        fields = []
        if r.original_recipient:
            fields.append(_address_field("Original-Recipient", r.original_recipient, utf8=utf8))
        fields.append(_address_field("Final-Recipient", r.address, utf8=utf8))
        fields.append(_field("Action", r.action))
        fields.append(_field("Status", r.status))
        if r.remote_mta:
            fields.append(_field("Remote-MTA", f"dns; {_clean(r.remote_mta, utf8=False)}"))
        if r.diagnostic:
            fields.append(_field("Diagnostic-Code", f"smtp; {_clean(r.diagnostic, utf8=utf8)}"))
        if r.last_attempt is not None:
            fields.append(_field("Last-Attempt-Date", _date(r.last_attempt)))
        if r.will_retry_until is not None:
            fields.append(_field("Will-Retry-Until", _date(r.will_retry_until)))
        blocks.append("".join(fields))
    return "\r\n".join(blocks)


def _human_text(reporting_mta: str, recipients: Sequence[RecipientStatus]) -> str:
    groups: list[tuple[str, list[RecipientStatus]]] = [
        ("Delivery to the following recipients failed permanently:", []),
        ("Delivery to the following recipients is delayed; delivery will be retried:", []),
        ("The message was delivered to the following recipients:", []),
    ]
    for r in recipients:
        index = 0 if r.action == "failed" else 1 if r.action == "delayed" else 2
        groups[index][1].append(r)
    lines = [f"This is the mail system at {reporting_mta}.", ""]
    for heading, members in groups:
        if not members:
            continue
        lines += [heading, ""]
        for r in members:
            lines.append(f"  {r.address}")
            if r.remote_mta:
                lines.append(f"    server: {r.remote_mta}")
            if r.diagnostic:
                lines.append(f"    reply: {_clean(r.diagnostic, utf8=True)}")
            if r.will_retry_until is not None:
                lines.append(f"    retrying until: {_date(r.will_retry_until)}")
        lines.append("")
    lines.append("The delivery report and the original message are attached.")
    return "\r\n".join(lines) + "\r\n"


def _crlf(data: bytes) -> bytes:
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def _header_of(message: bytes) -> bytes:
    """The header section, including the blank line that ends it when present."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        index = message.find(sep)
        if index >= 0:
            return message[: index + len(sep)]
    return message


def _subject(recipients: Sequence[RecipientStatus]) -> str:
    actions = {r.action for r in recipients}
    if "failed" in actions:
        return "Delivery Status Notification (Failure)"
    if "delayed" in actions:
        return "Delivery Status Notification (Delay)"
    return "Delivery Status Notification"


def compose_dsn(
    *,
    reporting_mta: str,
    original_envelope_id: str | None,
    arrival: datetime.datetime | None,
    recipients: Sequence[RecipientStatus],
    original_message: bytes,
    from_addr: str,
    to_addr: str,
    message_id: str,
    now: datetime.datetime,
    full_message: bool,
    smtputf8: bool,
) -> bytes:
    """A multipart/report DSN (RFC 3464 section 2) with CRLF line endings.

    Parts: a human-readable text, message/delivery-status (message/global-delivery-status
    with `smtputf8`, RFC 6533), then the original: its header as text/rfc822-headers
    (message/global-headers) or, with `full_message`, all of it as message/rfc822
    (message/global). `message_id` is without angle brackets.
    """
    if not recipients:
        raise DsnError("a DSN needs at least one recipient")
    if not smtputf8 and not (from_addr.isascii() and to_addr.isascii()):
        raise DsnError("non-ASCII addresses need an SMTPUTF8 DSN")
    for value in (reporting_mta, from_addr, to_addr, message_id):
        if any(ord(c) < 33 for c in value):
            raise DsnError(f"invalid character in {value!r}")
    status = _delivery_status(
        reporting_mta, original_envelope_id, arrival, recipients, utf8=smtputf8
    ).encode("utf-8")
    text = _human_text(reporting_mta, recipients)
    if text.isascii():
        text_part = text.encode("ascii")
        text_cte = "7bit"
    else:
        text_part = _crlf(quopri.encodestring(text.encode("utf-8")))
        text_cte = "quoted-printable"
    original = _crlf(original_message if full_message else _header_of(original_message))
    if full_message:
        original_type = "message/global" if smtputf8 else "message/rfc822"
    else:
        original_type = "message/global-headers" if smtputf8 else "text/rfc822-headers"
    original_cte = "7bit" if original.isascii() else "8bit"
    status_type = "message/global-delivery-status" if smtputf8 else "message/delivery-status"
    status_cte = "7bit" if status.isascii() else "8bit"

    parts = [text_part, status, original]
    seed = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:24]
    boundary = f"dsn-{seed}"
    counter = 0
    # RFC 2046 5.1.1: the boundary must not occur in any encapsulated part.
    while any(f"--{boundary}".encode() in part for part in parts):
        counter += 1
        boundary = f"dsn-{seed}-{counter}"

    header = "".join(
        [
            _field("From", f"Mail Delivery Subsystem <{from_addr}>"),
            _field("To", f"<{to_addr}>"),
            _field("Subject", _subject(recipients)),
            _field("Message-ID", f"<{message_id}>"),
            _field("Date", _date(now)),
            # RFC 3834 section 5: automatic responses carry Auto-Submitted: auto-replied.
            _field("Auto-Submitted", "auto-replied"),
            _field("MIME-Version", "1.0"),
            _field(
                "Content-Type",
                f'multipart/report; report-type=delivery-status; boundary="{boundary}"',
            ),
        ]
    ).encode("utf-8")
    body = bytearray(header + b"\r\nThis is a MIME-formatted delivery status notification.\r\n")
    for content_type, cte, content in (
        ('text/plain; charset="utf-8"', text_cte, text_part),
        (status_type, status_cte, status),
        (original_type, original_cte, original),
    ):
        body += f"\r\n--{boundary}\r\n".encode()
        body += f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {cte}\r\n".encode()
        if content_type == original_type:
            body += b"Content-Description: the original message\r\n"
        body += b"\r\n" + content
        if not content.endswith(b"\r\n"):
            body += b"\r\n"
    body += f"\r\n--{boundary}--\r\n".encode()
    return bytes(body)


# --- parsing --------------------------------------------------------------------------


def _split_header_body(data: bytes) -> tuple[bytes, bytes]:
    header = _header_of(data)
    return header, data[len(header) :]


def _parts(body: bytes, boundary: bytes) -> list[bytes]:
    """The parts of a multipart body (RFC 2046 5.1.1), each without its final line ending."""
    delimiter = b"--" + boundary
    parts: list[bytes] = []
    current: list[bytes] | None = None
    for line in body.splitlines(keepends=True):
        stripped = line.rstrip(b"\r\n").rstrip(b" \t")
        if stripped == delimiter or stripped == delimiter + b"--":
            if current is not None:
                content = b"".join(current)
                # The line ending before a delimiter belongs to the delimiter.
                if content.endswith(b"\r\n"):
                    content = content[:-2]
                elif content.endswith(b"\n"):
                    content = content[:-1]
                parts.append(content)
            if stripped.endswith(b"--") and stripped != delimiter:
                return parts
            current = []
        elif current is not None:
            current.append(line)
    raise DsnError("multipart body without closing delimiter")


def _headers(data: bytes) -> Message:
    return BytesHeaderParser(policy=policy.compat32).parsebytes(data)


def _decoded(part_header: Message, content: bytes) -> bytes:
    cte = str(part_header.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if cte == "base64":
        try:
            return base64.b64decode(content)
        except binascii.Error:
            raise DsnError("invalid base64 content") from None
    if cte == "quoted-printable":
        return quopri.decodestring(content)
    return content


def _fields(block: str) -> dict[str, str]:
    """`Name: value` lines with folding undone; names lower case."""
    fields: dict[str, str] = {}
    name = ""
    for line in block.split("\n"):
        line = line.rstrip("\r")
        if line[:1] in (" ", "\t") and name:
            fields[name] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise DsnError(f"malformed delivery-status line {line!r}")
        name = key.strip().lower()
        fields[name] = value.strip()
    return fields


def _blocks(text: str) -> list[dict[str, str]]:
    blocks = re.split(r"\r?\n(?:[ \t]*\r?\n)+", text.strip("\r\n"))
    return [_fields(b) for b in blocks if b.strip()]


def _typed_value(value: str | None) -> str | None:
    """`type; value` -> value (RFC 3464 2.1.2, e.g. "rfc822; user@example.org")."""
    if value is None:
        return None
    _, sep, rest = value.partition(";")
    return rest.strip() if sep else value.strip()


def _parse_date(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _recipient(fields: dict[str, str]) -> RecipientStatus:
    final = _typed_value(fields.get("final-recipient"))
    action = fields.get("action", "").lower()
    status = fields.get("status", "").split(" ", 1)[0]
    if not final:
        raise DsnError("recipient block without Final-Recipient")
    if action not in _ACTIONS:
        raise DsnError(f"invalid Action {action!r}")
    if not _STATUS.fullmatch(status):
        raise DsnError(f"invalid Status {status!r}")
    return RecipientStatus(
        address=final,
        action=action,  # type: ignore[arg-type]
        status=status,
        remote_mta=_typed_value(fields.get("remote-mta")),
        diagnostic=_typed_value(fields.get("diagnostic-code")),
        last_attempt=_parse_date(fields.get("last-attempt-date")),
        will_retry_until=_parse_date(fields.get("will-retry-until")),
        original_recipient=_typed_value(fields.get("original-recipient")),
    )


def parse_dsn(message: bytes) -> Dsn:
    """Parse a DSN; raises DsnError when the message is not one (RFC 3464 section 2)."""
    header_bytes, body = _split_header_body(message)
    top = _headers(header_bytes)
    if top.get_content_type() != "multipart/report":
        raise DsnError("not a multipart/report message")
    report_type = str(top.get_param("report-type", "")).lower()
    if report_type != "delivery-status":
        raise DsnError(f"report-type is {report_type!r}, not delivery-status")
    boundary = top.get_boundary()
    if not boundary:
        raise DsnError("multipart/report without boundary")
    human_text = ""
    status_fields: list[dict[str, str]] | None = None
    international = False
    original: bytes | None = None
    original_type: str | None = None
    for part in _parts(body, boundary.encode("utf-8", "surrogateescape")):
        part_header_bytes, content = _split_header_body(part)
        part_header = _headers(part_header_bytes)
        content_type = part_header.get_content_type()
        if content_type in ("message/delivery-status", "message/global-delivery-status"):
            international = content_type == "message/global-delivery-status"
            text = _decoded(part_header, content).decode("utf-8", "replace")
            status_fields = _blocks(text)
        elif content_type == "text/plain" and status_fields is None and not human_text:
            charset = str(part_header.get_content_charset("us-ascii"))
            raw = _decoded(part_header, content)
            try:
                human_text = raw.decode(charset, "replace")
            except LookupError:
                human_text = raw.decode("utf-8", "replace")
        elif status_fields is not None and original is None:
            original = _decoded(part_header, content)
            original_type = content_type
    if not status_fields:
        raise DsnError("no delivery-status part")
    per_message, recipient_blocks = status_fields[0], status_fields[1:]
    reporting_mta = _typed_value(per_message.get("reporting-mta"))
    if not reporting_mta:
        raise DsnError("delivery-status without Reporting-MTA")
    if not recipient_blocks:
        raise DsnError("delivery-status without recipients")
    return Dsn(
        reporting_mta=reporting_mta,
        original_envelope_id=per_message.get("original-envelope-id"),
        arrival=_parse_date(per_message.get("arrival-date")),
        recipients=tuple(_recipient(b) for b in recipient_blocks),
        human_text=human_text,
        original=original,
        original_type=original_type,
        international=international,
    )
