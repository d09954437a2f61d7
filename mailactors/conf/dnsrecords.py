"""The DNS records a domain and this host should publish, and their zone-file form.

`records_for` derives them from the configuration (host name, listeners, TLS
certificate, the domain's DKIM keys, report addresses and MTA-STS policy);
`zone_text` formats them for a zone file; `mailactors config dnsrecords`
prints that. The admin pages and `mailactors config dnscheck` use the same list.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mailactors.conf import names
from mailactors.conf.domains import Domain
from mailactors.conf.errors import ConfigErrors
from mailactors.conf.load import Config, load_config
from mailactors.conf.static import Listener
from mailactors.protocol.dkim import DkimKeyError, dns_txt_record, load_private_key

__all__ = [
    "POLICY_TYPE",
    "TXT_STRING_MAX",
    "DnsRecord",
    "DnsRecordsError",
    "mta_sts_policy_text",
    "records_for",
    "run_dnsrecords",
    "tlsa_data",
    "zone_text",
]

# Not a DNS type: the MTA-STS policy file (RFC 8461 3.2) to serve over HTTPS.
POLICY_TYPE = "POLICY"
# RFC 1035 3.3: <character-string> is a length octet followed by that many octets.
TXT_STRING_MAX = 255
# RFC 7671 5.1: DANE-EE(3) SPKI(1) SHA2-256(1) is the recommended TLSA form.
TLSA_USAGE_DANE_EE = 3
TLSA_SELECTOR_SPKI = 1
TLSA_MTYPE_SHA256 = 1
# RFC 5321 4.5.4.2 / RFC 7672 2.2.3: TLSA records for SMTP live at _25._tcp.<host>.
SMTP_PORT = 25
MX_PREFERENCE = 10
# TTL of the zone-file lines: short enough to correct mistakes quickly.
ZONE_TTL = 300


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """One record to publish: `name` is absolute without the trailing dot; `value` is in
    zone-file presentation form (host names absolute with a trailing dot, TXT unquoted)."""

    name: str
    type: str
    value: str
    purpose: str


class DnsRecordsError(ValueError):
    """The records cannot be derived (unknown domain, unreadable key or certificate)."""


def tlsa_data(cert_pem: bytes) -> str:
    """Hex SHA-256 of the SubjectPublicKeyInfo of the first certificate in `cert_pem`."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise DnsRecordsError(f"cannot read the TLS certificate: {exc}") from exc
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def mta_sts_policy_text(mode: str, mx: Sequence[str], max_age: int) -> str:
    """The policy file body (RFC 8461 3.2), CRLF line endings."""
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {host}" for host in mx)]
    lines.append(f"max_age: {max_age}")
    return "".join(line + "\r\n" for line in lines)


def _public_ips(listeners: Sequence[Listener]) -> list[str]:
    """Listener IPs that are reachable from the internet (not 0.0.0.0, private or loopback)."""
    out: list[str] = []
    for listener in listeners:
        for ip in listener.ips:
            address = ipaddress.ip_address(ip)
            if address.is_global and ip not in out:
                out.append(ip)
    return out


def _smtp_cert(config: Config) -> bytes | None:
    """The PEM certificate of the first listener with smtp and tls, or None."""
    for listener in config.static.listeners.values():
        if listener.smtp is None or listener.tls is None:
            continue
        key_cert = config.static.tls_key_certs.get(listener.tls)
        if key_cert is None:
            continue
        try:
            return key_cert.cert_file.read_bytes()
        except OSError as exc:
            raise DnsRecordsError(f"cannot read {key_cert.cert_file}: {exc.strerror or exc}") from exc
    return None


def _service_port(config: Config, service: str) -> int | None:
    for listener in config.static.listeners.values():
        found = getattr(listener, service)
        if found is not None:
            port: int = found.port
            return port
    return None


