"""`mailactors config dnscheck DOMAIN`: look up each record the domain should publish.

Each expected record of conf.dnsrecords is looked up and compared by what
matters for its kind: MX/A/AAAA/CNAME/SRV/TLSA by value; SPF by its terms;
DKIM by the p= key; DMARC by p= and rua=; MTA-STS by id=; TLSRPT by rua=.
The MTA-STS policy file itself is served over HTTPS and not checked here.

The Resolver interface has no SRV lookup; `check_domain` takes an optional
`srv` lookup and `DnsSrvLookup` provides one over dnspython.
"""

from __future__ import annotations

import binascii
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from mailactors.conf import Config, ConfigErrors, load_config
from mailactors.conf.dnsrecords import POLICY_TYPE, DnsRecord, DnsRecordsError, records_for
from mailactors.net.resolver import DnsResolver
from mailactors.protocol.dkim.keys import KeyRecordError, parse_key_record
from mailactors.protocol.dns import (
    Answer,
    DnsError,
    DnsPermanentError,
    DnsTemporaryError,
    Resolver,
    normalize_name,
    parse_nameserver,
)

__all__ = [
    "CheckStatus",
    "DnsSrvLookup",
    "RecordCheck",
    "SrvLookup",
    "SrvRecord",
    "check_domain",
    "check_record",
    "run_dnscheck",
]

CheckStatus = Literal["ok", "missing", "wrong", "error"]


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """RFC 2782: priority, weight, port, target (absolute, no trailing dot)."""

    priority: int
    weight: int
    port: int
    target: str


SrvLookup = Callable[[str], Answer[SrvRecord]]


@dataclass(frozen=True, slots=True)
class RecordCheck:
    """The outcome for one expected record: what was found and what is wrong."""

    record: DnsRecord
    status: CheckStatus
    found: tuple[str, ...]
    detail: str


