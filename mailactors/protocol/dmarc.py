"""DMARC (RFC 7489): policy records, policy discovery, alignment and the disposition of a message.

Theory of operation: the SMTP session finds the RFC5322.From domain (`from_domain`), has SPF
and DKIM checked (their results come in as `SpfInput` and `DkimInput`, so this module does
not depend on protocol/spf.py or protocol/dkim.py), then calls `evaluate`. `evaluate`
discovers the policy (`lookup`: the From domain, then its Organizational Domain, RFC 7489
6.6.3), checks identifier alignment (3.1), and turns the requested policy into a
disposition, after "sp" for subdomains and "pct" sampling (6.6.4). The caller acts on the
disposition: reject -> `reject_reply` (550 5.7.1), quarantine -> the Junk mailbox, and
records the evaluation for the aggregate report when `reportable`.

A temporary DNS failure makes the status "temperror" with disposition "none": the caller
should answer with a temporary SMTP error so that the sender retries, rather than deliver
or reject on missing information.

Several From addresses (RFC 7489 6.6.1 leaves the choice to the receiver) are refused, as
mox does: `from_domain` raises DmarcFromError, whose `reply` is 550 5.7.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from mailactors.protocol.address import AddressError, parse_domain
from mailactors.protocol.dns import DnsPermanentError, DnsTemporaryError, Resolver
from mailactors.protocol.mime.address import parse_address_list
from mailactors.protocol.mime.headers import HeaderField, scan_header
from mailactors.protocol.orgdomain import OrgDomainError, a_label_domain, organizational_domain
from mailactors.protocol.smtp.reply import Reply

__all__ = [
    "DkimAlignment",
    "DkimInput",
    "DmarcEvaluation",
    "DmarcFromError",
    "DmarcLookup",
    "DmarcRecord",
    "DmarcSyntaxError",
    "PolicyOverrideReason",
    "ReportUri",
    "SpfAlignment",
    "SpfInput",
    "aligned",
    "evaluate",
    "format_record",
    "from_domain",
    "lookup",
    "parse_record",
    "reject_reply",
    "verify_external_destination",
]

Policy = Literal["none", "quarantine", "reject"]
Alignment = Literal["r", "s"]
DmarcStatus = Literal["pass", "fail", "none", "temperror", "permerror"]
LookupStatus = Literal["found", "none", "temperror", "permerror"]
SpfStatus = Literal["none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"]
DkimStatus = Literal["pass", "fail", "neutral", "temperror", "permerror", "policy", "none"]

# RFC 7489 6.3 "pct": "Integer percentage of messages from the Domain Owner's mail stream
# to which the DMARC policy is to be applied" (0..100).
MAX_PCT = 100
# RFC 7489 6.3 "ri": "Interval requested between aggregate reports. Default is 86400." The
# aggregate report schema (appendix C) carries it as xs:unsignedInt.
DEFAULT_REPORT_INTERVAL = 86400
MAX_REPORT_INTERVAL = 2**32 - 1
# RFC 7489 6.2: the size limit units "k", "m", "g", "t" are 2^10, 2^20, 2^30 and 2^40.
_SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
# Far more digits than any sensible report size; bounds the integer conversion.
_MAX_SIZE_DIGITS = 15

_POLICIES: dict[str, Policy] = {"none": "none", "quarantine": "quarantine", "reject": "reject"}
_ALIGNMENTS: dict[str, Alignment] = {"r": "r", "s": "s"}
_WSP = " \t"
# A lookup without a usable record: the DMARC status (a "found" record is always used).
_LOOKUP_STATUS: dict[LookupStatus, DmarcStatus] = {
    "found": "none",
    "none": "none",
    "temperror": "temperror",
    "permerror": "permerror",
}


class DmarcSyntaxError(ValueError):
    """A DMARC record does not follow the grammar of RFC 7489 6.4."""


class DmarcFromError(ValueError):
    """The message has no single RFC5322.From domain to evaluate (RFC 7489 6.6.1).

    `reply` is what the SMTP server answers: the message is refused.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = Reply(550, "5.7.1", reason)


