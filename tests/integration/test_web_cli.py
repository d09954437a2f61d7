"""`python -m mailactors setadminpassword` as a process, reading the password from a pipe."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from mailactors.actors.localserve import ensure_localserve_files
from mailactors.protocol.sasl.scram import verify_password
from mailactors.web.auth import read_admin_credentials


def test_setadminpassword_from_pipe(tmp_path: Path) -> None:
    conf = ensure_localserve_files(tmp_path, "127.0.0.1", logging.getLogger("t"))
    done = subprocess.run(
        [sys.executable, "-m", "mailactors", "-config", str(conf), "setadminpassword"],
        input="piped password\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "admin password set" in done.stdout
    creds = read_admin_credentials(tmp_path / "data")
    assert creds is not None and verify_password(creds, "piped password")
