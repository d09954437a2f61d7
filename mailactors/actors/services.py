"""What a session needs to reach: handed to listeners, which hand it to sessions."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pykka

from mailactors.conf import Config

if TYPE_CHECKING:
    from mailactors.actors.dkimsign import DkimSigner
    from mailactors.actors.inbound import InboundChecker


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
    queue: pykka.ActorRef[Any] | None = None
    dkim: DkimSigner | None = None
    # Runs SPF, DKIM and DMARC checks of incoming mail off the session's thread.
    inbound: InboundChecker | None = None
    # DatabaseActors by database: "dmarceval", "dmarcrpt", "tlsrpt", "tlsrptresult", "mtasts".
    databases: Mapping[str, pykka.ActorRef[Any]] = field(default_factory=dict)

    def store_for(self, account: str) -> pykka.ActorRef[Any] | None:
        return self.stores.get(account)


@dataclass(frozen=True)
class UpdateServices:
    """New wiring after a restart of a long-lived actor (in-process only)."""

    services: Services
