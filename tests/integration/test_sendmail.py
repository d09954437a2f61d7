"""`mailactors sendmail` end to end against a real in-process localserve."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Served, start_localserve  # type: ignore[import-not-found]
from hypothesis import given
from hypothesis import strategies as st

from mailactors.cli import main
from mailactors.net.sendmail import (
    EX_CONFIG,
    EX_NOPERM,
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
    EX_USAGE,
    SENDMAIL_CONF_ENV,
    SendmailError,
    load_sendmail_config,
    prepare_message,
    run_sendmail,
)

NOW = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


def write_conf(path: Path, served: Served, *, tls: str = "implicit", password: str = "mailactors") -> Path:
    port = served.port("submissions" if tls == "implicit" else "submission")
    cert = served.directory / "localserve-cert.pem"
    path.write_text(
        f"host: 127.0.0.1\nport: {port}\ntls: {tls}\ntls_ca_file: {cert}\n"
        f"username: mailactors@localhost\npassword: {password}\n"
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = start_localserve(tmp_path / "ls")
    try:
        yield s
    finally:
        s.stop()


def sendmail(conf: Path, message: bytes, *args: str, extract: bool = False) -> tuple[int, str]:
    err = io.StringIO()
    sender = None
    rest = list(args)
    if rest[:1] == ["-f"]:
        sender, rest = rest[1], rest[2:]
    code = run_sendmail(
        rest,
        extract_recipients=extract,
        sender=sender,
        config_path=conf,
        stdin=io.BytesIO(message),
        stderr=err,
        environ={},
        now=NOW,
    )
    return code, err.getvalue()


def test_message_arrives_with_date_and_message_id(served: Served, tmp_path: Path) -> None:
    conf = write_conf(tmp_path / "sendmail.conf", served)
    message = b"From root Tue Nov 24 21:00:00 2026\nSubject: cron\n\nbackup done\n.\nlast line\n"
    code, err = sendmail(conf, message, "mailactors@localhost")
    assert (code, err) == (0, "")
    starttls = write_conf(tmp_path / "starttls.conf", served, tls="starttls")
    assert sendmail(starttls, b"Subject: second\n\nvia STARTTLS\n", "mailactors@localhost") == (0, "")
    served.stop()
    first, second = served.inbox()
    assert b"Subject: cron\r\n" in first and b"\r\n\r\nbackup done\r\n.\r\nlast line\r\n" in first
    assert b"\nDate: Tue, 24 Nov 2026 21:00:00 +0000\r\n" in first
    assert b"\nMessage-ID: <" in first and b"@localhost>\r\n" in first
    assert b"\nFrom: <mailactors@localhost>\r\n" in first and b"From root" not in first
    assert b"\n\n" not in first.replace(b"\r\n", b"")
    assert b"via STARTTLS" in second


def test_t_takes_recipients_and_removes_bcc(served: Served, tmp_path: Path) -> None:
    conf = write_conf(tmp_path / "sendmail.conf", served)
    message = (
        b"From: Cron <mailactors@localhost>\n"
        b"To: a@localhost\n"
        b"Bcc: rcptto-hidden-temperror@localhost,\n secret@localhost\n"
        b"Subject: t\n\nbody\n"
    )
    # The Bcc recipient is submitted to (its temporary failure shows it), yet not shown.
    code, err = sendmail(conf, message, extract=True)
    assert code == EX_TEMPFAIL and "rcptto-hidden-temperror@localhost" in err
    code, err = sendmail(conf, message.replace(b"rcptto-hidden-temperror", b"hidden"), extract=True)
    assert (code, err) == (0, "")
    served.stop()
    inbox = served.inbox()
    assert inbox, "nothing delivered"
    for data in inbox:
        assert b"Bcc" not in data and b"secret@" not in data and b"hidden" not in data
        assert b"To: a@localhost\r\n" in data and b"From: Cron <mailactors@localhost>\r\n" in data


def test_rejected_recipients_exit_non_zero(served: Served, tmp_path: Path) -> None:
    conf = write_conf(tmp_path / "sendmail.conf", served)
    code, err = sendmail(conf, b"Subject: x\n\nx\n", "rcptto-nobody-permerror@localhost")
    assert code == EX_UNAVAILABLE and "550" in err and "rcptto-nobody-permerror@localhost" in err
    code, err = sendmail(conf, b"Subject: x\n\nx\n", "rcptto-later-temperror@localhost")
    assert code == EX_TEMPFAIL and "451" in err
    # Refused after DATA.
    code, err = sendmail(conf, b"Subject: x\n\nx\n", "data-permerror@localhost")
    assert code == EX_UNAVAILABLE and "refused the message: 550" in err
    # One good, one refused recipient: sent to the good one, still a failure exit.
    code, err = sendmail(conf, b"Subject: x\n\nx\n", "ok@localhost", "rcptto-bad-permerror@localhost")
    assert code == EX_UNAVAILABLE and "rcptto-bad-permerror@localhost refused" in err
    code, err = sendmail(
        conf, b"Subject: x\n\nx\n", "-f", "mailfrom-permerror@localhost", "ok@localhost"
    )
    assert code == EX_UNAVAILABLE and "550" in err


def test_authentication_failure(tmp_path: Path) -> None:
    served = start_localserve(tmp_path / "ls", localserve=False)
    try:
        conf = write_conf(tmp_path / "sendmail.conf", served, password="wrong")
        code, err = sendmail(conf, b"Subject: x\n\nx\n", "mailactors@localhost")
        assert code == EX_NOPERM and "authentication" in err
        conf = write_conf(tmp_path / "sendmail.conf", served, password="mailactors")
        assert sendmail(conf, b"Subject: x\n\nx\n", "mailactors@localhost") == (0, "")
    finally:
        served.stop()


def test_unreachable_server_is_temporary(tmp_path: Path) -> None:
    conf = tmp_path / "sendmail.conf"
    conf.write_text("host: 127.0.0.1\nport: 1\ntls: none\nusername: u@localhost\npassword: p\n")
    conf.chmod(0o600)
    code, err = sendmail(conf, b"Subject: x\n\nx\n", "a@localhost")
    assert code == EX_TEMPFAIL and "cannot submit" in err


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX")
def test_config_checks(tmp_path: Path) -> None:
    conf = tmp_path / "sendmail.conf"
    conf.write_text("username: u@example.com\npassword: p\n")
    conf.chmod(0o644)
    code, err = sendmail(conf, b"Subject: x\n\nx\n", "a@example.com")
    assert code == EX_CONFIG and "chmod 600" in err
    conf.chmod(0o600)
    config = load_sendmail_config(conf)
    assert (config.host, config.port, config.tls) == ("127.0.0.1", 465, "implicit")
    for text, problem in [
        ("username: u\n", "password"),
        ("password: p\n", "username"),
        ("username: u\npassword: p\ntls: maybe\n", "tls"),
        ("username: u\npassword: p\ntls: none\nhost: mail.example.com\n", "loopback"),
        ("username: u\npassword: p\nport: 0\n", "port"),
        ("username: u\npassword: p\nportt: 25\n", "unknown"),
        ("username: u\npassword: p\ntls_ca_file: nope.pem\n", "no such file"),
        ("- a\n", "mapping"),
    ]:
        conf.write_text(text)
        with pytest.raises(SendmailError, match=problem) as info:
            load_sendmail_config(conf)
        assert info.value.code == EX_CONFIG
    with pytest.raises(SendmailError, match="cannot read"):
        load_sendmail_config(tmp_path / "missing.conf")
    conf.write_text("username: u\npassword: p\n")
    code, err = sendmail(conf, b"Subject: x\n\nx\n", "a@example.com")
    assert code == EX_USAGE and "-f" in err
    code, err = sendmail(conf, b"Subject: x\n\nx\n", "-f", "me@example.com")
    assert code == EX_USAGE and "no recipients" in err


def test_cli_sendmail(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_conf(tmp_path / "sendmail.conf", served)
    monkeypatch.setenv(SENDMAIL_CONF_ENV, str(conf))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Subject: cli\n\nhi\n")))
    assert main(["sendmail", "-oi", "-i", "-f", "root@localhost", "mailactors@localhost"]) == 0
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Subject: cli\n\nhi\n")))
    assert main(["sendmail", "rcptto-x-permerror@localhost"]) == EX_UNAVAILABLE
    served.stop()
    (data,) = served.inbox()
    assert b"Subject: cli" in data and b"From: <root@localhost>" in data


_line = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20)


@given(
    names=st.lists(st.sampled_from(["To", "Cc", "Bcc", "Subject", "X-A", "bcc", "Date"]), max_size=6),
    values=st.lists(_line, min_size=6, max_size=6),
    body=st.lists(_line, max_size=5),
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_prepare_message_properties(
    names: list[str], values: list[str], body: list[str], ending: str
) -> None:
    header = "".join(
        f"{n}: {v}{ending}" + (f" folded{ending}" if i % 2 else "")
        for i, (n, v) in enumerate(zip(names, values, strict=False))
    )
    text = header + ending + ending.join(body)
    out, _ = prepare_message(
        text.encode(), sender="s@example.com", extract_recipients=True, now=NOW, hostname="example.com"
    )
    lines = out.split(b"\r\n")
    assert b"\r" not in b"".join(lines) and b"\n" not in b"".join(lines)
    blank = lines.index(b"")
    head = lines[:blank]
    assert not any(line.lower().startswith(b"bcc:") for line in head)
    assert sum(line.startswith(b"Message-ID:") for line in head) == 1
    assert any(line.lower().startswith(b"date:") for line in head)
    want = ending.join(body).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    assert b"\r\n".join(lines[blank + 1 :]).rstrip(b"\r\n") == want.encode().rstrip(b"\r\n")
