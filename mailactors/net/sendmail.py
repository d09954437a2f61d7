"""`mailactors sendmail [-t] [-f FROM] [RCPT...]`: a /usr/sbin/sendmail for cron jobs and scripts.

Reads a message from stdin (LF or CRLF line endings), adds Date and Message-ID
when missing (and From, from the envelope sender), with -t takes the recipients
from To/Cc/Bcc and removes Bcc, and submits it with AUTH to the server's
submission listener. Exit codes follow sendmail's (sysexits.h): 0 sent,
75 temporary failure (try again later), 69 rejected, 77 authentication failed,
78 configuration problem, 64 usage, 65 bad message.

Credentials come from sendmail.conf, a small YAML file: the file named by
$MAILACTORS_SENDMAIL_CONF, else sendmail.conf in the user's config directory
(~/.config/mailactors/sendmail.conf). It must not be readable by group or
others (mode 0600), since it holds a password:

    host: 127.0.0.1          # submission listener
    port: 465                # default: 465 for tls: implicit, 587 for starttls
    tls: implicit            # implicit (RFC 8314), starttls, or none (loopback only)
    tls_ca_file: cert.pem    # optional: trust this (self-signed) certificate
    tls_server_name: mail.example.com  # optional: name checked in the certificate
    username: you@example.com
    password: "..."
    from: you@example.com    # optional: default envelope sender (else username)

Submission uses smtplib: the project's SMTP client has no AUTH step, and
smtplib already speaks STARTTLS, implicit TLS and AUTH PLAIN/LOGIN.
"""

from __future__ import annotations

import email.utils
import ipaddress
import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

import platformdirs
import yaml

__all__ = [
    "EX_CONFIG",
    "EX_DATAERR",
    "EX_NOPERM",
    "EX_TEMPFAIL",
    "EX_UNAVAILABLE",
    "EX_USAGE",
    "SENDMAIL_CONF_ENV",
    "SendmailConfig",
    "SendmailError",
    "default_sendmail_conf",
    "load_sendmail_config",
    "prepare_message",
    "run_sendmail",
    "submit",
]

# sysexits.h, as sendmail uses them.
EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78

SENDMAIL_CONF_ENV = "MAILACTORS_SENDMAIL_CONF"
TLS_MODES = ("implicit", "starttls", "none")
DEFAULT_PORTS = {"implicit": 465, "starttls": 587, "none": 587}  # RFC 8314 7.3, RFC 6409 3.1
SMTP_TIMEOUT = 60.0
_KNOWN_KEYS = (
    "host",
    "port",
    "tls",
    "tls_ca_file",
    "tls_server_name",
    "username",
    "password",
    "from",
)