def _dkim_records(domain: Domain, name: str) -> list[DnsRecord]:
    """The key records of the domain's selectors; `name` is the domain as A-labels."""
    out: list[DnsRecord] = []
    if domain.dkim is None:
        return out
    for selector in domain.dkim.selectors.values():
        path = selector.private_key_file
        try:
            key = load_private_key(Path(path).read_bytes())
        except OSError as exc:
            raise DnsRecordsError(f"cannot read DKIM key {path}: {exc.strerror or exc}") from exc
        except DkimKeyError as exc:
            raise DnsRecordsError(f"DKIM key {path}: {exc}") from exc
        signing = " (used for signing)" if selector.name in domain.dkim.sign else ""
        out.append(
            DnsRecord(
                f"{selector.name}._domainkey.{name}",
                "TXT",
                dns_txt_record(key),
                f"DKIM public key, {key.algorithm}, selector {selector.name}{signing} (RFC 6376 3.6)",
            )
        )
    return out


def records_for(
    config: Config, domain: str, *, tlsa_cert_pem: bytes | None = None
) -> list[DnsRecord]:
    """Every record `domain` (and this host, for its MX role) should publish.

    The TLSA record uses `tlsa_cert_pem`, else the certificate of the SMTP
    listener; without either it is left out. Raises DnsRecordsError.
    """
    try:
        name = names.domain_to_ascii(names.normalize_domain(domain))
        key = names.normalize_domain(domain)
    except ValueError as exc:
        raise DnsRecordsError(str(exc)) from exc
    dom = config.domains.domains.get(key)
    if dom is None:
        raise DnsRecordsError(f"domain {key} is not configured in {config.domains_path}")
    static = config.static
    host = names.domain_to_ascii(static.hostname)
    listeners = list(static.listeners.values())
    public = _public_ips([li for li in listeners if li.smtp is not None])
    postmaster = f"postmaster@{name}"
    out: list[DnsRecord] = [
        DnsRecord(
            name, "MX", f"{MX_PREFERENCE} {host}.", "mail for the domain goes to this host (RFC 5321 5.1)"
        )
    ]
    for ip in public:
        rtype = "AAAA" if ":" in ip else "A"
        out.append(DnsRecord(host, rtype, ip, "address of the mail host (public listener IP)"))
    ip_terms = "".join(f"ip{6 if ':' in ip else 4}:{ip} " for ip in public)
    out.append(
        DnsRecord(
            name,
            "TXT",
            f"v=spf1 {ip_terms}mx -all",
            "SPF: only this domain's MX hosts send its mail (RFC 7208)",
        )
    )
    if host != name:
        out.append(
            DnsRecord(
                host,
                "TXT",
                "v=spf1 a -all",
                "SPF for the host name, checked for the EHLO identity (RFC 7208 2.3)",
            )
        )
    out += _dkim_records(dom, name)
    dmarc = f"{dom.dmarc.localpart}@{name}" if dom.dmarc else postmaster
    out.append(
        DnsRecord(
            f"_dmarc.{name}",
            "TXT",
            f"v=DMARC1; p=reject; rua=mailto:{dmarc}",
            "DMARC policy; aggregate reports go to rua (RFC 7489 6.3)",
        )
    )
    if dom.mta_sts is not None:
        sts = dom.mta_sts
        out.append(
            DnsRecord(
                f"_mta-sts.{name}",
                "TXT",
                f"v=STSv1; id={sts.policy_id}",
                "MTA-STS: a policy exists; change id when the policy changes (RFC 8461 3.1)",
            )
        )
        out.append(
            DnsRecord(
                f"mta-sts.{name}",
                "CNAME",
                f"{host}.",
                "host name serving the MTA-STS policy over HTTPS (RFC 8461 3.3)",
            )
        )
        out.append(
            DnsRecord(
                f"mta-sts.{name}",
                POLICY_TYPE,
                mta_sts_policy_text(sts.mode, sts.mx, sts.max_age),
                f"MTA-STS policy served at https://mta-sts.{name}/.well-known/mta-sts.txt "
                "(RFC 8461 3.2)",
            )
        )
    tlsrpt = f"{dom.tlsrpt.localpart}@{name}" if dom.tlsrpt else postmaster
    out.append(
        DnsRecord(
            f"_smtp._tls.{name}",
            "TXT",
            f"v=TLSRPTv1; rua=mailto:{tlsrpt}",
            "TLS reports about mail delivered to this domain (RFC 8460 3)",
        )
    )
    if static.host_tlsrpt is not None:
        out.append(
            DnsRecord(
                f"_smtp._tls.{host}",
                "TXT",
                f"v=TLSRPTv1; rua=mailto:{static.host_tlsrpt.localpart}@{host}",
                "TLS reports about this mail host, e.g. DANE failures (RFC 8460 3)",
            )
        )
    cert = tlsa_cert_pem if tlsa_cert_pem is not None else _smtp_cert(config)
    if cert is not None:
        out.append(
            DnsRecord(
                f"_{SMTP_PORT}._tcp.{host}",
                "TLSA",
                f"{TLSA_USAGE_DANE_EE} {TLSA_SELECTOR_SPKI} {TLSA_MTYPE_SHA256} {tlsa_data(cert)}",
                "DANE: the SMTP server's public key (DANE-EE SPKI SHA-256, RFC 7671 5.1); "
                "keep the key when renewing the certificate; needs DNSSEC",
            )
        )
    # RFC 6186 3.1 / RFC 8314 5.1: SRV records let mail clients find submission and IMAP.
    for service, label, what in (
        ("submissions", "_submissions._tcp", "message submission over TLS"),
        ("imaps", "_imaps._tcp", "IMAP over TLS"),
    ):
        port = _service_port(config, service)
        if port is not None:
            out.append(
                DnsRecord(
                    f"{label}.{name}",
                    "SRV",
                    f"0 1 {port} {host}.",
                    f"client autoconfiguration: {what} (RFC 6186 3, RFC 8314 5.1)",
                )
            )
    out.append(
        DnsRecord(
            f"autoconfig.{name}",
            "CNAME",
            f"{host}.",
            "client autoconfiguration over HTTPS (Thunderbird autoconfig)",
        )
    )
    return out


