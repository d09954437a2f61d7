"""The operations commands as a user runs them: gentestdata, verifydata, backup."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from mailactors.actors.localserve import ensure_localserve_files

log = logging.getLogger("mailactors.tests")


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "MAILACTORS_CONF"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mailactors", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60,
    )


def configured(tmp_path: Path) -> Path:
    """A localserve config whose data directory holds the generated test data."""
    conf = ensure_localserve_files(tmp_path / "ls", "127.0.0.1", log)
    result = run("gentestdata", str(conf.parent / "data"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test data written to" in result.stdout
    return conf


def test_gentestdata_then_verifydata(tmp_path: Path) -> None:
    conf = configured(tmp_path)
    data = conf.parent / "data"
    result = run("verifydata", str(data), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{data}: OK (9 databases checked)"
    again = run("gentestdata", str(data), cwd=tmp_path)
    assert again.returncode == 1
    assert "not an empty directory" in again.stderr


def test_verifydata_lists_each_problem_and_fails(tmp_path: Path) -> None:
    conf = configured(tmp_path)
    data = conf.parent / "data"
    msg = data / "accounts" / "bob" / "msg" / "0"
    # Files no other row shares (a COPY hard-links them), in row order.
    files = sorted((p for p in msg.iterdir() if p.stat().st_nlink == 1), key=lambda p: int(p.name))
    os.truncate(files[-1], 5)
    files[-2].unlink()
    (msg / "123456").write_bytes(b"orphan")
    result = run("verifydata", str(data), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: {files[-2]}: missing-file: referenced by {data / 'accounts/bob/index.db'}, not found",
        f"error: {files[-1]}: size-mismatch: 5 bytes, the row in "
        f"{data / 'accounts/bob/index.db'} says {lines[1].rsplit(' ', 1)[1]}",
        f"error: {msg / '123456'}: orphan-file: no row in {data / 'accounts/bob/index.db'} "
        "refers to this file",
        f"3 error(s) in {data}",
    ]


def test_backup_finds_config_by_option_env_and_cwd(tmp_path: Path) -> None:
    conf = configured(tmp_path)
    by_option = run("-config", str(conf), "backup", str(tmp_path / "b1"), cwd=tmp_path)
    assert by_option.returncode == 0, by_option.stderr
    lines = by_option.stdout.strip().splitlines()
    # One line per database, then the summary.
    assert len(lines) == 10
    assert all(re.match(r"[a-z/]+(index)?\.db: \d+ pages", line) for line in lines[:9]), lines
    assert lines[0].startswith("accounts/alice/index.db: ")
    assert lines[9].startswith("backup: 9 databases, ") and "files linked" in lines[9]
    by_env = run("backup", str(tmp_path / "b2"), cwd=tmp_path, env={"MAILACTORS_CONF": str(conf)})
    assert by_env.returncode == 0, by_env.stderr
    by_cwd = run("backup", str(tmp_path / "b3"), cwd=conf.parent)
    assert by_cwd.returncode == 0, by_cwd.stderr
    for name in ("b1", "b2", "b3"):
        verified = run("verifydata", str(tmp_path / name), cwd=tmp_path)
        assert verified.returncode == 0, verified.stderr


def test_backup_refuses_non_empty_destination_and_missing_config(tmp_path: Path) -> None:
    conf = configured(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    result = run("-config", str(conf), "backup", str(dest), cwd=tmp_path)
    assert result.returncode == 1
    assert "not an empty directory" in result.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["keep"]
    missing = run("backup", str(tmp_path / "other"), cwd=tmp_path)
    assert missing.returncode == 1
    assert "mailactors.conf" in missing.stderr
    assert not (tmp_path / "other").exists()


def test_help_lists_operations_commands(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("backup", "verifydata", "gentestdata"):
        assert command in result.stdout
