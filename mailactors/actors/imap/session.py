"""ImapSessionActor: glue between a Connection, the sans-IO IMAP parser and the account store.

Theory of operation: the actor's inbox hands it SocketData; the actor feeds plaintext to
a CommandReader and runs each complete command. Reads use the session's own
read-only database connection (WAL), opened on first need and closed while the
client IDLEs, so idle sessions hold no database memory. Writes are asked of the
account's StoreActor (session -> store, with a timeout); after each commit the store
publishes Changes to every session of the account. The selected-mailbox view
(selected.py) catches up with the database after each command and NOOP, and applies
published Changes directly while the client IDLEs.
"""

from __future__ import annotations

import base64
import logging
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pykka

from mailactors.actors.connection import TlsError
from mailactors.actors.imap import commands_mailbox, commands_message
from mailactors.actors.imap.errors import ImapError
from mailactors.actors.imap.selected import Notify, SelectedMailbox
from mailactors.actors.messages import (
    AuthFailed,
    AuthSucceeded,
    Changes,
    Shutdown,
    SocketData,
    SocketError,
    SocketTimeout,
    Subscribe,
    Unsubscribe,
)
from mailactors.actors.services import Services, UpdateServices
from mailactors.actors.sessionbase import ConnectionSession, CredentialsUnavailable
from mailactors.protocol.imap import commands as c
from mailactors.protocol.imap.framing import (
    DEFAULT_MAX_LITERAL,
    NEED_DATA,
    CommandReader,
    Continue,
    FramingError,
    RawCommand,
)
from mailactors.protocol.imap.parser import ParseError, decode_sasl_response, parse_command
from mailactors.protocol.imap.response import (
    continue_req,
    tagged,
    untagged,
    untagged_status,
)
from mailactors.protocol.sasl.errors import SaslError
from mailactors.protocol.sasl.plain import parse_plain
from mailactors.protocol.sasl.scram import ScramCredentials, ScramServer, new_nonce, verify_password
from mailactors.storage.account import AccountStore

# RFC 3501 5.4: "If a server has an inactivity autologout timer, the duration of that
# timer MUST be at least 30 minutes." IDLE clients re-issue IDLE every 29 minutes
# (RFC 2177), so a little over 30 minutes.
IMAP_IDLE_TIMEOUT = 31 * 60.0
# Upper bound for asks down the hierarchy (store, limiter).
# Not an RFC number: after this many commands answered BAD in a row, say BYE.
MAX_BAD_COMMANDS = 25
# Output is written to the socket in pieces of about this size (large FETCHes).
OUTPUT_CHUNK = 1 << 20

_ANY = (c.Capability, c.Noop, c.Logout, c.Id)
_NOT_AUTHENTICATED = (c.StartTls, c.Authenticate, c.Login)
_AUTHENTICATED = (
    c.Enable,
    c.Select,
    c.Create,
    c.Delete,
    c.Rename,
    c.Subscribe,
    c.Unsubscribe,
    c.List,
    c.Lsub,
    c.Namespace,
    c.Status,
    c.Append,
    c.Idle,
)
_SELECTED = (
    c.Check,
    c.Close,
    c.Unselect,
    c.Expunge,
    c.Search,
    c.Fetch,
    c.Store,
    c.Copy,
    c.Move,
)


@dataclass(frozen=True, slots=True)
class ImapListenerSettings:
    """What kind of IMAP service a listener offers."""

    kind: str  # "imap" (plain + STARTTLS) or "imaps" (implicit TLS)
    hostname: str
    tls: str | None  # name of the TLS key/cert, None without TLS


@dataclass(slots=True)
class _Sasl:
    """An AUTHENTICATE exchange waiting for the client's next line."""

    tag: str
    mechanism: str
    scram: ScramServer | None = None
    stage: str = "first"  # "first", "final" (SCRAM), "done" (SCRAM, server-final sent)
    account: str | None = None


