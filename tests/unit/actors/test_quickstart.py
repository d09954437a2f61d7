"""actors.quickstart: the files it writes load, hold what the issue asks, and nothing is overwritten."""

from __future__ import annotations

import io
import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailactors.actors.quickstart import (
    QuickstartError,
    generate_password,
    quickstart,
    run_quickstart,
)
from mailactors.conf import check_config, load_config
from mailactors.protocol.dkim import load_private_key
from mailactors.protocol.sasl.scram import ScramCredentials, verify_password
from mailactors.storage.account import AccountStore

NOW = datetime(2026, 11, 24, 12, 30, 5, tzinfo=UTC)


def _stored(data_dir: Path, account: str) -> ScramCredentials:
    store = AccountStore(data_dir / "accounts" / account, logging.getLogger("test"), readonly=True)
    store.init()
    try:
        creds = store.password_credentials()
    finally:
        store.close()
    assert creds is not None
    return ScramCredentials(*creds)


def test_quickstart_writes_a_valid_commented_configuration(tmp_path: Path) -> None:
    result = quickstart("you@Example.COM", directory=tmp_path, now=NOW)
    assert check_config(tmp_path / "mailactors.conf") == []
    config = load_config(tmp_path / "mailactors.conf")
    static = config.static
    assert static.hostname == "mail.example.com"
    assert static.data_dir == tmp_path.resolve() / "data"
    assert static.postmaster.account == "you"
    assert static.host_tlsrpt is not None
    assert (static.host_tlsrpt.account, static.host_tlsrpt.localpart) == ("you", "tls-reports")
    assert static.dns.nameservers == ()
    public, admin = static.listeners["public"], static.listeners["admin"]
    assert public.ips == ("0.0.0.0", "::")
    assert public.tls is not None and public.tls in static.tls_key_certs
    assert (public.smtp, public.submission, public.submissions) != (None, None, None)
    assert public.smtp is not None and public.smtp.port == 25
    assert public.imaps is not None and public.imaps.port == 993
    assert public.http is None  # the admin pages are not public
    assert admin.ips == ("127.0.0.1",) and admin.http is not None

    domain = config.domains.domains["example.com"]
    assert domain.dkim is not None
    algorithms = {
        load_private_key(sel.private_key_file.read_bytes()).algorithm
        for sel in domain.dkim.selectors.values()
    }
    assert algorithms == {"ed25519", "rsa"}
    assert set(domain.dkim.sign) == set(domain.dkim.selectors) == {"2026a", "2026b"}
    rsa_key = load_private_key(domain.dkim.selectors["2026b"].private_key_file.read_bytes())
    assert rsa_key.private_key.key_size == 2048  # type: ignore[union-attr]
    assert domain.dmarc is not None and domain.dmarc.account == "you"
    assert domain.dmarc.mailbox.startswith("Reports/")
    assert domain.tlsrpt is not None and domain.tlsrpt.mailbox.startswith("Reports/")
    assert domain.mta_sts is not None
    assert (domain.mta_sts.mode, domain.mta_sts.mx) == ("testing", ("mail.example.com",))
    assert domain.mta_sts.policy_id == "20261124123005"
    account, dest = config.domains.account_for_address("you@example.com") or (None, None)
    assert account is not None and account.name == "you" and dest is not None
    assert config.domains.account_for_address("dmarc-reports@example.com") is not None

    # Every setting line is explained by a comment, as localserve's files are.
    for name in ("mailactors.conf", "domains.conf"):
        lines = (tmp_path / name).read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() and not line.lstrip().startswith("#"):
                assert lines[i - 1].lstrip().startswith("#"), f"{name}:{i + 1} uncommented"

    assert result.account == "you" and result.address == "you@example.com"
    types = {r.type for r in result.records}
    assert {"MX", "TXT", "CNAME", "TLSA", "SRV", "POLICY"} <= types
    names = {r.name for r in result.records}
    assert {
        "2026a._domainkey.example.com",
        "2026b._domainkey.example.com",
        "_dmarc.example.com",
        "_mta-sts.example.com",
        "_smtp._tls.example.com",
        "_smtp._tls.mail.example.com",
        "_25._tcp.mail.example.com",
        "_submissions._tcp.example.com",
        "_imaps._tcp.example.com",
    } <= names
    assert all(p.exists() for p in result.files)


