"""conf.dnsrecords: the records a domain publishes, checked against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest

from mailactors.conf import load_config
from mailactors.conf.dnsrecords import (
    POLICY_TYPE,
    DnsRecord,
    DnsRecordsError,
    mta_sts_policy_text,
    records_for,
    run_dnsrecords,
    tlsa_data,
    zone_text,
)

# RFC 8463 appendix A.1/A.2: the ed25519 test key and its key record's p= value.
RFC8463_KEY = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----
"""
RFC8463_P = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

# A self-signed certificate made with openssl; its SPKI SHA-256 computed with
# `openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum`.
CERT = b"""-----BEGIN CERTIFICATE-----
MIIBjDCCATOgAwIBAgIUBiaP8ga5qUpLKr86IOGz7lmuUX4wCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQbWFpbC5leGFtcGxlLmNvbTAgFw0yNjExMjQyMDM2MzhaGA8y
MTI2MTAzMTIwMzYzOFowGzEZMBcGA1UEAwwQbWFpbC5leGFtcGxlLmNvbTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABOfJqQAwYCeWT1gVZWUTAn3Jb9JNXTQar0hH
o9jKzkx9FMPnuXDPlNSwUjLZVkNDrYt0wOo3INcVzgnp7GD6GnOjUzBRMB0GA1Ud
DgQWBBQOsImPKnrU0KX1X4dbDwHHQ7QIUzAfBgNVHSMEGDAWgBQOsImPKnrU0KX1
X4dbDwHHQ7QIUzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIBgg
TUlIzPAHEIC2kKE/Od8eVrHY7M789pdxy0NcLV9uAiB5Qh8lNcV6c4MxfDBn0Q0f
5EYOmU7O59G6EZXiCZfzdw==
-----END CERTIFICATE-----
"""
CERT_SPKI_SHA256 = "f13e94bee41c2caea024769ace806abbccbf638897b937cf8d72b7bab279cda6"

STATIC = """\
hostname: mail.example.com
postmaster: {account: admin}
host_tlsrpt: {account: admin, localpart: tls-host}
tls:
  key_certs:
    main: {cert_file: cert.pem, key_file: key.pem}
listeners:
  public:
    ips: ["1.2.3.4", "2a01:4f8:1:2::3", "10.0.0.1"]
    tls: main
    smtp: {port: 25}
    submissions: {port: 465}
    imaps: {port: 993}
"""

DOMAINS = """\
domains:
  example.com:
    dkim:
      selectors:
        brisbane: {private_key_file: brisbane.pem}
    dmarc: {localpart: dmarc-reports, account: admin}
    tlsrpt: {localpart: tls-reports, account: admin}
    mta_sts: {policy_id: "20261124", mode: enforce, mx: [mail.example.com], max_age: 604800}
  other.example:
accounts:
  admin:
    domain: example.com
"""


def _config(tmp_path: Path, static: str = STATIC, domains: str = DOMAINS) -> Path:
    (tmp_path / "cert.pem").write_bytes(CERT)
    (tmp_path / "key.pem").write_text("not read for DNS records\n")
    (tmp_path / "brisbane.pem").write_bytes(RFC8463_KEY)
    (tmp_path / "mailactors.conf").write_text(static)
    (tmp_path / "domains.conf").write_text(domains)
    return tmp_path / "mailactors.conf"


def _by(records: list[DnsRecord], name: str, rtype: str) -> list[str]:
    return [r.value for r in records if r.name == name and r.type == rtype]


def test_records_match_hand_checked_values(tmp_path: Path) -> None:
    records = records_for(load_config(_config(tmp_path)), "example.com")
    assert _by(records, "example.com", "MX") == ["10 mail.example.com."]
    assert _by(records, "mail.example.com", "A") == ["1.2.3.4"]
    assert _by(records, "mail.example.com", "AAAA") == ["2a01:4f8:1:2::3"]
    # Private 10.0.0.1 is not published.
    assert _by(records, "example.com", "TXT") == ["v=spf1 ip4:1.2.3.4 ip6:2a01:4f8:1:2::3 mx -all"]
    assert _by(records, "mail.example.com", "TXT") == ["v=spf1 a -all"]
    assert _by(records, "brisbane._domainkey.example.com", "TXT") == [
        f"v=DKIM1; k=ed25519; p={RFC8463_P}"
    ]
    assert _by(records, "_dmarc.example.com", "TXT") == [
        "v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.com"
    ]
    assert _by(records, "_mta-sts.example.com", "TXT") == ["v=STSv1; id=20261124"]
    assert _by(records, "mta-sts.example.com", "CNAME") == ["mail.example.com."]
    assert _by(records, "mta-sts.example.com", POLICY_TYPE) == [
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n"
    ]
    assert _by(records, "_smtp._tls.example.com", "TXT") == [
        "v=TLSRPTv1; rua=mailto:tls-reports@example.com"
    ]
    assert _by(records, "_smtp._tls.mail.example.com", "TXT") == [
        "v=TLSRPTv1; rua=mailto:tls-host@mail.example.com"
    ]
    assert _by(records, "_25._tcp.mail.example.com", "TLSA") == [f"3 1 1 {CERT_SPKI_SHA256}"]
    assert _by(records, "_submissions._tcp.example.com", "SRV") == ["0 1 465 mail.example.com."]
    assert _by(records, "_imaps._tcp.example.com", "SRV") == ["0 1 993 mail.example.com."]
    assert _by(records, "autoconfig.example.com", "CNAME") == ["mail.example.com."]
    assert all(r.purpose and "\n" not in r.purpose for r in records)
    assert all(not r.name.endswith(".") for r in records)


