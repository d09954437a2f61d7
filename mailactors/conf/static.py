"""mailactors.conf: the static configuration, read once at startup."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mailactors.conf import names
from mailactors.conf.yamlnodes import Field, NodeReader
from mailactors.log import parse_level

__all__ = [
    "DEFAULT_PORTS",
    "AccountRef",
    "Dns",
    "HostTlsrpt",
    "KeyCert",
    "Listener",
    "Postmaster",
    "Service",
    "SmtpListener",
    "StaticConfig",
    "parse_static",
]

T = TypeVar("T")

# A package below "mailactors", whose logger is "mailactors.<pkg>".
_PACKAGE_NAME = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")

# RFC 5321 4.5.3.1.7: "The maximum total length of a message content (including
# any message header section as well as the message body) MUST BE at least 64K octets."
MIN_MESSAGE_SIZE = 64 * 1024
DEFAULT_MAX_MESSAGE_SIZE = 100 * 1024 * 1024
# RFC 5321 4.5.3.1.8: "The minimum total number of recipients that MUST be
# buffered is 100 recipients."
MIN_RECIPIENTS = 100
DEFAULT_MAX_RECIPIENTS = 1000

# The well-known port of each service, used when a service sets no port.
DEFAULT_PORTS: Mapping[str, int] = {
    "smtp": 25,  # RFC 5321 4.5.4.2
    "submission": 587,  # RFC 6409 3.1
    "submissions": 465,  # RFC 8314 7.3
    "imap": 143,  # RFC 9051 1
    "imaps": 993,  # RFC 8314 7.2
    "http": 80,
    "https": 443,
}
_SMTP_SERVICES = ("smtp", "submission", "submissions")
_PLAIN_SERVICES = ("imap", "imaps", "http", "https")
# Services that speak TLS from the first byte (RFC 8314 3.3) need a certificate.
_IMPLICIT_TLS = ("submissions", "imaps", "https")


@dataclass(frozen=True, slots=True)
class KeyCert:
    """A TLS certificate chain (PEM) and its private key (PEM)."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class Postmaster:
    """Where mail to postmaster (RFC 5321 4.5.1) is delivered."""

    account: str
    mailbox: str = "Postmaster"


@dataclass(frozen=True, slots=True)
class HostTlsrpt:
    """The account receiving TLS reports (RFC 8460) about this host's TLS, and its address."""

    account: str
    localpart: str
    mailbox: str = "TLSRPT"


@dataclass(frozen=True, slots=True)
class Dns:
    """Name servers to ask ("ip", "ip:port" or "[ipv6]:port"); empty means the system resolver."""

    nameservers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Service:
    """An enabled IMAP or HTTP service on a listener."""

    port: int


@dataclass(frozen=True, slots=True)
class SmtpListener:
    """An enabled SMTP service (smtp, submission or submissions) on a listener."""

    port: int
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_recipients: int = DEFAULT_MAX_RECIPIENTS


@dataclass(frozen=True, slots=True)
class Listener:
    """A set of IPs and the services listening on them; None means disabled."""

    name: str
    ips: tuple[str, ...]
    hostname: str | None = None
    tls: str | None = None
    smtp: SmtpListener | None = None
    submission: SmtpListener | None = None
    submissions: SmtpListener | None = None
    imap: Service | None = None
    imaps: Service | None = None
    http: Service | None = None
    https: Service | None = None


@dataclass(frozen=True, slots=True)
class StaticConfig:
    """The settings of mailactors.conf; paths are absolute."""

    hostname: str
    data_dir: Path
    postmaster: Postmaster
    listeners: Mapping[str, Listener]
    log_level: str = "info"
    package_log_levels: Mapping[str, str] = field(default_factory=dict)
    localserve: bool = False
    # localserve: deliver outgoing mail to the recipients' MX hosts instead of to itself.
    deliver_to_mx: bool = False
    host_tlsrpt: HostTlsrpt | None = None
    no_outgoing_tls_reports: bool = False
    no_outgoing_dmarc_reports: bool = False
    dns: Dns = Dns()
    workers: int = 1
    tls_key_certs: Mapping[str, KeyCert] = field(default_factory=dict)
    # PEM files of CAs trusted for outgoing TLS besides the system's (private CAs).
    tls_ca_certs: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountRef:
    """A place in mailactors.conf naming an account, checked against domains.conf."""

    key: str
    line: int
    account: str


