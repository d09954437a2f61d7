"""The Organizational Domain of a DNS name (RFC 7489 section 3.2), from the Public Suffix List.

RFC 7489 3.2 computes it as: find the public suffix that matches the most labels of the
name, then add the one label of the name in front of it. A name that is itself a public
suffix (or shorter than one, like a bare unknown TLD) is its own Organizational Domain.

The list is the one the `publicsuffixlist` package ships, ICANN and private sections both
(so "foo.blogspot.com" and "bar.blogspot.com" are different organizations, as the list's
maintainers intend). Names unknown to the list fall under its implicit "*" rule (the last
label is the public suffix).

Names go in and come out as A-labels ("xn--..."), lower case, without a trailing dot. A name
with U-labels is converted first with the stdlib IDNA codec, the same check
protocol/address.py applies to SMTPUTF8 domains.
"""

from __future__ import annotations

import encodings.idna

# A lock only: the list is loaded once, by whichever thread asks first; no thread is started.
import threading  # noqa: TID251
import unicodedata

from publicsuffixlist import PublicSuffixList

__all__ = ["OrgDomainError", "a_label_domain", "organizational_domain"]

# RFC 1035 2.3.4: "labels 63 octets or less", "names 255 octets or less"; in the
# presentation form without the trailing dot that leaves 253 characters.
MAX_LABEL = 63
MAX_NAME = 253

_psl: PublicSuffixList | None = None
_psl_lock = threading.Lock()


class OrgDomainError(ValueError):
    """The text is not a DNS domain name."""


def _public_suffix_list() -> PublicSuffixList:
    """The list, parsed on first use (about 50 ms), exactly once."""
    global _psl
    psl = _psl
    if psl is None:
        with _psl_lock:
            psl = _psl
            if psl is None:
                psl = _psl = PublicSuffixList(accept_unknown=True, accept_encoded_idn=True)
    return psl


def a_label_domain(domain: str) -> str:
    """`domain` lower case, without a trailing dot, each U-label converted to its A-label.

    Raises OrgDomainError for empty or too long names and labels.
    """
    name = domain[:-1] if domain.endswith(".") else domain
    if not name:
        raise OrgDomainError("empty domain")
    labels: list[str] = []
    for label in name.split("."):
        if not label.isascii():
            try:
                label = encodings.idna.ToASCII(unicodedata.normalize("NFC", label).lower()).decode(
                    "ascii"
                )
            except UnicodeError:
                raise OrgDomainError(f"invalid internationalized label in {domain!r}") from None
        if not label or len(label) > MAX_LABEL:
            raise OrgDomainError(f"empty or too long label in {domain!r}")
        labels.append(label.lower())
    result = ".".join(labels)
    if len(result) > MAX_NAME:
        raise OrgDomainError(f"domain too long: {domain!r}")
    return result


def organizational_domain(domain: str) -> str:
    """The Organizational Domain of `domain` (RFC 7489 3.2), as A-labels in lower case.

    "example.co.uk" for "mail.example.co.uk"; "co.uk" for "co.uk" itself.
    """
    name = a_label_domain(domain)
    # RFC 7489 3.2 steps 3 and 4: the longest matching public suffix plus one label.
    org = _public_suffix_list().privatesuffix(name)
    if org is None:
        # The name is a public suffix itself (or shorter): it is its own organization.
        return name
    return str(org)