def _txt_strings(value: str) -> str:
    """A TXT value as quoted character-strings of at most 255 octets (RFC 1035 3.3.14)."""
    data = value.encode("utf-8")
    parts: list[str] = []
    for start in range(0, max(len(data), 1), TXT_STRING_MAX):
        chunk = data[start : start + TXT_STRING_MAX]
        text = "".join(
            f"\\{b:03d}" if b < 0x20 or b > 0x7E else ("\\" + chr(b) if chr(b) in '"\\' else chr(b))
            for b in chunk
        )
        parts.append(f'"{text}"')
    return " ".join(parts)


def zone_text(records: Sequence[DnsRecord]) -> str:
    """The records as zone-file lines, each after a comment with its purpose.

    POLICY entries are not DNS records: they come out as comment lines.
    """
    lines: list[str] = []
    for record in records:
        lines.append(f"; {record.purpose}")
        if record.type == POLICY_TYPE:
            lines += [f";   {line}" for line in record.value.splitlines()]
            lines.append("")
            continue
        value = _txt_strings(record.value) if record.type == "TXT" else record.value
        lines.append(f"{record.name}. {ZONE_TTL} IN {record.type} {value}")
        lines.append("")
    return "\n".join(lines)


def run_dnsrecords(path: Path, domain: str, stdout: TextIO, stderr: TextIO) -> int:
    """`mailactors config dnsrecords DOMAIN`: print the records as a zone file."""
    try:
        config = load_config(path)
        records = records_for(config, domain)
    except ConfigErrors as exc:
        for err in exc.errors:
            print(err, file=stderr)
        return 1
    except DnsRecordsError as exc:
        print(f"dnsrecords: {exc}", file=stderr)
        return 1
    stdout.write(zone_text(records))
    return 0
