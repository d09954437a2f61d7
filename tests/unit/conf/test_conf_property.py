"""Property tests: no input text makes check_config fail with anything but ConfigErrors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailactors.conf import ConfigError, ConfigErrors, check_config, load_config

VALID_STATIC = """\
hostname: mail.example.com
postmaster: {account: alice}
listeners:
  public:
    ips: [127.0.0.1]
    smtp: {port: 2525}
"""
VALID_DOMAINS = "domains:\n  example.com: {}\naccounts:\n  alice: {domain: example.com}\n"

KEYS = [
    "hostname",
    "data_dir",
    "log_level",
    "package_log_levels",
    "localserve",
    "postmaster",
    "host_tlsrpt",
    "no_outgoing_tls_reports",
    "no_outgoing_dmarc_reports",
    "dns",
    "nameservers",
    "workers",
    "tls",
    "key_certs",
    "cert_file",
    "key_file",
    "listeners",
    "ips",
    "smtp",
    "submission",
    "submissions",
    "imap",
    "imaps",
    "http",
    "https",
    "port",
    "max_message_size",
    "max_recipients",
    "account",
    "mailbox",
    "localpart",
    "domains",
    "accounts",
    "domain",
    "full_name",
    "destinations",
    "description",
    "localpart_catchall_separator",
    "example.com",
    "alice",
    "alice@example.com",
    "127.0.0.1",
    "::1",
    "..",
    "CON",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(KEYS),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers()),
            children,
            max_size=5,
        ),
    ),
    max_leaves=25,
)
yamlish = st.text(
    alphabet=st.sampled_from(
        list(" \n\t:-[]{},#&*!|>'\"%@`?.\\0123456789abcxyz") + ["\x00", "é", "\ufeff"]
    ),
    max_size=120,
)

# Trees shaped like the real files, with arbitrary values at every setting.
values = st.one_of(scalars, trees)
service = st.one_of(
    st.none(), st.fixed_dictionaries({}, optional={"port": values, "max_recipients": values})
)
listener = st.fixed_dictionaries(
    {
        "ips": st.one_of(
            st.lists(
                st.one_of(st.sampled_from(["127.0.0.1", "::", "0.0.0.0", "::1"]), scalars),
                max_size=3,
            ),
            values,
        )
    },
    optional={
        "tls": st.one_of(st.just("main"), values),
        "hostname": values,
        "smtp": service,
        "imaps": service,
        "https": service,
        "imap": service,
    },
)
static_files = st.fixed_dictionaries(
    {
        "hostname": st.one_of(st.just("mail.example.com"), values),
        "postmaster": st.one_of(st.just({"account": "alice"}), values),
    },
    optional={
        "listeners": st.dictionaries(st.text(max_size=5), listener, max_size=3),
        "data_dir": values,
        "tls": st.one_of(
            st.just(
                {
                    "key_certs": {
                        "main": {"cert_file": "mailactors.conf", "key_file": "domains.conf"}
                    }
                }
            ),
            values,
        ),
        "dns": st.fixed_dictionaries(
            {
                "nameservers": st.lists(
                    st.one_of(st.sampled_from(["[::1]:53", "1.2.3.4:53"]), scalars), max_size=3
                )
            }
        ),
        "host_tlsrpt": st.fixed_dictionaries({"account": values, "localpart": values}),
        "workers": values,
        "package_log_levels": values,
        "log_level": values,
    },
)
account = st.fixed_dictionaries(
    {
        "domain": st.one_of(
            st.sampled_from(["example.com", "EXAMPLE.com", "xn--bcher-kva.example"]), values
        )
    },
    optional={
        "destinations": st.one_of(
            st.dictionaries(
                st.one_of(
                    st.sampled_from(["alice@example.com", "a@b", "@", "x@bücher.example"]),
                    st.text(max_size=10),
                ),
                st.one_of(st.none(), st.fixed_dictionaries({"mailbox": values})),
            ),
            values,
        ),
        "full_name": values,
    },
)
domains_files = st.fixed_dictionaries(
    {
        "domains": st.one_of(
            st.dictionaries(
                st.one_of(
                    st.sampled_from(["example.com", "bücher.example", "a..b"]), st.text(max_size=10)
                ),
                st.one_of(
                    st.none(),
                    st.fixed_dictionaries(
                        {}, optional={"localpart_catchall_separator": values, "description": values}
                    ),
                ),
            ),
            values,
        )
    },
    optional={
        "accounts": st.dictionaries(
            st.one_of(st.sampled_from(["alice", "Alice", "CON", "a..b"]), st.text(max_size=8)),
            account,
            max_size=3,
        )
    },
)

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def check(tmp_path: Path, static: str, domains: str) -> list[ConfigError]:
    path = tmp_path / "mailactors.conf"
    path.write_text(static, encoding="utf-8", errors="surrogatepass")
    (tmp_path / "domains.conf").write_text(domains, encoding="utf-8", errors="surrogatepass")
    errors = check_config(path)
    assert isinstance(errors, list)
    files = {str(path), str(tmp_path / "domains.conf")}
    for error in errors:
        assert isinstance(error, ConfigError)
        assert error.file in files
        assert error.line >= 1
        assert str(error).startswith(f"{error.file}:{error.line}: ")
    if errors:
        with pytest.raises(ConfigErrors) as info:
            load_config(path)
        assert info.value.errors == errors
    else:
        load_config(path)
    return errors


@SETTINGS
@given(static=st.text(max_size=200), domains=st.text(max_size=200))
def test_arbitrary_text(tmp_path: Path, static: str, domains: str) -> None:
    check(tmp_path, static, domains)


@SETTINGS
@given(static=yamlish, domains=yamlish)
def test_yamlish_text(tmp_path: Path, static: str, domains: str) -> None:
    check(tmp_path, static, domains)


@SETTINGS
@given(static=trees, domains=trees)
def test_arbitrary_yaml_trees(tmp_path: Path, static: object, domains: object) -> None:
    check(tmp_path, yaml.safe_dump(static), yaml.safe_dump(domains))


@SETTINGS
@given(extra_static=trees, extra_domains=trees)
def test_valid_config_plus_arbitrary_yaml(
    tmp_path: Path, extra_static: object, extra_domains: object
) -> None:
    # Appending keys to a valid file produces errors (never a crash), or still loads.
    static = VALID_STATIC + yaml.safe_dump({"listeners": {"x": extra_static}})
    domains = VALID_DOMAINS.replace("accounts:\n", "") + yaml.safe_dump(
        {"accounts": {"bob": extra_domains}}
    )
    errors = check(tmp_path, static, domains)
    assert any(e.key == "listeners" for e in errors)  # listeners is now a duplicate key


@SETTINGS
@given(static=static_files, domains=domains_files)
def test_schema_shaped_yaml(tmp_path: Path, static: object, domains: object) -> None:
    check(
        tmp_path,
        yaml.safe_dump(static, allow_unicode=True),
        yaml.safe_dump(domains, allow_unicode=True),
    )


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000,
        "a: " * 3000,
        "&a [*a]",
        "a: &a {b: *a}",
        "? [a]\n: b\n",
        "!!python/object:os.system x",
        "a: !!int 'x'",
        "a: !!binary ~~~",
        "%YAML 9.9\n---\na: 1",
        "a: *missing",
        'hostname: "\\ud800"\ndata_dir: "\\0"\naccounts: {"\\ud800": {domain: "\\ud800"}}\n',
    ],
)
def test_nasty_yaml(tmp_path: Path, text: str) -> None:
    errors = check(tmp_path, text, text)
    assert errors
