"""domains.conf per-domain DKIM selectors, report addresses and MTA-STS policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailactors.conf import check_config, load_config

STATIC = """\
hostname: mail.example.com
postmaster:
  account: admin
listeners:
  public:
    ips: [127.0.0.1]
    smtp: {port: 2525}
tls:
  ca_certs: [ca.pem]
"""

DOMAINS = """\
domains:
  example.com:
    dkim:
      selectors:
        2026a: {private_key_file: dkim/a.pem}
        2026B: {private_key_file: dkim/b.pem, expiration_hours: 72}
      sign: [2026b, 2026a]
    dmarc: {localpart: dmarc-reports, account: admin}
    tlsrpt: {localpart: tls-reports, account: admin, mailbox: Reports/TLS}
    mta_sts: {policy_id: "20261124", mode: enforce, mx: [mail.example.com, "*.example.com"]}
accounts:
  admin:
    domain: example.com
"""


def write(tmp_path: Path, domains: str = DOMAINS, static: str = STATIC) -> Path:
    (tmp_path / "dkim").mkdir(exist_ok=True)
    (tmp_path / "dkim" / "a.pem").write_text("key a\n")
    (tmp_path / "dkim" / "b.pem").write_text("key b\n")
    (tmp_path / "ca.pem").write_text("ca\n")
    path = tmp_path / "mailactors.conf"
    path.write_text(static, encoding="utf-8")
    (tmp_path / "domains.conf").write_text(domains, encoding="utf-8")
    return path


def test_domain_auth_settings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path))
    domain = config.domains.domains["example.com"]
    assert domain.dkim is not None
    assert domain.dkim.sign == ("2026b", "2026a")
    assert domain.dkim.selectors["2026a"].private_key_file == tmp_path / "dkim" / "a.pem"
    assert domain.dkim.selectors["2026b"].expiration_hours == 72
    assert domain.dmarc is not None and domain.dmarc.mailbox == "DMARC"
    assert domain.tlsrpt is not None and domain.tlsrpt.mailbox == "Reports/TLS"
    assert domain.mta_sts is not None
    assert domain.mta_sts.mx == ("mail.example.com", "*.example.com")
    assert domain.mta_sts.max_age == 86400
    assert config.static.tls_ca_certs == (tmp_path / "ca.pem",)
    # Report addresses are delivered to the configured account and mailbox.
    found = config.account_for_address("tls-reports@example.com")
    assert found is not None
    assert (found[0].name, found[1].mailbox) == ("admin", "Reports/TLS")
    found = config.account_for_address("dmarc-reports@example.com")
    assert found is not None and found[1].mailbox == "DMARC"


def test_sign_defaults_to_all_selectors(tmp_path: Path) -> None:
    text = DOMAINS.replace("      sign: [2026b, 2026a]\n", "")
    domain = load_config(write(tmp_path, text)).domains.domains["example.com"]
    assert domain.dkim is not None and set(domain.dkim.sign) == {"2026a", "2026b"}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "dkim/a.pem}",
            "dkim/missing.pem}",
            "domains.conf:5: domains.example.com.dkim.selectors.2026a.private_key_file: no such file",
        ),
        (
            "sign: [2026b, 2026a]",
            "sign: [2026b, nope]",
            "domains.conf:7: domains.example.com.dkim.sign[1]: unknown selector 'nope'",
        ),
        (
            "2026a: {private_key_file: dkim/a.pem}",
            "2026a: {private_key_file: dkim/a.pem}\n        bad_sel: {private_key_file: dkim/a.pem}",
            "domains.conf:6: domains.example.com.dkim.selectors.bad_sel: 'bad_sel' is not a valid DKIM selector",
        ),
        (
            "account: admin}",
            "account: nobody}",
            "domains.conf:8: domains.example.com.dmarc: account 'nobody' is not configured",
        ),
        (
            "mode: enforce",
            "mode: strict",
            "domains.conf:10: domains.example.com.mta_sts.mode: mode must be enforce, testing or none",
        ),
        (
            'policy_id: "20261124"',
            'policy_id: "a-b"',
            "domains.conf:10: domains.example.com.mta_sts.policy_id: policy_id must be 1 to 32 letters and digits (RFC 8461 3.1)",
        ),
        (
            ', mx: [mail.example.com, "*.example.com"]',
            "",
            "domains.conf:10: domains.example.com.mta_sts: mx is required unless mode is none (RFC 8461 3.2)",
        ),
        (
            "localpart: tls-reports",
            "localpart: dmarc-reports",
            "domains.conf:9: domains.example.com.tlsrpt: address dmarc-reports@example.com is already used by domains.example.com.dmarc at line 8",
        ),
        (
            "    dmarc: {",
            "    dmarcx: {",
            "domains.conf:8: domains.example.com.dmarcx: unknown key",
        ),
    ],
)
def test_domain_auth_errors(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in DOMAINS
    errors = [
        str(e).replace(str(tmp_path) + "/", "")
        for e in check_config(write(tmp_path, DOMAINS.replace(old, new)))
    ]
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors


def test_ca_cert_missing(tmp_path: Path) -> None:
    path = write(tmp_path, DOMAINS, STATIC.replace("ca.pem", "nope.pem"))
    errors = [str(e) for e in check_config(path)]
    assert len(errors) == 1 and "tls.ca_certs[0]" in errors[0] and "nope.pem" in errors[0], errors


def test_host_tlsrpt_address_is_delivered(tmp_path: Path) -> None:
    static = STATIC + "host_tlsrpt: {account: admin, localpart: tls-reports-host}\n"
    config = load_config(write(tmp_path, DOMAINS, static))
    found = config.account_for_address("tls-reports-host@MAIL.example.com")
    assert found is not None
    assert (found[0].name, found[1].mailbox) == ("admin", "TLSRPT")
    assert config.host_tlsrpt_destination("tls-reports-host@example.com") is None
    assert config.host_tlsrpt_destination("other@mail.example.com") is None
