"""ConnectionSession: what every connection's session actor (SMTP, IMAP) shares.

It owns the socket through a Connection, logs with the connection id, says goodbye
when it crashes, and tells its listener when it ends. Subclasses add the protocol.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

import pykka

from mailactors import metrics
from mailactors.actors.connection import Connection, ConnectionLog, SocketInbox, TlsError
from mailactors.actors.messages import (
    AuthAllowed,
    GetPasswordCredentials,
    PasswordCredentials,
    SessionEnded,
)
from mailactors.actors.services import Services
from mailactors.actors.tell import tell_urn
from mailactors.protocol.sasl.scram import ScramCredentials

# Upper bound for asks down the hierarchy (store, limiter).
ASK_TIMEOUT = 30.0


class CredentialsUnavailable(Exception):
    """The account has no running store to ask for its password hash."""


class ConnectionSession(pykka.ThreadingActor):
    """Base of the session actors: one connection, its log, its end.

    The actor's inbox is a SocketInbox: the actor's own thread reads the socket
    whenever no other message waits.
    """

    @staticmethod
    def _create_actor_inbox() -> Any:
        return SocketInbox()

    def __init__(
        self,
        sock: socket.socket,
        peer_ip: str,
        cid: str,
        services: Services,
        listener_urn: str,
        log: logging.Logger,
    ) -> None:
        super().__init__()
        self.sock = sock
        self.peer_ip = peer_ip
        self.cid = cid
        self.services = services
        self.listener_urn = listener_urn
        self.log = ConnectionLog(log, {"cid": cid})
        self.conn: Connection | None = None
        self.closing = False
        self.localserve = services.config.static.localserve
        self.metrics_kind: str | None = None  # set while the session counts in metrics

    def _open_connection(
        self, kind: str, idle_timeout: float, implicit_tls: ssl.SSLContext | None
    ) -> Connection:
        """Wrap the socket; with implicit TLS the handshake starts with the first bytes."""
        conn = Connection(self.sock, self._inbox(), self.log.logger, self.cid, idle_timeout)
        self.conn = conn
        metrics.session_started(kind)
        self.metrics_kind = kind
        self.log.info("new connection", extra={"remote": self.peer_ip, "kind": kind})
        if implicit_tls is not None:
            conn.start_tls(implicit_tls)
        return conn

    def _receive(self, data: bytes) -> tuple[bytes, bool, bool] | None:
        """Connection.receive (plaintext, eof, handshake_done); on a TLS or write
        error the session is logged and closed, and None returned."""
        assert self.conn is not None
        try:
            return self.conn.receive(data)
        except TlsError as exc:
            self.log.info("tls error", extra={"err": str(exc)})
        except OSError as exc:
            self.log.info("write error", extra={"err": str(exc)})
        self._close()
        return None

    def _inbox(self) -> SocketInbox:
        inbox = self.actor_inbox
        assert isinstance(inbox, SocketInbox)
        return inbox

    def _close(self) -> None:
        """Stop after the current message; on_stop closes the connection."""
        if not self.closing:
            self.closing = True
            self.actor_ref.stop(block=False)

    def _end_connection(self) -> None:
        """Close the connection and tell the listener (from on_stop)."""
        if self.metrics_kind is not None:
            metrics.session_ended(self.metrics_kind)
            self.metrics_kind = None
        if self.conn is not None:
            self.conn.close()
        self._inbox().close()
        tell_urn(self.listener_urn, SessionEnded(self.actor_urn), self.log.logger)
        self.log.debug("connection closed")

    def _crashed(self, goodbye: bytes, exc_info: tuple[Any, Any, Any]) -> None:
        """A crash ends only this session: log it, say goodbye (421 / BYE) if possible."""
        self.log.error("session crashed", exc_info=exc_info)
        if self.conn is not None:
            try:
                self.conn.send(goodbye)
            except (OSError, TlsError, ValueError):
                self.log.debug("could not say goodbye after crash")

    # --- authentication, shared by SMTP AUTH and IMAP LOGIN/AUTHENTICATE -------------

    def _auth_allowed(self) -> bool:
        """Ask the limiter whether this client address may try a password now."""
        try:
            allowed = self.services.limiter.ask(AuthAllowed(self.peer_ip), timeout=ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            return True  # the limiter restarts; do not lock everyone out meanwhile
        return bool(allowed)

    def _account_for_login(self, username: str) -> str | None:
        """The account a login name means: an account name or one of its addresses.

        localserve maps any other name to its one account.
        """
        domains = self.services.config.domains
        if username in domains.accounts:
            return username
        found = domains.account_for_address(username) if "@" in username else None
        if found is not None:
            return found[0].name
        if self.localserve:
            return next(iter(domains.accounts))
        return None

    def _stored_credentials(self, account: str) -> ScramCredentials | None:
        """The account's salted SCRAM-SHA-256 hash, None when it has no password.

        Raises CredentialsUnavailable without a store, and pykka.ActorDeadError or
        pykka.Timeout when the store does not answer.
        """
        store = self.services.store_for(account)
        if store is None:
            raise CredentialsUnavailable(account)
        stored = store.ask(GetPasswordCredentials(), timeout=ASK_TIMEOUT)
        if not isinstance(stored, PasswordCredentials):
            return None
        return ScramCredentials(
            stored.salt, stored.iterations, stored.stored_key, stored.server_key
        )
