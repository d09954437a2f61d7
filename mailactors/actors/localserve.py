"""localserve: first-run setup and running the development server."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import platformdirs

from mailactors.actors.messages import (
    GetPasswordCredentials,
    PasswordCredentials,
    SetPasswordCredentials,
)
from mailactors.actors.supervisor import RunningServer, start_server
from mailactors.conf import Config, ConfigErrors, load_config
from mailactors.conf.localserve import localserve_config_texts
from mailactors.conf.tlscert import self_signed_certificate
from mailactors.log import configure_logging
from mailactors.protocol.sasl.scram import derive_credentials
from mailactors.storage.files import write_file_atomic
from mailactors.web.auth import read_admin_credentials, write_admin_password

# --- running localserve ---------------------------------------------------------------

LOCALSERVE_PASSWORD = "mailactors"  # for SCRAM; PLAIN accepts any password in localserve


def default_localserve_dir() -> Path:
    """The platform's per-user config directory, e.g. ~/.config/mailactors/localserve."""
    return Path(platformdirs.user_config_dir("mailactors", appauthor=False)) / "localserve"


def ensure_localserve_files(directory: Path, ip: str, log: logging.Logger) -> Path:
    """Write config and certificate on first run; return the mailactors.conf path."""
    conf_path = directory / "mailactors.conf"
    if conf_path.exists():
        return conf_path
    directory.mkdir(parents=True, exist_ok=True)
    texts = localserve_config_texts(ip=ip)
    cert_pem, key_pem = self_signed_certificate(
        hostnames=["localhost"], ips=sorted({ip, "127.0.0.1", "::1"}), now=datetime.now(UTC)
    )
    write_file_atomic(directory / "localserve-key.pem", key_pem, mode=0o600)
    write_file_atomic(directory / "localserve-cert.pem", cert_pem)
    write_file_atomic(directory / "domains.conf", texts["domains.conf"].encode())
    # mailactors.conf last: its presence marks a complete first run.
    write_file_atomic(conf_path, texts["mailactors.conf"].encode())
    log.info("wrote localserve configuration", extra={"dir": str(directory)})
    return conf_path


def override_ip(config: Config, ip: str) -> Config:
    """The config with every listener on ip instead (the -ip option of a later run)."""
    listeners = {
        name: dataclasses.replace(listener, ips=(ip,))
        for name, listener in config.static.listeners.items()
    }
    static = dataclasses.replace(config.static, listeners=listeners)
    return dataclasses.replace(config, static=static)


def ensure_local_password(server: RunningServer, config: Config) -> None:
    """Give each account without a password the localserve one (for SCRAM clients)."""
    for account in config.domains.accounts:
        store = server.store(account)
        if store.ask(GetPasswordCredentials(), timeout=30) is None:
            creds = derive_credentials(LOCALSERVE_PASSWORD, secrets.token_bytes(16))
            store.ask(
                SetPasswordCredentials(
                    PasswordCredentials(
                        creds.salt, creds.iterations, creds.stored_key, creds.server_key
                    )
                ),
                timeout=30,
            )


def run_localserve(directory: Path | None, ip: str | None, stop: threading.Event) -> int:
    """Run localserve until `stop` is set; returns the process exit code."""
    directory = directory or default_localserve_dir()
    boot_log = logging.getLogger("mailactors.localserve")
    configure_logging("info")
    conf_path = ensure_localserve_files(directory, ip or "127.0.0.1", boot_log)
    try:
        config = load_config(conf_path)
    except ConfigErrors as exc:
        for err in exc.errors:
            print(err, file=sys.stderr)
        return 1
    if ip is not None:
        config = override_ip(config, ip)
    configure_logging(config.static.log_level, config.static.package_log_levels)
    # The admin pages' password (`mailactors setadminpassword` changes it).
    if read_admin_credentials(config.static.data_dir) is None:
        config.static.data_dir.mkdir(parents=True, exist_ok=True)
        write_admin_password(config.static.data_dir, LOCALSERVE_PASSWORD)
    try:
        server = start_server(config)
    except OSError as exc:
        boot_log.error("starting localserve failed", extra={"err": str(exc)})
        return 1
    try:
        ensure_local_password(server, config)
        for b in server.bound:
            boot_log.info("serving", extra={"service": b.service, "addr": f"{b.ip}:{b.port}"})
        boot_log.info(
            "localserve ready: any password is accepted for PLAIN, SCRAM uses the password "
            f"{LOCALSERVE_PASSWORD!r}; mail to any address is delivered to the account",
            extra={"account": next(iter(config.domains.accounts)), "dir": str(directory)},
        )
        stop.wait()
    finally:
        boot_log.info("stopping")
        server.stop()
    return 0
