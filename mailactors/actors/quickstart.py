"""`mailactors quickstart you@example.com`: a first configuration for a real mail server.

Writes, into a new directory:
- mailactors.conf: host name mail.<domain>, data directory, public listeners on
  0.0.0.0 and :: (SMTP, submission, IMAP, HTTPS for MTA-STS), the admin pages on
  127.0.0.1 only, a self-signed TLS certificate (replace it with a CA-signed one
  before going live), postmaster and host TLS reports to the new account, the
  system's DNS resolver;
- domains.conf: the domain with fresh DKIM keys (ed25519 and rsa-2048), DMARC and
  TLS report addresses delivered to submailboxes of the account, an MTA-STS
  policy in mode "testing", and the account with the given address;
- the account's password: generated, printed once, and stored only as a salted
  SCRAM-SHA-256 hash. No server runs yet, so quickstart opens the account's
  database itself (data/accounts/<account>/index.db) and writes the hash there,
  where the server finds it at its first start.
Nothing existing is overwritten.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from mailactors.conf import names
from mailactors.conf.dnsrecords import DnsRecord, records_for, zone_text
from mailactors.conf.errors import ConfigErrors
from mailactors.conf.load import DOMAINS_FILE, STATIC_FILE, load_config
from mailactors.conf.tlscert import self_signed_certificate
from mailactors.protocol.dkim import generate_private_key
from mailactors.protocol.sasl.scram import derive_credentials
from mailactors.storage.account import AccountStore
from mailactors.storage.files import write_file_atomic

__all__ = [
    "DEFAULT_IPS",
    "QuickstartError",
    "QuickstartResult",
    "generate_password",
    "quickstart",
    "run_quickstart",
]

DEFAULT_IPS = ("0.0.0.0", "::")
ADMIN_IP = "127.0.0.1"
ADMIN_HTTP_PORT = 8080
DMARC_LOCALPART = "dmarc-reports"
TLSRPT_LOCALPART = "tls-reports"
DMARC_MAILBOX = "Reports/DMARC"
TLSRPT_MAILBOX = "Reports/TLSRPT"
MTA_STS_MAX_AGE = 86400  # one day while testing; RFC 8461 3.2 allows up to a year
PASSWORD_BYTES = 12  # 96 bits of randomness, 16 characters of URL-safe base64
CERT_NAME = "quickstart"
SALT_BYTES = 16


class QuickstartError(Exception):
    """Quickstart cannot proceed: an invalid address or files that already exist."""


@dataclass(frozen=True, slots=True)
class QuickstartResult:
    """What quickstart did: the generated password (shown once), the DNS records, the files."""

    account: str
    address: str
    password: str
    records: tuple[DnsRecord, ...]
    files: tuple[Path, ...]
    config_path: Path


def generate_password() -> str:
    """A random password for the new account."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def _static_text(
    *, hostname: str, account: str, ips: Sequence[str], cert_file: str, key_file: str
) -> str:
    ip_list = ", ".join(_q(ip) for ip in ips)
    return f"""\
# mailactors.conf, written by `mailactors quickstart`. Check it with `mailactors config test`.

# Host name of this mail server: used in SMTP greetings, its TLS certificate and the MX record.
hostname: {_q(hostname)}
# Directory for databases and messages, relative to this file.
data_dir: "data"
# Log level: trace, debug, info, warn or error.
log_level: info
# Account and mailbox that receive mail for postmaster (RFC 5321 4.5.1).
postmaster:
  # Account receiving postmaster mail.
  account: {_q(account)}
  # Mailbox in that account.
  mailbox: Postmaster
# TLS reports (RFC 8460) about this host, e.g. DANE results, sent to <localpart>@<hostname>.
host_tlsrpt:
  # Account receiving the reports.
  account: {_q(account)}
  # Localpart of the address at the host name, published in _smtp._tls.<hostname>.
  localpart: {_q(TLSRPT_LOCALPART)}
  # Mailbox in that account.
  mailbox: {_q(TLSRPT_MAILBOX)}
# DNS resolver; no name servers means the system's (/etc/resolv.conf). Use a DNSSEC-validating
# resolver for DANE.
dns:
  # Name servers as "ip" or "ip:port"; empty: the system resolver.
  nameservers: []
# Certificates by name; listeners refer to them with their tls setting.
tls:
  # Certificate/key pairs, as PEM files relative to this file.
  key_certs:
    # A self-signed certificate written by quickstart: replace both files with a certificate
    # from a CA (e.g. Let's Encrypt) for the host name, mta-sts.<domain> and autoconfig.<domain>.
    {CERT_NAME}:
      # Certificate chain, PEM.
      cert_file: {_q(cert_file)}
      # Private key, PEM.
      key_file: {_q(key_file)}
# Listeners: IPs and the services on them.
listeners:
  # Services reachable from the internet.
  public:
    # IP addresses to listen on (all IPv4 and all IPv6 addresses).
    ips: [{ip_list}]
    # TLS certificate for STARTTLS and implicit TLS.
    tls: {CERT_NAME}
    # Incoming mail from other servers (SMTP, RFC 5321).
    smtp: {{port: 25}}
    # Message submission with STARTTLS (RFC 6409).
    submission: {{port: 587}}
    # Message submission over implicit TLS (RFC 8314).
    submissions: {{port: 465}}
    # IMAP with STARTTLS.
    imap: {{port: 143}}
    # IMAP over implicit TLS (RFC 8314).
    imaps: {{port: 993}}
    # HTTPS: the MTA-STS policy and client autoconfiguration.
    https: {{port: 443}}
  # The admin web pages, reachable from this machine only (use an SSH tunnel).
  admin:
    # IP addresses to listen on.
    ips: [{_q(ADMIN_IP)}]
    # Admin web pages over HTTP.
    http: {{port: {ADMIN_HTTP_PORT}}}
"""