@dataclass(frozen=True, slots=True)
class ReportUri:
    """One "rua"/"ruf" URI (RFC 7489 6.2): the URI, its mailto address and size limit."""

    uri: str
    address: str | None  # "local@domain" of a mailto: URI, percent-decoded; else None
    max_size: int | None  # bytes, from the "!" suffix; None when there is no limit


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """A parsed DMARC policy record (RFC 7489 6.3), defaults filled in."""

    policy: Policy
    subdomain_policy: Policy | None = None  # "sp"; None: "p" applies to subdomains too
    adkim: Alignment = "r"
    aspf: Alignment = "r"
    pct: int = MAX_PCT
    rua: tuple[ReportUri, ...] = ()
    ruf: tuple[ReportUri, ...] = ()
    fo: tuple[str, ...] = ("0",)
    rf: tuple[str, ...] = ("afrf",)
    ri: int = DEFAULT_REPORT_INTERVAL
    # True when "p" (or "sp") was missing or invalid and, because "rua" is valid, the
    # record is treated as "p=none" (RFC 7489 6.6.3 step 6).
    policy_fallback: bool = False


@dataclass(frozen=True, slots=True)
class SpfInput:
    """The SPF result DMARC uses: the status and the domain that was checked.

    The domain is that of MAIL FROM, or the HELO domain when the reverse-path is null
    (RFC 7208 2.4, RFC 7489 3.1.2).
    """

    status: SpfStatus
    domain: str


@dataclass(frozen=True, slots=True)
class DkimInput:
    """The result of verifying one DKIM-Signature (RFC 6376)."""

    status: DkimStatus
    domain: str  # d=
    selector: str  # s=
    signature_b: str = ""  # the first characters of b= (RFC 6008)
    identity: str | None = None  # i=


@dataclass(frozen=True, slots=True)
class SpfAlignment:
    result: SpfInput
    aligned: bool  # passed and aligned with the From domain


@dataclass(frozen=True, slots=True)
class DkimAlignment:
    result: DkimInput
    aligned: bool  # passed and aligned with the From domain


@dataclass(frozen=True, slots=True)
class PolicyOverrideReason:
    """Why the disposition differs from the policy (RFC 7489 appendix C PolicyOverrideReason).

    `type` is one of "forwarded", "sampled_out", "trusted_forwarder", "mailing_list",
    "local_policy", "other".
    """

    type: str
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class DmarcLookup:
    """The outcome of policy discovery (RFC 7489 6.6.3).

    status "found": `record` was published at `record_domain` (the From domain or its
    Organizational Domain); "none": no usable record; "temperror": DNS failed
    temporarily; "permerror": the record is malformed or the name cannot be looked up.
    """

    record: DmarcRecord | None
    record_domain: str | None
    org_domain: str
    status: LookupStatus


@dataclass(frozen=True, slots=True)
class DmarcEvaluation:
    """The DMARC verdict for one message.

    `policy` is the requested policy that governs the message ("sp" for a subdomain when
    the record came from the Organizational Domain, else "p"); `disposition` is what to
    do after "pct" sampling; `policy_applied` is true when a failing message gets the
    requested policy in full. `reportable`: the record asks for aggregate reports ("rua").
    """

    status: DmarcStatus
    disposition: Policy
    policy: Policy | None
    policy_applied: bool
    record: DmarcRecord | None
    record_domain: str | None
    from_domain: str
    org_domain: str
    aligned_spf: bool
    aligned_dkim: bool
    spf: SpfAlignment
    dkim: tuple[DkimAlignment, ...]
    reasons: tuple[PolicyOverrideReason, ...]
    reportable: bool


# ---------------------------------------------------------------------------------------
# Records (RFC 7489 6.3, 6.4)