def test_password_is_stored_hashed_only(tmp_path: Path) -> None:
    result = quickstart("you@example.com", directory=tmp_path, now=NOW)
    assert len(result.password) >= 16
    creds = _stored(tmp_path / "data", "you")
    assert verify_password(creds, result.password)
    assert not verify_password(creds, result.password + "x")
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert result.password.encode() not in path.read_bytes()
    for path in tmp_path.glob("*.conf"):
        assert result.password not in path.read_text()
    assert generate_password() != generate_password()


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX")
def test_private_keys_are_private(tmp_path: Path) -> None:
    result = quickstart("you@example.com", directory=tmp_path, now=NOW)
    keys = [p for p in result.files if p.suffix == ".pem" and "cert" not in p.name]
    assert len(keys) == 3
    for path in keys:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    quickstart("you@example.com", directory=tmp_path, now=NOW)
    before = (tmp_path / "domains.conf").read_bytes()
    with pytest.raises(QuickstartError, match="refusing to overwrite"):
        quickstart("other@example.org", directory=tmp_path, now=NOW)
    assert (tmp_path / "domains.conf").read_bytes() == before
    # A single existing file is enough to refuse, and nothing is written then.
    other = tmp_path / "other"
    other.mkdir()
    (other / "domains.conf").write_text("# mine\n")
    with pytest.raises(QuickstartError, match="domains.conf"):
        quickstart("you@example.com", directory=other, now=NOW)
    assert sorted(p.name for p in other.iterdir()) == ["domains.conf"]


@pytest.mark.parametrize(
    "address",
    ["no-at-sign", "@example.com", "you@", "you@localhost", "you@exa mple.com", "dmarc-reports@example.com"],
)
def test_bad_addresses(tmp_path: Path, address: str) -> None:
    with pytest.raises(QuickstartError):
        quickstart(address, directory=tmp_path, now=NOW)
    assert not (tmp_path / "mailactors.conf").exists()


def test_hostname_ips_and_account_name(tmp_path: Path) -> None:
    result = quickstart(
        "first.last+x@example.org",
        directory=tmp_path,
        hostname="MX1.Example.org",
        ips=["192.0.2.1"],
        now=NOW,
    )
    config = load_config(result.config_path)
    assert config.static.hostname == "mx1.example.org"
    assert config.static.listeners["public"].ips == ("192.0.2.1",)
    assert result.account == "admin"  # "first.last+x" is no valid account name
    assert config.domains.account_for_address("first.last+x@example.org") is not None
    with pytest.raises(QuickstartError):
        quickstart("a@example.net", directory=tmp_path / "x", ips=["not-an-ip"], now=NOW)


def test_run_quickstart_prints_password_and_records(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_quickstart("you@example.com", tmp_path, None, out, err) == 0
    text = out.getvalue()
    creds = _stored(tmp_path / "data", "you")
    printed = [line.strip() for line in text.splitlines() if line.startswith("    ")]
    assert any(verify_password(creds, p) for p in printed)
    assert "SELF-SIGNED" in text and '"testing"' in text
    assert "example.com. 300 IN MX 10 mail.example.com." in text
    assert "_smtp._tls.mail.example.com. 300 IN TXT" in text
    assert err.getvalue() == ""
    assert run_quickstart("you@example.com", tmp_path, None, out, err) == 1
    assert "refusing to overwrite" in err.getvalue()


def test_unicode_domain_records_are_a_labels(tmp_path: Path) -> None:
    result = quickstart("jö@exämple.com", directory=tmp_path, now=NOW)
    assert check_config(result.config_path) == []
    assert all(r.name.isascii() and r.value.isascii() for r in result.records)
    assert "2026a._domainkey.xn--exmple-cua.com" in {r.name for r in result.records}
    config = load_config(result.config_path)
    mta_sts = config.domains.domains["exämple.com"].mta_sts
    assert mta_sts is not None and mta_sts.mx == ("mail.xn--exmple-cua.com",)