def _domains_text(
    *,
    domain: str,
    account: str,
    address: str,
    selectors: Sequence[tuple[str, str, str]],
    policy_id: str,
    hostname: str,
) -> str:
    selector_lines = "".join(
        f"""\
        # {algorithm} key.
        {_q(name)}:
          # Private key, PEM, relative to this file.
          private_key_file: {_q(path)}
"""
        for name, algorithm, path in selectors
    )
    sign = ", ".join(_q(name) for name, _, _ in selectors)
    return f"""\
# domains.conf, written by `mailactors quickstart`: the domains and accounts.

# Domains we accept mail for.
domains:
  # The domain of the first account.
  {_q(domain)}:
    # Shown in the admin pages.
    description: "Set up by mailactors quickstart"
    # Mail to "name+anything@domain" goes to "name@domain".
    localpart_catchall_separator: "+"
    # DKIM signing (RFC 6376): publish each selector's key with `mailactors config dnsrecords`.
    dkim:
      # Selectors and their private keys.
      selectors:
{selector_lines}\
      # Selectors used to sign outgoing mail, in order.
      sign: [{sign}]
    # Incoming DMARC aggregate reports (RFC 7489 7.2), the rua address of the DMARC record.
    dmarc:
      # Localpart of the report address at this domain.
      localpart: {_q(DMARC_LOCALPART)}
      # Account receiving the reports.
      account: {_q(account)}
      # Mailbox in that account.
      mailbox: {_q(DMARC_MAILBOX)}
    # Incoming TLS reports (RFC 8460) about this domain, the rua address of its TLSRPT record.
    tlsrpt:
      # Localpart of the report address at this domain.
      localpart: {_q(TLSRPT_LOCALPART)}
      # Account receiving the reports.
      account: {_q(account)}
      # Mailbox in that account.
      mailbox: {_q(TLSRPT_MAILBOX)}
    # MTA-STS policy (RFC 8461). Starts in mode "testing": once mail arrives over TLS and TLS
    # reports show no failures, set mode to enforce and change policy_id (and its DNS record).
    mta_sts:
      # Policy version; the _mta-sts TXT record repeats it.
      policy_id: {_q(policy_id)}
      # enforce, testing or none.
      mode: testing
      # Host names allowed as MX.
      mx: [{_q(hostname)}]
      # Seconds senders cache the policy.
      max_age: {MTA_STS_MAX_AGE}
# Accounts; each account's name is also its directory in the data directory.
accounts:
  # The first account.
  {_q(account)}:
    # Domain of the account.
    domain: {_q(domain)}
    # Addresses delivered to this account, with their mailbox.
    destinations:
      # The account's address.
      {_q(address)}:
        # Mailbox for mail to this address.
        mailbox: Inbox
"""


def _account_name(localpart: str) -> str:
    try:
        return names.validate_account_name(localpart)
    except ValueError:
        return "admin"


def _store_password(data_dir: Path, account: str, password: str) -> None:
    """Write the password's SCRAM-SHA-256 hash into the account's new database."""
    creds = derive_credentials(password, secrets.token_bytes(SALT_BYTES))
    store = AccountStore(data_dir / "accounts" / account, logging.getLogger("mailactors.quickstart"))
    store.init()
    try:
        store.set_password_credentials(
            creds.salt, creds.iterations, creds.stored_key, creds.server_key
        )
    finally:
        store.close()


