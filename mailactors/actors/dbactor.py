"""DatabaseActor: the only writer of one small database (reports, evaluations, results).

The account StoreActor has its own group commit and change events; the report
databases (dmarceval.db, dmarcrpt.db, tlsrpt.db, tlsrptresult.db, mtasts.db) need
only one writing thread each. A DatabaseActor opens its store in on_start, closes it
in on_stop, and runs `DatabaseWrite` messages against it: frozen dataclasses whose
`apply(store)` calls one method, so they pickle like every other actor message.
Readers (the CLI, the admin pages) open their own read connections.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import pykka

from mailactors.actors.messages import Ping


class Closable(Protocol):
    def init(self) -> None: ...

    def close(self) -> None: ...


class DatabaseWrite(Protocol):
    """A write to run on the actor's store; what `apply` returns answers an ask."""

    def apply(self, store: Any) -> Any: ...


class DatabaseActor(pykka.ThreadingActor):
    def __init__(self, name: str, open_store: Callable[[], Closable], log: logging.Logger) -> None:
        super().__init__()
        self.name = name
        self.open_store = open_store
        self.log = log
        self.store: Closable | None = None

    def on_start(self) -> None:
        store = self.open_store()
        store.init()
        self.store = store

    def on_stop(self) -> None:
        if self.store is not None:
            store, self.store = self.store, None
            store.close()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self.log.error(
            "database actor failed", extra={"db": self.name, "err": str(exception_value)}
        )
        self.on_stop()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ping):
            return True
        apply = getattr(message, "apply", None)
        if apply is None:
            raise TypeError(f"DatabaseActor {self.name}: unexpected {type(message).__name__}")
        assert self.store is not None
        return apply(self.store)