class DnsSrvLookup:
    """SRV lookups over dnspython through `nameservers` (None: the system's)."""

    def __init__(self, nameservers: Sequence[str] | None = None, *, lifetime: float = 10.0) -> None:
        if nameservers:
            resolver = dns.resolver.Resolver(configure=False)
            servers: list[str | dns.nameserver.Nameserver] = []
            for spec in nameservers:
                address, port = parse_nameserver(spec)
                servers.append(dns.nameserver.Do53Nameserver(address, port))
            resolver.nameservers = servers
        else:
            try:
                resolver = dns.resolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration:
                resolver = dns.resolver.Resolver(configure=False)
        resolver.lifetime = lifetime
        resolver.cache = None
        self._resolver = resolver

    def __call__(self, name: str) -> Answer[SrvRecord]:
        name = normalize_name(name)
        try:
            qname = dns.name.from_text(name)
        except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
            raise DnsPermanentError(name, "SRV", f"invalid name: {exc}") from None
        try:
            answer = self._resolver.resolve(qname, "SRV", search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return Answer((), nxdomain=True)
        except dns.exception.DNSException as exc:
            raise DnsTemporaryError(name, "SRV", f"{type(exc).__name__}: {exc}") from None
        records: list[SrvRecord] = []
        for rdata in answer.rrset or ():
            target: dns.name.Name = rdata.target
            records.append(
                SrvRecord(rdata.priority, rdata.weight, rdata.port, normalize_name(target.to_text()))
            )
        return Answer(tuple(records))


def _tags(text: str) -> dict[str, str]:
    """A "k=v; k=v" record (DMARC RFC 7489 6.4, MTA-STS RFC 8461 3.1, TLSRPT RFC 8460 3)
    as a dict with lower-case names; later duplicates are ignored."""
    out: dict[str, str] = {}
    for part in text.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            out.setdefault(key.strip().lower(), value.strip())
    return out


def _mailto_set(value: str) -> set[str]:
    """The addresses of a rua= list of mailto: URIs, lower case, size limits ("!10m") dropped."""
    out: set[str] = set()
    for uri in value.split(","):
        uri = uri.strip()
        if uri.lower().startswith("mailto:"):
            uri = uri[len("mailto:") :]
        out.add(uri.split("!", 1)[0].lower())
    return out


def _versioned(found: Sequence[str], version: str) -> list[str]:
    """The TXT records whose first tag is the version tag, e.g. "v=DMARC1"."""
    out = []
    for text in found:
        first = text.split(";", 1)[0].replace(" ", "").replace("\t", "")
        if first.lower() == version.lower():
            out.append(text)
    return out


def _check_spf(expected: str, found: Sequence[str]) -> tuple[CheckStatus, str]:
    records = [t for t in found if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]
    if not records:
        return "missing", "no SPF record (v=spf1)"
    if len(records) > 1:
        # RFC 7208 4.5: more than one record is a permerror.
        return "wrong", "more than one SPF record: check_host() gives permerror (RFC 7208 4.5)"
    want = expected.lower().split()
    have = records[0].lower().split()
    if want == have:
        return "ok", ""
    missing = [t for t in want if t not in have]
    extra = [t for t in have if t not in want]
    parts = []
    if missing:
        parts.append("missing terms: " + " ".join(missing))
    if extra:
        parts.append("other terms: " + " ".join(extra))
    return "wrong", "; ".join(parts) or "terms in another order"


def _check_dkim(expected: str, found: Sequence[str]) -> tuple[CheckStatus, str]:
    want = parse_key_record(expected)
    problems: list[str] = []
    for text in found:
        try:
            have = parse_key_record(text)
        except KeyRecordError as exc:
            problems.append(str(exc))
            continue
        if have.key_data == want.key_data and have.key_type == want.key_type:
            return "ok", ""
        if have.revoked:
            problems.append("the published key is revoked (empty p=)")
        else:
            problems.append("p= holds another key")
    if not found:
        return "missing", "no DKIM key record"
    return "wrong", "; ".join(problems)


def _check_tagged(
    expected: str, found: Sequence[str], version: str, keys: Sequence[str]
) -> tuple[CheckStatus, str]:
    records = _versioned(found, version)
    if not records:
        return "missing", f"no {version} record"
    if len(records) > 1:
        return "wrong", f"more than one {version} record: receivers ignore them all"
    want, have = _tags(expected), _tags(records[0])
    problems: list[str] = []
    for key in keys:
        if key == "rua":
            if _mailto_set(want.get(key, "")) != _mailto_set(have.get(key, "")):
                problems.append(f"rua={have.get(key, '')!r}, expected {want[key]!r}")
        elif want.get(key, "").lower() != have.get(key, "").lower():
            problems.append(f"{key}={have.get(key, '')!r}, expected {want.get(key, '')!r}")
    if problems:
        return "wrong", "; ".join(problems)
    return "ok", ""


def _check_txt(record: DnsRecord, found: Sequence[str]) -> tuple[CheckStatus, str]:
    value = record.value
    lower = value.lower()
    if lower.startswith("v=spf1"):
        return _check_spf(value, found)
    if lower.startswith("v=dkim1"):
        return _check_dkim(value, found)
    if lower.startswith("v=dmarc1"):
        return _check_tagged(value, found, "v=DMARC1", ("p", "rua"))
    if lower.startswith("v=stsv1"):
        return _check_tagged(value, found, "v=STSv1", ("id",))
    if lower.startswith("v=tlsrptv1"):
        return _check_tagged(value, found, "v=TLSRPTv1", ("rua",))
    if value in found:
        return "ok", ""
    return ("wrong" if found else "missing"), ""


def _host(value: str) -> str:
    return normalize_name(value)


def _by_value(
    found: Sequence[str], expected: str, what: str
) -> tuple[CheckStatus, str]:
    if expected in found:
        return "ok", ""
    if not found:
        return "missing", f"no {what}"
    return "wrong", f"expected {expected}"


def _check_cname(
    record: DnsRecord, resolver: Resolver
) -> tuple[CheckStatus, tuple[str, ...], str]:
    target = _host(record.value)
    got = resolver.cname(record.name)
    found = tuple(f"{t}." for t in got.records)
    if got.records:
        if target in got.records:
            return "ok", found, ""
        return "wrong", found, f"CNAME points elsewhere; expected {record.value}"
    # Addresses equal to the host's do as well as the CNAME.
    mine = {str(a) for a in resolver.a(record.name).records}
    mine |= {str(a) for a in resolver.aaaa(record.name).records}
    if not mine:
        return "missing", (), "no CNAME and no address records"
    host = {str(a) for a in resolver.a(target).records}
    host |= {str(a) for a in resolver.aaaa(target).records}
    found = tuple(sorted(mine))
    if mine == host:
        return "ok", found, f"no CNAME, but the same addresses as {target}"
    return "wrong", found, f"addresses differ from those of {target}; publish a CNAME to {record.value}"


def check_record(
    record: DnsRecord, resolver: Resolver, srv: SrvLookup | None = None
) -> RecordCheck:
    """Look up one expected record and say whether it is published as expected."""
    found: tuple[str, ...] = ()
    try:
        rtype = record.type
        if rtype == "TXT":
            found = resolver.txt(record.name).records
            status, detail = _check_txt(record, found)
        elif rtype == "MX":
            pref, _, host = record.value.partition(" ")
            got = resolver.mx(record.name).records
            found = tuple(f"{mx.preference} {mx.host}." for mx in got)
            if any(mx.host == _host(host) for mx in got):
                status, detail = "ok", ""
            else:
                status, detail = _by_value(found, record.value, "MX record")
        elif rtype in ("A", "AAAA"):
            answer = resolver.a(record.name) if rtype == "A" else resolver.aaaa(record.name)
            found = tuple(str(a) for a in answer.records)
            expected = str(ipaddress.ip_address(record.value))
            status, detail = _by_value(found, expected, f"{rtype} record")
        elif rtype == "CNAME":
            status, found, detail = _check_cname(record, resolver)
        elif rtype == "TLSA":
            answer_t = resolver.tlsa(record.name)
            found = tuple(
                f"{t.usage} {t.selector} {t.mtype} {t.data.hex()}" for t in answer_t.records
            )
            status, detail = _by_value(found, record.value.lower(), "TLSA record")
            if status == "ok" and not answer_t.authenticated:
                detail = "not DNSSEC-validated: senders use TLSA only from signed zones (RFC 7672 2.2)"
        elif rtype == "SRV":
            if srv is None:
                return RecordCheck(record, "error", (), "no SRV lookup available")
            answer_s = srv(record.name)
            found = tuple(
                f"{s.priority} {s.weight} {s.port} {s.target}." for s in answer_s.records
            )
            status, detail = _by_value(found, record.value, "SRV record")
        else:
            raise ValueError(f"cannot check record type {record.type}")
    except DnsError as exc:
        return RecordCheck(record, "error", found, f"lookup failed: {exc.reason}")
    except KeyRecordError as exc:
        return RecordCheck(record, "error", found, f"expected record does not parse: {exc}")
    except (binascii.Error, ValueError) as exc:
        return RecordCheck(record, "error", found, str(exc))
    if status != "ok" and not detail:
        detail = f"expected {record.value}"
    return RecordCheck(record, status, found, detail)


def check_domain(
    config: Config,
    domain: str,
    resolver: Resolver,
    *,
    srv: SrvLookup | None = None,
    tlsa_cert_pem: bytes | None = None,
) -> list[RecordCheck]:
    """Check every record `domain` should publish (conf.dnsrecords.records_for).

    Raises DnsRecordsError when the expected records cannot be derived.
    """
    records = records_for(config, domain, tlsa_cert_pem=tlsa_cert_pem)
    return [check_record(r, resolver, srv) for r in records if r.type != POLICY_TYPE]


def _show(check: RecordCheck) -> str:
    record = check.record
    lines = [f"{check.status.upper():7} {record.name} {record.type}  ({record.purpose})"]
    if check.status != "ok":
        lines.append(f"        expected: {record.value}")
        for value in check.found:
            lines.append(f"        found:    {value}")
    if check.detail:
        lines.append(f"        {check.detail}")
    return "\n".join(lines)


def run_dnscheck(path: Path, domain: str, stdout: TextIO, stderr: TextIO) -> int:
    """`mailactors config dnscheck DOMAIN`: 0 when every record is ok, else 1."""
    try:
        config = load_config(path)
    except ConfigErrors as exc:
        for err in exc.errors:
            print(err, file=stderr)
        return 1
    servers = config.static.dns.nameservers or None
    try:
        checks = check_domain(config, domain, DnsResolver(servers), srv=DnsSrvLookup(servers))
    except DnsRecordsError as exc:
        print(f"dnscheck: {exc}", file=stderr)
        return 1
    for check in checks:
        print(_show(check), file=stdout)
    bad = sum(1 for c in checks if c.status != "ok")
    print(f"{len(checks) - bad} of {len(checks)} records ok", file=stdout)
    return 1 if bad else 0

