"""Headless Chromium (Debian's /usr/bin/chromium) driven by playwright.

No browser download: playwright launches the system Chromium. The flags keep it
off the network (no background requests, component updates or sync); playwright
gives every launch a fresh temporary profile and removes it on close.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from support.dnsserver import DnsTestServer  # type: ignore[import-not-found]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-proxy-server",
]


def chromium_path() -> str:
    found = CHROMIUM if CHROMIUM.exists() else None
    path = str(found) if found else shutil.which("chromium")
    if path is None:
        pytest.fail("Chromium is not installed: apt-get install chromium (see .ci/run)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def nameserver() -> Iterator[str]:
    """A DNS server on 127.0.0.1 with no records, so nothing is looked up outside."""
    with DnsTestServer() as server:
        yield server.nameserver
