"""Tests for mailactors.storage.changes: frozen, slotted, picklable events."""

from __future__ import annotations

import dataclasses
import pickle
import typing

import pytest

from mailactors.storage.changes import (
    Change,
    ChangeAddMailbox,
    ChangeAddUID,
    ChangeFlags,
    ChangeRemoveMailbox,
    ChangeRemoveUIDs,
    ChangeRenameMailbox,
)

EXAMPLES: list[Change] = [
    ChangeAddUID(1, 7, 42, ("\\Seen", "$Label"), 1234),
    ChangeRemoveUIDs(1, (3, 4, 9), 43),
    ChangeFlags(1, 7, 44, ()),
    ChangeAddMailbox(2, "Lists/python", None),
    ChangeAddMailbox(3, "Sent", "\\Sent"),
    ChangeRemoveMailbox(2, "Lists/python"),
    ChangeRenameMailbox(4, "Work", "Archive/Work"),
]


@pytest.mark.parametrize("change", EXAMPLES)
def test_changes_pickle_and_are_frozen(change: Change) -> None:
    assert pickle.loads(pickle.dumps(change)) == change
    assert not hasattr(change, "__dict__")  # slotted
    field = dataclasses.fields(change)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(change, field, 0)
    assert hash(change) == hash(pickle.loads(pickle.dumps(change)))


def test_change_union_names_every_event() -> None:
    assert set(typing.get_args(Change)) == {type(c) for c in EXAMPLES}
