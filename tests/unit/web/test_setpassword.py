"""`mailactors setadminpassword`: from a pipe, from a terminal, refusals."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from mailactors.actors.localserve import ensure_localserve_files
from mailactors.protocol.sasl.scram import verify_password
from mailactors.web.auth import read_admin_credentials
from mailactors.web.setpassword import run_setadminpassword


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    return ensure_localserve_files(tmp_path, "127.0.0.1", logging.getLogger("t"))


def test_password_from_pipe(conf: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run_setadminpassword(conf, io.StringIO("a new password\n"), out, err)
    assert (code, err.getvalue()) == (0, "")
    creds = read_admin_credentials(conf.parent / "data")
    assert creds is not None
    assert verify_password(creds, "a new password")
    assert not verify_password(creds, "a new passwore")


def test_password_from_terminal_asked_twice(conf: Path) -> None:
    answers = iter(["terminal pass", "terminal pass"])
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    code = run_setadminpassword(conf, Tty(), io.StringIO(), io.StringIO(), ask)
    assert code == 0 and len(prompts) == 2
    creds = read_admin_credentials(conf.parent / "data")
    assert creds is not None and verify_password(creds, "terminal pass")


def test_differing_or_short_passwords_refused(conf: Path) -> None:
    answers = iter(["one password", "another one"])
    err = io.StringIO()
    assert run_setadminpassword(conf, Tty(), io.StringIO(), err, lambda p: next(answers)) == 1
    assert "differ" in err.getvalue()
    err = io.StringIO()
    assert run_setadminpassword(conf, io.StringIO("short\n"), io.StringIO(), err) == 1
    assert "at least" in err.getvalue()
    assert read_admin_credentials(conf.parent / "data") is None


def test_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "mailactors.conf"
    bad.write_text("hostname: [\n")
    err = io.StringIO()
    assert run_setadminpassword(bad, io.StringIO("long enough\n"), io.StringIO(), err) == 1
    assert err.getvalue()
