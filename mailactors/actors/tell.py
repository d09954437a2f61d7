"""Telling an actor by URN, the picklable way to name a reply target."""

from __future__ import annotations

import logging
from typing import Any

import pykka


def tell_urn(urn: str, message: Any, log: logging.Logger) -> bool:
    """Tell the actor with this URN; False when it is gone (it stopped meanwhile)."""
    ref = pykka.ActorRegistry.get_by_urn(urn)
    if ref is None:
        log.debug("reply target gone", extra={"urn": urn, "msg": type(message).__name__})
        return False
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return False
    return True
