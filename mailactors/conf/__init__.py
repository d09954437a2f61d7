"""Configuration: YAML files loaded into frozen dataclasses.

``mailactors.conf`` holds the static settings (host name, listeners, TLS, data
directory); ``domains.conf`` next to it holds domains and accounts. Every
problem is reported as "file:line: key: message".
"""

from mailactors.conf.domains import Account, Destination, Domain, DomainsConfig
from mailactors.conf.errors import ConfigError, ConfigErrors
from mailactors.conf.load import (
    CONFIG_ENV,
    DOMAINS_FILE,
    STATIC_FILE,
    Config,
    ConfigPaths,
    check_config,
    find_config_file,
    load_config,
)
from mailactors.conf.static import (
    Dns,
    HostTlsrpt,
    KeyCert,
    Listener,
    Postmaster,
    Service,
    SmtpListener,
    StaticConfig,
)

__all__ = [
    "CONFIG_ENV",
    "DOMAINS_FILE",
    "STATIC_FILE",
    "Account",
    "Config",
    "ConfigError",
    "ConfigErrors",
    "ConfigPaths",
    "Destination",
    "Dns",
    "Domain",
    "DomainsConfig",
    "HostTlsrpt",
    "KeyCert",
    "Listener",
    "Postmaster",
    "Service",
    "SmtpListener",
    "StaticConfig",
    "check_config",
    "find_config_file",
    "load_config",
]
