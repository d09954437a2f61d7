"""Mailbox names and LIST patterns (RFC 3501 6.3.8, RFC 5258 LIST-EXTENDED, RFC 6154).

The store spells the inbox "Inbox"; IMAP clients see "INBOX" (RFC 3501 5.1). The
hierarchy delimiter is "/".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailactors.storage.account import INBOX, Mailbox

DELIMITER = "/"


def imap_name(name: str) -> str:
    """The store's name as IMAP shows it: "Inbox" and "Inbox/x" become "INBOX", "INBOX/x"."""
    if name == INBOX or name.startswith(INBOX + DELIMITER):
        return "INBOX" + name[len(INBOX) :]
    return name


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """A regex for a LIST pattern: "*" matches anything, "%" anything but "/".

    RFC 3501 6.3.8: the reference is prepended to the pattern (with a delimiter when
    the reference does not end in one and the pattern does not start with one).
    """
    if reference and not reference.endswith(DELIMITER) and not pattern.startswith(DELIMITER):
        full = reference + DELIMITER + pattern
    else:
        full = reference + pattern
    out = []
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    text = "".join(out)
    # INBOX is case-insensitive (RFC 3501 5.1).
    if full[:5].upper() == "INBOX" and (len(full) == 5 or full[5] in "/*%"):
        text = "(?i:INBOX)" + "".join(out[5:])
    return re.compile(text + r"\Z", re.DOTALL)


def has_children(name: str, names: Iterable[str]) -> bool:
    """Whether any mailbox lies below `name`."""
    prefix = name + DELIMITER
    return any(n.startswith(prefix) for n in names)


def list_attributes(
    mb: Mailbox | None,
    name: str,
    all_names: set[str],
    *,
    subscribed: bool,
    want_subscribed: bool,
    want_special_use: bool,
) -> list[str]:
    """The mailbox attributes of a LIST response (RFC 5258 3.4, RFC 6154 2)."""
    attrs: list[str] = []
    if mb is None:
        attrs.append("\\NonExistent")
    else:
        # RFC 3348 / RFC 5258 3.4: CHILDREN information.
        attrs.append("\\HasChildren" if has_children(name, all_names) else "\\HasNoChildren")
        if want_special_use and mb.special_use:
            attrs.append(mb.special_use)
    if want_subscribed and subscribed:
        attrs.append("\\Subscribed")
    return attrs