class ImapSessionActor(ConnectionSession):
    """One IMAP connection (imap with STARTTLS, or imaps)."""

    def __init__(
        self,
        sock: socket.socket,
        peer_ip: str,
        cid: str,
        settings: ImapListenerSettings,
        services: Services,
        listener_urn: str,
        log: logging.Logger,
    ) -> None:
        super().__init__(sock, peer_ip, cid, services, listener_urn, log)
        self.settings = settings
        self.reader = CommandReader(max_literal=DEFAULT_MAX_LITERAL, literal_plus=True)
        self.out = bytearray()
        self.account: str | None = None
        self.store: pykka.ActorRef[Any] | None = None
        self.db: AccountStore | None = None
        self.selected: SelectedMailbox | None = None
        self.notify = Notify()
        self.utf8 = False
        self.rev2 = False
        self.idle_tag: str | None = None
        self.sasl: _Sasl | None = None
        self.bad_commands = 0

    # --- lifecycle ------------------------------------------------------------------

    def on_start(self) -> None:
        implicit = self.settings.kind == "imaps"
        ctx = self.services.tls_contexts.get(self.settings.tls or "")
        if implicit and ctx is None:
            raise RuntimeError("imaps listener without a TLS certificate")
        conn = self._open_connection(self.settings.kind, IMAP_IDLE_TIMEOUT, ctx if implicit else None)
        if not implicit:
            self._greeting()
            self._flush()
        conn.start_reading()

    def _greeting(self) -> None:
        caps = " ".join(self.capabilities())
        self._send(untagged_status("OK", "mailactors IMAP server ready", f"[CAPABILITY {caps}]"))

    def on_stop(self) -> None:
        if self.store is not None:
            try:
                self.store.tell(Unsubscribe(self.actor_urn))
            except pykka.ActorDeadError:
                pass
            self.store = None
        self._close_db()
        self._end_connection()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        goodbye = untagged_status("BYE", "internal server error", "[SERVERBUG]")
        self._crashed(goodbye, (exception_type, exception_value, traceback))
        self.on_stop()

    def _close_db(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def reader_db(self) -> AccountStore:
        """The session's read-only connection to the account, opened on first need."""
        if self.db is None:
            assert self.account is not None
            db = AccountStore(
                self.services.accounts_dir / self.account, self.log.logger, readonly=True
            )
            db.init()
            self.db = db
        return self.db

    # --- inbox ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if self.closing:
            return None
        assert self.conn is not None
        if isinstance(message, SocketData):
            self._on_socket_data(message.data)
        elif isinstance(message, Changes):
            self._on_changes(message)
        elif isinstance(message, SocketTimeout):
            self.log.info("idle timeout")
            self._send_and_close(untagged_status("BYE", "autologout, idle for too long"))
        elif isinstance(message, SocketError):
            self.log.info("connection error", extra={"err": message.error})
            self._close()
        elif isinstance(message, Shutdown):
            self._send_and_close(untagged_status("BYE", "server shutting down", "[UNAVAILABLE]"))
        elif isinstance(message, UpdateServices):
            self._on_services_updated(message.services)
        else:
            raise TypeError(f"ImapSessionActor: unexpected message {type(message).__name__}")
        return None

    def _send_and_close(self, data: bytes) -> None:
        self._send(data)
        self._flush()
        self._close()

    def _on_services_updated(self, services: Services) -> None:
        """A long-lived actor restarted: subscribe to the new store and catch up."""
        self.services = services
        if self.account is None:
            return
        store = services.store_for(self.account)
        if store is None or (self.store is not None and store.actor_urn == self.store.actor_urn):
            return
        self.store = store
        store.tell(Subscribe(self.actor_urn))
        self.log.info("resubscribed to restarted store", extra={"account": self.account})
        if self.idle_tag is not None and self.selected is not None:
            # Changes made while no store published them come from the database.
            self._sync(allow_expunge=True)
            self._close_db()
            self._flush()

    def _on_changes(self, message: Changes) -> None:
        # Outside IDLE the view catches up from the database at the next command.
        if self.idle_tag is None or self.selected is None:
            return
        out = self.selected.apply_events(message.changes, self.notify)
        if out:
            self._send(out)
            self._flush()

    def _on_socket_data(self, data: bytes) -> None:
        assert self.conn is not None
        received = self._receive(data)
        if received is None:
            return
        plain, eof, handshake_done = received
        if handshake_done:
            self.log.debug("tls established", extra={"tls": self.conn.tls_description()})
            if self.settings.kind == "imaps":
                self._greeting()
        if plain:
            self.reader.receive_data(plain)
        self._pump()
        if eof:
            self.log.debug("client closed the connection")
            self._close()
            return
        if not self.closing:
            self.conn.want_more()

    def _pump(self) -> None:
        """Run every complete command in the buffer, then send what they produced."""
        while not self.closing:
            if self.idle_tag is not None or self.sasl is not None:
                line = self.reader.read_line()
                if line is NEED_DATA:
                    break
                if isinstance(line, FramingError):
                    self._send(line.response)
                    continue
                assert isinstance(line, bytes)
                if self.idle_tag is not None:
                    self._end_idle(line)
                else:
                    self._on_sasl_line(line)
                continue
            event = self.reader.next_command()
            if event is NEED_DATA:
                break
            if isinstance(event, Continue):
                self._send(continue_req(event.text))
                self._flush()
                continue
            if isinstance(event, FramingError):
                self._send(event.response)
                self._count_bad()
                continue
            assert isinstance(event, RawCommand)
            self._run(event)
            if len(self.out) > OUTPUT_CHUNK:
                self._flush()
        self._flush()

    def _send(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > OUTPUT_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if not self.out or self.conn is None:
            return
        data = bytes(self.out)
        self.out.clear()
        try:
            self.conn.send(data)
        except (OSError, TlsError) as exc:
            self.log.info("write failed", extra={"err": str(exc)})
            self._close()

    def _count_bad(self) -> None:
        self.bad_commands += 1
        if self.bad_commands >= MAX_BAD_COMMANDS:
            self.log.info("too many bad commands")
            self._send_and_close(untagged_status("BYE", "too many bad commands"))

    # --- commands -------------------------------------------------------------------

    def _run(self, raw: RawCommand) -> None:
        try:
            command = parse_command(raw, utf8=self.utf8)
        except ParseError as exc:
            self._send(exc.response)
            self._count_bad()
            return
        tag = command.tag
        if not self._allowed(command):
            self._send(tagged(tag, "BAD", f"{type(command).__name__.upper()} not allowed now"))
            self._count_bad()
            return
        self.bad_commands = 0
        condstore_before = self.notify.condstore
        try:
            result = self._dispatch(command)
        except ImapError as exc:
            if self.selected is not None and exc.status == "NO":
                self._sync(allow_expunge=_may_expunge(command))
            self._send(tagged(tag, exc.status, exc.text, exc.code))
            return
        except pykka.Timeout:
            self.log.error("store did not answer", extra={"cmd": type(command).__name__})
            self._send(tagged(tag, "NO", "try again later", "[UNAVAILABLE]"))
            return
        except pykka.ActorDeadError:
            # The account's store stopped; the supervisor restarts it, and a new
            # session reaches the new one (this one would miss its changes).
            self.log.error("store gone", extra={"cmd": type(command).__name__})
            self._send(tagged(tag, "NO", "try again later", "[UNAVAILABLE]"))
            self._send_and_close(untagged_status("BYE", "please reconnect", "[UNAVAILABLE]"))
            return
        if result is None:
            return  # the handler answered (or will answer) itself
        text, code = result
        if self.selected is not None and not isinstance(command, (c.Select, c.Close, c.Unselect)):
            self._sync(allow_expunge=_may_expunge(command))
            if self.notify.condstore and not condstore_before:
                # RFC 7162 3.1: the first CONDSTORE-enabling command while a mailbox is
                # selected makes the server report the mailbox's HIGHESTMODSEQ.
                modseq = self.selected.modseq
                self._send(untagged_status("OK", "highest modseq", f"[HIGHESTMODSEQ {modseq}]"))
        self._send(tagged(tag, "OK", text, code))

    def _allowed(self, command: c.Command) -> bool:
        if isinstance(command, _ANY):
            return True
        if isinstance(command, _NOT_AUTHENTICATED):
            return self.account is None
        if isinstance(command, _AUTHENTICATED):
            return self.account is not None
        return self.selected is not None

    def _dispatch(self, command: c.Command) -> tuple[str, str | None] | None:
        handler = _HANDLERS.get(type(command))
        if handler is None:
            raise TypeError(f"no handler for {type(command).__name__}")
        return handler(self, command)

    def _sync(
        self,
        *,
        allow_expunge: bool,
        quiet: frozenset[int] = frozenset(),
        modseq_only: frozenset[int] = frozenset(),
        with_uid: bool = False,
        reported: set[int] | None = None,
    ) -> None:
        """Send the untagged updates of the selected mailbox since the view's modseq."""
        view = self.selected
        if view is None:
            return
        changed, vanished = self.reader_db().changes_since(view.mailbox_id, view.modseq)
        out = view.sync(
            changed,
            vanished,
            self.notify,
            allow_expunge=allow_expunge,
            quiet=quiet,
            modseq_only=modseq_only,
            with_uid=with_uid,
            reported=reported,
        )
        if out:
            self._send(out)

    # --- any state ------------------------------------------------------------------

    def capabilities(self) -> list[str]:
        """CAPABILITY data for the current state (RFC 9051 6.1.1)."""
        assert self.conn is not None
        caps = ["IMAP4rev1", "IMAP4rev2"]
        if self.account is None:
            if (
                self.settings.kind == "imap"
                and self.settings.tls is not None
                and not self.conn.tls_active
            ):
                caps.append("STARTTLS")
            if self.conn.tls_active or self.localserve:
                caps += ["AUTH=PLAIN", "AUTH=SCRAM-SHA-256", "SASL-IR"]
            else:
                # RFC 9051 6.2.3: LOGINDISABLED until TLS is active.
                caps.append("LOGINDISABLED")
        caps += [
            "LITERAL+",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "CHILDREN",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "ESEARCH",
            "SEARCHRES",
            "CONDSTORE",
            "QRESYNC",
            "MULTIAPPEND",
            "BINARY",
            "STATUS=SIZE",
            "UTF8=ACCEPT",
            f"APPENDLIMIT={DEFAULT_MAX_LITERAL}",
        ]
        return caps

    def cmd_capability(self, cmd: c.Capability) -> tuple[str, str | None]:
        self._send(untagged("CAPABILITY " + " ".join(self.capabilities())))
        return "CAPABILITY completed", None

    def cmd_noop(self, cmd: c.Noop | c.Check) -> tuple[str, str | None]:
        return f"{type(cmd).__name__.upper()} completed", None

    def cmd_logout(self, cmd: c.Logout) -> None:
        self._send(untagged_status("BYE", "logging out"))
        self._send(tagged(cmd.tag, "OK", "LOGOUT completed"))
        self._flush()
        self._close()

    def cmd_id(self, cmd: c.Id) -> tuple[str, str | None]:
        # RFC 2971 3.1: the server answers with its own identification.
        self._send(untagged('ID ("name" "mailactors")'))
        return "ID completed", None

    # --- not authenticated ----------------------------------------------------------

    def cmd_starttls(self, cmd: c.StartTls) -> None:
        assert self.conn is not None
        ctx = self.services.tls_contexts.get(self.settings.tls or "")
        if ctx is None or self.conn.tls_active or self.settings.kind != "imap":
            raise ImapError("BAD", "STARTTLS not available")
        self._send(tagged(cmd.tag, "OK", "begin TLS negotiation now"))
        self._flush()
        # RFC 9051 6.2.1: anything the client pipelined after STARTTLS is discarded
        # (the STARTTLS command injection attack).
        dropped = self.reader.discard_buffered()
        if dropped:
            self.log.info("discarded plaintext after STARTTLS", extra={"octets": dropped})
        self.conn.start_tls(ctx)
        return None

    def _plaintext_refused(self) -> bool:
        assert self.conn is not None
        return not self.conn.tls_active and not self.localserve

    def _credentials(self, account: str | None) -> ScramCredentials | None:
        if account is None:
            return None
        try:
            return self._stored_credentials(account)
        except CredentialsUnavailable:
            raise ImapError("NO", "account temporarily unavailable", "[UNAVAILABLE]") from None

    def _check_password(self, username: str, password: str) -> str | None:
        account = self._account_for_login(username)
        if account is None:
            return None
        if self.localserve:
            return account
        creds = self._credentials(account)
        if creds is not None and verify_password(creds, password):
            return account
        return None

    def _auth_failed(self, tag: str) -> None:
        self.log.info("authentication failed", extra={"remote": self.peer_ip})
        self.services.limiter.tell(AuthFailed(self.peer_ip))
        raise ImapError("NO", "authentication failed", "[AUTHENTICATIONFAILED]")

    def cmd_login(self, cmd: c.Login) -> tuple[str, str | None]:
        if self._plaintext_refused():
            # RFC 9051 6.2.3: LOGIN is refused before TLS.
            raise ImapError("NO", "LOGIN only after STARTTLS", "[PRIVACYREQUIRED]")
        if not self._auth_allowed():
            raise ImapError("NO", "too many failures, try again later", "[UNAVAILABLE]")
        account = self._check_password(cmd.username, cmd.password)
        if account is None:
            self._auth_failed(cmd.tag)
        assert account is not None
        return self._authenticated(account)

    def _authenticated(self, account: str) -> tuple[str, str | None]:
        store = self.services.store_for(account)
        if store is None:
            raise ImapError("NO", "account temporarily unavailable", "[UNAVAILABLE]")
        self.account = account
        self.store = store
        store.tell(Subscribe(self.actor_urn))
        self.services.limiter.tell(AuthSucceeded(self.peer_ip))
        self.log.info("authenticated", extra={"account": account})
        return "logged in", f"[CAPABILITY {' '.join(self.capabilities())}]"

    def cmd_authenticate(self, cmd: c.Authenticate) -> tuple[str, str | None] | None:
        if self._plaintext_refused():
            raise ImapError("NO", "authentication only after STARTTLS", "[PRIVACYREQUIRED]")
        if cmd.mechanism not in ("PLAIN", "SCRAM-SHA-256"):
            raise ImapError("NO", "unsupported mechanism", "[CANNOT]")
        if not self._auth_allowed():
            raise ImapError("NO", "too many failures, try again later", "[UNAVAILABLE]")
        sasl = _Sasl(cmd.tag, cmd.mechanism)
        if cmd.mechanism == "SCRAM-SHA-256":
            sasl.scram = ScramServer(new_nonce())
        if cmd.initial_response is None:
            self.sasl = sasl
            self._send(continue_req(""))
            return None
        return self._sasl_step(sasl, cmd.initial_response)

    def _on_sasl_line(self, line: bytes) -> None:
        sasl = self.sasl
        assert sasl is not None
        self.sasl = None
        try:
            response = decode_sasl_response(sasl.tag, line)
        except ParseError as exc:
            self._send(exc.response)
            return
        try:
            result = self._sasl_step(sasl, response)
        except ImapError as exc:
            self._send(tagged(sasl.tag, exc.status, exc.text, exc.code))
            return
        except (pykka.Timeout, pykka.ActorDeadError):
            self._send(tagged(sasl.tag, "NO", "try again later", "[UNAVAILABLE]"))
            return
        if result is not None:
            self._send(tagged(sasl.tag, "OK", result[0], result[1]))

    def _sasl_step(self, sasl: _Sasl, response: bytes) -> tuple[str, str | None] | None:
        """One client response of AUTHENTICATE; None when another is expected."""
        if sasl.mechanism == "PLAIN":
            try:
                authzid, authcid, password = parse_plain(response)
            except SaslError:
                self._auth_failed(sasl.tag)
                raise AssertionError("unreachable") from None
            account = None
            if not authzid or authzid == authcid:
                account = self._check_password(authcid, password)
            if account is None:
                self._auth_failed(sasl.tag)
            assert account is not None
            return self._authenticated(account)
        scram = sasl.scram
        assert scram is not None
        try:
            if sasl.stage == "first":
                username = scram.client_first(response)
                sasl.account = self._account_for_login(username)
                creds = self._credentials(sasl.account) or _unknowable_credentials()
                sasl.stage = "final"
                self.sasl = sasl
                self._send(continue_req(base64.b64encode(scram.server_first(creds)).decode()))
                return None
            if sasl.stage == "final":
                server_final = scram.client_final(response)
                sasl.stage = "done"
                self.sasl = sasl
                self._send(continue_req(base64.b64encode(server_final).decode()))
                return None
        except SaslError:
            self._auth_failed(sasl.tag)
        # RFC 9051 6.2.2: after the server's final challenge the client sends an
        # empty response.
        if response or sasl.account is None:
            self._auth_failed(sasl.tag)
        assert sasl.account is not None
        return self._authenticated(sasl.account)

    # --- authenticated ----------------------------------------------------------------

    def cmd_enable(self, cmd: c.Enable) -> tuple[str, str | None]:
        enabled: list[str] = []
        for cap in cmd.capabilities:
            if cap == "CONDSTORE":
                self.notify.condstore = True
            elif cap == "QRESYNC":
                # RFC 7162 3.2.3: enabling QRESYNC implies CONDSTORE.
                self.notify.qresync = True
                self.notify.condstore = True
            elif cap == "IMAP4REV2":
                self.rev2 = True
                self.utf8 = True
            elif cap == "UTF8=ACCEPT":
                # RFC 6855 3: mailbox names and strings are UTF-8 from now on.
                self.utf8 = True
            else:
                continue
            enabled.append("IMAP4rev2" if cap == "IMAP4REV2" else cap)
        self._send(untagged("ENABLED" + "".join(" " + e for e in enabled)))
        return "ENABLE completed", None

    def cmd_idle(self, cmd: c.Idle) -> None:
        if self.selected is not None:
            self._sync(allow_expunge=True)
        self._send(continue_req("idling"))
        self.idle_tag = cmd.tag
        # An idle session holds no database connection; events bring the changes.
        self._close_db()
        return None

    def _end_idle(self, line: bytes) -> None:
        tag = self.idle_tag
        assert tag is not None
        self.idle_tag = None
        if line.strip().upper() != b"DONE":
            self._send(tagged(tag, "BAD", "expected DONE"))
            return
        if self.selected is not None:
            self._sync(allow_expunge=True)
        self._send(tagged(tag, "OK", "IDLE terminated"))


def _may_expunge(command: c.Command) -> bool:
    """RFC 3501 7.4.1: no EXPUNGE while answering FETCH, STORE or SEARCH (UID forms may)."""
    if isinstance(command, (c.Fetch, c.Store, c.Search)):
        return command.uid
    return True


def _unknowable_credentials() -> ScramCredentials:
    """Credentials nobody can match, so unknown users take the same path as known ones."""
    return ScramCredentials(secrets.token_bytes(16), 4096, secrets.token_bytes(32), secrets.token_bytes(32))


def _now() -> datetime:
    return datetime.now(UTC)


Handler = Callable[[ImapSessionActor, Any], "tuple[str, str | None] | None"]

_HANDLERS: dict[type, Handler] = {
    c.Capability: ImapSessionActor.cmd_capability,
    c.Noop: ImapSessionActor.cmd_noop,
    c.Check: ImapSessionActor.cmd_noop,
    c.Logout: ImapSessionActor.cmd_logout,
    c.Id: ImapSessionActor.cmd_id,
    c.StartTls: ImapSessionActor.cmd_starttls,
    c.Login: ImapSessionActor.cmd_login,
    c.Authenticate: ImapSessionActor.cmd_authenticate,
    c.Enable: ImapSessionActor.cmd_enable,
    c.Idle: ImapSessionActor.cmd_idle,
    **commands_mailbox.HANDLERS,
    **commands_message.HANDLERS,
}
