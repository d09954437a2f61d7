"""DkimSigner: signs outgoing mail with the DKIM keys of our domains (domains.conf).

Keys are read once when the server starts; a missing or unreadable key fails the
start with the file named. The signing domain is the From header's domain when it
is one of ours with DKIM selectors (RFC 6376 leaves the choice to the signer; this
aligns the signature for DMARC, RFC 7489 3.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailactors.conf import DomainsConfig
from mailactors.protocol.dkim import DkimKey, DkimKeyError, load_private_key, sign
from mailactors.protocol.dmarc import DmarcFromError, from_domain


class DkimSetupError(Exception):
    """A configured DKIM key cannot be used."""


@dataclass(frozen=True, slots=True)
class _Selector:
    name: str
    key: DkimKey
    expiration_seconds: int | None


class DkimSigner:
    def __init__(self, domains: DomainsConfig) -> None:
        self.keys: dict[str, list[_Selector]] = {}
        for domain in domains.domains.values():
            if domain.dkim is None:
                continue
            selectors = []
            for name in domain.dkim.sign:
                sel = domain.dkim.selectors[name]
                selectors.append(
                    _Selector(
                        name,
                        _load(sel.private_key_file),
                        sel.expiration_hours * 3600 if sel.expiration_hours else None,
                    )
                )
            if selectors:
                self.keys[domain.name] = selectors

    def signing_domain(self, message: bytes) -> str | None:
        try:
            domain = from_domain(message)
        except DmarcFromError:
            return None
        return domain if domain in self.keys else None

    def sign(self, message: bytes, now: int, domain: str | None = None) -> bytes:
        """DKIM-Signature fields (one per signing selector) to put on top, or b""."""
        domain = domain or self.signing_domain(message)
        if domain is None or domain not in self.keys:
            return b""
        fields = []
        for sel in self.keys[domain]:
            expiration = now + sel.expiration_seconds if sel.expiration_seconds else None
            fields.append(
                sign(
                    message,
                    domain=domain,
                    selector=sel.name,
                    key=sel.key,
                    now=now,
                    expiration=expiration,
                )
            )
        return b"".join(fields)


def _load(path: Path) -> DkimKey:
    try:
        return load_private_key(path.read_bytes())
    except OSError as exc:
        raise DkimSetupError(f"cannot read DKIM key {path}: {exc.strerror or exc}") from None
    except DkimKeyError as exc:
        raise DkimSetupError(f"DKIM key {path}: {exc}") from None
