"""Tests for mailactors.log: logfmt formatting, escaping, redaction, configure_logging."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailactors import log


def make_record(
    msg: str = "message delivered",
    *,
    name: str = "mailactors.smtpserver",
    level: int = logging.INFO,
    extra: dict[str, object] | None = None,
    exc_info: Any = None,
) -> logging.LogRecord:
    logger = logging.getLogger(name)
    record = logger.makeRecord(name, level, "f.py", 1, msg, (), exc_info, extra=extra)
    # 2026-11-24T17:00:00.123Z
    record.created = 1795539600.123
    return record


def fmt(record: logging.LogRecord) -> str:
    return log.LogfmtFormatter().format(record)


def test_format_example_line() -> None:
    record = make_record(extra={"cid": "1a2b", "account": "x", "size": 123})
    assert fmt(record) == (
        't=2026-11-24T17:00:00.123Z l=info pkg=smtpserver m="message delivered" '
        "cid=1a2b account=x size=123"
    )


def test_format_levels_and_pkg() -> None:
    assert " l=warn pkg=store " in fmt(make_record(name="mailactors.store", level=logging.WARNING))
    assert " l=error " in fmt(make_record(level=logging.ERROR))
    assert " l=debug " in fmt(make_record(level=logging.DEBUG))
    assert " l=trace " in fmt(make_record(level=log.TRACE))
    assert " pkg=protocol.smtp " in fmt(make_record(name="mailactors.protocol.smtp"))
    assert " pkg=mailactors " in fmt(make_record(name="mailactors"))
    assert " pkg=pykka " in fmt(make_record(name="pykka"))


def test_format_extra_in_insertion_order() -> None:
    line = fmt(make_record("m", extra={"z": 1, "a": 2, "m2": 3}))
    assert line.endswith("m=m z=1 a=2 m2=3")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("plain", "plain"),
        ("two words", '"two words"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a=b", '"a=b"'),
        ("line\nbreak", '"line\\nbreak"'),
        ("tab\there", '"tab\\there"'),
        ("nul\x00", '"nul\\x00"'),
        ("bell\x07 and \\", '"bell\\x07 and \\\\"'),
        ("zwsp\u200b", '"zwsp\\u200b"'),
        ("tag\U000e0001", '"tag\\U000e0001"'),
        ("héllo", "héllo"),
        ("", ""),
        (None, ""),
        (True, "true"),
        (False, "false"),
        (1.5, "1.5"),
        (b"EHLO x\r\n", '"EHLO x\\\\x0d\\\\x0a"'),
        (b"\xff\x00ok", "\\xff\\x00ok"),
        (bytearray(b"ab"), "ab"),
    ],
)
def test_format_value_escaping(value: object, shown: str) -> None:
    line = fmt(make_record("m", extra={"v": value}))
    assert line.endswith(" m=m v=" + shown)


def test_format_message_escaped() -> None:
    line = fmt(make_record('bad "line"\r\nINJECTED l=error'))
    assert "\n" not in line
    assert ' m="bad \\"line\\"\\r\\nINJECTED l=error"' in line


def test_format_message_args() -> None:
    logger = logging.getLogger("mailactors.x")
    record = logger.makeRecord("mailactors.x", logging.INFO, "f.py", 1, "n=%d", (5,), None)
    assert ' m="n=5"' in fmt(record)


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "pass",
        "secret",
        "token",
        "auth",
        "Password",
        "AUTH",
        "auth_payload",
        "api-token",
        "smtp.pass",
    ],
)
def test_format_redacts_secrets(key: str) -> None:
    line = fmt(make_record("login", extra={"user": "bob", key: "hunter2"}))
    assert "hunter2" not in line
    assert line.endswith(f"user=bob {key}=***")


def test_format_does_not_redact_lookalikes() -> None:
    line = fmt(make_record("m", extra={"author": "ann", "passive": 1, "tokens_total": 3}))
    assert line.endswith("author=ann passive=1 tokens_total=3")


def test_format_unsafe_key_replaced() -> None:
    line = fmt(make_record("m", extra={"a b=c": 1}))
    assert line.endswith("m=m a_b_c=1")


def test_format_exception_err_and_traceback() -> None:
    try:
        raise ValueError("bad thing")
    except ValueError:
        record = make_record(
            "session failed", level=logging.ERROR, extra={"cid": "7"}, exc_info=sys.exc_info()
        )
    out = fmt(record)
    first, *rest = out.split("\n")
    assert first.endswith('m="session failed" cid=7 err="ValueError: bad thing"')
    assert rest[0] == "    Traceback (most recent call last):"
    assert rest[-1] == "    ValueError: bad thing"
    assert all(line.startswith("    ") for line in rest)


def test_format_time_is_utc_with_ms() -> None:
    record = make_record()
    record.created = 0.5
    assert fmt(record).startswith("t=1970-01-01T00:00:00.500Z ")


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
        st.one_of(st.text(), st.binary(), st.integers(), st.none()),
        max_size=5,
    ),
    st.text(),
)
def test_format_always_one_line(extra: dict[str, object], msg: str) -> None:
    extra = {k: v for k, v in extra.items() if k not in log._STANDARD_ATTRS}
    line = fmt(make_record(msg, extra=extra))
    assert "\n" not in line and "\r" not in line
    assert line.startswith("t=")
    # Every field is key=value, with values either bare (no space/quote/=) or quoted.
    pattern = r'([A-Za-z0-9_.\-]+=("([^"\\]|\\.)*"|[^ "=]*))( [A-Za-z0-9_.\-]+=("([^"\\]|\\.)*"|[^ "=]*))*'
    assert re.fullmatch(pattern, line), line


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("trace", log.TRACE),
        ("debug", logging.DEBUG),
        ("info", logging.INFO),
        ("warn", logging.WARNING),
        ("warning", logging.WARNING),
        ("error", logging.ERROR),
        ("INFO", logging.INFO),
    ],
)
def test_parse_level(name: str, level: int) -> None:
    assert log.parse_level(name) == level


def test_parse_level_unknown_names_valid_levels() -> None:
    with pytest.raises(
        ValueError,
        match="unknown log level 'loud', valid levels: trace, debug, info, warn, warning, error",
    ):
        log.parse_level("loud")


def test_trace_level_name_registered() -> None:
    assert logging.getLevelName(log.TRACE) == "TRACE"
    assert log.TRACE < logging.DEBUG


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the mailactors loggers back as they were, so other tests (caplog) are unaffected."""
    root = logging.getLogger("mailactors")
    saved = (list(root.handlers), root.level, root.propagate)
    pkgs = {name: logging.getLogger(f"mailactors.{name}").level for name in ("smtpserver", "store")}
    yield
    for handler in list(root.handlers):
        if handler not in saved[0]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved[1])
    root.propagate = saved[2]
    for name, level in pkgs.items():
        logging.getLogger(f"mailactors.{name}").setLevel(level)
    log._configured_packages.clear()


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_writes_logfmt_and_is_idempotent() -> None:
    first = io.StringIO()
    log.configure_logging("info", stream=first)
    stream = io.StringIO()
    log.configure_logging("info", stream=stream)
    root = logging.getLogger("mailactors")
    ours = [h for h in root.handlers if isinstance(h, log._MailactorsHandler)]
    assert len(ours) == 1
    assert root.propagate is False
    logging.getLogger("mailactors.smtpserver").info("hello", extra={"cid": "c1"})
    logging.getLogger("mailactors.smtpserver").debug("hidden")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(" l=info pkg=smtpserver m=hello cid=c1")
    assert first.getvalue() == ""


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_package_levels() -> None:
    stream = io.StringIO()
    log.configure_logging("warn", {"smtpserver": "trace"}, stream=stream)
    logging.getLogger("mailactors.smtpserver").log(log.TRACE, "C: EHLO x")
    logging.getLogger("mailactors.store").info("not shown")
    logging.getLogger("mailactors.store").warning("shown")
    out = stream.getvalue()
    assert 'l=trace pkg=smtpserver m="C: EHLO x"' in out
    assert "not shown" not in out
    assert "m=shown" in out
    # A second call without the package level resets it.
    log.configure_logging("warn", stream=stream)
    assert logging.getLogger("mailactors.smtpserver").level == logging.NOTSET
    assert not logging.getLogger("mailactors.smtpserver").isEnabledFor(logging.INFO)


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_rejects_unknown_level() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        log.configure_logging("info", {"store": "verbose"})