_TOP_KEYS = (
    "hostname",
    "data_dir",
    "log_level",
    "package_log_levels",
    "localserve",
    "deliver_to_mx",
    "postmaster",
    "host_tlsrpt",
    "no_outgoing_tls_reports",
    "no_outgoing_dmarc_reports",
    "dns",
    "workers",
    "tls",
    "listeners",
)


def _checked(
    reader: NodeReader, item: Field, value: str | None, check: Callable[[str], T]
) -> T | None:
    """Apply a names.* check to a string value, recording its ValueError."""
    if value is None:
        return None
    try:
        return check(value)
    except ValueError as exc:
        reader.error(item.line, item.key, str(exc))
        return None


def _string(reader: NodeReader, fields: Mapping[str, Field], name: str, default: str) -> str:
    item = fields.get(name)
    if item is None:
        return default
    return reader.string(item) or default


def _boolean(reader: NodeReader, fields: Mapping[str, Field], name: str) -> bool:
    item = fields.get(name)
    return bool(item is not None and reader.boolean(item))


def _path(reader: NodeReader, item: Field, base_dir: Path) -> Path | None:
    """A path setting, relative to the directory of the file naming it, made absolute."""
    text = reader.string(item)
    if text is None:
        return None
    if "\x00" in text:
        reader.error(item.line, item.key, "path contains a NUL character")
        return None
    try:
        return (base_dir / Path(text)).resolve()
    except (OSError, RuntimeError) as exc:
        reader.error(item.line, item.key, f"invalid path: {getattr(exc, 'strerror', None) or exc}")
        return None


def _level(reader: NodeReader, item: Field) -> str | None:
    text = reader.string(item)
    if text is None:
        return None
    try:
        parse_level(text)
    except ValueError as exc:
        reader.error(item.line, item.key, str(exc))
        return None
    return text.strip().lower()


def _file_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file, or None."""
    try:
        if not path.exists():
            return "file not found"
        if not path.is_file():
            return "not a regular file"
    except OSError as exc:
        return f"cannot access file ({exc.strerror or exc})"
    return None


def _key_certs(
    reader: NodeReader, tls: Mapping[str, Field], base_dir: Path
) -> tuple[dict[str, KeyCert], set[str]]:
    """Read tls.key_certs; returns the valid pairs and every name declared (valid or not)."""
    result: dict[str, KeyCert] = {}
    declared: set[str] = set()
    if "key_certs" not in tls:
        return result, declared
    for name, entry in reader.entries(tls["key_certs"]):
        declared.add(name)
        fields = reader.section(
            entry, known=("cert_file", "key_file"), required=("cert_file", "key_file")
        )
        paths: list[Path] = []
        for key in ("cert_file", "key_file"):
            if key not in fields:
                continue
            path = _path(reader, fields[key], base_dir)
            if path is None:
                continue
            problem = _file_problem(path)
            if problem:
                reader.error(fields[key].line, fields[key].key, f"{problem}: {path}")
            else:
                paths.append(path)
        if len(paths) == 2:
            result[name] = KeyCert(cert_file=paths[0], key_file=paths[1])
    return result, declared


def _ca_certs(reader: NodeReader, tls: Mapping[str, Field], base_dir: Path) -> list[Path]:
    """Read tls.ca_certs: PEM files of extra CAs trusted when delivering."""
    result: list[Path] = []
    if "ca_certs" not in tls:
        return result
    for entry in reader.items(tls["ca_certs"]):
        path = _path(reader, entry, base_dir)
        if path is None:
            continue
        problem = _file_problem(path)
        if problem:
            reader.error(entry.line, entry.key, f"{problem}: {path}")
        else:
            result.append(path)
    return result


def _port(
    reader: NodeReader, item: Field, fields: Mapping[str, Field], service: str
) -> tuple[int, Field]:
    """The service's port (default: its well-known port) and the Field to name in errors."""
    if "port" not in fields:
        return DEFAULT_PORTS[service], item
    port = reader.integer(fields["port"], minimum=1, maximum=65535)
    return port or DEFAULT_PORTS[service], fields["port"]


def _smtp_service(reader: NodeReader, item: Field, service: str) -> tuple[SmtpListener, Field]:
    fields = reader.section(item, known=("port", "max_message_size", "max_recipients"))
    port, where = _port(reader, item, fields, service)
    size = DEFAULT_MAX_MESSAGE_SIZE
    if "max_message_size" in fields:
        size = reader.integer(fields["max_message_size"], minimum=MIN_MESSAGE_SIZE) or size
    recipients = DEFAULT_MAX_RECIPIENTS
    if "max_recipients" in fields:
        recipients = reader.integer(fields["max_recipients"], minimum=MIN_RECIPIENTS) or recipients
    return SmtpListener(port=port, max_message_size=size, max_recipients=recipients), where