# RFC 7489 6.4:
#   dmarc-version = "v" *WSP "=" *WSP %x44 %x4d %x41 %x52 %x43 %x31
#   dmarc-sep     = *WSP %x3b *WSP
# The version is case-sensitive ("DMARC1"); 6.6.3 steps 2 and 4: "Records that do not start with
# a "v=" tag that identifies the current version of DMARC are discarded."
_VERSION = re.compile(r"v[ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)")
# RFC 7489 6.2: dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ];
# RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):([^!,\s]+)(?:!([0-9]+)([kmgtKMGT]?))?")
# A report address "local@domain"; the local-part is percent-decoded first.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_MAILTO_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# RFC 7489 6.4: dmarc-fo = "fo" *WSP "=" *WSP ( "0" / "1" / "d" / "s" )
#                          *(*WSP ":" *WSP ( "0" / "1" / "d" / "s" ))
_FO_OPTIONS = frozenset("01ds")
# dmarc-rfmt's Keyword: RFC 5321 4.1.2 Ldh-str (letters, digits, inner hyphens).
_KEYWORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
# RFC 6376 3.2: tag-name = ALPHA *ALNUMPUNC; ALNUMPUNC = ALPHA / DIGIT / "_"
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_DIGITS = re.compile(r"[0-9]+")


def is_dmarc_record(text: str) -> bool:
    """Whether a TXT record starts with "v=DMARC1" (RFC 7489 6.6.3 steps 2 and 4)."""
    return _VERSION.match(text) is not None


