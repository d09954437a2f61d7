"""`mailactors setadminpassword`: set the password of the admin web pages.

The new password is read twice from a terminal (without echo), or once from a
pipe, and stored as a SCRAM-SHA-256 hash in <data_dir>/adminpasswd (mode 0600).
A running server reads the file at every login, and the new password ends the
sessions of the old one.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from mailactors.conf import ConfigErrors, load_config
from mailactors.web.auth import write_admin_password

__all__ = ["MIN_PASSWORD_LENGTH", "run_setadminpassword"]

# Our own floor for the admin password (no RFC applies).
MIN_PASSWORD_LENGTH = 8


def _read_password(stdin: TextIO, stderr: TextIO, ask: Callable[[str], str]) -> str | None:
    if stdin.isatty():
        first = ask("New admin password: ")
        if ask("Repeat the password: ") != first:
            print("setadminpassword: the passwords differ", file=stderr)
            return None
        return first
    return stdin.readline().rstrip("\r\n")


def run_setadminpassword(
    config_path: Path,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
    ask: Callable[[str], str] = getpass.getpass,
) -> int:
    """Exit code 0 when the password was stored."""
    try:
        config = load_config(config_path)
    except ConfigErrors as exc:
        for err in exc.errors:
            print(err, file=stderr)
        return 1
    password = _read_password(stdin, stderr, ask)
    if password is None:
        return 1
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"setadminpassword: use at least {MIN_PASSWORD_LENGTH} characters", file=stderr)
        return 1
    try:
        write_admin_password(config.static.data_dir, password)
    except (OSError, ValueError) as exc:
        print(f"setadminpassword: {exc}", file=stderr)
        return 1
    print("admin password set", file=stdout)
    return 0
