"""What the web app asks of the running server, as an interface.

The HttpSessionActor implements it with asks to actors (limiter, queue, the
"tlsrpt" DatabaseActor); unit tests implement it with plain objects. The app
itself reads databases only through read-only stores it opens per request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from mailactors.protocol.dns import Resolver
from mailactors.protocol.tlsrpt import Report

__all__ = ["BackendUnavailable", "WebBackend"]


class BackendUnavailable(Exception):
    """The actor that would answer is not running or did not answer in time."""


class WebBackend(Protocol):
    """The server as the web pages see it."""

    def auth_allowed(self, ip: str) -> bool:
        """May this client address try a password now (rate limit of failed logins)?"""
        ...

    def auth_result(self, ip: str, success: bool) -> None:
        """Report the outcome of a login attempt to the rate limiter."""
        ...

    def queue_control(self, action: str, ids: tuple[int, ...] | None) -> Any:
        """QueueControl to the queue actor ("kick", "drop"); raises BackendUnavailable."""
        ...

    def store_tls_report(self, report: Report, from_addr: str, received_at: datetime) -> int | None:
        """Store a received TLS report; its id, None for a duplicate; BackendUnavailable."""
        ...

    @property
    def resolver(self) -> Resolver:
        """For the DNS check pages."""
        ...