def _plain_service(reader: NodeReader, item: Field, service: str) -> tuple[Service, Field]:
    fields = reader.section(item, known=("port",))
    port, where = _port(reader, item, fields, service)
    return Service(port=port), where


def _listener(
    reader: NodeReader,
    name: str,
    item: Field,
    declared_tls: set[str],
    bound: dict[tuple[str, int], str],
) -> Listener:
    known = ("ips", "hostname", "tls", *_SMTP_SERVICES, *_PLAIN_SERVICES)
    fields = reader.section(item, known=known, required=("ips",))
    ips: list[str] = []
    if "ips" in fields:
        before = len(reader.errors)
        ip_items = reader.items(fields["ips"])
        if not ip_items and len(reader.errors) == before:
            reader.error(
                fields["ips"].line, fields["ips"].key, "at least one IP address is required"
            )
        for ip_item in ip_items:
            ip = _checked(reader, ip_item, reader.string(ip_item), names.normalize_ip)
            if ip is None:
                continue
            if ip in ips:
                reader.error(ip_item.line, ip_item.key, f"duplicate IP address {ip}")
                continue
            ips.append(ip)
    hostname = None
    if "hostname" in fields:
        item = fields["hostname"]
        hostname = _checked(reader, item, reader.string(item), names.normalize_domain)
    tls = None
    if "tls" in fields:
        tls = reader.string(fields["tls"])
        if tls is not None and tls not in declared_tls:
            reader.error(
                fields["tls"].line,
                fields["tls"].key,
                f"unknown TLS certificate {tls!r} (define it under tls.key_certs)",
            )
    smtp: dict[str, SmtpListener] = {}
    plain: dict[str, Service] = {}
    for service in (*_SMTP_SERVICES, *_PLAIN_SERVICES):
        if service not in fields:
            continue
        service_item = fields[service]
        if service in _SMTP_SERVICES:
            smtp[service], where = _smtp_service(reader, service_item, service)
            port = smtp[service].port
        else:
            plain[service], where = _plain_service(reader, service_item, service)
            port = plain[service].port
        if service in _IMPLICIT_TLS and "tls" not in fields:
            reader.error(
                service_item.key_line,
                service_item.key,
                f"{service} uses implicit TLS (RFC 8314 3.3) and requires the listener's tls setting",
            )
        _check_bound(reader, where, port, ips, bound)
    return Listener(
        name=name,
        ips=tuple(ips),
        hostname=hostname,
        tls=tls,
        smtp=smtp.get("smtp"),
        submission=smtp.get("submission"),
        submissions=smtp.get("submissions"),
        imap=plain.get("imap"),
        imaps=plain.get("imaps"),
        http=plain.get("http"),
        https=plain.get("https"),
    )


def _check_bound(
    reader: NodeReader,
    where: Field,
    port: int,
    ips: list[str],
    bound: dict[tuple[str, int], str],
) -> None:
    """Record each (ip, port) a service binds; the same pair twice is an error.

    An unspecified address (0.0.0.0, ::) clashes with every address of its
    family on the same port, since binding both fails.
    """
    for ip in ips:
        address = ipaddress.ip_address(ip)
        for (other_ip, other_port), other_key in bound.items():
            other = ipaddress.ip_address(other_ip)
            if other_port == port and (
                other == address
                or (
                    other.version == address.version
                    and (other.is_unspecified or address.is_unspecified)
                )
            ):
                reader.error(
                    where.key_line,
                    where.key,
                    f"{ip} port {port} is already used by {other_key} ({other_ip})",
                )
                break
        else:
            bound[(ip, port)] = where.key


