"""The configuration files of `mailactors localserve`, a local development server."""

from __future__ import annotations

import json

from mailactors.conf.names import normalize_ip

__all__ = [
    "LOCALSERVE_ACCOUNT",
    "LOCALSERVE_CERT_FILE",
    "LOCALSERVE_KEY_FILE",
    "localserve_config_texts",
]

LOCALSERVE_ACCOUNT = "mailactors"
LOCALSERVE_CERT_FILE = "localserve-cert.pem"
LOCALSERVE_KEY_FILE = "localserve-key.pem"


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def localserve_config_texts(*, ip: str, data_dir: str = "data") -> dict[str, str]:
    """Return {"mailactors.conf": ..., "domains.conf": ...} for localserve on ``ip``.

    Ports are the regular ones plus 1000. The TLS files localserve-cert.pem and
    localserve-key.pem must be written next to the files (see tlscert). Raises
    ValueError for an invalid IP.
    """
    ip = normalize_ip(ip)
    static = f"""\
# mailactors.conf for localserve: a local development server. Not for the internet.

# Host name the server uses in greetings and its TLS certificate.
hostname: localhost
# Directory for databases and messages, relative to this file.
data_dir: {_quoted(data_dir)}
# Log level: trace, debug, info, warn or error.
log_level: info
# Development mode: any password works for the local account, all mail is delivered to it.
localserve: true
# Outgoing mail goes to this server's own SMTP listener; true delivers to the real MX hosts.
deliver_to_mx: false
# Incoming mail is checked (SPF, DKIM, DMARC) and DMARC evaluations are stored, but
# no aggregate reports are sent unless this is false.
no_outgoing_dmarc_reports: true
# TLS results of deliveries are recorded, but no TLS reports are sent unless this is false.
no_outgoing_tls_reports: true
# Account and mailbox that receive mail for postmaster.
postmaster:
  # Account receiving postmaster mail.
  account: {LOCALSERVE_ACCOUNT}
  # Mailbox in that account.
  mailbox: Postmaster
# Certificates by name; listeners refer to them with their tls setting.
tls:
  # Certificate/key pairs, as PEM files relative to this file.
  key_certs:
    # A self-signed certificate for localhost and the listener IP.
    localserve:
      # Certificate chain, PEM.
      cert_file: {LOCALSERVE_CERT_FILE}
      # Private key, PEM.
      key_file: {LOCALSERVE_KEY_FILE}
# Listeners: IPs and the services on them (regular ports + 1000).
listeners:
  # The one local listener.
  local:
    # IP addresses to listen on.
    ips: [{_quoted(ip)}]
    # TLS certificate for STARTTLS and implicit TLS.
    tls: localserve
    # Incoming mail (SMTP), port 25 + 1000.
    smtp: {{port: 1025}}
    # Message submission with STARTTLS, port 587 + 1000.
    submission: {{port: 1587}}
    # Message submission over implicit TLS, port 465 + 1000.
    submissions: {{port: 1465}}
    # IMAP with STARTTLS, port 143 + 1000.
    imap: {{port: 1143}}
    # IMAP over implicit TLS, port 993 + 1000.
    imaps: {{port: 1993}}
    # Admin web pages over HTTP, port 80 + 1000.
    http: {{port: 1080}}
    # Admin web pages over HTTPS, port 443 + 1000.
    https: {{port: 1443}}
"""
    domains = f"""\
# domains.conf for localserve: the domains and accounts.

# Domains we accept mail for.
domains:
  # The local domain.
  localhost:
    # Shown in the admin pages.
    description: Local development domain
# Accounts; each account's name is also its directory in the data directory.
accounts:
  # The one local account; localserve accepts any password for it.
  {LOCALSERVE_ACCOUNT}:
    # Domain of the account.
    domain: localhost
    # Addresses delivered to this account, with their mailbox.
    destinations:
      # The account's address.
      {LOCALSERVE_ACCOUNT}@localhost:
        # Mailbox for mail to this address.
        mailbox: Inbox
"""
    return {"mailactors.conf": static, "domains.conf": domains}
