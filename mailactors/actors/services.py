"""What a session needs to reach: handed to listeners, which hand it to sessions."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka

from mailactors.conf import Config


@dataclass(frozen=True)
class Services:
    """Immutable wiring of the actor tree; replaced whole when an actor restarts."""

    config: Config
    stores: Mapping[str, pykka.ActorRef[Any]]
    limiter: pykka.ActorRef[Any]
    tls_contexts: Mapping[str, ssl.SSLContext]
    spool_dir: Path
    accounts_dir: Path
    log: logging.Logger

    def store_for(self, account: str) -> pykka.ActorRef[Any] | None:
        return self.stores.get(account)


@dataclass(frozen=True)
class UpdateServices:
    """New wiring after a restart of a long-lived actor (in-process only)."""

    services: Services
