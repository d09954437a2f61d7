"""The Received: header (RFC 5321 4.4, RFC 3848)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailactors.protocol.smtp.received import received_header

WHEN = datetime(2026, 11, 24, 17, 0, 5, tzinfo=UTC)


def test_esmtps_over_ipv6() -> None:
    header = received_header(
        helo="mail.example.net",
        remote_ip="2001:db8::1",
        by_host="mx.example.org",
        protocol="ESMTPS",
        queue_id="0Q1B2C",
        recipient="bob@example.org",
        tls="TLS1.3 TLS_AES_128_GCM_SHA256",
        when=WHEN,
    )
    assert header == (
        b"Received: from mail.example.net ([IPv6:2001:db8::1]) by mx.example.org\r\n"
        b"\twith ESMTPS (TLS1.3 TLS_AES_128_GCM_SHA256) id 0Q1B2C for <bob@example.org>;\r\n"
        b"\tTue, 24 Nov 2026 17:00:05 +0000\r\n"
    )
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))


def test_bogus_helo_goes_into_comment() -> None:
    header = received_header(
        helo="evil)\r\nX-Injected: yes",
        remote_ip="192.0.2.7",
        by_host="mx.example.org",
        protocol="ESMTP",
        queue_id="id1",
        recipient=None,
        tls=None,
        when=WHEN,
    )
    assert header.startswith(
        b"Received: from [192.0.2.7] ([192.0.2.7] helo=evil???X-Injected:?yes)"
    )
    assert header.count(b"\r\n") == 2 and b"\r\nX-Injected" not in header
    assert header.endswith(
        b"\tby mx.example.org with ESMTP id id1; Tue, 24 Nov 2026 17:00:05 +0000\r\n"
    )


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        received_header(
            helo="h",
            remote_ip="1.2.3.4",
            by_host="b",
            protocol="HTTP",
            queue_id="q",
            recipient=None,
            tls=None,
            when=WHEN,
        )
    with pytest.raises(ValueError):
        received_header(
            helo="h",
            remote_ip="not-an-ip",
            by_host="b",
            protocol="SMTP",
            queue_id="q",
            recipient=None,
            tls=None,
            when=WHEN,
        )
