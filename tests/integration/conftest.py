"""Fixtures that start a real server (actors, sockets, TLS, SQLite) in this process."""

from __future__ import annotations

import dataclasses
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.dnsserver import DnsTestServer  # type: ignore[import-not-found]

from mailactors.actors.localserve import ensure_local_password, ensure_localserve_files
from mailactors.actors.supervisor import RunningServer, start_server
from mailactors.conf import Config, load_config
from mailactors.storage.account import AccountStore, MessageInfo

log = logging.getLogger("mailactors.tests")


_shared_dns: DnsTestServer | None = None


def shared_dns() -> DnsTestServer:
    """One DNS server on 127.0.0.1 for every server a test starts (nothing leaves the
    machine); it serves no records, so SPF/DKIM/DMARC checks find none."""
    global _shared_dns
    if _shared_dns is None:
        _shared_dns = DnsTestServer().__enter__()
    return _shared_dns


@pytest.fixture(scope="session", autouse=True)
def _stop_shared_dns() -> Iterator[None]:
    yield
    if _shared_dns is not None:
        _shared_dns.__exit__(None, None, None)


def with_test_dns(config: Config, nameserver: str | None = None) -> Config:
    """The config with its DNS resolver pointed at a test DNS server."""
    dns = dataclasses.replace(
        config.static.dns, nameservers=(nameserver or shared_dns().nameserver,)
    )
    return dataclasses.replace(config, static=dataclasses.replace(config.static, dns=dns))


def write_localserve_files(directory: Path, nameserver: str | None = None) -> Path:
    """localserve's first-run files, with the test DNS server in mailactors.conf (for
    tests that run `mailactors localserve` as a process)."""
    conf_path = ensure_localserve_files(directory, "127.0.0.1", log)
    server = nameserver or shared_dns().nameserver
    with conf_path.open("a", encoding="utf-8") as f:
        f.write(f"dns:\n  nameservers: [\"{server}\"]\n")
    return conf_path


def with_free_ports(config: Config) -> Config:
    """Every service of every listener on port 0: the kernel picks free ports."""
    listeners = {}
    for name, listener in config.static.listeners.items():
        changes = {}
        for field in dataclasses.fields(listener):
            value = getattr(listener, field.name)
            if dataclasses.is_dataclass(value) and hasattr(value, "port"):
                changes[field.name] = dataclasses.replace(value, port=0)
        listeners[name] = dataclasses.replace(listener, **changes)
    return dataclasses.replace(
        config, static=dataclasses.replace(config.static, listeners=listeners)
    )


@dataclass
class Served:
    config: Config
    server: RunningServer
    directory: Path

    def port(self, service: str) -> int:
        return self.server.port(service)

    def stop(self) -> None:
        self.server.stop()

    def inbox(self, account: str = "mailactors", mailbox: str = "Inbox") -> list[bytes]:
        """Message files of a mailbox, read through a store opened after the server stopped."""
        return [data for _, data in read_mailbox(self.config, account, mailbox)]


def read_mailbox(config: Config, account: str, mailbox: str) -> list[tuple[MessageInfo, bytes]]:
    store = AccountStore(config.static.data_dir / "accounts" / account, log, readonly=True)
    store.init()
    try:
        mb = store.mailbox(mailbox)
        assert mb is not None, f"no mailbox {mailbox}"
        out = []
        for info in store.messages(mb.id):
            f = store.open_message(info)
            try:
                out.append((info, f.read()))
            finally:
                f.close()
        return out
    finally:
        store.close()


def start_localserve(
    directory: Path, *, localserve: bool = True, nameserver: str | None = None
) -> Served:
    conf_path = ensure_localserve_files(directory, "127.0.0.1", log)
    config = with_test_dns(with_free_ports(load_config(conf_path)), nameserver)
    if not localserve:
        config = dataclasses.replace(
            config, static=dataclasses.replace(config.static, localserve=False)
        )
    server = start_server(config)
    try:
        ensure_local_password(server, config)
    except BaseException:
        server.stop()
        raise
    return Served(config, server, directory)


@pytest.fixture
def localserve(tmp_path: Path) -> Iterator[Served]:
    served = start_localserve(tmp_path / "localserve")
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def client_tls() -> ssl.SSLContext:
    """A client context that accepts localserve's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