class SendmailError(Exception):
    """A failure with the sysexits code to exit with."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class SendmailConfig:
    """sendmail.conf: where and how to submit."""

    host: str
    port: int
    tls: str
    username: str
    password: str
    tls_ca_file: Path | None = None
    tls_server_name: str | None = None
    sender: str | None = None


def default_sendmail_conf(environ: Mapping[str, str]) -> Path:
    """$MAILACTORS_SENDMAIL_CONF, else sendmail.conf in the user's config directory."""
    named = environ.get(SENDMAIL_CONF_ENV)
    if named:
        return Path(named)
    return Path(platformdirs.user_config_dir("mailactors", appauthor=False)) / "sendmail.conf"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_sendmail_config(path: Path) -> SendmailConfig:
    """Read and check sendmail.conf; raises SendmailError(EX_CONFIG)."""

    def bad(message: str) -> SendmailError:
        return SendmailError(f"{path}: {message}", EX_CONFIG)

    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise bad(f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise bad("not valid UTF-8") from exc
    if os.name == "posix" and st.st_mode & 0o077:
        raise bad(
            f"mode {st.st_mode & 0o777:04o} lets others read the password; run chmod 600 {path}"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise bad(f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise bad("expected a mapping of host, port, tls, username, password")
    unknown = sorted(str(k) for k in data if k not in _KNOWN_KEYS)
    if unknown:
        raise bad(f"unknown key(s): {', '.join(unknown)}")

    def string(key: str, *, required: bool) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                raise bad(f"{key} is required")
            return None
        if not isinstance(value, str) or not value:
            raise bad(f"{key} must be a non-empty string")
        return value

    tls = string("tls", required=False) or "implicit"
    if tls not in TLS_MODES:
        raise bad(f"tls must be one of {', '.join(TLS_MODES)}")
    host = string("host", required=False) or "127.0.0.1"
    if tls == "none" and not _is_loopback(host):
        raise bad("tls: none is only allowed for a loopback host (the password would be sent in clear)")
    port = data.get("port", DEFAULT_PORTS[tls])
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise bad("port must be a number from 1 to 65535")
    ca_text = string("tls_ca_file", required=False)
    ca_file = None
    if ca_text is not None:
        ca_file = Path(ca_text) if Path(ca_text).is_absolute() else path.parent / ca_text
        if not ca_file.is_file():
            raise bad(f"tls_ca_file: no such file: {ca_file}")
    username = string("username", required=True)
    password = data.get("password")
    if not isinstance(password, str) or not password:
        raise bad("password is required (a string)")
    assert username is not None
    return SendmailConfig(
        host=host,
        port=port,
        tls=tls,
        username=username,
        password=password,
        tls_ca_file=ca_file,
        tls_server_name=string("tls_server_name", required=False),
        sender=string("from", required=False),
    )


def _normalize_lines(data: bytes) -> bytes:
    """Every line ending (CRLF, bare LF, bare CR) as CRLF (RFC 5322 2.3: no bare CR or LF)."""
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def _split_fields(data: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its folded lines and CRLF) and the rest (blank line + body)."""
    fields: list[bytes] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n", pos)
        end = len(data) if end < 0 else end + 2
        line = data[pos:end]
        if line == b"\r\n":
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line  # RFC 5322 2.2.3: a folded continuation line
        elif b":" in line:
            fields.append(line)
        else:
            break  # no header section: everything is body
        pos = end
    return fields, data[pos:]


def _field_name(field: bytes) -> str:
    return field.split(b":", 1)[0].strip().decode("ascii", "replace").lower()


def _field_value(field: bytes) -> str:
    value = field.split(b":", 1)[1]
    # RFC 5322 2.2.3: unfolding removes the CRLF before white space.
    return value.replace(b"\r\n", b"").decode("utf-8", "replace").strip()


def prepare_message(
    data: bytes,
    *,
    sender: str,
    extract_recipients: bool,
    now: datetime,
    hostname: str,
) -> tuple[bytes, list[str]]:
    """Return the message to submit and the recipients found in it (with -t).

    Adds Date, Message-ID and From when missing; with `extract_recipients` the
    recipients come from To, Cc and Bcc, and Bcc fields are removed.
    """
    data = _normalize_lines(data)
    if data.startswith(b"From "):
        # An mbox "From sender date" separator line, as some programs write: not a header field.
        data = data[data.find(b"\r\n") + 2 :]
    fields, rest = _split_fields(data)
    present = {_field_name(f) for f in fields}
    recipients: list[str] = []
    if extract_recipients:
        values = [_field_value(f) for f in fields if _field_name(f) in ("to", "cc", "bcc")]
        for _, address in email.utils.getaddresses(values):
            if address and address not in recipients:
                recipients.append(address)
        # The Bcc field is not sent: its recipients get the message without learning of
        # each other (RFC 5322 3.6.3, the "Bcc" case where the field is removed).
        fields = [f for f in fields if _field_name(f) != "bcc"]
    added: list[bytes] = []
    if "from" not in present:
        added.append(f"From: <{sender}>\r\n".encode())
    if "date" not in present:
        # RFC 5322 3.6: "The only required header fields are the origination date field
        # and the originator address field(s)".
        added.append(f"Date: {email.utils.format_datetime(now)}\r\n".encode())
    if "message-id" not in present:
        added.append(f"Message-ID: {email.utils.make_msgid(domain=hostname)}\r\n".encode())
    if not rest.startswith(b"\r\n"):
        rest = b"\r\n" + rest
    return b"".join(added + fields) + rest, recipients


def _tls_context(config: SendmailConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if config.tls_ca_file is not None:
        ctx.load_verify_locations(cafile=str(config.tls_ca_file))
    return ctx


class _Client(smtplib.SMTP):
    """smtplib's client; `server_name` is the name STARTTLS checks in the certificate."""

    def __init__(self, server_name: str) -> None:
        super().__init__(timeout=SMTP_TIMEOUT)
        # smtplib passes _host as server_hostname when it wraps the socket.
        self._host = server_name


class _ImplicitTlsClient(smtplib.SMTP_SSL):
    """smtplib's implicit-TLS client (RFC 8314 3.3), checking `server_name`."""

    def __init__(self, server_name: str, context: ssl.SSLContext) -> None:
        super().__init__(timeout=SMTP_TIMEOUT, context=context)
        self._host = server_name


def _exit_for_reply(code: int) -> int:
    return EX_TEMPFAIL if 400 <= code < 500 else EX_UNAVAILABLE


def submit(
    config: SendmailConfig, sender: str, recipients: Sequence[str], message: bytes
) -> dict[str, tuple[int, bytes]]:
    """Submit one message; returns the refused recipients (none when all were accepted).

    Raises SendmailError when nothing was submitted.
    """
    server_name = config.tls_server_name or config.host
    options: list[str] = []
    try:
        client: smtplib.SMTP
        if config.tls == "implicit":
            client = _ImplicitTlsClient(server_name, _tls_context(config))
        else:
            client = _Client(server_name)
        client.connect(config.host, config.port)
        with client:
            client.ehlo_or_helo_if_needed()
            if config.tls == "starttls":
                client.starttls(context=_tls_context(config))
                client.ehlo()
            client.login(config.username, config.password)
            if any(b >= 0x80 for b in message) and client.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
            if not (sender.isascii() and all(r.isascii() for r in recipients)):
                options.append("SMTPUTF8")
            return client.sendmail(sender, list(recipients), message, mail_options=options)
    except smtplib.SMTPAuthenticationError as exc:
        raise SendmailError(
            f"authentication as {config.username} failed: {exc.smtp_code} {_text(exc.smtp_error)}",
            EX_NOPERM,
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{r}: {c} {_text(m)}" for r, (c, m) in exc.recipients.items())
        code = EX_TEMPFAIL if all(400 <= c < 500 for c in codes) else EX_UNAVAILABLE
        raise SendmailError(f"all recipients refused: {detail}", code) from exc
    except smtplib.SMTPResponseException as exc:
        raise SendmailError(
            f"server refused the message: {exc.smtp_code} {_text(exc.smtp_error)}",
            _exit_for_reply(exc.smtp_code),
        ) from exc
    except (smtplib.SMTPException, ssl.SSLError, OSError, TimeoutError) as exc:
        raise SendmailError(
            f"cannot submit to {config.host}:{config.port}: {exc}", EX_TEMPFAIL
        ) from exc


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def run_sendmail(
    recipients: Sequence[str],
    *,
    extract_recipients: bool,
    sender: str | None,
    config_path: Path | None,
    stdin: BinaryIO,
    stderr: TextIO,
    environ: Mapping[str, str],
    now: datetime,
) -> int:
    """`mailactors sendmail`: read stdin, submit, return a sysexits code."""
    try:
        config = load_sendmail_config(config_path or default_sendmail_conf(environ))
        envelope_from = sender or config.sender or config.username
        if "@" not in envelope_from:
            raise SendmailError(
                f"sender {envelope_from!r} is not an address: use -f or set from in sendmail.conf",
                EX_USAGE,
            )
        data = stdin.read()
        if not data.strip():
            raise SendmailError("empty message on standard input", EX_DATAERR)
        hostname = envelope_from.rpartition("@")[2]
        message, found = prepare_message(
            data,
            sender=envelope_from,
            extract_recipients=extract_recipients,
            now=now,
            hostname=hostname,
        )
        rcpts = list(dict.fromkeys([*found, *recipients]))
        if not rcpts:
            raise SendmailError(
                "no recipients: name them as arguments or use -t to read To/Cc/Bcc", EX_USAGE
            )
        refused = submit(config, envelope_from, rcpts, message)
    except SendmailError as exc:
        print(f"sendmail: {exc}", file=stderr)
        return exc.code
    if refused:
        for rcpt, (code, reply) in refused.items():
            print(f"sendmail: {rcpt} refused: {code} {_text(reply)}", file=stderr)
        codes = [code for code, _ in refused.values()]
        return EX_TEMPFAIL if all(400 <= c < 500 for c in codes) else EX_UNAVAILABLE
    return EX_OK