def quickstart(
    address: str,
    *,
    directory: Path,
    hostname: str | None = None,
    ips: Sequence[str] = DEFAULT_IPS,
    password: str | None = None,
    now: datetime | None = None,
) -> QuickstartResult:
    """Write a configuration for `address` into `directory`; see the module docstring.

    Raises QuickstartError for an invalid address/host name/IP or when any file
    quickstart would write already exists.
    """
    localpart, at, domain_text = address.rpartition("@")
    if not at or not localpart:
        raise QuickstartError(f"{address!r} is not an address of the form localpart@domain")
    try:
        names.validate_localpart(localpart)
        domain = names.normalize_domain(domain_text)
        host = names.normalize_domain(hostname or f"mail.{domain}")
        listen_ips = [names.normalize_ip(ip) for ip in ips]
    except ValueError as exc:
        raise QuickstartError(str(exc)) from exc
    if "." not in domain:
        raise QuickstartError(f"{domain} is not a domain on the internet (no dot)")
    if localpart in (DMARC_LOCALPART, TLSRPT_LOCALPART):
        raise QuickstartError(f"{localpart!r} is used for report addresses; choose another")
    now = now or datetime.now(UTC)
    account = _account_name(localpart)
    address = f"{localpart}@{domain}"
    directory = directory.resolve()
    year = now.strftime("%Y")
    selectors = [
        (f"{year}a", "ed25519", f"dkim/{year}a.ed25519.pem"),
        (f"{year}b", "rsa", f"dkim/{year}b.rsa.pem"),
    ]
    cert_file, key_file = f"tls/{host}-cert.pem", f"tls/{host}-key.pem"
    static_path, domains_path = directory / STATIC_FILE, directory / DOMAINS_FILE
    data_dir = directory / "data"
    targets = [static_path, domains_path, directory / cert_file, directory / key_file]
    targets += [directory / path for _, _, path in selectors]
    targets.append(data_dir / "accounts" / account)
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise QuickstartError("refusing to overwrite: " + ", ".join(existing))

    for sub in ("dkim", "tls"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for _, algorithm, path in selectors:
        write_file_atomic(directory / path, generate_private_key(algorithm), mode=0o600)
        written.append(directory / path)
    ascii_domain = names.domain_to_ascii(domain)
    cert_pem, key_pem = self_signed_certificate(
        hostnames=[host, f"mta-sts.{ascii_domain}", f"autoconfig.{ascii_domain}"], ips=[], now=now
    )
    write_file_atomic(directory / key_file, key_pem, mode=0o600)
    write_file_atomic(directory / cert_file, cert_pem)
    written += [directory / key_file, directory / cert_file]
    domains_text = _domains_text(
        domain=domain,
        account=account,
        address=address,
        selectors=selectors,
        policy_id=now.strftime("%Y%m%d%H%M%S"),
        hostname=names.domain_to_ascii(host),  # RFC 8461 3.2: mx patterns are A-labels
    )
    write_file_atomic(domains_path, domains_text.encode("utf-8"))
    static_text = _static_text(
        hostname=host, account=account, ips=listen_ips, cert_file=cert_file, key_file=key_file
    )
    write_file_atomic(static_path, static_text.encode("utf-8"))
    written += [domains_path, static_path]
    # Loading what we wrote checks it as `mailactors config test` would.
    try:
        config = load_config(static_path)
    except ConfigErrors as exc:
        raise QuickstartError(
            "the written configuration does not load:\n" + "\n".join(map(str, exc.errors))
        ) from exc
    password = password or generate_password()
    _store_password(config.static.data_dir, account, password)
    written.append(config.static.data_dir / "accounts" / account / "index.db")
    return QuickstartResult(
        account=account,
        address=address,
        password=password,
        records=tuple(records_for(config, domain)),
        files=tuple(written),
        config_path=static_path,
    )


def run_quickstart(
    address: str,
    directory: Path,
    hostname: str | None,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """`mailactors quickstart`: write the configuration and print password and DNS records."""
    try:
        result = quickstart(address, directory=directory, hostname=hostname)
    except QuickstartError as exc:
        print(f"quickstart: {exc}", file=stderr)
        return 1
    out = stdout
    print("Wrote:", file=out)
    for path in result.files:
        print(f"  {path}", file=out)
    print(
        f"""
Account {result.account!r}, address {result.address}.
Password (shown only this once; only a salted hash is stored):

    {result.password}

Log in to IMAP and submission with the address (or the account name) and this password.

TLS: {result.config_path.parent / "tls"} holds a SELF-SIGNED certificate. Replace it with a
certificate from a CA for the host name, mta-sts.<domain> and autoconfig.<domain> before
going live (keep the private key to keep the TLSA record valid).

MTA-STS starts in mode "testing". When TLS reports show no failures, set mode: enforce in
domains.conf, change policy_id and publish the new _mta-sts TXT record.

Check the files with:  mailactors -config {result.config_path} config test
Publish these DNS records (print them again with `mailactors config dnsrecords DOMAIN`,
check them with `mailactors config dnscheck DOMAIN`):
""",
        file=out,
    )
    out.write(zone_text(result.records))
    return 0
