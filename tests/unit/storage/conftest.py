"""Fixtures for the storage tests: Windows file semantics and leak checks.

The lead's tests/conftest.py holds the same checks for the whole suite.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from mailactors.storage import db, files


@pytest.fixture(autouse=True)
def storage_strict_and_leak_check() -> Iterator[None]:
    """Strict mode on (remove/rename of open files fails, as on Windows); after the
    test, no database and no file opened through storage may be left open."""
    dbs_before = set(db.open_databases())
    files_before = set(files.open_files())
    was_strict = files.strict_mode_enabled()
    files.enable_strict_mode()
    try:
        yield
    finally:
        if not was_strict:
            files.disable_strict_mode()
    # Only what this test left behind, so one leak does not fail every later test.
    leaked_dbs = [p for p in db.open_databases() if p not in dbs_before]
    leaked_files = [p for p in files.open_files() if p not in files_before]
    assert leaked_dbs == [], f"databases left open: {leaked_dbs}"
    assert leaked_files == [], f"files left open: {leaked_files}"


@pytest.fixture
def log() -> logging.Logger:
    return logging.getLogger("mailactors.test.storage")
