"""mailactors.conf: loading, defaults, and every kind of error with its exact file:line: key message."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest

from mailactors.conf import (
    ConfigError,
    ConfigErrors,
    ConfigPaths,
    Dns,
    KeyCert,
    Listener,
    Service,
    SmtpListener,
    check_config,
    find_config_file,
    load_config,
)
from mailactors.conf.check import run_config_test

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
  example.com: {}
accounts:
  alice:
    domain: example.com
"""

KNOWN_TOP = (
    "hostname, data_dir, log_level, package_log_levels, localserve, deliver_to_mx, postmaster, host_tlsrpt, "
    "no_outgoing_tls_reports, no_outgoing_dmarc_reports, dns, workers, tls, listeners"
)


def write(tmp_path: Path, static: str = STATIC, domains: str = DOMAINS) -> Path:
    path = tmp_path / "mailactors.conf"
    path.write_text(static, encoding="utf-8")
    (tmp_path / "domains.conf").write_text(domains, encoding="utf-8")
    return path


def errors_of(tmp_path: Path, static: str = STATIC, domains: str = DOMAINS) -> list[str]:
    """The errors as strings, with the tmp dir shortened to "D"."""
    path = write(tmp_path, static, domains)
    errors = check_config(path)
    return [str(e).replace(str(tmp_path), "D") for e in errors]


def test_minimal_config_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path))
    static = config.static
    assert static.hostname == "mail.example.com"
    assert static.data_dir == (tmp_path / "data").resolve()
    assert static.data_dir.is_absolute()
    assert static.log_level == "info"
    assert static.package_log_levels == {}
    assert static.localserve is False
    assert static.postmaster.account == "alice"
    assert static.postmaster.mailbox == "Postmaster"
    assert static.host_tlsrpt is None
    assert static.no_outgoing_tls_reports is False
    assert static.no_outgoing_dmarc_reports is False
    assert static.dns == Dns(nameservers=())
    assert static.workers == 1
    assert static.tls_key_certs == {}
    assert static.listeners == {
        "public": Listener(name="public", ips=("127.0.0.1",), smtp=SmtpListener(port=2525))
    }
    assert static.listeners["public"].smtp == SmtpListener(2525, 104857600, 1000)
    assert config.path == tmp_path / "mailactors.conf"
    assert config.domains_path == tmp_path / "domains.conf"
    assert check_config(config.path) == []


def test_full_config(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "cert.pem").write_text("x")
    (tmp_path / "certs" / "key.pem").write_text("x")
    static = """\
hostname: Mail.Example.COM
data_dir: ../var/mail
log_level: WARN
package_log_levels:
  smtpserver: trace
  store: debug
localserve: false
postmaster:
  account: alice
  mailbox: Admin/Postmaster
host_tlsrpt:
  account: alice
  localpart: tlsreports
no_outgoing_tls_reports: true
no_outgoing_dmarc_reports: yes
dns:
  nameservers: ["192.0.2.53", "192.0.2.54:5353", "[2001:DB8::1]:53", "2001:db8::2"]
workers: 4
tls:
  key_certs:
    main:
      cert_file: certs/cert.pem
      key_file: certs/key.pem
listeners:
  public:
    ips: [0.0.0.0, "::"]
    hostname: mx.example.com
    tls: main
    smtp:
    submission:
      max_message_size: 1048576
      max_recipients: 100
    submissions: {port: 4465}
    imap: {}
    imaps: {port: 9993}
    https: {}
  internal:
    ips: [127.0.0.2]
    http: {port: 8080}
"""
    config = load_config(write(tmp_path, static))
    s = config.static
    assert s.hostname == "mail.example.com"
    assert s.data_dir == (tmp_path / ".." / "var" / "mail").resolve()
    assert s.log_level == "warn"
    assert s.package_log_levels == {"smtpserver": "trace", "store": "debug"}
    assert s.postmaster.mailbox == "Admin/Postmaster"
    assert s.host_tlsrpt is not None
    assert (s.host_tlsrpt.account, s.host_tlsrpt.localpart, s.host_tlsrpt.mailbox) == (
        "alice",
        "tlsreports",
        "TLSRPT",
    )
    assert s.no_outgoing_tls_reports is True
    assert s.no_outgoing_dmarc_reports is True
    assert s.dns.nameservers == ("192.0.2.53", "192.0.2.54:5353", "[2001:db8::1]:53", "2001:db8::2")
    assert s.workers == 4
    assert s.tls_key_certs == {
        "main": KeyCert(
            cert_file=(tmp_path / "certs" / "cert.pem").resolve(),
            key_file=(tmp_path / "certs" / "key.pem").resolve(),
        )
    }
    public = s.listeners["public"]
    assert public.ips == ("0.0.0.0", "::")
    assert public.hostname == "mx.example.com"
    assert public.tls == "main"
    assert public.smtp == SmtpListener(port=25)
    assert public.submission == SmtpListener(port=587, max_message_size=1048576, max_recipients=100)
    assert public.submissions == SmtpListener(port=4465)
    assert public.imap == Service(143)
    assert public.imaps == Service(9993)
    assert public.http is None
    assert public.https == Service(443)
    assert s.listeners["internal"].http == Service(8080)
    assert list(s.listeners) == ["public", "internal"]


