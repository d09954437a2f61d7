"""The Received: trace header a server adds (RFC 5321 section 4.4, RFC 3848 protocol names)."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from email.utils import format_datetime

from mailactors.protocol.address import AddressError, parse_domain

# RFC 5322 2.1.1: "Each line of characters SHOULD be no more than 78 characters,
# excluding the CRLF."
MAX_HEADER_LINE = 78
# RFC 3848 section 2 (and RFC 3848 "with" protocol types): SMTP, ESMTP, +S for TLS, +A for AUTH.
PROTOCOLS = frozenset({"SMTP", "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"})
# Our bound on how much of a bogus HELO name we echo in a comment.
_MAX_HELO_COMMENT = 64


def _ip_literal(remote_ip: str) -> str:
    """RFC 5321 4.1.3: IPv4-address-literal / IPv6-address-literal."""
    ip = ipaddress.ip_address(remote_ip)
    if ip.version == 6:
        return f"[IPv6:{ip.compressed}]"
    return f"[{ip}]"


def _comment_text(text: str, *, spaces: bool = False) -> str:
    """Make text safe inside a comment (RFC 5322 3.2.2 ctext): no "(", ")", "\\" or controls."""
    low = 32 if spaces else 33
    safe = "".join(c if low <= ord(c) <= 126 and c not in "()\\" else "?" for c in text)
    return safe[:_MAX_HELO_COMMENT]


def received_header(
    *,
    helo: str,
    remote_ip: str,
    by_host: str,
    protocol: str,
    queue_id: str,
    recipient: str | None,
    tls: str | None,
    when: datetime,
) -> bytes:
    """Build a folded "Received:" header ending in CRLF.

    RFC 5321 4.4:
        Time-stamp-line = "Received:" FWS Stamp CRLF
        Stamp           = From-domain By-domain Opt-info [CFWS] ";" FWS date-time
        From-domain     = "FROM" FWS Extended-Domain
        Extended-Domain = Domain / ( Domain FWS "(" TCP-info ")" ) /
                          ( address-literal FWS "(" TCP-info ")" )
        TCP-info        = address-literal / ( Domain FWS address-literal )
        Opt-info        = [Via] [With] [ID] [For] [Additional-Registered-Clauses]
    A HELO name that is not a valid Domain or address-literal is not used as From-domain;
    the client's IP literal is, and the HELO name goes into a comment.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} (RFC 3848)")
    literal = _ip_literal(remote_ip)
    try:
        from_domain = parse_domain(helo, smtputf8=True)
        tcp_info = literal
    except AddressError:
        from_domain = literal
        tcp_info = f"{literal} helo={_comment_text(helo) or '?'}"
    clauses = [f"from {from_domain}", f"({tcp_info})", f"by {by_host}", f"with {protocol}"]
    if tls:
        clauses.append(f"({_comment_text(tls, spaces=True)})")
    clauses.append(f"id {queue_id}")
    if recipient is not None:
        clauses.append(f"for <{recipient}>")
    clauses[-1] += ";"
    clauses.append(format_datetime(when))
    lines: list[str] = []
    line = "Received:"
    for clause in clauses:
        if len(line) + 1 + len(clause) > MAX_HEADER_LINE and line.strip() != "Received:":
            lines.append(line)
            line = "\t" + clause
        else:
            line += " " + clause
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