def parse_static(
    reader: NodeReader, root: Field, base_dir: Path
) -> tuple[StaticConfig, list[AccountRef]]:
    """Read mailactors.conf's node tree. Errors go to ``reader``; with errors the result is partial."""
    fields = reader.section(root, known=_TOP_KEYS, required=("hostname", "postmaster", "listeners"))
    refs: list[AccountRef] = []

    hostname = ""
    if "hostname" in fields:
        item = fields["hostname"]
        hostname = _checked(reader, item, reader.string(item), names.normalize_domain) or ""

    data_dir = (base_dir / "data").resolve()
    if "data_dir" in fields:
        data_dir = _path(reader, fields["data_dir"], base_dir) or data_dir

    log_level = "info"
    if "log_level" in fields:
        log_level = _level(reader, fields["log_level"]) or log_level
    package_log_levels: dict[str, str] = {}
    if "package_log_levels" in fields:
        for pkg, item in reader.entries(fields["package_log_levels"]):
            if not _PACKAGE_NAME.fullmatch(pkg):
                reader.error(
                    item.key_line, item.key, "package names are like smtpserver or protocol.smtp"
                )
                continue
            level = _level(reader, item)
            if level is not None:
                package_log_levels[pkg] = level

    postmaster = Postmaster(account="")
    if "postmaster" in fields:
        pm = reader.section(
            fields["postmaster"], known=("account", "mailbox"), required=("account",)
        )
        account = reader.string(pm["account"]) if "account" in pm else None
        if account is not None:
            refs.append(AccountRef(pm["account"].key, pm["account"].line, account))
        mailbox = "Postmaster"
        if "mailbox" in pm:
            mailbox = (
                _checked(
                    reader, pm["mailbox"], reader.string(pm["mailbox"]), names.normalize_mailbox
                )
                or mailbox
            )
        postmaster = Postmaster(account=account or "", mailbox=mailbox)

    host_tlsrpt = None
    if "host_tlsrpt" in fields:
        ht = reader.section(
            fields["host_tlsrpt"],
            known=("account", "localpart", "mailbox"),
            required=("account", "localpart"),
        )
        account = reader.string(ht["account"]) if "account" in ht else None
        if account is not None:
            refs.append(AccountRef(ht["account"].key, ht["account"].line, account))
        localpart = None
        if "localpart" in ht:
            localpart = _checked(
                reader, ht["localpart"], reader.string(ht["localpart"]), names.validate_localpart
            )
        mailbox = "TLSRPT"
        if "mailbox" in ht:
            mailbox = (
                _checked(
                    reader, ht["mailbox"], reader.string(ht["mailbox"]), names.normalize_mailbox
                )
                or mailbox
            )
        host_tlsrpt = HostTlsrpt(account=account or "", localpart=localpart or "", mailbox=mailbox)

    dns = Dns()
    if "dns" in fields:
        dns_fields = reader.section(fields["dns"], known=("nameservers",))
        servers: list[str] = []
        if "nameservers" in dns_fields:
            for item in reader.items(dns_fields["nameservers"]):
                server = _checked(reader, item, reader.string(item), names.normalize_nameserver)
                if server is not None:
                    servers.append(server)
        dns = Dns(nameservers=tuple(servers))

    workers = 1
    if "workers" in fields:
        workers = reader.integer(fields["workers"], minimum=1) or workers

    key_certs: dict[str, KeyCert] = {}
    declared: set[str] = set()
    ca_certs: list[Path] = []
    if "tls" in fields:
        tls = reader.section(fields["tls"], known=("key_certs", "ca_certs"))
        key_certs, declared = _key_certs(reader, tls, base_dir)
        ca_certs = _ca_certs(reader, tls, base_dir)

    listeners: dict[str, Listener] = {}
    if "listeners" in fields:
        bound: dict[tuple[str, int], str] = {}
        before = len(reader.errors)
        entries = reader.entries(fields["listeners"])
        if not entries and len(reader.errors) == before:
            reader.error(
                fields["listeners"].line,
                fields["listeners"].key,
                "at least one listener is required",
            )
        for name, item in entries:
            listeners[name] = _listener(reader, name, item, declared, bound)

    static = StaticConfig(
        hostname=hostname,
        data_dir=data_dir,
        postmaster=postmaster,
        listeners=listeners,
        log_level=log_level,
        package_log_levels=package_log_levels,
        localserve=_boolean(reader, fields, "localserve"),
        deliver_to_mx=_boolean(reader, fields, "deliver_to_mx"),
        host_tlsrpt=host_tlsrpt,
        no_outgoing_tls_reports=_boolean(reader, fields, "no_outgoing_tls_reports"),
        no_outgoing_dmarc_reports=_boolean(reader, fields, "no_outgoing_dmarc_reports"),
        dns=dns,
        workers=workers,
        tls_key_certs=key_certs,
        tls_ca_certs=tuple(ca_certs),
    )
    return static, refs
