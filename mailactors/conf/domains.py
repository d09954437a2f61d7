"""domains.conf: the dynamic configuration of domains and accounts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from mailactors.conf import names
from mailactors.conf.domainauth import (
    AUTH_KEYS,
    DomainDkim,
    MtaStsPolicy,
    ReportAddress,
    read_domain_auth,
)
from mailactors.conf.yamlnodes import Field, NodeReader

__all__ = ["Account", "Destination", "Domain", "DomainsConfig", "parse_domains", "split_address"]

DEFAULT_MAILBOX = "Inbox"


@dataclass(frozen=True, slots=True)
class Domain:
    """A domain we accept mail for.

    With ``localpart_catchall_separator`` "+", mail to "bob+tag@domain" is
    delivered as for "bob@domain" when "bob+tag" itself is not configured.
    """

    name: str
    description: str | None = None
    localpart_catchall_separator: str | None = None
    dkim: DomainDkim | None = None
    dmarc: ReportAddress | None = None  # where incoming DMARC aggregate reports go
    tlsrpt: ReportAddress | None = None  # where incoming TLS reports go
    mta_sts: MtaStsPolicy | None = None


@dataclass(frozen=True, slots=True)
class Destination:
    """An address of an account ("localpart@domain") and the mailbox its mail goes to."""

    address: str
    mailbox: str = DEFAULT_MAILBOX


@dataclass(frozen=True, slots=True)
class Account:
    """A user account; its name is also the name of its directory in the data dir."""

    name: str
    domain: str
    full_name: str | None
    destinations: Mapping[str, Destination]


@dataclass(frozen=True, slots=True)
class DomainsConfig:
    """The domains and accounts of domains.conf."""

    domains: Mapping[str, Domain]
    accounts: Mapping[str, Account]
    _by_address: Mapping[tuple[str, str], tuple[Account, Destination]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[tuple[str, str], tuple[Account, Destination]] = {}
        for account in self.accounts.values():
            for destination in account.destinations.values():
                localpart, domain = split_address(destination.address)
                index.setdefault((localpart, domain), (account, destination))
        object.__setattr__(self, "_by_address", index)

    def account_for_address(self, address: str) -> tuple[Account, Destination] | None:
        """Find the account and destination for an address, or None.

        The domain is compared case-insensitively (and "xn--" labels match their
        Unicode form), the localpart exactly as configured. When the domain has
        a catchall separator, "a+tag@d" falls back to "a@d".
        """
        localpart, at, domain_text = address.rpartition("@")
        if not at or not localpart:
            return None
        try:
            domain = names.normalize_domain(domain_text)
        except ValueError:
            return None
        found = self._by_address.get((localpart, domain))
        if found is not None:
            return found
        config = self.domains.get(domain)
        separator = config.localpart_catchall_separator if config else None
        if separator and separator in localpart:
            base = localpart.split(separator, 1)[0]
            if base:
                return self._by_address.get((base, domain))
        return None


def split_address(address: str) -> tuple[str, str]:
    """Split "localpart@domain" at the last "@"."""
    localpart, _, domain = address.rpartition("@")
    return localpart, domain


def _optional_string(reader: NodeReader, fields: Mapping[str, Field], name: str) -> str | None:
    item = fields.get(name)
    return reader.string(item) if item is not None else None


def _domains(reader: NodeReader, item: Field, base_dir: Path) -> dict[str, Domain]:
    result: dict[str, Domain] = {}
    lines: dict[str, int] = {}
    for name, entry in reader.entries(item):
        try:
            domain_name = names.normalize_domain(name)
        except ValueError as exc:
            reader.error(entry.key_line, entry.key, str(exc))
            continue
        if domain_name in result:
            reader.error(
                entry.key_line,
                entry.key,
                f"domain {domain_name} is already configured at line {lines[domain_name]}",
            )
            continue
        fields = reader.section(
            entry, known=("description", "localpart_catchall_separator", *AUTH_KEYS)
        )
        separator = _optional_string(reader, fields, "localpart_catchall_separator")
        if separator is not None and (
            "@" in separator
            or "." in separator
            or any(not ch.isprintable() or ch.isspace() for ch in separator)
        ):
            item_sep = fields["localpart_catchall_separator"]
            reader.error(
                item_sep.line,
                item_sep.key,
                "separator must not contain '@', '.', spaces or control characters",
            )
            separator = None
        auth = read_domain_auth(reader, fields, base_dir)
        result[domain_name] = Domain(
            name=domain_name,
            description=_optional_string(reader, fields, "description"),
            localpart_catchall_separator=separator,
            dkim=auth.dkim,
            dmarc=auth.dmarc,
            tlsrpt=auth.tlsrpt,
            mta_sts=auth.mta_sts,
        )
        lines[domain_name] = entry.key_line
    return result


@dataclass(frozen=True, slots=True)
class _Claimed:
    """Where an address was configured, to name both places when it is used twice."""

    key: str
    line: int


def _address(
    reader: NodeReader, entry: Field, text: str, domains: Mapping[str, Domain]
) -> str | None:
    """Check a destination address; return it with its domain normalized."""
    localpart, at, domain_text = text.rpartition("@")
    if not at:
        reader.error(
            entry.key_line, entry.key, f"{text!r} is not an address of the form localpart@domain"
        )
        return None
    try:
        names.validate_localpart(localpart)
        domain = names.normalize_domain(domain_text)
    except ValueError as exc:
        reader.error(entry.key_line, entry.key, str(exc))
        return None
    if domain not in domains:
        reader.error(entry.key_line, entry.key, f"domain {domain} is not configured under domains")
        return None
    return f"{localpart}@{domain}"


def _claim(reader: NodeReader, address: str, where: _Claimed, claimed: dict[str, _Claimed]) -> bool:
    """Register an address for one account; an address used twice is an error naming both."""
    first = claimed.get(address)
    if first is not None:
        reader.error(
            where.line,
            where.key,
            f"address {address} is already used by {first.key} at line {first.line}",
        )
        return False
    claimed[address] = where
    return True


def _account(
    reader: NodeReader,
    name: str,
    entry: Field,
    domains: Mapping[str, Domain],
    claimed: dict[str, _Claimed],
) -> Account:
    fields = reader.section(
        entry, known=("domain", "full_name", "destinations"), required=("domain",)
    )
    domain = ""
    if "domain" in fields:
        item = fields["domain"]
        text = reader.string(item)
        if text is not None:
            try:
                domain = names.normalize_domain(text)
            except ValueError as exc:
                reader.error(item.line, item.key, str(exc))
            else:
                if domain not in domains:
                    reader.error(
                        item.line, item.key, f"domain {domain} is not configured under domains"
                    )
    destinations: dict[str, Destination] = {}
    if "destinations" in fields:
        for address_text, dest in reader.entries(fields["destinations"]):
            dest_fields = reader.section(dest, known=("mailbox",))
            mailbox = DEFAULT_MAILBOX
            if "mailbox" in dest_fields:
                item = dest_fields["mailbox"]
                text = reader.string(item)
                if text is not None:
                    try:
                        mailbox = names.normalize_mailbox(text)
                    except ValueError as exc:
                        reader.error(item.line, item.key, str(exc))
            address = _address(reader, dest, address_text, domains)
            if address is not None and _claim(
                reader, address, _Claimed(dest.key, dest.key_line), claimed
            ):
                destinations[address] = Destination(address=address, mailbox=mailbox)
    if not destinations and domain in domains and not _has_entries(fields.get("destinations")):
        # An account without destinations receives mail for "<name>@<domain>".
        address = f"{name}@{domain}"
        try:
            names.validate_localpart(name)
        except ValueError as exc:
            reader.error(
                entry.key_line,
                entry.key,
                f"account name is not a valid localpart for {address}: {exc}",
            )
        else:
            if _claim(reader, address, _Claimed(entry.key, entry.key_line), claimed):
                destinations[address] = Destination(address=address)
    full_name = _optional_string(reader, fields, "full_name")
    return Account(name=name, domain=domain, full_name=full_name, destinations=destinations)


def _has_entries(item: Field | None) -> bool:
    """Whether a destinations mapping lists any address (valid or not)."""
    if item is None:
        return False
    value = item.node.value
    return isinstance(value, list) and len(value) > 0


def _report_destinations(
    reader: NodeReader,
    root: Field,
    domains: Mapping[str, Domain],
    accounts: dict[str, Account],
    claimed: dict[str, _Claimed],
) -> None:
    """Add each domain's DMARC/TLS report address to the account receiving it."""
    for domain in domains.values():
        for kind, target in (("dmarc", domain.dmarc), ("tlsrpt", domain.tlsrpt)):
            if target is None:
                continue
            key = f"domains.{domain.name}.{kind}"
            account = accounts.get(target.account)
            if account is None:
                reader.error(target.line, key, f"account {target.account!r} is not configured")
                continue
            address = f"{target.localpart}@{domain.name}"
            if not _claim(reader, address, _Claimed(key, target.line), claimed):
                continue
            destinations = dict(account.destinations)
            destinations[address] = Destination(address=address, mailbox=target.mailbox)
            accounts[account.name] = replace(account, destinations=destinations)


