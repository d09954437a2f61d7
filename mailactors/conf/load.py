"""Finding, loading and checking the two configuration files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from yaml.error import Mark
from yaml.nodes import Node, ScalarNode

from mailactors.conf.domains import Account, Destination, DomainsConfig, parse_domains
from mailactors.conf.errors import ConfigError, ConfigErrors
from mailactors.conf.static import StaticConfig, parse_static
from mailactors.conf.yamlnodes import Field, NodeReader

__all__ = [
    "CONFIG_ENV",
    "DOMAINS_FILE",
    "STATIC_FILE",
    "Config",
    "ConfigPaths",
    "check_config",
    "find_config_file",
    "load_config",
]

STATIC_FILE = "mailactors.conf"
DOMAINS_FILE = "domains.conf"
CONFIG_ENV = "MAILACTORS_CONF"


@dataclass(frozen=True, slots=True)
class ConfigPaths:
    """The two configuration files: domains.conf always lives next to mailactors.conf."""

    static: Path
    domains: Path

    @classmethod
    def for_static(cls, static: Path) -> ConfigPaths:
        """Return the paths for a given mailactors.conf."""
        return cls(static=static, domains=static.parent / DOMAINS_FILE)


def find_config_file(option: str | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """Return mailactors.conf's path: the -config option, else $MAILACTORS_CONF, else ./mailactors.conf.

    A relative path is taken relative to ``cwd``.
    """
    chosen = option or environ.get(CONFIG_ENV) or STATIC_FILE
    path = Path(chosen)
    return path if path.is_absolute() else cwd / path


@dataclass(frozen=True, slots=True)
class Config:
    """Both configuration files, validated."""

    static: StaticConfig
    domains: DomainsConfig
    path: Path
    domains_path: Path

    def host_tlsrpt_destination(self, address: str) -> tuple[Account, Destination] | None:
        """The account receiving TLS reports about our host (host_tlsrpt), when `address`
        is its address "<localpart>@<hostname>" (the rua of _smtp._tls.<hostname>)."""
        host = self.static.host_tlsrpt
        if host is None:
            return None
        localpart, _, domain = address.rpartition("@")
        if localpart != host.localpart or domain.lower() != self.static.hostname.lower():
            return None
        account = self.domains.accounts.get(host.account)
        if account is None:
            return None
        return account, Destination(address=address, mailbox=host.mailbox)

    def account_for_address(self, address: str) -> tuple[Account, Destination] | None:
        """Find the account and destination for an address (see DomainsConfig.account_for_address).

        In localserve mode with a single account, every address that matches no
        destination is delivered to that account's first destination (catch-all).
        """
        found = self.domains.account_for_address(address) or self.host_tlsrpt_destination(address)
        if found is not None or not self.static.localserve or len(self.domains.accounts) != 1:
            return found
        (account,) = self.domains.accounts.values()
        for destination in account.destinations.values():
            return account, destination
        return None


def _read_text(reader: NodeReader, path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        reader.error(1, "", f"cannot read file: {exc.strerror or exc}")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        reader.error(line, "", "file is not valid UTF-8")
        return None


def _document(reader: NodeReader, path: Path) -> Field | None:
    """The file's root node as a Field with an empty key; an empty file reads as an empty mapping."""
    text = _read_text(reader, path)
    if text is None:
        return None
    root: Node | None = reader.compose(text)
    if root is None:
        if reader.errors:
            return None
        mark = Mark(str(path), 0, 0, 0, "", 0)
        root = ScalarNode("tag:yaml.org,2002:null", "", start_mark=mark, end_mark=mark)
    return Field("", 1, root)


def _load(path: Path) -> tuple[Config | None, list[ConfigError]]:
    paths = ConfigPaths.for_static(Path(os.path.abspath(path)))
    base_dir = paths.static.parent
    static_reader = NodeReader(str(paths.static))
    domains_reader = NodeReader(str(paths.domains))
    static_root = _document(static_reader, paths.static)
    domains_root = _document(domains_reader, paths.domains)
    static = refs = domains = None
    if static_root is not None:
        static, refs = parse_static(static_reader, static_root, base_dir)
    if domains_root is not None:
        domains = parse_domains(domains_reader, domains_root, paths.domains.parent)
    if refs is not None and domains is not None:
        # Accounts named in mailactors.conf must exist in domains.conf; the
        # error points at the line in mailactors.conf.
        for ref in refs:
            if ref.account not in domains.accounts:
                static_reader.error(
                    ref.line, ref.key, f"account {ref.account!r} not found in {paths.domains}"
                )
    # Each file's errors in line order (a stable sort keeps same-line errors as found).
    errors = sorted(static_reader.errors, key=lambda e: e.line)
    errors += sorted(domains_reader.errors, key=lambda e: e.line)
    if errors or static is None or domains is None:
        return None, errors
    return Config(static=static, domains=domains, path=paths.static, domains_path=paths.domains), []


def load_config(path: Path) -> Config:
    """Load mailactors.conf and the domains.conf next to it; raises ConfigErrors listing every problem."""
    config, errors = _load(path)
    if config is None:
        raise ConfigErrors(errors)
    return config


def check_config(path: Path) -> list[ConfigError]:
    """Return every problem of the configuration files; empty when they load."""
    return _load(path)[1]
