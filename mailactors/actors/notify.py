"""DsnNotifier: the DSNs (RFC 3464) the queue sends when delivery fails or is delayed.

A DSN for a local sender is delivered straight into the account's mailbox; for
another sender it is queued with the null reverse-path. No DSN is made about a DSN
(RFC 3461 6.2: a null reverse-path gets none). Reports (DMARC aggregate, TLS) get no
delay DSN at all, and their failure DSN is delivered quietly, already \\Seen, into a
submailbox of the postmaster's mailbox ("Postmaster/dmarc", "Postmaster/tlsrpt"),
never to a human's Inbox.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from mailactors.actors.queue import FailedRecipient, Notice
from mailactors.conf import Config
from mailactors.protocol.dsn import RecipientStatus, compose_dsn
from mailactors.storage.queue import QueuedMessage

# Return the whole message in failure DSNs up to this size; else only its header.
FULL_MESSAGE_MAX = 256 * 1024
REPORT_SUBMAILBOX = {"dmarc-report": "dmarc", "tls-report": "tlsrpt"}


def _when(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


class DsnNotifier:
    def __init__(self, config: Config) -> None:
        self.config = config

    def notify(
        self,
        action: str,
        message: QueuedMessage,
        message_path: Path,
        recipients: Sequence[FailedRecipient],
        now_ms: int,
        will_retry_until_ms: int | None,
    ) -> Notice | None:
        if message.kind == "dsn" or not message.sender:
            return None
        report = message.kind in REPORT_SUBMAILBOX
        if report and action != "failed":
            return None
        statuses = []
        for failed in recipients:
            out = failed.outcome
            default = "5.0.0" if action == "failed" else "4.0.0"
            statuses.append(
                RecipientStatus(
                    address=failed.recipient.address,
                    action="failed" if action == "failed" else "delayed",
                    status=out.enhanced or default,
                    remote_mta=out.remote_mta or None,
                    diagnostic=f"{out.code} {out.enhanced} {out.text}".strip()
                    if out.code
                    else out.text or None,
                    last_attempt=_when(now_ms),
                    will_retry_until=_when(will_retry_until_ms),
                )
            )
        original = message_path.read_bytes()
        hostname = self.config.static.hostname
        data = compose_dsn(
            reporting_mta=hostname,
            original_envelope_id=message.envelope_id,
            arrival=_when(message.queued_at),
            recipients=statuses,
            original_message=original,
            from_addr=f"MAILER-DAEMON@{hostname}",
            to_addr=message.sender,
            message_id=f"{secrets.token_hex(12)}@{hostname}",
            now=datetime.fromtimestamp(now_ms / 1000, UTC),
            full_message=action == "failed" and len(original) <= FULL_MESSAGE_MAX,
            smtputf8=message.smtputf8,
        )
        if report:
            postmaster = self.config.static.postmaster
            return Notice(
                data=data,
                account=postmaster.account,
                mailbox=f"{postmaster.mailbox}/{REPORT_SUBMAILBOX[message.kind]}",
                flags=("\\Seen",),
                recipient=message.sender,
            )
        found = self.config.account_for_address(message.sender)
        if found is not None:
            account, destination = found
            return Notice(data, account.name, destination.mailbox, (), message.sender)
        return Notice(data, None, "", (), message.sender)
