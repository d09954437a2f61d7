"""localserve: the development server's special replies.

A localpart ending in "temperror" fails with 451, in "permerror" with 550, in three
digits 400-599 with that code. The failure happens at the end of DATA, at RCPT TO when
the localpart starts with "rcptto", at MAIL FROM when it starts with "mailfrom".
"""

from __future__ import annotations

from mailactors.protocol.smtp.reply import Reply


def localserve_reply(localpart: str, stage: str | None) -> Reply | None:
    """The error for this localpart at this stage ("mailfrom", "rcptto", None = DATA)."""
    lp = localpart.lower()
    starts = lp.startswith("mailfrom") or lp.startswith("rcptto")
    if stage is None:
        if starts:
            return None
    elif not lp.startswith(stage):
        return None
    if lp.endswith("temperror"):
        return Reply(451, "4.0.0", "temporary failure requested by localpart")
    if lp.endswith("permerror"):
        return Reply(550, "5.0.0", "permanent failure requested by localpart")
    tail = lp[-3:]
    if len(lp) >= 3 and tail.isdigit() and 400 <= int(tail) <= 599:
        code = int(tail)
        enhanced = f"{code // 100}.0.0"
        return Reply(code, enhanced, f"failure with code {code} requested by localpart")
    return None
