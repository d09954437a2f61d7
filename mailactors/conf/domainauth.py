"""domains.conf, per domain: DKIM selectors, report addresses, MTA-STS policy.

```yaml
domains:
  example.com:
    dkim:
      selectors:
        2026a: {private_key_file: dkim/2026a.ed25519.pem}
        2026b: {private_key_file: dkim/2026b.rsa.pem, expiration_hours: 72}
      sign: [2026a, 2026b]
    dmarc: {localpart: dmarc-reports, account: admin, mailbox: DMARC}
    tlsrpt: {localpart: tls-reports, account: admin, mailbox: TLSRPT}
    mta_sts: {policy_id: "20261124", mode: enforce, mx: [mail.example.com], max_age: 86400}
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mailactors.conf import names
from mailactors.conf.yamlnodes import Field, NodeReader

__all__ = ["DomainDkim", "DkimSelector", "MtaStsPolicy", "ReportAddress", "read_domain_auth"]

# RFC 6376 3.1: selectors are dot-separated sub-domain labels.
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
# RFC 8461 3.1: sts-id = 1*32(ALPHA / DIGIT)
_STS_ID = re.compile(r"[A-Za-z0-9]{1,32}")
# RFC 8461 3.2: max_age "up to 31557600".
MAX_STS_MAX_AGE = 31557600
# RFC 8461 3.2 mx patterns: a host name, or "*." plus a host name.
_MX_PATTERN = re.compile(r"(\*\.)?[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class DkimSelector:
    """A DKIM key: the selector name and the PEM file with its private key."""

    name: str
    private_key_file: Path
    expiration_hours: int | None = None


@dataclass(frozen=True, slots=True)
class DomainDkim:
    """The domain's selectors and the ones used to sign (in order)."""

    selectors: Mapping[str, DkimSelector]
    sign: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReportAddress:
    """Where incoming DMARC or TLS reports for the domain are delivered."""

    localpart: str
    account: str
    mailbox: str
    line: int = field(default=0, compare=False, repr=False)  # in domains.conf, for errors


@dataclass(frozen=True, slots=True)
class MtaStsPolicy:
    """The MTA-STS policy (RFC 8461 3.2) served for the domain."""

    policy_id: str
    mode: str
    mx: tuple[str, ...]
    max_age: int


@dataclass(frozen=True, slots=True)
class DomainAuth:
    dkim: DomainDkim | None
    dmarc: ReportAddress | None
    tlsrpt: ReportAddress | None
    mta_sts: MtaStsPolicy | None


AUTH_KEYS = ("dkim", "dmarc", "tlsrpt", "mta_sts")


def _dkim(reader: NodeReader, item: Field, base_dir: Path) -> DomainDkim:
    fields = reader.section(item, known=("selectors", "sign"), required=("selectors",))
    selectors: dict[str, DkimSelector] = {}
    if "selectors" in fields:
        for name, entry in reader.entries(fields["selectors"]):
            if not _SELECTOR.fullmatch(name):
                reader.error(entry.key_line, entry.key, f"{name!r} is not a valid DKIM selector")
                continue
            sel = reader.section(
                entry,
                known=("private_key_file", "expiration_hours"),
                required=("private_key_file",),
            )
            path: Path | None = None
            if "private_key_file" in sel:
                text = reader.string(sel["private_key_file"])
                if text is not None:
                    path = Path(text) if Path(text).is_absolute() else base_dir / text
                    if not path.is_file():
                        reader.error(
                            sel["private_key_file"].line,
                            sel["private_key_file"].key,
                            f"no such file: {path}",
                        )
            expiration = None
            if "expiration_hours" in sel:
                expiration = reader.integer(sel["expiration_hours"], minimum=1)
            if path is not None:
                selectors[name.lower()] = DkimSelector(name.lower(), path, expiration)
    sign: list[str] = []
    if "sign" in fields:
        for entry in reader.items(fields["sign"]):
            text = reader.string(entry)
            if text is None:
                continue
            if text.lower() not in selectors:
                reader.error(entry.line, entry.key, f"unknown selector {text!r}")
                continue
            sign.append(text.lower())
    else:
        sign = list(selectors)
    return DomainDkim(selectors=selectors, sign=tuple(sign))


def _report_address(reader: NodeReader, item: Field, default_mailbox: str) -> ReportAddress | None:
    fields = reader.section(
        item, known=("localpart", "account", "mailbox"), required=("localpart", "account")
    )
    localpart = account = None
    if "localpart" in fields:
        text = reader.string(fields["localpart"])
        if text is not None:
            try:
                localpart = names.validate_localpart(text)
            except ValueError as exc:
                reader.error(fields["localpart"].line, fields["localpart"].key, str(exc))
    if "account" in fields:
        account = reader.string(fields["account"])
    mailbox = default_mailbox
    if "mailbox" in fields:
        text = reader.string(fields["mailbox"])
        if text is not None:
            try:
                mailbox = names.normalize_mailbox(text)
            except ValueError as exc:
                reader.error(fields["mailbox"].line, fields["mailbox"].key, str(exc))
    if localpart is None or account is None:
        return None
    return ReportAddress(localpart=localpart, account=account, mailbox=mailbox, line=item.key_line)


def _mta_sts(reader: NodeReader, item: Field) -> MtaStsPolicy | None:
    fields = reader.section(
        item, known=("policy_id", "mode", "mx", "max_age"), required=("policy_id", "mode")
    )
    policy_id = mode = None
    if "policy_id" in fields:
        text = reader.string(fields["policy_id"])
        if text is not None and not _STS_ID.fullmatch(text):
            reader.error(
                fields["policy_id"].line,
                fields["policy_id"].key,
                "policy_id must be 1 to 32 letters and digits (RFC 8461 3.1)",
            )
        elif text is not None:
            policy_id = text
    if "mode" in fields:
        text = reader.string(fields["mode"])
        if text is not None and text not in ("enforce", "testing", "none"):
            reader.error(
                fields["mode"].line, fields["mode"].key, "mode must be enforce, testing or none"
            )
        elif text is not None:
            mode = text
    mx: list[str] = []
    if "mx" in fields:
        for entry in reader.items(fields["mx"]):
            text = reader.string(entry)
            if text is None:
                continue
            if not _MX_PATTERN.fullmatch(text.lower()):
                reader.error(entry.line, entry.key, f"{text!r} is not a host name or *.pattern")
                continue
            mx.append(text.lower())
    if mode in ("enforce", "testing") and not mx:
        reader.error(item.line, item.key, "mx is required unless mode is none (RFC 8461 3.2)")
    max_age = 86400
    if "max_age" in fields:
        max_age = reader.integer(fields["max_age"], minimum=1, maximum=MAX_STS_MAX_AGE) or max_age
    if policy_id is None or mode is None:
        return None
    return MtaStsPolicy(policy_id=policy_id, mode=mode, mx=tuple(mx), max_age=max_age)


def read_domain_auth(reader: NodeReader, fields: Mapping[str, Field], base_dir: Path) -> DomainAuth:
    """Read the dkim/dmarc/tlsrpt/mta_sts keys of one domain's section."""
    return DomainAuth(
        dkim=_dkim(reader, fields["dkim"], base_dir) if "dkim" in fields else None,
        dmarc=_report_address(reader, fields["dmarc"], "DMARC") if "dmarc" in fields else None,
        tlsrpt=_report_address(reader, fields["tlsrpt"], "TLSRPT") if "tlsrpt" in fields else None,
        mta_sts=_mta_sts(reader, fields["mta_sts"]) if "mta_sts" in fields else None,
    )
