"""The command line as a user runs it: config test, config discovery, --help."""

from __future__ import annotations

import logging
import os
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


def test_config_test_accepts_localserve_config(tmp_path: Path) -> None:
    conf = ensure_localserve_files(tmp_path / "ls", "127.0.0.1", log)
    result = run("config", "test", str(conf), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout


def test_config_test_reports_file_line_and_key(tmp_path: Path) -> None:
    conf = ensure_localserve_files(tmp_path / "ls", "127.0.0.1", log)
    text = conf.read_text().replace("smtp: {port: 1025}", "smtp: {port: 99999}")
    text = text.replace("log_level: info", "log_level: info\nbogus_key: 1")
    conf.write_text(text)
    result = run("config", "test", str(conf), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    lineno = text.splitlines().index("bogus_key: 1") + 1
    assert f"{conf}:{lineno}: bogus_key:" in result.stderr, result.stderr
    assert any("listeners.local.smtp.port" in line for line in lines), result.stderr


def test_config_is_found_by_option_env_and_cwd(tmp_path: Path) -> None:
    conf = ensure_localserve_files(tmp_path / "ls", "127.0.0.1", log)
    assert run("-config", str(conf), "config", "test", cwd=tmp_path).returncode == 0
    assert run("config", "test", cwd=tmp_path, env={"MAILACTORS_CONF": str(conf)}).returncode == 0
    assert run("config", "test", cwd=conf.parent).returncode == 0
    missing = run("config", "test", cwd=tmp_path)
    assert missing.returncode == 1
    assert "mailactors.conf" in missing.stderr


def test_help_lists_commands(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "localserve" in result.stdout and "config" in result.stdout