def test_relative_config_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("mailactors.conf"))
    assert config.path == tmp_path / "mailactors.conf"
    assert config.static.data_dir == (tmp_path / "data").resolve()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            STATIC + "bogus: 1\n",
            [f"D/mailactors.conf:8: bogus: unknown key (known keys: {KNOWN_TOP})"],
        ),
        (
            STATIC.replace("smtp: {port: 2525}", "smtp: {prot: 2525}"),
            [
                "D/mailactors.conf:7: listeners.public.smtp.prot: unknown key "
                "(known keys: port, max_message_size, max_recipients)"
            ],
        ),
        (
            STATIC + "workers: two\n",
            ["D/mailactors.conf:8: workers: expected an integer, got string"],
        ),
        (
            STATIC + "workers: 0\n",
            ["D/mailactors.conf:8: workers: 0 is out of range (>= 1)"],
        ),
        (
            STATIC + "workers: true\n",
            ["D/mailactors.conf:8: workers: expected an integer, got boolean"],
        ),
        (
            STATIC + "localserve: maybe\n",
            ["D/mailactors.conf:8: localserve: expected a boolean (true or false), got string"],
        ),
        (
            STATIC.replace("  account: alice", "  account: [alice]"),
            ["D/mailactors.conf:3: postmaster.account: expected a string, got list"],
        ),
        (
            STATIC.replace("postmaster:\n  account: alice\n", "postmaster: alice\n"),
            ["D/mailactors.conf:2: postmaster: expected a mapping, got string"],
        ),
        (
            STATIC.replace("hostname: mail.example.com\n", ""),
            ["D/mailactors.conf:1: hostname: missing required key"],
        ),
        (
            STATIC.replace("  account: alice", "  mailbox: Inbox"),
            ["D/mailactors.conf:2: postmaster.account: missing required key"],
        ),
        (
            STATIC.replace("    ips: [127.0.0.1]\n", ""),
            ["D/mailactors.conf:5: listeners.public.ips: missing required key"],
        ),
        (
            STATIC.replace("hostname: mail.example.com", "hostname: mail.example.com."),
            ["D/mailactors.conf:1: hostname: 'mail.example.com.' must not end with a dot"],
        ),
        (
            STATIC.replace("hostname: mail.example.com", "hostname: mail_x.example.com"),
            [
                "D/mailactors.conf:1: hostname: label 'mail_x' must be letters, digits and "
                "hyphens, not starting or ending with a hyphen"
            ],
        ),
        (
            STATIC.replace("hostname: mail.example.com", "hostname: 192.0.2.1"),
            [
                "D/mailactors.conf:1: hostname: '192.0.2.1' is not a host name "
                "(all-numeric top-level label)"
            ],
        ),
        (
            STATIC.replace("hostname: mail.example.com", "hostname: ''"),
            ["D/mailactors.conf:1: hostname: must not be empty"],
        ),
        (
            STATIC + "hostname: other.example.com\n",
            ["D/mailactors.conf:8: hostname: duplicate key (first at line 1)"],
        ),
        (
            STATIC + "log_level: loud\n",
            [
                "D/mailactors.conf:8: log_level: unknown log level 'loud', valid levels: "
                "trace, debug, info, warn, warning, error"
            ],
        ),
        (
            STATIC + "package_log_levels:\n  smtpserver: loud\n",
            [
                "D/mailactors.conf:9: package_log_levels.smtpserver: unknown log level 'loud', "
                "valid levels: trace, debug, info, warn, warning, error"
            ],
        ),
        (
            STATIC + "package_log_levels:\n  Smtp Server: info\n",
            [
                "D/mailactors.conf:9: package_log_levels.Smtp Server: package names are like "
                "smtpserver or protocol.smtp"
            ],
        ),
        (
            STATIC
            + "dns:\n  nameservers: [192.0.2.1, '192.0.2.1:0', 'dns.example', '[192.0.2.1]:53']\n",
            [
                "D/mailactors.conf:9: dns.nameservers[1]: invalid port '0' (1..65535)",
                "D/mailactors.conf:9: dns.nameservers[2]: 'dns.example' is not of the form ip, "
                "ip:port or [ipv6]:port",
                "D/mailactors.conf:9: dns.nameservers[3]: '192.0.2.1' is not an IPv6 address",
            ],
        ),
        (
            STATIC.replace("ips: [127.0.0.1]", "ips: [127.0.0.1, 127.0.0.300]"),
            ["D/mailactors.conf:6: listeners.public.ips[1]: '127.0.0.300' is not an IP address"],
        ),
        (
            STATIC.replace("ips: [127.0.0.1]", "ips: [127.0.0.1, 127.000.0.1]"),
            ["D/mailactors.conf:6: listeners.public.ips[1]: '127.000.0.1' is not an IP address"],
        ),
        (
            STATIC.replace("ips: [127.0.0.1]", "ips: ['::1', '0:0::1']"),
            ["D/mailactors.conf:6: listeners.public.ips[1]: duplicate IP address ::1"],
        ),
        (
            STATIC.replace("ips: [127.0.0.1]", "ips: []"),
            ["D/mailactors.conf:6: listeners.public.ips: at least one IP address is required"],
        ),
        (
            STATIC.replace("smtp: {port: 2525}", "smtp: {port: 70000}"),
            ["D/mailactors.conf:7: listeners.public.smtp.port: 70000 is out of range (1..65535)"],
        ),
        (
            STATIC.replace("smtp: {port: 2525}", "smtp: {port: '25'}"),
            ["D/mailactors.conf:7: listeners.public.smtp.port: expected an integer, got string"],
        ),
        (
            STATIC.replace("smtp: {port: 2525}", "smtp: {max_recipients: 99}"),
            [
                "D/mailactors.conf:7: listeners.public.smtp.max_recipients: 99 is out of range "
                "(>= 100)"
            ],
        ),
        (
            STATIC.replace("smtp: {port: 2525}", "smtp: {max_message_size: 65535}"),
            [
                "D/mailactors.conf:7: listeners.public.smtp.max_message_size: 65535 is out of "
                "range (>= 65536)"
            ],
        ),
        (
            STATIC.replace("smtp: {port: 2525}", "imaps: {port: 9993}"),
            [
                "D/mailactors.conf:7: listeners.public.imaps: imaps uses implicit TLS "
                "(RFC 8314 3.3) and requires the listener's tls setting"
            ],
        ),
        (
            STATIC + "    tls: missing\n",
            [
                "D/mailactors.conf:8: listeners.public.tls: unknown TLS certificate 'missing' "
                "(define it under tls.key_certs)"
            ],
        ),
        (
            STATIC + "  second:\n    ips: [127.0.0.1]\n    imap: {port: 2525}\n",
            [
                "D/mailactors.conf:10: listeners.second.imap.port: 127.0.0.1 port 2525 is "
                "already used by listeners.public.smtp.port (127.0.0.1)"
            ],
        ),
        (
            STATIC + "  second:\n    ips: ['0.0.0.0']\n    smtp:\n      port: 2525\n",
            [
                "D/mailactors.conf:11: listeners.second.smtp.port: 0.0.0.0 port 2525 is "
                "already used by listeners.public.smtp.port (127.0.0.1)"
            ],
        ),
        (
            STATIC + "  second:\n    ips: ['::']\n    smtp: {port: 2525}\n    http:\n    imap:\n",
            [],
        ),
        (
            STATIC
            + "  second:\n    ips: [127.0.0.2]\n    smtp:\n  third:\n    ips: [127.0.0.2]\n    smtp: {}\n",
            [
                "D/mailactors.conf:13: listeners.third.smtp: 127.0.0.2 port 25 is already used "
                "by listeners.second.smtp (127.0.0.2)"
            ],
        ),
        (
            STATIC.replace(
                "listeners:\n  public:\n    ips: [127.0.0.1]\n    smtp: {port: 2525}\n",
                "listeners: {}\n",
            ),
            ["D/mailactors.conf:4: listeners: at least one listener is required"],
        ),
        (
            STATIC + "host_tlsrpt:\n  account: alice\n  localpart: 'tls reports'\n",
            [
                "D/mailactors.conf:10: host_tlsrpt.localpart: localpart 'tls reports' has a "
                "character not allowed: ' '"
            ],
        ),
        (
            STATIC + "host_tlsrpt:\n  account: alice\n",
            ["D/mailactors.conf:8: host_tlsrpt.localpart: missing required key"],
        ),
        (
            STATIC.replace("  account: alice", "  account: alice\n  mailbox: /Bad"),
            ["D/mailactors.conf:4: postmaster.mailbox: mailbox name '/Bad' has an empty level"],
        ),
        (
            STATIC + "tls:\n  key_certs:\n    main:\n      cert_file: nope.pem\n",
            [
                "D/mailactors.conf:10: tls.key_certs.main.key_file: missing required key",
                "D/mailactors.conf:11: tls.key_certs.main.cert_file: file not found: D/nope.pem",
            ],
        ),
        (
            STATIC + "tls:\n  key_certs:\n    main:\n      cert_file: .\n      key_file: .\n",
            [
                "D/mailactors.conf:11: tls.key_certs.main.cert_file: not a regular file: D",
                "D/mailactors.conf:12: tls.key_certs.main.key_file: not a regular file: D",
            ],
        ),
        (
            STATIC + "1: x\n[a]: y\n",
            [
                f"D/mailactors.conf:8: 1: unknown key (known keys: {KNOWN_TOP})",
                "D/mailactors.conf:9: keys must be strings, got list",
            ],
        ),
        (
            STATIC.replace("account: alice", "account: bob"),
            ["D/mailactors.conf:3: postmaster.account: account 'bob' not found in D/domains.conf"],
        ),
        (
            STATIC + "host_tlsrpt: {account: carol, localpart: tls}\n",
            [
                "D/mailactors.conf:8: host_tlsrpt.account: account 'carol' not found in "
                "D/domains.conf"
            ],
        ),
        (
            "hostname: [unclosed\n",
            [
                "D/mailactors.conf:2: invalid YAML: while parsing a flow sequence, expected ',' "
                "or ']', but got '<stream end>'"
            ],
        ),
        (
            STATIC + "  bad:\n\tips: []\n",
            [
                "D/mailactors.conf:9: invalid YAML: while scanning for the next token, found "
                "character '\\t' that cannot start any token"
            ],
        ),
        (
            "a: 1\n---\nb: 2\n",
            [
                "D/mailactors.conf:2: invalid YAML: expected a single document in the stream, "
                "but found another document"
            ],
        ),
        (
            "hostname: x\x07y\n",
            ["D/mailactors.conf:1: invalid YAML: character '\\x07' is not allowed"],
        ),
        (
            "",
            [
                "D/mailactors.conf:1: hostname: missing required key",
                "D/mailactors.conf:1: postmaster: missing required key",
                "D/mailactors.conf:1: listeners: missing required key",
            ],
        ),
        (
            "- a\n- b\n",
            ["D/mailactors.conf:1: expected a mapping, got list"],
        ),
    ],
)
def test_static_errors(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert errors_of(tmp_path, text) == expected


def test_all_errors_collected_in_line_order(tmp_path: Path) -> None:
    text = STATIC.replace("hostname: mail.example.com", "hostname: -bad-") + "workers: 0\nfoo: 1\n"
    domains = DOMAINS + "  bad/name: {domain: example.com}\n"
    assert errors_of(tmp_path, text, domains) == [
        "D/mailactors.conf:1: hostname: label '-bad-' must be letters, digits and hyphens, "
        "not starting or ending with a hyphen",
        "D/mailactors.conf:8: workers: 0 is out of range (>= 1)",
        f"D/mailactors.conf:9: foo: unknown key (known keys: {KNOWN_TOP})",
        "D/domains.conf:6: accounts.bad/name: account names may only contain letters, digits, "
        "'_', '.' and '-'",
    ]


def test_load_config_raises_config_errors(tmp_path: Path) -> None:
    path = write(tmp_path, STATIC + "workers: 0\nfoo: 1\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    assert [e.key for e in info.value.errors] == ["workers", "foo"]
    assert str(info.value).splitlines() == [str(e) for e in info.value.errors]
    assert isinstance(info.value.errors, list)
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.errors == info.value.errors


def test_missing_files(tmp_path: Path) -> None:
    errors = check_config(tmp_path / "mailactors.conf")
    assert [(e.file, e.line, e.key) for e in errors] == [
        (str(tmp_path / "mailactors.conf"), 1, ""),
        (str(tmp_path / "domains.conf"), 1, ""),
    ]
    assert all(e.message.startswith("cannot read file: ") for e in errors)
    with pytest.raises(ConfigErrors):
        load_config(tmp_path / "mailactors.conf")


def test_missing_domains_file_only(tmp_path: Path) -> None:
    path = write(tmp_path)
    (tmp_path / "domains.conf").unlink()
    errors = check_config(path)
    assert len(errors) == 1
    assert (
        str(errors[0])
        == f"{tmp_path / 'domains.conf'}:1: cannot read file: No such file or directory"
    )


def test_invalid_utf8(tmp_path: Path) -> None:
    path = write(tmp_path)
    path.write_bytes(STATIC.encode() + b"# caf\xe9\n")
    assert [str(e).replace(str(tmp_path), "D") for e in check_config(path)] == [
        "D/mailactors.conf:8: file is not valid UTF-8"
    ]


def test_utf8_bom_accepted(tmp_path: Path) -> None:
    path = write(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + STATIC.encode())
    assert check_config(path) == []


def test_config_error_str() -> None:
    assert str(ConfigError("a.conf", 3, "x.y", "bad")) == "a.conf:3: x.y: bad"
    assert str(ConfigError("a.conf", 1, "", "invalid YAML")) == "a.conf:1: invalid YAML"


def test_find_config_file(tmp_path: Path) -> None:
    env = {"MAILACTORS_CONF": "/etc/mailactors/mailactors.conf"}
    assert find_config_file("my.conf", env, tmp_path) == tmp_path / "my.conf"
    assert find_config_file("/abs/my.conf", env, tmp_path) == Path("/abs/my.conf")
    assert find_config_file(None, env, tmp_path) == Path("/etc/mailactors/mailactors.conf")
    assert (
        find_config_file(None, {"MAILACTORS_CONF": "rel.conf"}, tmp_path) == tmp_path / "rel.conf"
    )
    assert find_config_file(None, {}, tmp_path) == tmp_path / "mailactors.conf"
    assert find_config_file("", {}, tmp_path) == tmp_path / "mailactors.conf"


def test_config_paths() -> None:
    paths = ConfigPaths.for_static(Path("/etc/ma/mailactors.conf"))
    assert paths.static == Path("/etc/ma/mailactors.conf")
    assert paths.domains == Path("/etc/ma/domains.conf")


def test_config_pickles(tmp_path: Path) -> None:
    config = load_config(write(tmp_path))
    copy = pickle.loads(pickle.dumps(config))
    assert copy == config
    assert copy.account_for_address("alice@example.com") == config.account_for_address(
        "alice@example.com"
    )


def test_run_config_test(tmp_path: Path) -> None:
    path = write(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert run_config_test(path, out, err) == 0
    assert out.getvalue() == f"config OK: {path} and {tmp_path / 'domains.conf'}\n"
    assert err.getvalue() == ""
    write(tmp_path, STATIC + "workers: 0\n")
    out, err = io.StringIO(), io.StringIO()
    assert run_config_test(path, out, err) == 1
    assert out.getvalue() == ""
    assert (
        err.getvalue()
        == f"{path}:8: workers: 0 is out of range (>= 1)\n1 error(s) in the configuration\n"
    )
