"""DSNs: what compose_dsn writes is read correctly by Python's email package and parse_dsn."""

from __future__ import annotations

import datetime
import email
import email.policy
from email.message import EmailMessage, Message

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.protocol.dsn import DsnError, RecipientStatus, compose_dsn, parse_dsn

NOW = datetime.datetime(2026, 11, 24, 20, 0, 0, tzinfo=datetime.UTC)
ARRIVAL = NOW - datetime.timedelta(hours=4)
ORIGINAL = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: Hello\r\n"
    b"Message-ID: <orig@example.org>\r\n"
    b"\r\n"
    b"The body.\r\n"
    b"--not-a-boundary\r\n"
)


def compose(**overrides: object) -> bytes:
    args: dict[str, object] = {
        "reporting_mta": "mail.example.org",
        "original_envelope_id": "QQ314159",
        "arrival": ARRIVAL,
        "recipients": [
            RecipientStatus(
                "bob@example.net",
                "failed",
                "5.1.1",
                remote_mta="mx.example.net",
                diagnostic="550 5.1.1 no such user",
                last_attempt=NOW,
            )
        ],
        "original_message": ORIGINAL,
        "from_addr": "MAILER-DAEMON@mail.example.org",
        "to_addr": "alice@example.org",
        "message_id": "dsn1@mail.example.org",
        "now": NOW,
        "full_message": False,
        "smtputf8": False,
    }
    args.update(overrides)
    return compose_dsn(**args)  # type: ignore[arg-type]


def stdlib(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects, msg.defects
    return msg


def test_failure_dsn_as_the_email_package_sees_it() -> None:
    data = compose()
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert data.isascii()
    msg = stdlib(data)
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.example.org"
    assert msg["To"].addresses[0].addr_spec == "alice@example.org"
    assert msg["Message-ID"] == "<dsn1@mail.example.org>"
    assert msg["Subject"] == "Delivery Status Notification (Failure)"
    assert msg["Date"].datetime == NOW
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    text = parts[0].get_content()
    assert "bob@example.net" in text and "550 5.1.1 no such user" in text
    blocks = parts[1].get_payload()
    assert isinstance(blocks, list) and len(blocks) == 2
    per_message, per_recipient = blocks
    assert isinstance(per_message, Message) and isinstance(per_recipient, Message)
    assert per_message["Reporting-MTA"] == "dns; mail.example.org"
    assert per_message["Original-Envelope-Id"] == "QQ314159"
    assert per_recipient["Final-Recipient"] == "rfc822; bob@example.net"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Remote-MTA"] == "dns; mx.example.net"
    assert per_recipient["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert "Will-Retry-Until" not in per_recipient
    headers = parts[2].get_payload(decode=True)
    assert isinstance(headers, bytes)
    assert headers.startswith(b"From: Alice") and b"The body." not in headers


def test_failure_dsn_parsed_back() -> None:
    dsn = parse_dsn(compose())
    assert dsn.reporting_mta == "mail.example.org"
    assert dsn.original_envelope_id == "QQ314159"
    assert dsn.arrival == ARRIVAL
    assert dsn.recipients == (
        RecipientStatus(
            "bob@example.net",
            "failed",
            "5.1.1",
            remote_mta="mx.example.net",
            diagnostic="550 5.1.1 no such user",
            last_attempt=NOW,
        ),
    )
    assert dsn.original_type == "text/rfc822-headers"
    assert dsn.original == ORIGINAL[: ORIGINAL.index(b"\r\n\r\n") + 4]
    assert not dsn.international
    assert "failed permanently" in dsn.human_text


def test_delay_dsn_with_full_message_and_several_recipients() -> None:
    until = NOW + datetime.timedelta(days=4)
    recipients = [
        RecipientStatus(
            "bob@example.net",
            "delayed",
            "4.4.1",
            diagnostic="connection refused",
            will_retry_until=until,
        ),
        RecipientStatus("carol@example.net", "delivered", "2.0.0", remote_mta="mx.example.net"),
    ]
    data = compose(
        recipients=recipients, full_message=True, original_envelope_id=None, arrival=None
    )
    msg = stdlib(data)
    assert msg["Subject"] == "Delivery Status Notification (Delay)"
    parts = list(msg.iter_parts())
    assert parts[2].get_content_type() == "message/rfc822"
    inner = parts[2].get_payload()[0]
    assert inner["Subject"] == "Hello" and "The body." in inner.get_content()
    dsn = parse_dsn(data)
    assert dsn.recipients == tuple(recipients)
    assert dsn.original == ORIGINAL and dsn.original_type == "message/rfc822"
    assert dsn.original_envelope_id is None and dsn.arrival is None
    assert "retrying until" in dsn.human_text and "carol@example.net" in dsn.human_text


def test_smtputf8_dsn_uses_global_types() -> None:
    original = "From: Jöran <jöran@bücher.example>\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    recipients = [
        RecipientStatus(
            "jöran@bücher.example", "failed", "5.1.1", diagnostic="550 5.1.1 unbekannt: jöran"
        )
    ]
    data = compose(
        recipients=recipients,
        original_message=original,
        smtputf8=True,
        full_message=True,
        to_addr="jöran@bücher.example",
    )
    msg = stdlib(data)
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/global-delivery-status",
        "message/global",
    ]
    assert "jöran@bücher.example" in parts[0].get_content()
    assert b"Final-Recipient: utf-8; j\xc3\xb6ran@b\xc3\xbccher.example" in data
    dsn = parse_dsn(data)
    assert dsn.international and dsn.recipients == tuple(recipients)
    assert dsn.original == original and dsn.original_type == "message/global"
    headers_only = parse_dsn(
        compose(recipients=recipients, original_message=original, smtputf8=True)
    )
    assert headers_only.original_type == "message/global-headers"


