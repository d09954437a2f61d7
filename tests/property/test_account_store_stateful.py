"""AccountStore against a simple in-memory model (hypothesis stateful testing).

Random deliveries, flag changes (with and without UNCHANGEDSINCE), expunges, copies,
moves and close-and-reopen. After every step: the store agrees with the model,
mod-sequences only grow, uids are never reused, expunged rows stay out of normal
queries, and message files match rows exactly (same bytes, no orphans, none missing).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mailactors.storage import db, files
from mailactors.storage.account import AccountStore, DeliveryRequest, MessageInfo
from mailactors.storage.changes import ChangeAddUID, ChangeFlags, ChangeRemoveUIDs

MAILBOXES = ["Inbox", "Archive", "Trash"]
FLAGS = ["\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "$Junk", "work"]
RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

flag_sets = st.frozensets(st.sampled_from(FLAGS), max_size=3)
bodies = st.binary(min_size=0, max_size=64)


@dataclass
class ModelMessage:
    data: bytes
    flags: frozenset[str]
    modseq: int


@dataclass
class ModelMailbox:
    messages: dict[int, ModelMessage] = field(default_factory=dict)
    max_uid: int = 0  # highest uid ever handed out: uids are never reused


class AccountStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="mailactors-stateful-"))
        self.sources = self.tmp / "tmp"
        self.sources.mkdir()
        self.nsources = 0
        self.was_strict = files.strict_mode_enabled()
        files.enable_strict_mode()
        self.log = logging.getLogger("mailactors.test.stateful")
        self.store = AccountStore(self.tmp / "account", self.log)
        self.store.init()
        self.store.ensure_default_mailboxes()
        self.ids = {}
        for name in MAILBOXES:
            mb = self.store.mailbox(name)
            assert mb is not None
            self.ids[name] = mb.id
        self.model = {name: ModelMailbox() for name in MAILBOXES}
        self.modseq = self.store.current_modseq()

    def teardown(self) -> None:
        try:
            self.store.close()
            assert db.open_databases() == []
            assert files.open_files() == []
        finally:
            if not self.was_strict:
                files.disable_strict_mode()
            shutil.rmtree(self.tmp)

    # ---- helpers -----------------------------------------------------------------

    def _source(self, data: bytes) -> Path:
        self.nsources += 1
        p = self.sources / f"m{self.nsources}"
        p.write_bytes(data)
        return p

    def _new_modseq(self, modseq: int) -> None:
        """Every change takes a modseq greater than every earlier one."""
        assert modseq > self.modseq, (modseq, self.modseq)
        self.modseq = modseq

    def _added(self, name: str, info: MessageInfo, data: bytes, flags: frozenset[str]) -> None:
        box = self.model[name]
        assert info.uid > box.max_uid, "uid reused or not increasing"
        assert info.createseq == info.modseq
        box.max_uid = info.uid
        box.messages[info.uid] = ModelMessage(data, flags, info.modseq)

    def _pick_uids(self, data: st.DataObject, name: str) -> list[int]:
        uids = sorted(self.model[name].messages)
        extra = [self.model[name].max_uid + 1]  # a uid that does not exist
        return data.draw(st.lists(st.sampled_from(uids + extra), max_size=4, unique=True))

    # ---- rules -------------------------------------------------------------------

    @rule(name=st.sampled_from([*MAILBOXES, "Missing"]), body=bodies, flags=flag_sets)
    def deliver(self, name: str, body: bytes, flags: frozenset[str]) -> None:
        out = self.store.deliver(DeliveryRequest(name, self._source(body), RECEIVED, tuple(flags)))
        if name == "Missing":
            assert out.message is None and out.error is not None
            return
        assert out.error is None and out.message is not None
        self._new_modseq(out.message.modseq)
        self._added(name, out.message, body, flags)

    @rule(
        batch=st.lists(
            st.tuples(st.sampled_from([*MAILBOXES, "Missing"]), bodies, flag_sets),
            min_size=1,
            max_size=4,
        )
    )
    def deliver_many(self, batch: list[tuple[str, bytes, frozenset[str]]]) -> None:
        reqs = [DeliveryRequest(n, self._source(b), RECEIVED, tuple(f)) for n, b, f in batch]
        outs = self.store.deliver_many(reqs)
        assert len(outs) == len(batch)
        for (name, body, flags), out in zip(batch, outs, strict=True):
            if name == "Missing":
                assert out.message is None and out.error is not None
                continue
            assert out.error is None and out.message is not None
            self._new_modseq(out.message.modseq)
            self._added(name, out.message, body, flags)

    @rule(
        data=st.data(),
        name=st.sampled_from(MAILBOXES),
        flags=flag_sets,
        mode=st.sampled_from(["add", "remove", "replace"]),
        conditional=st.booleans(),
    )
    def set_flags(
        self,
        data: st.DataObject,
        name: str,
        flags: frozenset[str],
        mode: Literal["add", "remove", "replace"],
        conditional: bool,
    ) -> None:
        box = self.model[name]
        uids = self._pick_uids(data, name)
        unchangedsince: int | None = None
        if conditional:
            known = sorted({m.modseq for m in box.messages.values()} | {0, self.modseq})
            unchangedsince = data.draw(st.sampled_from(known))
        updated, modified, changes = self.store.set_flags(
            self.ids[name], uids, tuple(flags), mode, unchangedsince
        )
        expect_modified: list[int] = []
        expect_updated: dict[int, frozenset[str]] = {}
        for uid in sorted(uids):
            msg = box.messages.get(uid)
            if msg is None:
                continue
            # RFC 7162 3.1.3: only messages unchanged since UNCHANGEDSINCE are stored.
            if unchangedsince is not None and msg.modseq > unchangedsince:
                expect_modified.append(uid)
                continue
            if mode == "add":
                new = msg.flags | flags
            elif mode == "remove":
                new = msg.flags - flags
            else:
                new = flags
            if new != msg.flags:
                expect_updated[uid] = new
        assert modified == expect_modified
        assert [m.uid for m in updated] == sorted(expect_updated)
        assert len(changes) == len(updated)
        for info, change in zip(updated, changes, strict=True):
            assert set(info.flags) == expect_updated[info.uid]
            assert isinstance(change, ChangeFlags) and change.modseq == info.modseq
            self._new_modseq(info.modseq)
            box.messages[info.uid].flags = expect_updated[info.uid]
            box.messages[info.uid].modseq = info.modseq

    @rule(data=st.data(), name=st.sampled_from(MAILBOXES), only_deleted=st.booleans())
    def expunge(self, data: st.DataObject, name: str, only_deleted: bool) -> None:
        box = self.model[name]
        if only_deleted:
            expected = sorted(u for u, m in box.messages.items() if "\\Deleted" in m.flags)
            expunged, changes = self.store.expunge(self.ids[name])
        else:
            uids = self._pick_uids(data, name)
            expected = sorted(u for u in uids if u in box.messages)
            expunged, changes = self.store.expunge(self.ids[name], uids)
        assert expunged == expected
        if expected:
            assert len(changes) == 1 and isinstance(changes[0], ChangeRemoveUIDs)
            self._new_modseq(changes[0].modseq)
        else:
            assert changes == []
        for uid in expected:
            del box.messages[uid]

    @rule(
        data=st.data(),
        src=st.sampled_from(MAILBOXES),
        dst=st.sampled_from(MAILBOXES),
        move=st.booleans(),
    )
    def copy_or_move(self, data: st.DataObject, src: str, dst: str, move: bool) -> None:
        uids = self._pick_uids(data, src)
        live = sorted(u for u in uids if u in self.model[src].messages)
        op = self.store.move_messages if move else self.store.copy_messages
        pairs, changes = op(self.ids[src], uids, dst)
        assert [p[0] for p in pairs] == live
        adds = [c for c in changes if isinstance(c, ChangeAddUID)]
        assert [c.uid for c in adds] == [p[1] for p in pairs]
        copied = {u: self.model[src].messages[u] for u in live}
        for (old_uid, new_uid), add in zip(pairs, adds, strict=True):
            msg = copied[old_uid]
            self._new_modseq(add.modseq)
            info = self.store.message(self.ids[dst], new_uid)
            assert info is not None and set(info.flags) == msg.flags
            self._added(dst, info, msg.data, msg.flags)
        if move and live:
            removes = [c for c in changes if isinstance(c, ChangeRemoveUIDs)]
            assert len(removes) == 1 and list(removes[0].uids) == live
            self._new_modseq(removes[0].modseq)
            for uid in live:
                del self.model[src].messages[uid]

    @rule()
    def reopen(self) -> None:
        self.store.close()
        assert db.open_databases() == []
        self.store = AccountStore(self.tmp / "account", self.log)
        self.store.init()
        assert self.store.current_modseq() == self.modseq
        assert self.store.db.integrity_check() == []

    @precondition(lambda self: any(self.model[n].messages for n in MAILBOXES))
    @rule(name=st.sampled_from(MAILBOXES))
    def changes_since_start(self, name: str) -> None:
        changed, vanished = self.store.changes_since(self.ids[name], 0)
        assert [m.uid for m in changed] == sorted(self.model[name].messages)
        assert not set(vanished) & set(self.model[name].messages)

    # ---- invariants -----------------------------------------------------------------

    @invariant()
    def store_matches_model(self) -> None:
        assert self.store.current_modseq() == self.modseq
        expected_files: set[Path] = set()
        for name in MAILBOXES:
            box = self.model[name]
            rows = self.store.messages(self.ids[name])
            assert [m.uid for m in rows] == sorted(box.messages)
            assert not any(m.expunged for m in rows)
            for m in rows:
                want = box.messages[m.uid]
                assert set(m.flags) == want.flags
                assert m.modseq == want.modseq
                assert m.size == len(want.data)
                with self.store.open_message(m) as f:
                    assert f.read() == want.data
                expected_files.add(self.store.message_path(m))
            every = self.store.messages(self.ids[name], include_expunged=True)
            gone = [m for m in every if m.expunged]
            assert not {m.uid for m in gone} & set(box.messages)
            assert all(m.uid <= box.max_uid for m in every)
            mb = self.store.mailbox(name)
            assert mb is not None and mb.uidnext == box.max_uid + 1
            if every:
                assert self.store.highest_modseq(self.ids[name]) == max(m.modseq for m in every)
        on_disk = {p for p in (self.tmp / "account" / "msg").rglob("*") if p.is_file()}
        # No message file without a row, no row without a file.
        assert on_disk == expected_files


AccountStoreMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAccountStore = AccountStoreMachine.TestCase
