"""StoreActor: the only writer of one account's database.

Deliveries that are waiting in the inbox together are committed in one transaction
(group commit): one directory fsync and one WAL fsync for the whole batch, then every
asking session is told its DeliveryResult and every subscriber the Changes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import pykka

from mailactors.actors.messages import (
    Appended,
    AppendMessages,
    Changes,
    Copied,
    CopyMessages,
    CreateMailbox,
    DeleteMailbox,
    DeliveredMessage,
    DeliverMessages,
    DeliveryResult,
    ExpungeMessages,
    FlagsSet,
    GetPasswordCredentials,
    PasswordCredentials,
    Ping,
    RenameMailbox,
    SetFlags,
    SetPasswordCredentials,
    StoreDone,
    StoreFailed,
    Subscribe,
    SubscribeMailbox,
    Unsubscribe,
)
from mailactors.actors.tell import tell_urn
from mailactors.storage.account import (
    AccountStore,
    AccountStoreError,
    DeliveryRequest,
    MailboxExistsError,
    MailboxHasChildrenError,
    MailboxNameError,
    MailboxNotFoundError,
    UidSpaceExhaustedError,
)
from mailactors.storage.changes import Change
from mailactors.storage.files import StorageFullError

# A batch is committed at the latest after this many deliveries, so one busy
# inbox cannot delay its first senders without bound.
MAX_BATCH_DELIVERIES = 256


class StoreActor(pykka.ThreadingActor):
    """Owns the write connection of data/accounts/<account>/index.db."""

    def __init__(self, account: str, directory: Path, log: logging.Logger) -> None:
        super().__init__()
        self.account = account
        self.directory = directory
        self.log = log
        self.store: AccountStore | None = None
        self.pending: list[DeliverMessages] = []
        # Subscriber URN -> its ref, looked up once (a registry lookup per event and
        # subscriber would cost O(actors) each with hundreds of IDLE sessions).
        self.subscribers: dict[str, pykka.ActorRef[Any] | None] = {}

    def on_start(self) -> None:
        self.store = AccountStore(self.directory, self.log)
        self.store.init()
        self.store.ensure_default_mailboxes()
        self.log.debug("store started", extra={"account": self.account})

    def on_stop(self) -> None:
        self._close()

    def on_failure(self, *args: Any) -> None:
        self.log.error("store failed", extra={"account": self.account})
        self._close()

    def _close(self) -> None:
        if self.pending:
            self._flush()
        if self.store is not None:
            self.store.close()
            self.store = None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, DeliverMessages):
            self.pending.append(message)
            queued = sum(len(m.deliveries) for m in self.pending)
            if self.actor_inbox.empty() or queued >= MAX_BATCH_DELIVERIES:
                self._flush()
            return None
        # Any other message first commits what is pending, keeping the order in which
        # sessions asked.
        if self.pending:
            self._flush()
        assert self.store is not None
        if isinstance(message, GetPasswordCredentials):
            creds = self.store.password_credentials()
            if creds is None:
                return None
            salt, iterations, stored_key, server_key = creds
            return PasswordCredentials(salt, iterations, stored_key, server_key)
        if isinstance(message, SetPasswordCredentials):
            c = message.credentials
            self.store.set_password_credentials(c.salt, c.iterations, c.stored_key, c.server_key)
            return True
        if isinstance(message, Subscribe):
            self.subscribers[message.subscriber] = pykka.ActorRegistry.get_by_urn(
                message.subscriber
            )
            return True
        if isinstance(message, Unsubscribe):
            self.subscribers.pop(message.subscriber, None)
            return True
        if isinstance(message, _WRITES):
            return self._write(message)
        if isinstance(message, Ping):
            return True
        raise TypeError(f"StoreActor: unexpected message {type(message).__name__}")

    def _flush(self) -> None:
        """Commit every pending delivery in one transaction and answer the askers."""
        batch, self.pending = self.pending, []
        assert self.store is not None
        requests: list[DeliveryRequest] = []
        for msg in batch:
            for d in msg.deliveries:
                requests.append(
                    DeliveryRequest(
                        mailbox=d.mailbox,
                        source=Path(d.source),
                        received=d.received,
                        flags=d.flags,
                        summary=d.summary,
                        size=d.size,
                        create=True,
                    )
                )
        storage_full = False
        error = ""
        try:
            outcomes = self.store.deliver_many(requests)
        except StorageFullError as exc:
            self.log.error("delivery batch failed: storage full", extra={"err": str(exc)})
            outcomes = None
            storage_full = True
            error = "storage full"
        except Exception as exc:
            self.log.exception("delivery batch failed", extra={"account": self.account})
            outcomes = None
            error = str(exc)
        changes: list[Change] = []
        i = 0
        for msg in batch:
            delivered: list[DeliveredMessage | None] = []
            errors: list[str | None] = []
            for d in msg.deliveries:
                if outcomes is None:
                    delivered.append(None)
                    errors.append(error)
                else:
                    out = outcomes[i]
                    if out.message is not None and out.error is None:
                        delivered.append(DeliveredMessage(d.mailbox, out.message.uid, out.message.modseq))
                        errors.append(None)
                        changes.extend(out.changes)
                    else:
                        delivered.append(None)
                        errors.append(out.error or "delivery failed")
                        storage_full = storage_full or "storage full" in (out.error or "")
                i += 1
            result = DeliveryResult(
                request_id=msg.request_id,
                account=self.account,
                delivered=tuple(delivered),
                errors=tuple(errors),
                storage_full=storage_full,
            )
            tell_urn(msg.reply_to, result, self.log)
        if len(batch) > 1:
            self.log.debug("group commit", extra={"requests": len(batch), "messages": len(requests)})
        self._publish(changes)

    def _write(self, message: Any) -> Any:
        """Carry out one IMAP write; publish its changes before answering the asker."""
        assert self.store is not None
        try:
            answer, changes = self._apply(message)
        except MailboxNotFoundError as exc:
            return StoreFailed("nonexistent", str(exc))
        except MailboxExistsError as exc:
            return StoreFailed("exists", str(exc))
        except MailboxHasChildrenError as exc:
            return StoreFailed("haschildren", str(exc))
        except MailboxNameError as exc:
            return StoreFailed("name", str(exc))
        except UidSpaceExhaustedError as exc:
            return StoreFailed("uidspace", str(exc))
        except StorageFullError as exc:
            self.log.error("write failed: storage full", extra={"err": str(exc)})
            return StoreFailed("full", "storage full")
        except (AccountStoreError, ValueError) as exc:
            return StoreFailed("error", str(exc))
        self._publish(changes)
        return answer

    def _apply(self, message: Any) -> tuple[Any, list[Change]]:
        store = self.store
        assert store is not None
        if isinstance(message, SetFlags):
            _, modified, changes = store.set_flags(
                message.mailbox_id,
                message.uids,
                message.flags,
                _flag_mode(message.mode),
                message.unchangedsince,
            )
            return FlagsSet(tuple(modified)), changes
        if isinstance(message, ExpungeMessages):
            _, changes = store.expunge(message.mailbox_id, message.uids)
            return StoreDone(), changes
        if isinstance(message, CopyMessages):
            dst = store.mailbox(message.destination)
            if dst is None:
                raise MailboxNotFoundError(f"mailbox {message.destination!r} does not exist")
            if message.move:
                pairs, changes = store.move_messages(
                    message.mailbox_id, message.uids, message.destination
                )
            else:
                pairs, changes = store.copy_messages(
                    message.mailbox_id, message.uids, message.destination
                )
            return Copied(dst.uidvalidity, tuple(pairs)), changes
        if isinstance(message, AppendMessages):
            return self._append(message)
        if isinstance(message, CreateMailbox):
            _, changes = store.create_mailbox(message.name, message.special_use)
            return StoreDone(), changes
        if isinstance(message, DeleteMailbox):
            return StoreDone(), store.delete_mailbox(message.name)
        if isinstance(message, RenameMailbox):
            return StoreDone(), store.rename_mailbox(message.old, message.new)
        if isinstance(message, SubscribeMailbox):
            if message.subscribe:
                store.subscribe(message.name)
            else:
                store.unsubscribe(message.name)
            return StoreDone(), []
        raise TypeError(f"StoreActor: unexpected write {type(message).__name__}")

    def _append(self, message: AppendMessages) -> tuple[Any, list[Change]]:
        store = self.store
        assert store is not None
        mb = store.mailbox(message.mailbox)
        if mb is None:
            raise MailboxNotFoundError(f"mailbox {message.mailbox!r} does not exist")
        requests = [
            DeliveryRequest(message.mailbox, Path(d.source), d.received, d.flags, d.summary)
            for d in message.deliveries
        ]
        outcomes = store.deliver_many(requests, atomic=True)
        changes: list[Change] = []
        uids: list[int] = []
        errors = [o.error for o in outcomes if o.error is not None or o.message is None]
        for o in outcomes:
            changes.extend(o.changes)
            if o.message is not None:
                uids.append(o.message.uid)
        if errors:
            self._publish(changes)
            if any("storage full" in (e or "") for e in errors):
                raise StorageFullError(28, "storage full")
            raise AccountStoreError(errors[0] or "append failed")
        return Appended(mb.uidvalidity, tuple(uids)), changes

    def _publish(self, changes: list[Change]) -> None:
        if not changes or not self.subscribers:
            return
        event = Changes(self.account, tuple(changes))
        for urn, ref in list(self.subscribers.items()):
            if ref is None:
                if not tell_urn(urn, event, self.log):
                    self.subscribers.pop(urn, None)
                continue
            try:
                ref.tell(event)
            except pykka.ActorDeadError:
                self.subscribers.pop(urn, None)


_WRITES = (
    SetFlags,
    ExpungeMessages,
    CopyMessages,
    AppendMessages,
    CreateMailbox,
    DeleteMailbox,
    RenameMailbox,
    SubscribeMailbox,
)


def _flag_mode(mode: str) -> Literal["add", "remove", "replace"]:
    if mode == "add":
        return "add"
    if mode == "remove":
        return "remove"
    if mode == "replace":
        return "replace"
    raise ValueError(f"unknown flag mode {mode!r}")