def parse_domains(reader: NodeReader, root: Field, base_dir: Path) -> DomainsConfig:
    """Read domains.conf's node tree. Errors go to ``reader``; with errors the result is partial.

    Relative paths (DKIM key files) are relative to ``base_dir``.
    """
    fields = reader.section(root, known=("domains", "accounts"), required=("domains",))
    domains = _domains(reader, fields["domains"], base_dir) if "domains" in fields else {}
    accounts: dict[str, Account] = {}
    folded: dict[str, tuple[str, int]] = {}
    claimed: dict[str, _Claimed] = {}
    if "accounts" in fields:
        for name, entry in reader.entries(fields["accounts"]):
            try:
                names.validate_account_name(name)
            except ValueError as exc:
                reader.error(entry.key_line, entry.key, str(exc))
                continue
            # Account directories must differ on case-insensitive file systems too.
            other = folded.get(name.lower())
            if other is not None:
                reader.error(
                    entry.key_line,
                    entry.key,
                    f"account name differs only in case from account {other[0]!r} at line {other[1]}",
                )
                continue
            folded[name.lower()] = (name, entry.key_line)
            accounts[name] = _account(reader, name, entry, domains, claimed)
    _report_destinations(reader, root, domains, accounts, claimed)
    return DomainsConfig(domains=domains, accounts=accounts)