def _tag_values(text: str) -> list[tuple[str, str]]:
    """Split `tag=value; tag=value` (RFC 6376 3.2 tag-list, as RFC 7489 6.3 uses it)."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for part in text.split(";"):
        part = part.strip(_WSP)
        if not part:
            # RFC 7489 6.4: a trailing [dmarc-sep] is allowed; we allow empty parts anywhere.
            continue
        tag, sep, value = part.partition("=")
        tag = tag.strip(_WSP)
        if not sep or _TAG_NAME.fullmatch(tag) is None:
            raise DmarcSyntaxError(f"malformed tag {part!r}")
        # RFC 6376 3.2: "Tags with duplicate names MUST NOT occur within a single tag-list".
        if tag.lower() in seen:
            raise DmarcSyntaxError(f"duplicate tag {tag!r}")
        seen.add(tag.lower())
        pairs.append((tag.lower(), value.strip(_WSP)))
    return pairs


def _parse_uri(text: str) -> ReportUri:
    """dmarc-uri (RFC 7489 6.2) -> ReportUri."""
    match = _URI.fullmatch(text)
    if match is None:
        raise DmarcSyntaxError(f"malformed report URI {text!r}")
    scheme, rest, digits, unit = match.groups()
    max_size = None
    if digits is not None:
        if len(digits) > _MAX_SIZE_DIGITS:
            raise DmarcSyntaxError(f"report size limit too large in {text!r}")
        max_size = int(digits) * _SIZE_UNITS[unit.lower()]
    uri = text if digits is None else text[: text.index("!")]
    address = None
    if scheme.lower() == "mailto":
        # RFC 6068 2: mailto: addr-spec with percent-encoding; "?" starts header fields.
        target = unquote(rest.partition("?")[0])
        local, at, domain = target.rpartition("@")
        if not at or not local or _MAILTO_DOMAIN.fullmatch(domain) is None:
            raise DmarcSyntaxError(f"malformed mailto address in {text!r}")
        address = f"{local}@{domain.lower()}"
    return ReportUri(uri=uri, address=address, max_size=max_size)


def _parse_uris(value: str) -> tuple[ReportUri, ...]:
    # RFC 7489 6.4: dmarc-auri = "rua" *WSP "=" *WSP dmarc-uri *(*WSP "," *WSP dmarc-uri)
    return tuple(_parse_uri(item.strip(_WSP)) for item in value.split(","))


def _parse_alignment(tag: str, value: str) -> Alignment:
    # RFC 7489 6.4: dmarc-adkim = "adkim" *WSP "=" *WSP ( "r" / "s" )
    alignment = _ALIGNMENTS.get(value.lower())
    if alignment is None:
        raise DmarcSyntaxError(f"{tag} must be r or s, not {value!r}")
    return alignment


def _parse_number(tag: str, value: str, max_digits: int, maximum: int) -> int:
    # RFC 7489 6.4: dmarc-percent = "pct" *WSP "=" *WSP 1*3DIGIT;
    #               dmarc-ainterval = "ri" *WSP "=" *WSP 1*DIGIT
    if _DIGITS.fullmatch(value) is None or len(value) > max_digits or int(value) > maximum:
        raise DmarcSyntaxError(f"{tag} must be a number up to {maximum}, not {value!r}")
    return int(value)


def _parse_options(tag: str, value: str, valid: frozenset[str] | None) -> tuple[str, ...]:
    # RFC 7489 6.4: dmarc-fo / dmarc-rfmt: items separated by *WSP ":" *WSP
    items = tuple(item.strip(_WSP).lower() for item in value.split(":"))
    for item in items:
        ok = item in valid if valid is not None else _KEYWORD.fullmatch(item) is not None
        if not ok:
            raise DmarcSyntaxError(f"invalid {tag} option {item!r}")
    return items


def parse_record(text: str) -> DmarcRecord:
    """Parse a DMARC TXT record (RFC 7489 6.3, 6.4); raises DmarcSyntaxError.

    RFC 7489 6.4:
        dmarc-record    = dmarc-version dmarc-sep
                          [dmarc-request]
                          [dmarc-sep dmarc-srequest]
                          [dmarc-sep dmarc-auri]
                          [dmarc-sep dmarc-furi]
                          [dmarc-sep dmarc-adkim]
                          [dmarc-sep dmarc-aspf]
                          [dmarc-sep dmarc-ainterval]
                          [dmarc-sep dmarc-fo]
                          [dmarc-sep dmarc-rfmt]
                          [dmarc-sep dmarc-percent]
                          [dmarc-sep]
                          ; components other than dmarc-version and
                          ; dmarc-request may appear in any order
        dmarc-request   = "p" *WSP "=" *WSP ( "none" / "quarantine" / "reject" )
        dmarc-srequest  = "sp" *WSP "=" *WSP ( "none" / "quarantine" / "reject" )

    "v=DMARC1" must come first. We accept "p" at any place after it, as receivers commonly
    do, and ignore unknown tags (6.3: "unknown tags MUST be ignored"). Tag names and
    keyword values are case-insensitive (ABNF string literals).
    """
    if not is_dmarc_record(text):
        raise DmarcSyntaxError('a DMARC record must start with "v=DMARC1"')
    pairs = _tag_values(text)
    policy: Policy | None = None
    subdomain_policy: Policy | None = None
    policy_invalid = False
    rua: tuple[ReportUri, ...] = ()
    ruf: tuple[ReportUri, ...] = ()
    alignments: dict[str, Alignment] = {}
    numbers: dict[str, int] = {}
    options: dict[str, tuple[str, ...]] = {}
    for tag, value in pairs[1:]:
        if tag == "p":
            policy = _POLICIES.get(value.lower())
            policy_invalid = policy is None
        elif tag == "sp":
            subdomain_policy = _POLICIES.get(value.lower())
            policy_invalid = policy_invalid or subdomain_policy is None
        elif tag == "rua":
            rua = _parse_uris(value)
        elif tag == "ruf":
            ruf = _parse_uris(value)
        elif tag in ("adkim", "aspf"):
            alignments[tag] = _parse_alignment(tag, value)
        elif tag == "pct":
            numbers[tag] = _parse_number(tag, value, 3, MAX_PCT)
        elif tag == "ri":
            numbers[tag] = _parse_number(tag, value, 10, MAX_REPORT_INTERVAL)
        elif tag == "fo":
            options[tag] = _parse_options(tag, value, _FO_OPTIONS)
        elif tag == "rf":
            options[tag] = _parse_options(tag, value, None)
    fallback = False
    if policy is None or policy_invalid:
        # RFC 7489 6.6.3 step 6: "If a retrieved policy record does not contain a valid "p"
        # tag, or contains an "sp" tag that is not valid, then: 1. if a "rua" tag is present
        # and contains at least one syntactically valid reporting URI, the Mail Receiver
        # SHOULD act as if a record containing a valid "v" tag and "p=none" was retrieved,
        # and continue processing; 2. otherwise, the Mail Receiver applies no DMARC
        # processing to this message."
        if not rua:
            raise DmarcSyntaxError('the record has no valid "p" tag')
        policy, subdomain_policy, fallback = "none", None, True
    return DmarcRecord(
        policy=policy,
        subdomain_policy=subdomain_policy,
        adkim=alignments.get("adkim", "r"),
        aspf=alignments.get("aspf", "r"),
        pct=numbers.get("pct", MAX_PCT),
        rua=rua,
        ruf=ruf,
        fo=options.get("fo", ("0",)),
        rf=options.get("rf", ("afrf",)),
        ri=numbers.get("ri", DEFAULT_REPORT_INTERVAL),
        policy_fallback=fallback,
    )


def _format_uri(uri: ReportUri) -> str:
    # RFC 7489 6.2: commas and exclamation points inside a URI must be percent-encoded
    # (they separate URIs and start the size limit); a ";" or white space would end the tag.
    if any(c in uri.uri for c in ",!; \t") or _URI.fullmatch(uri.uri) is None:
        raise ValueError(f"report URI {uri.uri!r} cannot be written in a DMARC record")
    if uri.max_size is None:
        return uri.uri
    for unit in "tgmk":
        if uri.max_size and uri.max_size % _SIZE_UNITS[unit] == 0:
            return f"{uri.uri}!{uri.max_size // _SIZE_UNITS[unit]}{unit}"
    return f"{uri.uri}!{uri.max_size}"


def format_record(record: DmarcRecord) -> str:
    """The TXT record text for `record` (RFC 7489 6.3), defaults left out.

    Raises ValueError for report URIs that contain ",", "!", ";" or white space.
    """
    parts = ["v=DMARC1", f"p={record.policy}"]
    if record.subdomain_policy is not None:
        parts.append(f"sp={record.subdomain_policy}")
    if record.rua:
        parts.append("rua=" + ",".join(_format_uri(uri) for uri in record.rua))
    if record.ruf:
        parts.append("ruf=" + ",".join(_format_uri(uri) for uri in record.ruf))
    if record.adkim != "r":
        parts.append(f"adkim={record.adkim}")
    if record.aspf != "r":
        parts.append(f"aspf={record.aspf}")
    if record.ri != DEFAULT_REPORT_INTERVAL:
        parts.append(f"ri={record.ri}")
    if record.fo != ("0",):
        parts.append("fo=" + ":".join(record.fo))
    if record.rf != ("afrf",):
        parts.append("rf=" + ":".join(record.rf))
    if record.pct != MAX_PCT:
        parts.append(f"pct={record.pct}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------
# Policy discovery (RFC 7489 6.6.3)


def _records_at(resolver: Resolver, domain: str) -> list[str]:
    """The TXT records at `_dmarc.<domain>` that start with "v=DMARC1"."""
    # RFC 7489 6.1: the policy record of a domain is the TXT record at "_dmarc." + domain.
    answer = resolver.txt(f"_dmarc.{domain}")
    return [text for text in answer.records if is_dmarc_record(text)]


def lookup(resolver: Resolver, from_domain: str) -> DmarcLookup:
    """Discover the DMARC policy for the RFC5322.From domain (RFC 7489 6.6.3)."""
    try:
        domain = a_label_domain(from_domain)
        org = organizational_domain(domain)
    except OrgDomainError:
        return DmarcLookup(None, None, from_domain, "permerror")
    # RFC 7489 6.6.3 steps 1-3: the From domain first; "If the set is now empty, the Mail
    # Receiver MUST query the DNS for a DMARC TXT record at the DNS domain matching the
    # Organizational Domain in place of the RFC5322.From domain in the message (if
    # different)."
    for candidate in (domain, org) if org != domain else (domain,):
        try:
            records = _records_at(resolver, candidate)
        except DnsTemporaryError:
            return DmarcLookup(None, None, org, "temperror")
        except DnsPermanentError:
            return DmarcLookup(None, None, org, "permerror")
        if not records:
            continue
        # RFC 7489 6.6.3 step 5: "If the remaining set contains multiple records or no
        # records, policy discovery terminates and DMARC processing is not applied to this
        # message."
        if len(records) > 1:
            return DmarcLookup(None, None, org, "none")
        try:
            record = parse_record(records[0])
        except DmarcSyntaxError:
            return DmarcLookup(None, candidate, org, "permerror")
        return DmarcLookup(record, candidate, org, "found")
    return DmarcLookup(None, None, org, "none")


# ---------------------------------------------------------------------------------------
# Alignment and disposition (RFC 7489 3.1, 6.6.2, 6.6.4)


def aligned(identifier: str, from_domain: str, mode: Alignment) -> bool:
    """Whether an authenticated domain aligns with the From domain (RFC 7489 3.1).

    Strict: the two are identical. Relaxed: their Organizational Domains are equal.
    """
    try:
        left = a_label_domain(identifier)
        right = a_label_domain(from_domain)
        if mode == "s":
            return left == right
        return organizational_domain(left) == organizational_domain(right)
    except OrgDomainError:
        return False


def _downgrade(policy: Policy) -> Policy:
    # RFC 7489 6.6.4: when the message is not sampled, "quarantine" becomes "none" and
    # "reject" becomes "quarantine".
    return "quarantine" if policy == "reject" else "none"


def evaluate(
    resolver: Resolver,
    *,
    from_domain: str,
    spf: SpfInput,
    dkim: Sequence[DkimInput],
    pct_draw: int,
) -> DmarcEvaluation:
    """Evaluate DMARC for one message (RFC 7489 6.6).

    `pct_draw` is a number in [0, 100), random in production: the policy is applied when
    it is below the record's "pct".
    """
    if not 0 <= pct_draw < MAX_PCT:
        raise ValueError(f"pct_draw must be in [0, {MAX_PCT}), not {pct_draw}")
    found = lookup(resolver, from_domain)
    record = found.record
    adkim = record.adkim if record is not None else "r"
    aspf = record.aspf if record is not None else "r"
    spf_aligned = spf.status == "pass" and aligned(spf.domain, from_domain, aspf)
    dkim_results = tuple(
        DkimAlignment(sig, sig.status == "pass" and aligned(sig.domain, from_domain, adkim))
        for sig in dkim
    )
    dkim_aligned = any(item.aligned for item in dkim_results)

    def result(
        status: DmarcStatus,
        disposition: Policy = "none",
        policy: Policy | None = None,
        applied: bool = False,
        reasons: tuple[PolicyOverrideReason, ...] = (),
    ) -> DmarcEvaluation:
        return DmarcEvaluation(
            status=status,
            disposition=disposition,
            policy=policy,
            policy_applied=applied,
            record=record,
            record_domain=found.record_domain,
            from_domain=from_domain,
            org_domain=found.org_domain,
            aligned_spf=spf_aligned,
            aligned_dkim=dkim_aligned,
            spf=SpfAlignment(spf, spf_aligned),
            dkim=dkim_results,
            reasons=reasons,
            reportable=record is not None and bool(record.rua),
        )

    if record is None:
        return result(_LOOKUP_STATUS[found.status])
    # RFC 7489 6.3 "sp": "Requested Mail Receiver policy for all subdomains"; it applies
    # when the record came from the Organizational Domain and the From domain is below it.
    policy = record.policy
    if (
        record.subdomain_policy is not None
        and found.record_domain == found.org_domain
        and a_label_domain(from_domain) != found.org_domain
    ):
        policy = record.subdomain_policy
    # RFC 7489 6.6.2: "If one or more of the Authenticated Identifiers align with the
    # RFC5322.From domain, the message is considered to pass the DMARC mechanism check."
    if spf_aligned or dkim_aligned:
        return result("pass", policy=policy)
    # A temporary failure of an identifier that would align may hide a pass: report
    # temperror so the sender retries, rather than applying the policy on partial data.
    if (spf.status == "temperror" and aligned(spf.domain, from_domain, aspf)) or any(
        item.status == "temperror" and aligned(item.domain, from_domain, adkim) for item in dkim
    ):
        return result("temperror", policy=policy)
    if policy == "none":
        return result("fail", "none", policy, applied=True)
    # RFC 7489 6.6.4: "If the "pct" tag is present in the policy record, the Mail Receiver
    # MUST NOT enforce the requested policy on more than the specified percentage of
    # messages."
    if pct_draw < record.pct:
        return result("fail", policy, policy, applied=True)
    return result(
        "fail",
        _downgrade(policy),
        policy,
        applied=False,
        reasons=(PolicyOverrideReason("sampled_out", f"pct={record.pct}"),),
    )


def reject_reply(evaluation: DmarcEvaluation) -> Reply:
    """The SMTP reply for a message whose disposition is "reject"."""
    domain = evaluation.record_domain or evaluation.from_domain
    return Reply(550, "5.7.1", f"rejected by the DMARC policy of {domain}")


# ---------------------------------------------------------------------------------------
# The From domain (RFC 7489 6.6.1)


def from_domain(headers: bytes | Iterable[HeaderField]) -> str:
    """The RFC5322.From domain as A-labels in lower case, or DmarcFromError.

    `headers` is the message (or its header section) as bytes, or its header fields.
    RFC 7489 6.6.1 expects messages without a From field to be rejected and lets the
    receiver choose what to do with several authors; we refuse several From fields and
    several addresses in one, as mox does (RFC 5322 3.6 allows one From field only).
    """
    if isinstance(headers, bytes):
        fields: Iterable[HeaderField] = scan_header(headers, 0, len(headers))[0]
    else:
        fields = headers
    from_fields = [item for item in fields if item.is_named("from")]
    if not from_fields:
        raise DmarcFromError("message has no From header field")
    if len(from_fields) > 1:
        raise DmarcFromError("message has several From header fields")
    # RFC 5322 3.6.2: from = "From:" mailbox-list CRLF; groups are markers with no host.
    addresses = [a for a in parse_address_list(from_fields[0].raw_value) if a.host is not None]
    if not addresses:
        raise DmarcFromError("From header field has no address")
    if len(addresses) > 1:
        raise DmarcFromError("From header field has several addresses")
    host = (addresses[0].host or b"").decode("utf-8", "replace")
    if not host:
        raise DmarcFromError("From address has no domain")
    if host.startswith("["):
        # An address literal has no DNS name to look a policy up for.
        raise DmarcFromError("From address has an address literal, not a domain")
    try:
        # RFC 6532 allows U-labels in the header; DMARC looks up A-labels.
        return a_label_domain(parse_domain(host, smtputf8=True))
    except (AddressError, OrgDomainError):
        raise DmarcFromError("From address has an invalid domain") from None


# ---------------------------------------------------------------------------------------
# External report destinations (RFC 7489 7.1)


def verify_external_destination(resolver: Resolver, policy_domain: str, rua_domain: str) -> bool:
    """Whether `rua_domain` agreed to receive reports about `policy_domain` (RFC 7489 7.1).

    Reports to a domain of the same organization need no check. Otherwise
    "<policy_domain>._report._dmarc.<rua_domain>" must hold a TXT record starting with
    "v=DMARC1". Raises DnsTemporaryError when DNS fails temporarily: retry later.
    """
    try:
        policy = a_label_domain(policy_domain)
        target = a_label_domain(rua_domain)
    except OrgDomainError:
        return False
    if organizational_domain(policy) == organizational_domain(target):
        return True
    # RFC 7489 7.1 steps 2-4: the name is the policy domain, "_report._dmarc" and the
    # destination host. Step 4: on a temporary DNS error "the Mail Receiver MAY elect to
    # temporarily fail the delivery so the verification test can be repeated later".
    try:
        answer = resolver.txt(f"{policy}._report._dmarc.{target}")
    except DnsPermanentError:
        return False
    # Steps 5-7: records are parsed as tag=value lists starting with "v=DMARC1"; the others
    # are discarded; if at least one remains, the destination agreed.
    return any(_is_tag_list_with_version(text) for text in answer.records)


def _is_tag_list_with_version(text: str) -> bool:
    if not is_dmarc_record(text):
        return False
    try:
        _tag_values(text)
    except DmarcSyntaxError:
        return False
    return True
