"""Prometheus metrics of a running server: counted where things happen, served on /metrics."""

from __future__ import annotations

import http.client
import re
import smtplib
import time
from pathlib import Path

from conftest import start_localserve  # type: ignore[import-not-found]


def _scrape(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Host": "localhost"})
        response = conn.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
        return body
    finally:
        conn.close()


def _value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_messages_and_sessions_are_counted(tmp_path: Path) -> None:
    served = start_localserve(tmp_path / "ls")
    try:
        port = served.port("http")
        before = _scrape(port)
        received = 'mailactors_messages_received_total{service="smtp"}'
        with smtplib.SMTP("127.0.0.1", served.port("smtp"), timeout=10) as c:
            c.sendmail("a@example.org", ["mailactors@localhost"], b"Subject: m\r\n\r\nx\r\n")
            c.sendmail("a@example.org", ["mailactors@localhost"], b"Subject: n\r\n\r\nx\r\n")
            during = _scrape(port)
            assert _value(during, 'mailactors_sessions{service="smtp"}') >= 1
        assert _value(during, received) == _value(before, received) + 2
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = _scrape(port)
            if _value(after, 'mailactors_sessions{service="smtp"}') == 0:
                break
            time.sleep(0.05)
        assert _value(after, 'mailactors_sessions{service="smtp"}') == 0
        assert "mailactors_queue_messages 0.0" in after
    finally:
        served.stop()
