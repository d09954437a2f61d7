"""Logging for mailactors: stdlib logging with one concise logfmt line per record.

Loggers are named ``mailactors.<pkg>``; code passes structured fields with
``extra``::

    log = logging.getLogger("mailactors.smtpserver")
    log.info("message delivered", extra={"cid": cid, "account": "x", "size": 123})

which :class:`LogfmtFormatter` renders as::

    t=2026-11-24T17:00:00.123Z l=info pkg=smtpserver m="message delivered" cid=1a2b account=x size=123

Fields whose key names a secret (password, pass, secret, token, auth) are
printed as ``key=***``: passwords and AUTH payloads are never logged.
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
import sys
from collections.abc import Mapping
from typing import TextIO

__all__ = [
    "ROOT_LOGGER",
    "TRACE",
    "LogfmtFormatter",
    "configure_logging",
    "parse_level",
]

ROOT_LOGGER = "mailactors"

# A level below DEBUG for protocol traces (every line sent and received).
TRACE = 5
logging.addLevelName(TRACE, "TRACE")

_LEVELS: dict[str, int] = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# The short level names printed as "l=...".
_LEVEL_LABELS: dict[int, str] = {
    TRACE: "trace",
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}

# Keys whose values are secrets; a key matches when it, or one of its parts
# separated by "_", "-" or ".", is one of these (case-insensitive).
_SECRET_KEYS = frozenset({"password", "pass", "secret", "token", "auth"})
_REDACTED = "***"

# Attributes every LogRecord has; anything else came in through ``extra``.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def parse_level(name: str) -> int:
    """Return the logging level for a name such as "info" or "trace" (case-insensitive)."""
    level = _LEVELS.get(name.strip().lower())
    if level is None:
        valid = ", ".join(_LEVELS)
        raise ValueError(f"unknown log level {name!r}, valid levels: {valid}")
    return level


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if lowered in _SECRET_KEYS:
        return True
    return any(part in _SECRET_KEYS for part in re.split(r"[_\-.]", lowered))


def _escape_bytes(value: bytes) -> str:
    """Show bytes as text: printable ASCII as is, everything else as \\xNN."""
    out = []
    for byte in value:
        if byte == 0x5C:
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def _value_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        return _escape_bytes(bytes(value))
    return str(value)


def _needs_quotes(text: str) -> bool:
    if text == "":
        return False
    return " " in text or '"' in text or "=" in text or not text.isprintable()


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _quote(text: str) -> str:
    out = ['"']
    for ch in text:
        escaped = _ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif not ch.isprintable():
            code = ord(ch)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _logfmt_value(text: str) -> str:
    """Quote and escape a value when logfmt requires it (spaces, quotes, =, non-printables)."""
    return _quote(text) if _needs_quotes(text) else text


@functools.lru_cache(maxsize=1024)
def _logfmt_key(key: str) -> str:
    return _KEY_UNSAFE.sub("_", key) or "_"


class LogfmtFormatter(logging.Formatter):
    """Formats a record as one logfmt line: t, l, pkg, m, then the ``extra`` fields.

    An exception adds an ``err`` field and its traceback as indented lines below.
    """

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """Return the record time as UTC ISO 8601 with milliseconds, e.g. 2026-11-24T17:00:00.123Z."""
        when = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        """Return the logfmt line (plus indented traceback lines) for a record."""
        level = _LEVEL_LABELS.get(record.levelno, record.levelname.lower())
        pkg = record.name
        if pkg.startswith(ROOT_LOGGER + "."):
            pkg = pkg[len(ROOT_LOGGER) + 1 :]
        fields: list[tuple[str, str]] = [
            ("t", self.formatTime(record)),
            ("l", level),
            ("pkg", pkg),
            ("m", record.getMessage()),
        ]
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key.startswith("_"):
                continue
            text = _REDACTED if _is_secret_key(key) else _value_text(value)
            fields.append((_logfmt_key(key), text))
        trailer: list[str] = []
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields.append(("err", f"{type(exc).__name__}: {exc}"))
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            trailer.extend(record.exc_text.splitlines())
        if record.stack_info:
            trailer.extend(self.formatStack(record.stack_info).splitlines())
        line = " ".join(f"{key}={_logfmt_value(text)}" for key, text in fields)
        if not trailer:
            return line
        return "\n".join([line, *("    " + t for t in trailer)])


class _MailactorsHandler(logging.StreamHandler[TextIO]):
    """The handler configure_logging installs; recognised so a second call replaces it."""


# Package loggers whose level configure_logging set, so a later call can reset them.
_configured_packages: set[str] = set()


def configure_logging(
    level: str,
    package_levels: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Set the level and the logfmt handler of the "mailactors" logger.

    ``package_levels`` maps a package ("smtpserver") to a level for the logger
    "mailactors.<pkg>". Calling again replaces the handler and levels set
    earlier instead of adding to them. Records do not propagate to the root
    logger, so each line is written once. Raises ValueError for unknown levels.
    """
    root_level = parse_level(level)
    levels = {pkg: parse_level(name) for pkg, name in (package_levels or {}).items()}
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in list(logger.handlers):
        if isinstance(handler, _MailactorsHandler):
            logger.removeHandler(handler)
            handler.close()
    handler = _MailactorsHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    logger.addHandler(handler)
    logger.setLevel(root_level)
    logger.propagate = False
    for pkg in _configured_packages - set(levels):
        logging.getLogger(f"{ROOT_LOGGER}.{pkg}").setLevel(logging.NOTSET)
    _configured_packages.clear()
    for pkg, pkg_level in levels.items():
        logging.getLogger(f"{ROOT_LOGGER}.{pkg}").setLevel(pkg_level)
        _configured_packages.add(pkg)
