"""Suite-wide fixtures: Windows file semantics and leak checks for every test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pykka
import pytest

from mailactors.storage import db, files


@pytest.fixture(autouse=True, scope="session")
def _windows_file_semantics() -> Iterator[None]:
    """Removing or renaming a file that is still open raises, as on Windows."""
    files.enable_strict_mode()
    yield
    files.disable_strict_mode()


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """Fail a test that leaves a database, a file or an actor behind."""
    dbs_before, files_before = set(db.open_databases()), set(files.open_files())
    yield
    # Actors stop asynchronously after their last message; give them a moment.
    deadline = time.monotonic() + 5
    while pykka.ActorRegistry.get_all() and time.monotonic() < deadline:
        time.sleep(0.02)
    actors = pykka.ActorRegistry.get_all()
    if actors:
        names = sorted(ref.actor_class.__name__ for ref in actors)
        pykka.ActorRegistry.stop_all(block=True, timeout=10)
        pytest.fail(f"actors left running: {names}")
    leaked_dbs = [p for p in db.open_databases() if p not in dbs_before]
    assert leaked_dbs == [], f"databases left open: {leaked_dbs}"
    leaked_files = [p for p in files.open_files() if p not in files_before]
    assert leaked_files == [], f"files left open: {leaked_files}"
    stray = [t.name for t in threading.enumerate() if t.name.startswith(("reader-", "accept-"))]
    deadline = time.monotonic() + 5
    while stray and time.monotonic() < deadline:
        time.sleep(0.02)
        stray = [t.name for t in threading.enumerate() if t.name.startswith(("reader-", "accept-"))]
    assert stray == [], f"threads left running: {stray}"
