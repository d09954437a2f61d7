"""dnscheck against a real DNS server on 127.0.0.1 (DnsTestServer): ok, missing, wrong, error."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.dnsserver import DnsTestServer  # type: ignore[import-not-found]

from mailactors.actors.dnscheck import (
    DnsSrvLookup,
    RecordCheck,
    check_domain,
    check_record,
    run_dnscheck,
)
from mailactors.actors.quickstart import quickstart
from mailactors.cli import main
from mailactors.conf import Config, load_config
from mailactors.conf.dnsrecords import DnsRecord, records_for, zone_text
from mailactors.net.resolver import DnsResolver
from mailactors.protocol.dkim import dns_txt_record, generate_private_key, load_private_key
from mailactors.protocol.dns import InMemoryResolver


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    directory = tmp_path_factory.mktemp("qs")
    result = quickstart("you@example.com", directory=directory, ips=["127.0.0.1"])
    return load_config(result.config_path)


@pytest.fixture
def published(config: Config) -> Iterator[DnsTestServer]:
    """A DNS server publishing exactly what `mailactors config dnsrecords` prints."""
    text = zone_text(records_for(config, "example.com"))
    with DnsTestServer(text, authenticated={"mail.example.com"}) as server:
        yield server


def _check(config: Config, server: DnsTestServer) -> dict[tuple[str, str], RecordCheck]:
    checks = check_domain(
        config,
        "example.com",
        DnsResolver([server.nameserver], timeout=2, lifetime=4),
        srv=DnsSrvLookup([server.nameserver], lifetime=4),
    )
    return {(c.record.name, c.record.type): c for c in checks}


def test_published_zone_checks_ok(config: Config, published: DnsTestServer) -> None:
    checks = _check(config, published)
    assert len(checks) >= 14
    bad = {k: (c.status, c.detail, c.found) for k, c in checks.items() if c.status != "ok"}
    assert bad == {}
    assert all(c.found for c in checks.values())
    assert checks[("_25._tcp.mail.example.com", "TLSA")].detail == ""
    published.authenticated.clear()
    tlsa = _check(config, published)[("_25._tcp.mail.example.com", "TLSA")]
    assert tlsa.status == "ok" and "DNSSEC" in tlsa.detail


def test_nothing_published_is_missing(config: Config) -> None:
    with DnsTestServer() as server:
        checks = _check(config, server)
    assert {c.status for c in checks.values()} == {"missing"}
    assert all(c.found == () and c.detail for c in checks.values())
    assert checks[("_25._tcp.mail.example.com", "TLSA")].detail == "no TLSA record"


Replacements = dict[tuple[str, str], tuple[str, ...]]


def _zone(config: Config, replace: Replacements) -> str:
    """The published zone with some (name, type) record sets replaced (empty: removed)."""
    records = [r for r in records_for(config, "example.com") if (r.name, r.type) not in replace]
    for (name, rtype), values in replace.items():
        records += [DnsRecord(name, rtype, value, "replaced") for value in values]
    return zone_text(records)


def _check_with(config: Config, replace: Replacements) -> dict[tuple[str, str], RecordCheck]:
    with DnsTestServer(_zone(config, replace)) as server:
        return _check(config, server)


def test_wrong_records_say_what_is_wrong(config: Config) -> None:
    other_key = load_private_key(generate_private_key("ed25519"))
    checks = _check_with(
        config,
        {
            ("example.com", "MX"): ("10 other.example.",),
            ("_dmarc.example.com", "TXT"): ("v=DMARC1; p=none; rua=mailto:x@elsewhere.example",),
            ("_mta-sts.example.com", "TXT"): ("v=STSv1; id=old1",),
            ("_smtp._tls.example.com", "TXT"): ("v=TLSRPTv1; rua=mailto:a@example.com",),
            ("2026a._domainkey.example.com", "TXT"): (dns_txt_record(other_key),),
            ("_25._tcp.mail.example.com", "TLSA"): ("3 1 1 " + "ab" * 32,),
            ("_imaps._tcp.example.com", "SRV"): ("0 1 1993 mail.example.com.",),
            ("autoconfig.example.com", "CNAME"): ("elsewhere.example.",),
        },
    )

    mx = checks[("example.com", "MX")]
    assert (mx.status, mx.found) == ("wrong", ("10 other.example.",))
    assert "10 mail.example.com." in mx.detail
    dmarc = checks[("_dmarc.example.com", "TXT")]
    assert dmarc.status == "wrong" and "p='none'" in dmarc.detail and "rua=" in dmarc.detail
    assert "id='old1'" in checks[("_mta-sts.example.com", "TXT")].detail
    assert checks[("_smtp._tls.example.com", "TXT")].status == "wrong"
    dkim = checks[("2026a._domainkey.example.com", "TXT")]
    assert dkim.status == "wrong" and "another key" in dkim.detail
    assert checks[("2026b._domainkey.example.com", "TXT")].status == "ok"
    assert checks[("_25._tcp.mail.example.com", "TLSA")].status == "wrong"
    srv = checks[("_imaps._tcp.example.com", "SRV")]
    assert (srv.status, srv.found) == ("wrong", ("0 1 1993 mail.example.com.",))
    assert checks[("autoconfig.example.com", "CNAME")].status == "wrong"
    # The untouched records stay ok.
    assert checks[("_smtp._tls.mail.example.com", "TXT")].status == "ok"
    assert checks[("_submissions._tcp.example.com", "SRV")].status == "ok"


def test_spf_comparison(config: Config) -> None:
    key = ("example.com", "TXT")
    spf = _check_with(config, {key: ("v=spf1 include:_spf.example.net -all",)})[key]
    assert spf.status == "wrong" and "missing terms: mx" in spf.detail
    assert "include:_spf.example.net" in spf.detail
    assert "order" in _check_with(config, {key: ("v=spf1 -all mx",)})[key].detail
    two = _check_with(config, {key: ("v=spf1 mx -all", "v=spf1 -all")})[key]
    assert two.status == "wrong" and "more than one" in two.detail
    other = ("V=SPF1  MX  -ALL", "google-site-verification=x")
    assert _check_with(config, {key: other})[key].status == "ok"


def test_tag_records_compare_tags_not_text(config: Config) -> None:
    dmarc, tlsrpt = ("_dmarc.example.com", "TXT"), ("_smtp._tls.example.com", "TXT")
    checks = _check_with(
        config,
        {
            dmarc: ("v=DMARC1;p=REJECT; pct=100; rua=mailto:DMARC-Reports@example.com!10m",),
            tlsrpt: ("v=TLSRPTv1;rua=mailto:tls-reports@example.com",),
        },
    )
    assert checks[dmarc].status == "ok"
    assert checks[tlsrpt].status == "ok"
    two = _check_with(config, {dmarc: ("v=DMARC1; p=reject", "v=DMARC1; p=none")})[dmarc]
    assert two.status == "wrong" and "more than one" in two.detail
    assert _check_with(config, {dmarc: ("v=spf1 -all",)})[dmarc].status == "missing"


def test_cname_or_same_addresses(config: Config) -> None:
    key = ("autoconfig.example.com", "CNAME")
    same = {key: (), ("autoconfig.example.com", "A"): ("192.0.2.7",)}
    same[("mail.example.com", "A")] = ("192.0.2.7",)
    check = _check_with(config, same)[key]
    assert check.status == "ok" and "same addresses" in check.detail
    same[("mail.example.com", "A")] = ("192.0.2.8",)
    assert _check_with(config, same)[key].status == "wrong"


def test_lookup_failures_are_errors(config: Config, published: DnsTestServer) -> None:
    published.servfail.add("_dmarc.example.com")
    check = _check(config, published)[("_dmarc.example.com", "TXT")]
    assert check.status == "error" and "lookup failed" in check.detail
    record = DnsRecord("_imaps._tcp.example.com", "SRV", "0 1 993 mail.example.com.", "x")
    resolver = DnsResolver([published.nameserver], timeout=2, lifetime=4)
    assert check_record(record, resolver).status == "error"


def _with_nameserver(config: Config, server: DnsTestServer) -> Path:
    path = config.path
    text = path.read_text()
    path.write_text(text.replace("nameservers: []", f'nameservers: ["{server.nameserver}"]'))
    return path


def test_run_dnscheck_exit_codes(config: Config, published: DnsTestServer) -> None:
    original = config.path.read_text()
    try:
        path = _with_nameserver(config, published)
        out, err = io.StringIO(), io.StringIO()
        assert run_dnscheck(path, "example.com", out, err) == 0, out.getvalue() + err.getvalue()
        assert "OK      example.com MX" in out.getvalue()
        published.remove("_dmarc.example.com")
        out = io.StringIO()
        assert run_dnscheck(path, "example.com", out, err) == 1
        text = out.getvalue()
        assert "MISSING _dmarc.example.com TXT" in text
        assert "expected: v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.com" in text
        assert run_dnscheck(path, "unknown.example", out, err) == 1
        assert "not configured" in err.getvalue()
        assert main(["-config", str(path), "config", "dnscheck", "example.com"]) == 1
    finally:
        config.path.write_text(original)


_TXT_KINDS = [
    DnsRecord("example.com", "TXT", "v=spf1 mx -all", "spf"),
    DnsRecord("s._domainkey.example.com", "TXT", "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "dkim"),
    DnsRecord("_dmarc.example.com", "TXT", "v=DMARC1; p=reject; rua=mailto:d@example.com", "dmarc"),
    DnsRecord("_mta-sts.example.com", "TXT", "v=STSv1; id=1", "sts"),
    DnsRecord("_smtp._tls.example.com", "TXT", "v=TLSRPTv1; rua=mailto:t@example.com", "tlsrpt"),
]


@given(
    kind=st.sampled_from(_TXT_KINDS),
    found=st.lists(
        st.one_of(
            st.text(max_size=60),
            st.sampled_from(["v=spf1", "v=DKIM1; p=", "v=DMARC1", "v=STSv1;", "v=TLSRPTv1; rua="]).flatmap(
                lambda prefix: st.text(max_size=40).map(lambda rest: prefix + rest)
            ),
        ),
        max_size=4,
    ),
)
def test_txt_comparison_never_crashes(kind: DnsRecord, found: list[str]) -> None:
    resolver = InMemoryResolver({(kind.name, "TXT"): found})
    check = check_record(kind, resolver)
    assert check.status in ("ok", "missing", "wrong")
    assert check.found == tuple(found)
    if check.status != "ok":
        assert check.detail
    if kind.value in found and len(found) == 1:
        assert check.status == "ok"
