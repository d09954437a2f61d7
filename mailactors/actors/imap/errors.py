"""The error a command handler raises to answer with a tagged NO or BAD."""

from __future__ import annotations

from typing import Any

import pykka

from mailactors.actors.messages import StoreFailed

# StoreFailed.kind -> response code (RFC 5530, RFC 9051 7.1).
_CODES = {
    "nonexistent": "[NONEXISTENT]",
    "exists": "[ALREADYEXISTS]",
    "name": "[CANNOT]",
    "haschildren": "[HASCHILDREN]",
    "uidspace": "[LIMIT]",
    "full": "[OVERQUOTA]",
    "error": "[CANNOT]",
}

# Upper bound for asks to the store.
STORE_ASK_TIMEOUT = 30.0


class ImapError(Exception):
    """Answer the current command with `status` (NO or BAD), `text` and a response code."""

    def __init__(self, status: str, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code


def ask_store(store: pykka.ActorRef[Any] | None, message: Any, *, trycreate: bool = False) -> Any:
    """Ask the account's StoreActor for a write; StoreFailed becomes an ImapError.

    With `trycreate`, a missing mailbox is NO [TRYCREATE] (RFC 9051 6.3.12, 6.4.7).
    """
    if store is None:
        raise ImapError("NO", "account temporarily unavailable", "[UNAVAILABLE]")
    answer = store.ask(message, timeout=STORE_ASK_TIMEOUT)
    if isinstance(answer, StoreFailed):
        if trycreate and answer.kind == "nonexistent":
            raise ImapError("NO", "mailbox does not exist", "[TRYCREATE]")
        raise ImapError("NO", answer.text, _CODES.get(answer.kind, "[CANNOT]"))
    return answer