def test_boundary_never_occurs_in_the_parts() -> None:
    first = compose()
    boundary = first.split(b'boundary="', 1)[1].split(b'"', 1)[0]
    hostile = ORIGINAL.replace(b"--not-a-boundary", b"--" + boundary + b"--")
    data = compose(original_message=hostile, full_message=True)
    assert b'boundary="' + boundary + b'"' not in data
    dsn = parse_dsn(data)
    assert dsn.original == hostile


def test_long_and_odd_diagnostics_are_folded_and_cleaned() -> None:
    diagnostic = "550 5.7.1 " + " ".join(["word"] * 60) + "\r\nsecond line\x00 naïve"
    data = compose(
        recipients=[RecipientStatus("bob@example.net", "failed", "5.7.1", diagnostic=diagnostic)]
    )
    assert data.isascii()
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    status_part = data.split(b"Diagnostic-Code:", 1)[1].split(b"\r\n\r\n", 1)[0]
    assert b"\r\n " in status_part  # folded
    dsn = parse_dsn(data)
    got = dsn.recipients[0].diagnostic
    assert got is not None
    assert got == "550 5.7.1 " + " ".join(["word"] * 60) + " second line na?ve"


@pytest.mark.parametrize(
    "overrides",
    [
        {"recipients": []},
        {"recipients": [RecipientStatus("bob@example.net", "failed", "5.1")]},
        {"recipients": [RecipientStatus("bob@example.net", "gone", "5.1.1")]},  # type: ignore[arg-type]
        {"recipients": [RecipientStatus("jöran@example.net", "failed", "5.1.1")]},
        {"to_addr": "jöran@example.net"},
        {"message_id": "a b@example"},
    ],
)
def test_compose_refuses_bad_input(overrides: dict[str, object]) -> None:
    with pytest.raises(DsnError):
        compose(**overrides)


@pytest.mark.parametrize(
    "data",
    [
        ORIGINAL,
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a\r\n\r\nAction: failed\r\n--x--\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n\r\nunterminated",
    ],
)
def test_parse_refuses_non_dsns(data: bytes) -> None:
    with pytest.raises(DsnError):
        parse_dsn(data)


def test_parse_base64_status_part() -> None:
    import base64

    status = b"Reporting-MTA: dns; other.example\r\n\r\nFinal-Recipient: rfc822; x@example.org\r\nAction: failed\r\nStatus: 5.0.0 (oops)\r\n"
    data = (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b1\r\n\r\n"
        b"--b1\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--b1\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(status).replace(b"\n", b"\r\n")
        + b"--b1--\r\n"
    )
    dsn = parse_dsn(data)
    assert dsn.reporting_mta == "other.example"
    assert dsn.recipients == (RecipientStatus("x@example.org", "failed", "5.0.0"),)
    assert dsn.human_text == "failed" and dsn.original is None


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200)


@settings(max_examples=100, deadline=None)
@given(
    diagnostic=_text,
    smtputf8=st.booleans(),
    full=st.booleans(),
    original=st.binary(max_size=300),
)
def test_any_diagnostic_and_original_roundtrip(
    diagnostic: str, smtputf8: bool, full: bool, original: bytes
) -> None:
    recipient = RecipientStatus("bob@example.net", "failed", "5.1.1", diagnostic=diagnostic or None)
    data = compose(
        recipients=[recipient], smtputf8=smtputf8, full_message=full, original_message=original
    )
    dsn = parse_dsn(data)
    (got,) = dsn.recipients
    assert got.address == "bob@example.net" and got.status == "5.1.1"
    cleaned = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in diagnostic)
    if not smtputf8:
        cleaned = "".join(c if c.isascii() else "?" for c in cleaned)
    expected = " ".join(cleaned.split())
    assert (got.diagnostic or "") == expected
    stdlib_msg = email.message_from_bytes(data, policy=email.policy.default)
    assert stdlib_msg.get_content_type() == "multipart/report"
    assert len(list(stdlib_msg.iter_parts())) == 3
