"""SMTP replies (RFC 5321 4.2, RFC 2034)."""

from __future__ import annotations

import pytest

from mailactors.protocol.smtp.reply import LocalProtocolError, RemoteProtocolError, Reply


def test_single_and_multi_line() -> None:
    assert Reply(250, "2.0.0", "OK").to_bytes() == b"250 2.0.0 OK\r\n"
    assert Reply(220, None, "mx ESMTP").to_bytes() == b"220 mx ESMTP\r\n"
    assert Reply(334, None, "").to_bytes() == b"334 \r\n"
    assert Reply(550, "5.7.1", ("first", "second", "last")).to_bytes() == (
        b"550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 last\r\n"
    )
    assert Reply(250, None, ()).to_bytes() == b"250 \r\n"
    assert Reply(250, None, "x").is_positive and not Reply(421, "4.7.0", "x").is_positive


@pytest.mark.parametrize(
    ("code", "enhanced", "text"),
    [
        (199, None, "x"),
        (600, None, "x"),
        (250, "5.0.0", "class mismatch"),
        (250, "2.0", "short"),
        (250, "2.a.0", "letters"),
        (250, None, "inject\r\n250 more"),
        (250, None, ("ok", "bare\nLF")),
    ],
)
def test_invalid_replies(code: int, enhanced: str | None, text: str | tuple[str, ...]) -> None:
    with pytest.raises(LocalProtocolError):
        Reply(code, enhanced, text)


def test_remote_protocol_error_carries_reply() -> None:
    reply = Reply(501, "5.5.4", "syntax error")
    error = RemoteProtocolError(reply)
    assert error.reply is reply
    assert str(error) == "501 5.5.4 syntax error"
