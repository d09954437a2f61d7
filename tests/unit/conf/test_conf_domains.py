"""domains.conf: domains, accounts, destinations, their errors, and address lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailactors.conf import Account, Config, Destination, Domain, check_config, load_config

STATIC = """\
hostname: mail.example.com
postmaster:
  account: alice
listeners:
  public:
    ips: [127.0.0.1]
    smtp: {port: 2525}
"""

DOMAINS = """\
domains:
  example.com:
    description: Our domain
    localpart_catchall_separator: "+"
  Example.ORG: {}
  xn--bcher-kva.example:
accounts:
  alice:
    domain: example.com
    full_name: Alice Liddell
    destinations:
      alice@example.com: {}
      Postmaster@EXAMPLE.org:
        mailbox: Postmaster
      info@bücher.example: {mailbox: inbox}
  bob:
    domain: example.org
"""


def write(tmp_path: Path, domains: str = DOMAINS, static: str = STATIC) -> Path:
    path = tmp_path / "mailactors.conf"
    path.write_text(static, encoding="utf-8")
    (tmp_path / "domains.conf").write_text(domains, encoding="utf-8")
    return path


def errors_of(tmp_path: Path, domains: str) -> list[str]:
    return [str(e).replace(str(tmp_path), "D") for e in check_config(write(tmp_path, domains))]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write(tmp_path))


def test_domains_and_accounts(config: Config) -> None:
    domains = config.domains
    assert domains.domains == {
        "example.com": Domain("example.com", "Our domain", "+"),
        "example.org": Domain("example.org"),
        "bücher.example": Domain("bücher.example"),
    }
    alice = domains.accounts["alice"]
    assert alice == Account(
        name="alice",
        domain="example.com",
        full_name="Alice Liddell",
        destinations={
            "alice@example.com": Destination("alice@example.com", "Inbox"),
            "Postmaster@example.org": Destination("Postmaster@example.org", "Postmaster"),
            "info@bücher.example": Destination("info@bücher.example", "Inbox"),
        },
    )
    # An account without destinations receives mail for <name>@<domain>.
    assert domains.accounts["bob"] == Account(
        name="bob",
        domain="example.org",
        full_name=None,
        destinations={"bob@example.org": Destination("bob@example.org")},
    )


@pytest.mark.parametrize(
    ("address", "account", "destination"),
    [
        ("alice@example.com", "alice", "alice@example.com"),
        ("alice@EXAMPLE.COM", "alice", "alice@example.com"),
        ("alice+news@example.com", "alice", "alice@example.com"),
        ("alice+a+b@example.com", "alice", "alice@example.com"),
        ("Postmaster@example.org", "alice", "Postmaster@example.org"),
        ("bob@Example.Org", "bob", "bob@example.org"),
        ("info@BÜCHER.example", "alice", "info@bücher.example"),
        ("info@xn--bcher-kva.example", "alice", "info@bücher.example"),
    ],
)
def test_account_for_address(config: Config, address: str, account: str, destination: str) -> None:
    found = config.account_for_address(address)
    assert found is not None
    assert found[0].name == account
    assert found[1].address == destination
    assert config.domains.account_for_address(address) == found


@pytest.mark.parametrize(
    "address",
    [
        "Alice@example.com",  # localparts are compared as configured
        "postmaster@example.org",
        "bob+tag@example.org",  # example.org has no catchall separator
        "+tag@example.com",
        "alice-tag@example.com",
        "alice@example.net",
        "alice@",
        "example.com",
        "@example.com",
        "alice@exa mple.com",
        "alice@example.com.",
    ],
)
def test_account_for_address_not_found(config: Config, address: str) -> None:
    assert config.account_for_address(address) is None


def test_localserve_catch_all(tmp_path: Path) -> None:
    domains = "domains:\n  localhost: {}\naccounts:\n  alice:\n    domain: localhost\n"
    config = load_config(write(tmp_path, domains, STATIC + "localserve: true\n"))
    found = config.account_for_address("anyone@anywhere.example")
    assert found is not None
    assert (found[0].name, found[1].address) == ("alice", "alice@localhost")
    assert config.domains.account_for_address("anyone@anywhere.example") is None


def test_accounts_optional(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "domains: {}\n")
    assert errors == [
        "D/mailactors.conf:3: postmaster.account: account 'alice' not found in D/domains.conf"
    ]


BASE = "domains:\n  example.com: {}\n  example.org: {}\naccounts:\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "accounts: {}\n",
            [
                "D/mailactors.conf:3: postmaster.account: account 'alice' not found in D/domains.conf",
                "D/domains.conf:1: domains: missing required key",
            ],
        ),
        (
            BASE + "  alice: {domain: example.com}\nusers: {}\n",
            ["D/domains.conf:6: users: unknown key (known keys: domains, accounts)"],
        ),
        (
            BASE + "  alice: {domain: example.com, fullname: A}\n",
            [
                "D/domains.conf:5: accounts.alice.fullname: unknown key (known keys: domain, full_name, destinations)"
            ],
        ),
        (
            "domains:\n  example..com: {}\n" + "accounts:\n  alice: {domain: example.com}\n",
            [
                "D/domains.conf:2: domains.example..com: 'example..com' has an empty label",
                "D/domains.conf:4: accounts.alice.domain: domain example.com is not configured under domains",
            ],
        ),
        (
            BASE + "  alice: {domain: example.com}\n  alice: {domain: example.org}\n",
            [
                "D/domains.conf:6: accounts.alice: duplicate key (first at line 5)",
            ],
        ),
        (
            "domains:\n  example.com: {}\n  EXAMPLE.com: {}\naccounts:\n  alice: {domain: example.com}\n",
            [
                "D/domains.conf:3: domains.EXAMPLE.com: domain example.com is already configured at line 2"
            ],
        ),
        (
            "domains:\n  example.com: {description: 5}\naccounts:\n  alice: {domain: example.com}\n",
            ["D/domains.conf:2: domains.example.com.description: expected a string, got integer"],
        ),
        (
            "domains:\n  example.com: {localpart_catchall_separator: '@'}\n"
            "accounts:\n  alice: {domain: example.com}\n",
            [
                "D/domains.conf:2: domains.example.com.localpart_catchall_separator: separator "
                "must not contain '@', '.', spaces or control characters"
            ],
        ),
        (
            BASE + "  alice: {}\n",
            ["D/domains.conf:5: accounts.alice.domain: missing required key"],
        ),
        (
            BASE + "  alice: {domain: example.net}\n",
            [
                "D/domains.conf:5: accounts.alice.domain: domain example.net is not configured under domains"
            ],
        ),
        (
            BASE + "  alice: {domain: example.com}\n  ../evil: {domain: example.com}\n",
            [
                "D/domains.conf:6: accounts.../evil: account names may only contain letters, "
                "digits, '_', '.' and '-'"
            ],
        ),
        (
            BASE + "  alice: {domain: example.com}\n  '..': {domain: example.com}\n",
            ["D/domains.conf:6: accounts...: account names must not start or end with '.'"],
        ),
        (
            BASE + "  alice: {domain: example.com}\n  'a\\b': {domain: example.com}\n",
            [
                "D/domains.conf:6: accounts.a\\b: account names may only contain letters, "
                "digits, '_', '.' and '-'"
            ],
        ),
        (
            BASE + "  alice: {domain: example.com}\n  Con: {domain: example.com}\n"
            "  nul.txt: {domain: example.com}\n  COM1: {domain: example.com}\n",
            [
                "D/domains.conf:6: accounts.Con: 'Con' is a reserved device name on Windows",
                "D/domains.conf:7: accounts.nul.txt: 'nul.txt' is a reserved device name on Windows",
                "D/domains.conf:8: accounts.COM1: 'COM1' is a reserved device name on Windows",
            ],
        ),
        (
            BASE + "  alice: {domain: example.com}\n  Alice: {domain: example.org}\n",
            [
                "D/domains.conf:6: accounts.Alice: account name differs only in case from account 'alice' at line 5"
            ],
        ),
        (
            BASE + "  alice: {domain: example.com}\n  a..b: {domain: example.com}\n",
            [
                "D/domains.conf:6: accounts.a..b: account name is not a valid localpart for "
                "a..b@example.com: localpart 'a..b' has an empty part between dots"
            ],
        ),
        (
            BASE
            + "  alice:\n    domain: example.com\n    destinations:\n      alice@example.net: {}\n",
            [
                "D/domains.conf:8: accounts.alice.destinations.alice@example.net: domain example.net "
                "is not configured under domains"
            ],
        ),
        (
            BASE + "  alice:\n    domain: example.com\n    destinations:\n      alice: {}\n",
            [
                "D/domains.conf:8: accounts.alice.destinations.alice: 'alice' is not an address "
                "of the form localpart@domain"
            ],
        ),
        (
            BASE
            + "  alice:\n    domain: example.com\n    destinations:\n      'a b@example.com': {}\n",
            [
                "D/domains.conf:8: accounts.alice.destinations.a b@example.com: localpart 'a b' "
                "has a character not allowed: ' '"
            ],
        ),
        (
            BASE + "  alice:\n    domain: example.com\n    destinations:\n"
            "      alice@example.com: {mailbox: ''}\n",
            [
                "D/domains.conf:8: accounts.alice.destinations.alice@example.com.mailbox: must not be empty"
            ],
        ),
        (
            BASE + "  alice:\n    domain: example.com\n    destinations:\n"
            "      alice@example.com: {mailbox: 'a//b'}\n",
            [
                "D/domains.conf:8: accounts.alice.destinations.alice@example.com.mailbox: mailbox "
                "name 'a//b' has an empty level"
            ],
        ),
        (
            BASE + "  alice:\n    domain: example.com\n    destinations: [alice@example.com]\n",
            ["D/domains.conf:7: accounts.alice.destinations: expected a mapping, got list"],
        ),
        (
            BASE + "  alice:\n    domain: example.com\n    destinations:\n      info@example.com:\n"
            "  bob:\n    domain: example.org\n    destinations:\n      info@EXAMPLE.com: {}\n",
            [
                "D/domains.conf:12: accounts.bob.destinations.info@EXAMPLE.com: address "
                "info@example.com is already used by accounts.alice.destinations.info@example.com "
                "at line 8"
            ],
        ),
        (
            BASE + "  alice:\n    domain: example.com\n    destinations:\n      bob@example.org:\n"
            "  bob:\n    domain: example.org\n",
            [
                "D/domains.conf:9: accounts.bob: address bob@example.org is already used by "
                "accounts.alice.destinations.bob@example.org at line 8"
            ],
        ),
        (
            BASE + "  alice: [example.com]\n",
            ["D/domains.conf:5: accounts.alice: expected a mapping, got list"],
        ),
    ],
)
def test_domains_errors(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert errors_of(tmp_path, text) == expected


def test_errors_of_both_files_together(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "  alice: {domain: nowhere.example}\n", STATIC + "workers: -1\n")
    errors = [str(e).replace(str(tmp_path), "D") for e in check_config(path)]
    assert errors == [
        "D/mailactors.conf:8: workers: -1 is out of range (>= 1)",
        "D/domains.conf:5: accounts.alice.domain: domain nowhere.example is not configured under domains",
    ]