def test_defaults_without_report_addresses_ips_or_certificate(tmp_path: Path) -> None:
    static = """\
hostname: mail.example.com
postmaster: {account: admin}
listeners:
  public:
    ips: ["0.0.0.0"]
    smtp: {port: 25}
"""
    records = records_for(load_config(_config(tmp_path, static=static)), "other.example")
    types = {(r.name, r.type) for r in records}
    assert _by(records, "other.example", "TXT") == ["v=spf1 mx -all"]
    assert _by(records, "_dmarc.other.example", "TXT") == [
        "v=DMARC1; p=reject; rua=mailto:postmaster@other.example"
    ]
    assert _by(records, "_smtp._tls.other.example", "TXT") == [
        "v=TLSRPTv1; rua=mailto:postmaster@other.example"
    ]
    assert ("mail.example.com", "A") not in types
    assert not any(r.type in ("TLSA", "SRV", POLICY_TYPE) for r in records)
    assert not any("_domainkey" in r.name or "mta-sts" in r.name for r in records)
    assert ("_smtp._tls.mail.example.com", "TXT") not in types


def test_tlsa_from_given_certificate_and_data(tmp_path: Path) -> None:
    assert tlsa_data(CERT) == CERT_SPKI_SHA256
    static = STATIC.replace("    tls: main\n", "")
    static = static.replace("    submissions: {port: 465}\n    imaps: {port: 993}\n", "")
    config = load_config(_config(tmp_path, static=static))
    assert not [r for r in records_for(config, "example.com") if r.type == "TLSA"]
    given = records_for(config, "example.com", tlsa_cert_pem=CERT)
    assert _by(given, "_25._tcp.mail.example.com", "TLSA") == [f"3 1 1 {CERT_SPKI_SHA256}"]
    with pytest.raises(DnsRecordsError):
        tlsa_data(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_unknown_domain_and_bad_key(tmp_path: Path) -> None:
    path = _config(tmp_path)
    config = load_config(path)
    with pytest.raises(DnsRecordsError, match="not configured"):
        records_for(config, "nowhere.example")
    (tmp_path / "brisbane.pem").write_text("garbage")
    with pytest.raises(DnsRecordsError, match="brisbane.pem"):
        records_for(config, "example.com")


def test_zone_text_parses_as_a_zone_with_split_txt(tmp_path: Path) -> None:
    records = records_for(load_config(_config(tmp_path)), "example.com")
    long_value = "v=DKIM1; k=rsa; p=" + "A" * 400
    records.append(DnsRecord("long._domainkey.example.com", "TXT", long_value, "long key"))
    records.append(DnsRecord("q.example.com", "TXT", 'say "hi" \\ there', "quoting"))
    text = zone_text(records)
    for record in records:
        assert f"; {record.purpose}" in text
    assert ";   mode: enforce" in text
    zone = dns.zone.from_text(text, origin="example.com.", relativize=False, check_origin=False)
    found: dict[tuple[str, str], list[str]] = {}
    for name, rdataset in zone.iterate_rdatasets():
        for rdata in rdataset:
            rtype = dns.rdatatype.to_text(rdataset.rdtype)
            if rtype == "TXT":
                assert all(len(s) <= 255 for s in rdata.strings)
                value = b"".join(rdata.strings).decode()
            else:
                value = rdata.to_text()
            found.setdefault((name.to_text().rstrip("."), rtype), []).append(value)
    expected: dict[tuple[str, str], list[str]] = {}
    for record in records:
        if record.type != POLICY_TYPE:
            expected.setdefault((record.name, record.type), []).append(record.value)
    assert {k: sorted(v) for k, v in found.items()} == {k: sorted(v) for k, v in expected.items()}
    long_rdata = zone.find_rdataset("long._domainkey.example.com.", "TXT")
    assert [len(s) for s in next(iter(long_rdata)).strings] == [255, len(long_value) - 255]


def test_policy_text() -> None:
    assert mta_sts_policy_text("testing", ["a.example", "*.b.example"], 86400) == (
        "version: STSv1\r\nmode: testing\r\nmx: a.example\r\nmx: *.b.example\r\nmax_age: 86400\r\n"
    )


def test_run_dnsrecords(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    path = _config(tmp_path)
    assert run_dnsrecords(path, "example.com", sys.stdout, sys.stderr) == 0
    out = capsys.readouterr().out
    assert "example.com. 300 IN MX 10 mail.example.com." in out
    assert run_dnsrecords(path, "unknown.example", sys.stdout, sys.stderr) == 1
    assert "not configured" in capsys.readouterr().err
    (tmp_path / "domains.conf").write_text("domains: [\n")
    assert run_dnsrecords(path, "example.com", sys.stdout, sys.stderr) == 1
    assert "domains.conf" in capsys.readouterr().err
