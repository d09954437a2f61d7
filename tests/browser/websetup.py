"""A localserve-style server for the web tests: HTTP and HTTPS listeners on free ports,
an MTA-STS policy for the domain, a per-host TLSRPT address and an admin password.

Used by tests/integration/test_web_*.py and the browser tests; everything listens on
127.0.0.1 and DNS goes to the test DNS server.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mailactors.actors.localserve import ensure_localserve_files
from mailactors.actors.supervisor import RunningServer, start_server
from mailactors.conf import Config, HostTlsrpt, KeyCert, load_config
from mailactors.conf.domainauth import MtaStsPolicy
from mailactors.conf.tlscert import self_signed_certificate
from mailactors.web.auth import write_admin_password

ADMIN_PASSWORD = "correct horse battery staple"
DOMAIN = "localhost"
POLICY = MtaStsPolicy(policy_id="20261124", mode="enforce", mx=("localhost",), max_age=86400)
log = logging.getLogger("mailactors.tests.web")


@dataclass
class WebServer:
    config: Config
    server: RunningServer
    cert_file: Path

    @property
    def http_port(self) -> int:
        return self.server.port("http")

    @property
    def https_port(self) -> int:
        return self.server.port("https")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def client_context(self) -> ssl.SSLContext:
        """Trusts exactly the server's certificate and checks host names."""
        ctx = ssl.create_default_context(cafile=str(self.cert_file))
        return ctx

    def stop(self) -> None:
        self.server.stop()


def web_config(directory: Path, nameserver: str) -> tuple[Config, Path]:
    conf_path = ensure_localserve_files(directory, "127.0.0.1", log)
    config = load_config(conf_path)
    # A certificate also valid for the MTA-STS policy host (RFC 8461 3.3).
    cert_pem, key_pem = self_signed_certificate(
        hostnames=["localhost", f"mta-sts.{DOMAIN}"], ips=["127.0.0.1"], now=datetime.now(UTC)
    )
    cert_file, key_file = directory / "web-cert.pem", directory / "web-key.pem"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    listeners = {}
    for name, listener in config.static.listeners.items():
        changes = {}
        for field in dataclasses.fields(listener):
            value = getattr(listener, field.name)
            if dataclasses.is_dataclass(value) and hasattr(value, "port"):
                changes[field.name] = dataclasses.replace(value, port=0)
        listeners[name] = dataclasses.replace(listener, **changes)
    static = dataclasses.replace(
        config.static,
        listeners=listeners,
        host_tlsrpt=HostTlsrpt(account="mailactors", localpart="tlsrpt"),
        dns=dataclasses.replace(config.static.dns, nameservers=(nameserver,)),
        tls_key_certs={"localserve": KeyCert(cert_file, key_file)},
    )
    domains = dict(config.domains.domains)
    domains[DOMAIN] = dataclasses.replace(domains[DOMAIN], mta_sts=POLICY)
    config = dataclasses.replace(
        config,
        static=static,
        domains=dataclasses.replace(config.domains, domains=domains),
    )
    write_admin_password(config.static.data_dir, ADMIN_PASSWORD)
    return config, cert_file


def start_web_server(directory: Path, nameserver: str) -> WebServer:
    config, cert_file = web_config(directory, nameserver)
    return WebServer(config, start_server(config), cert_file)
