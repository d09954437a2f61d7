"""SPF (RFC 7208): record parsing, check_host() and the HELO / MAIL FROM verification.

Theory of operation: `verify_sender` runs `check_host` for the HELO identity
(RFC 7208 section 2.3) and for the MAIL FROM identity (2.4; postmaster@HELO for
a null reverse-path) and says which result DMARC uses. `check_host` (section 4)
validates the domain (4.3), fetches and selects the one "v=spf1" TXT record
(4.4, 4.5), parses it (`parse_record`, the ABNF of sections 4.6.1, 5, 6 and 7.1
quoted beside each rule) and evaluates the directives from left to right
(4.6.2). include and redirect recurse into `_Evaluation.check`; the limits of
4.6.4 (10 DNS-querying terms, 2 void lookups, 10 MX and PTR names) count over
the whole evaluation. A temporary or permanent error anywhere ends it at once:
both are raised as `_Abort` and turned into the result at the top. Macros
(section 7) are expanded when a term is evaluated; the explanation of a "fail"
(exp=, 6.2) is computed last.

DNS goes through the `Resolver` interface of mailactors.protocol.dns; the time
for %{t} comes in as `now`.
"""

from __future__ import annotations

import encodings.idna
import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import quote

from mailactors.protocol.dns import (
    DnsError,
    DnsPermanentError,
    DnsTemporaryError,
    IPAddress,
    Resolver,
)

__all__ = [
    "Directive",
    "SpfIdentity",
    "SpfRecord",
    "SpfResult",
    "SpfStatus",
    "SpfSyntaxError",
    "SpfVerification",
    "check_host",
    "parse_record",
    "received_spf_header",
    "select_record",
    "verify_sender",
]

# RFC 7208 section 4.6.4: "SPF implementations MUST limit the total number of
# those terms to 10 during SPF evaluation".
MAX_DNS_TERMS = 10
# RFC 7208 section 4.6.4: "SPF implementations SHOULD limit "void lookups" to two."
MAX_VOID_LOOKUPS = 2
# RFC 7208 section 4.6.4: "the evaluation of each "MX" record MUST NOT result in
# querying more than 10 address records".
MAX_MX_NAMES = 10
# RFC 7208 section 4.6.4: for PTR, "all records other than the first 10 MUST be ignored".
MAX_PTR_NAMES = 10
# RFC 7208 section 7.3: an expanded name is cut from the left to 253 characters.
MAX_DOMAIN_LENGTH = 253
# RFC 1035 section 2.3.4: labels are 63 octets or less.
MAX_LABEL_LENGTH = 63
# RFC 7208 section 6.2 allows limiting the explanation; RFC 5321 section
# 4.5.3.1.5 limits a reply line to 512 octets including the code and CRLF.
MAX_EXPLANATION_LENGTH = 400


class SpfStatus(StrEnum):
    """The results of check_host() (RFC 7208 section 2.6)."""

    NONE = "none"
    NEUTRAL = "neutral"
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class SpfIdentity(StrEnum):
    """The identity an SPF result is about (RFC 7208 section 9.1 "identity")."""

    MAILFROM = "mailfrom"
    HELO = "helo"


class SpfSyntaxError(ValueError):
    """A record that does not follow the ABNF: check_host() returns "permerror"."""


@dataclass(frozen=True, slots=True)
class SpfResult:
    """The outcome of check_host() for `domain`.

    `mechanism` is the directive that matched (None for the default result),
    `explanation` the expanded exp= text of a "fail", `problem` says what went
    wrong for "temperror" and "permerror".
    """

    status: SpfStatus
    domain: str
    explanation: str | None = None
    mechanism: str | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class SpfVerification:
    """Both checks of an SMTP transaction and the one DMARC uses (RFC 7489 section 4.1)."""

    helo: SpfResult
    mail_from: SpfResult
    identity: SpfIdentity  # MAILFROM, or HELO for a null reverse-path

    @property
    def result(self) -> SpfResult:
        """The result for the DMARC evaluation."""
        return self.mail_from if self.identity is SpfIdentity.MAILFROM else self.helo

    @property
    def domain(self) -> str:
        """The domain DMARC aligns with the From domain."""
        return self.result.domain


# ---------------------------------------------------------------------------
# Records (RFC 7208 sections 4.5, 4.6.1, 5, 6)

_QUALIFIER_STATUS = {
    "+": SpfStatus.PASS,
    "-": SpfStatus.FAIL,
    "~": SpfStatus.SOFTFAIL,
    "?": SpfStatus.NEUTRAL,
}


@dataclass(frozen=True, slots=True)
class Directive:
    """One mechanism with its qualifier, as written in the record (not expanded)."""

    qualifier: str  # "+", "-", "~" or "?"
    mechanism: str  # all include a mx ptr ip4 ip6 exists (lower case)
    domain_spec: str | None = None
    address: IPAddress | None = None  # ip4 / ip6
    ip4_prefix: int | None = None
    ip6_prefix: int | None = None

    def __str__(self) -> str:
        text = ("" if self.qualifier == "+" else self.qualifier) + self.mechanism
        if self.address is not None:
            text += f":{self.address}"
        if self.domain_spec is not None:
            text += f":{self.domain_spec}"
        if self.ip4_prefix is not None:
            text += f"/{self.ip4_prefix}"
        if self.ip6_prefix is not None:
            text += f"/{self.ip6_prefix}" if self.mechanism == "ip6" else f"//{self.ip6_prefix}"
        return text


@dataclass(frozen=True, slots=True)
class SpfRecord:
    """A parsed "v=spf1" record: directives in order, then the modifiers."""

    directives: tuple[Directive, ...] = ()
    redirect: str | None = None  # domain-spec
    explanation: str | None = None  # exp= domain-spec
    unknown_modifiers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        terms = ["v=spf1", *(str(d) for d in self.directives)]
        if self.redirect is not None:
            terms.append(f"redirect={self.redirect}")
        if self.explanation is not None:
            terms.append(f"exp={self.explanation}")
        terms.extend(f"{name}={value}" for name, value in self.unknown_modifiers)
        return " ".join(terms)


_VERSION = "v=spf1"
# name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)", re.DOTALL)
# directive = [ qualifier ] mechanism; qualifier = "+" / "-" / "?" / "~"
_DIRECTIVE = re.compile(r"([+\-?~]?)([A-Za-z][A-Za-z0-9]*)(.*)", re.DOTALL)
# dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ], after an optional domain-spec
_DOMAIN_AND_CIDR = re.compile(r"(?::(.*?))?(?:/([0-9]+))?(?://([0-9]+))?", re.DOTALL)
# ip4-network = qnum "." qnum "." qnum "." qnum; qnum without leading zeros, 0-255
_QNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IP4_NETWORK = re.compile(rf"{_QNUM}\.{_QNUM}\.{_QNUM}\.{_QNUM}")
# ip6-network = <as per Section 2.2 of [RFC4291]>: hex digits, colons, an IPv4 tail
_IP6_NETWORK = re.compile(r"[0-9A-Fa-f:.]+")


def select_record(texts: Sequence[str]) -> str | None:
    """The SPF record among TXT strings (RFC 7208 section 4.5).

    "discard records that do not begin with a version section of exactly
    "v=spf1". Note that the version section is terminated by either an SP
    character or the end of the record." None if there is none; more than one
    raises SpfSyntaxError ("permerror").
    """
    found = [t for t in texts if t[:6].lower() == _VERSION and (len(t) == 6 or t[6] == " ")]
    if len(found) > 1:
        raise SpfSyntaxError(f"{len(found)} SPF records")
    return found[0] if found else None


def parse_record(text: str) -> SpfRecord:
    """Parse a record (RFC 7208 sections 4.6.1, 5, 6); raises SpfSyntaxError.

    record = version terms *SP
    version = "v=spf1"
    terms = *( 1*SP ( directive / modifier ) )
    """
    if not (text[:6].lower() == _VERSION and (len(text) == 6 or text[6] == " ")):
        raise SpfSyntaxError("record does not start with v=spf1")
    for c in text:
        # Terms are made of macro-literal characters (%x21-7E) separated by SP.
        if not " " <= c <= "~":
            raise SpfSyntaxError(f"invalid character {c!r} in record")
    directives: list[Directive] = []
    modifiers: dict[str, str] = {}
    unknown: list[tuple[str, str]] = []
    for term in text[6:].split(" "):
        if not term:
            continue
        modifier = _MODIFIER.fullmatch(term)
        if modifier is None:
            directives.append(_parse_directive(term))
            continue
        name, value = modifier.group(1), modifier.group(2)
        key = name.lower()
        if key in ("redirect", "exp"):
            # RFC 7208 section 6: "These two modifiers MUST NOT appear in a
            # record more than once each. If they do, then check_host() exits
            # with a result of "permerror"."
            if key in modifiers:
                raise SpfSyntaxError(f"{key}= appears more than once")
            # redirect = "redirect" "=" domain-spec; explanation = "exp" "=" domain-spec
            _check_domain_spec(value)
            modifiers[key] = value
        else:
            # unknown-modifier = name "=" macro-string; RFC 7208 section 6:
            # "Unrecognized modifiers MUST be ignored".
            _parse_macro_string(value, explain=False, letters=_ALL_LETTERS)
            unknown.append((name, value))
    return SpfRecord(
        tuple(directives), modifiers.get("redirect"), modifiers.get("exp"), tuple(unknown)
    )


def _parse_directive(term: str) -> Directive:
    """directive = [ qualifier ] mechanism (RFC 7208 section 4.6.1)."""
    match = _DIRECTIVE.fullmatch(term)
    if match is None:
        raise SpfSyntaxError(f"invalid term {term!r}")
    qualifier, name, rest = match.group(1) or "+", match.group(2).lower(), match.group(3)
    if name == "all":
        # all = "all"
        if rest:
            raise SpfSyntaxError(f"invalid all mechanism {term!r}")
        return Directive(qualifier, name)
    if name in ("include", "exists"):
        # include = "include" ":" domain-spec; exists = "exists" ":" domain-spec
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{name} needs a domain: {term!r}")
        _check_domain_spec(rest[1:])
        return Directive(qualifier, name, domain_spec=rest[1:])
    if name == "ptr":
        # ptr = "ptr" [ ":" domain-spec ]
        if rest and not rest.startswith(":"):
            raise SpfSyntaxError(f"invalid ptr mechanism {term!r}")
        if rest:
            _check_domain_spec(rest[1:])
        return Directive(qualifier, name, domain_spec=rest[1:] if rest else None)
    if name in ("a", "mx"):
        # a = "a" [ ":" domain-spec ] [ dual-cidr-length ]; mx likewise
        parts = _DOMAIN_AND_CIDR.fullmatch(rest)
        if parts is None:
            raise SpfSyntaxError(f"invalid {name} mechanism {term!r}")
        spec, cidr4, cidr6 = parts.groups()
        if spec is not None:
            _check_domain_spec(spec)
        return Directive(
            qualifier,
            name,
            domain_spec=spec,
            ip4_prefix=None if cidr4 is None else _cidr(cidr4, 32),
            ip6_prefix=None if cidr6 is None else _cidr(cidr6, 128),
        )
    if name in ("ip4", "ip6"):
        # ip4 = "ip4" ":" ip4-network [ ip4-cidr-length ]
        # ip6 = "ip6" ":" ip6-network [ ip6-cidr-length ]
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{name} needs an address: {term!r}")
        network, slash, prefix = rest[1:].partition("/")
        pattern = _IP4_NETWORK if name == "ip4" else _IP6_NETWORK
        if pattern.fullmatch(network) is None:
            raise SpfSyntaxError(f"invalid {name} address in {term!r}")
        try:
            address: IPAddress = (
                ipaddress.IPv4Address(network) if name == "ip4" else ipaddress.IPv6Address(network)
            )
        except ValueError:
            raise SpfSyntaxError(f"invalid {name} address in {term!r}") from None
        length = _cidr(prefix, 32 if name == "ip4" else 128) if slash else None
        if name == "ip4":
            return Directive(qualifier, name, address=address, ip4_prefix=length)
        return Directive(qualifier, name, address=address, ip6_prefix=length)
    # RFC 7208 section 5: unknown mechanisms are a syntax error ("permerror").
    raise SpfSyntaxError(f"unknown mechanism {name!r}")


def _cidr(text: str, maximum: int) -> int:
    """ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT) ; value range 0-32
    ip6-cidr-length = "/" ("0" / %x31-39 0*2DIGIT) ; value range 0-128"""
    if re.fullmatch(r"0|[1-9][0-9]{0,2}", text) is None or int(text) > maximum:
        raise SpfSyntaxError(f"invalid prefix length /{text} (0-{maximum})")
    return int(text)


# ---------------------------------------------------------------------------
# Macros (RFC 7208 section 7)

_ALL_LETTERS = "slodiphcrtv"
# RFC 7208 section 7.2: c, r and t "are allowed only in "exp" text".
_TERM_LETTERS = "slodiphv"
# delimiter = "." / "-" / "+" / "," / "/" / "_" / "="
_MACRO = re.compile(r"%\{([A-Za-z])([0-9]*)([rR]?)([.\-+,/_=]*)\}")
# toplabel = ( *alphanum ALPHA *alphanum ) /
#            ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
_TOPLABEL = re.compile(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9]")


@dataclass(frozen=True, slots=True)
class _Macro:
    letter: str  # lower case
    escape: bool  # an upper-case letter: URL-escape the result (7.3)
    keep: int | None  # the DIGIT transformer: keep this many right-hand parts
    reverse: bool
    delimiters: str


def _parse_macro_string(text: str, *, explain: bool, letters: str) -> list[str | _Macro]:
    """macro-string / explain-string (RFC 7208 section 7.1); raises SpfSyntaxError.

    explain-string = *( macro-string / SP )
    macro-string = *( macro-expand / macro-literal )
    macro-expand = ( "%{" macro-letter transformers *delimiter "}" )
                   / "%%" / "%_" / "%-"
    macro-literal = %x21-24 / %x26-7E ; visible characters except "%"
    transformers = *DIGIT [ "r" ]

    Literal text comes back as str, each macro-expand as a _Macro ("%%", "%_"
    and "%-" with the letters "%", "_" and "-").
    """
    tokens: list[str | _Macro] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "%":
            if not ("!" <= c <= "~" or (explain and c == " ")):
                raise SpfSyntaxError(f"invalid character {c!r} in {text!r}")
            literal.append(c)
            i += 1
            continue
        if literal:
            tokens.append("".join(literal))
            literal = []
        following = text[i + 1 : i + 2]
        if following in ("%", "_", "-"):
            # "A literal "%" is expressed by "%%". "%_" expands to a single " "
            # space. "%-" expands to a URL-encoded space, viz., "%20"."
            tokens.append(_Macro(following, False, None, False, ""))
            i += 2
            continue
        match = _MACRO.match(text, i)
        if match is None:
            raise SpfSyntaxError(f"invalid macro at {text[i : i + 8]!r}")
        letter, digits, reverse, delimiters = match.groups()
        if letter.lower() not in letters:
            raise SpfSyntaxError(f"macro letter {letter!r} not allowed here")
        keep: int | None = None
        if digits:
            significant = digits.lstrip("0")
            # "If a DIGIT is specified, the value MUST be nonzero."
            if not significant:
                raise SpfSyntaxError(f"zero parts in macro {match.group(0)!r}")
            keep = int(significant) if len(significant) <= 3 else 999
        tokens.append(_Macro(letter.lower(), letter.isupper(), keep, bool(reverse), delimiters))
        i = match.end()
    if literal:
        tokens.append("".join(literal))
    return tokens


def _check_domain_spec(text: str) -> None:
    """domain-spec = macro-string domain-end
    domain-end = ( "." toplabel [ "." ] ) / macro-expand"""
    tokens = _parse_macro_string(text, explain=False, letters=_TERM_LETTERS)
    if not tokens:
        raise SpfSyntaxError("empty domain-spec")
    last = tokens[-1]
    if isinstance(last, _Macro):
        return
    tail = last[:-1] if last.endswith(".") else last
    dot = tail.rfind(".")
    if dot < 0 or _TOPLABEL.fullmatch(tail[dot + 1 :]) is None:
        raise SpfSyntaxError(f"domain-spec {text!r} does not end in a valid top label")


def _split_join(value: str, macro: _Macro) -> str:
    """Split on the delimiters, reverse, keep the right-hand parts, join with "." (7.3)."""
    if macro.delimiters or macro.reverse or macro.keep is not None:
        parts = re.split("[" + re.escape(macro.delimiters or ".") + "]", value)
        if macro.reverse:
            parts.reverse()
        if macro.keep is not None:
            parts = parts[-macro.keep :]
        value = ".".join(parts)
    if macro.escape:
        # "Uppercase macros expand exactly as their lowercase equivalents, and
        # are then URL escaped. URL escaping MUST be performed for characters
        # not in the "unreserved" set" (RFC 3986: ALPHA DIGIT "-" "." "_" "~").
        value = quote(value, safe="-._~")
    return value


# ---------------------------------------------------------------------------
# Names (RFC 7208 section 4.3)


def _a_label_domain(text: str) -> str | None:
    """A valid, multi-label domain name in lower-case A-label form, or None.

    RFC 7208 section 4.3: "If the <domain> is malformed (e.g., label longer
    than 63 characters, zero-length label not at the end, etc.) or is not a
    multi-label domain name, [...] check_host() immediately returns the result
    "none"."
    """
    name = text[:-1] if text.endswith(".") else text
    labels: list[str] = []
    for label in name.split("."):
        if not label.isascii():
            try:
                encoded = encodings.idna.ToASCII(unicodedata.normalize("NFC", label).lower())
            except UnicodeError:
                return None
            label = encoded.decode("ascii")
        if not 0 < len(label) <= MAX_LABEL_LENGTH:
            return None
        if re.fullmatch(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?", label) is None:
            return None
        labels.append(label.lower())
    result = ".".join(labels)
    if len(labels) < 2 or len(result) > MAX_DOMAIN_LENGTH:
        return None
    return result


def _target_name(expanded: str) -> str:
    """An expanded domain-spec as a DNS name (RFC 7208 section 7.3).

    "When the result of macro expansion is used in a domain name query, if the
    expanded domain name exceeds 253 characters [...], the left side is
    truncated to fit, by removing successive domain labels (and their
    following dots) until the total length does not exceed 253 characters."
    """
    name = expanded[:-1] if expanded.endswith(".") else expanded
    while len(name) > MAX_DOMAIN_LENGTH and "." in name:
        name = name.split(".", 1)[1]
    labels = name.split(".")
    if len(name) > MAX_DOMAIN_LENGTH or any(
        not 0 < len(label) <= MAX_LABEL_LENGTH for label in labels
    ):
        raise _Abort(SpfStatus.PERMERROR, f"invalid target name {expanded!r}")
    return name.lower()


def _ip_in(ip: IPAddress, network: IPAddress, prefix: int | None) -> bool:
    if ip.version != network.version:
        return False
    bits = ip.max_prefixlen if prefix is None else prefix
    return ip in ipaddress.ip_network(f"{network}/{bits}", strict=False)


# ---------------------------------------------------------------------------
# check_host() (RFC 7208 sections 4-7)


class _Abort(Exception):
    """Ends the whole evaluation with "temperror" or "permerror"."""

    def __init__(self, status: SpfStatus, problem: str) -> None:
        super().__init__(problem)
        self.status = status
        self.problem = problem


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: SpfStatus
    mechanism: str | None = None
    # The exp= of the record whose directive matched, with that record's domain.
    explanation: tuple[str, str] | None = None


@dataclass
class _Evaluation:
    """The state of one check_host() call, shared by its include/redirect recursion."""

    resolver: Resolver
    ip: IPAddress
    sender: str
    helo: str
    receiver_host: str
    now: datetime
    dns_terms: int = 0
    void_lookups: int = 0
    _validated: list[str] | None = field(default=None, init=False)  # for %{p}

    def check(self, domain: str) -> _Outcome:
        """check_host(<ip>, <domain>, <sender>) without the explanation."""
        record = self._record(domain)
        if record is None:
            return _Outcome(SpfStatus.NONE)
        for directive in record.directives:
            if self._matches(directive, domain):
                exp = None if record.explanation is None else (record.explanation, domain)
                return _Outcome(_QUALIFIER_STATUS[directive.qualifier], str(directive), exp)
        # RFC 7208 section 6.1: "Any "redirect" modifier MUST be ignored if
        # there is an "all" mechanism anywhere in the record."
        if record.redirect is not None and all(d.mechanism != "all" for d in record.directives):
            self._count_dns_term()
            target = _a_label_domain(self._expand_name(record.redirect, domain))
            # "if no SPF record is found, or if the <target-name> is malformed,
            # the result is a "permerror" rather than "none"."
            if target is None:
                raise _Abort(SpfStatus.PERMERROR, f"invalid redirect target in {domain}")
            outcome = self.check(target)
            if outcome.status is SpfStatus.NONE:
                raise _Abort(SpfStatus.PERMERROR, f"no SPF record at redirect target {target}")
            return outcome
        # RFC 7208 section 4.7: no match and no redirect: "neutral".
        return _Outcome(SpfStatus.NEUTRAL)

    def _record(self, domain: str) -> SpfRecord | None:
        """Sections 4.4 and 4.5: the one SPF record of `domain`, None for "none"."""
        try:
            answer = self.resolver.txt(domain)
        except DnsTemporaryError as exc:
            raise _Abort(
                SpfStatus.TEMPERROR, f"looking up the SPF record of {domain}: {exc}"
            ) from None
        except DnsPermanentError:
            return None
        try:
            text = select_record(answer.records)
            return None if text is None else parse_record(text)
        except SpfSyntaxError as exc:
            raise _Abort(SpfStatus.PERMERROR, f"SPF record of {domain}: {exc}") from None

    def _count_dns_term(self) -> None:
        self.dns_terms += 1
        if self.dns_terms > MAX_DNS_TERMS:
            raise _Abort(SpfStatus.PERMERROR, f"more than {MAX_DNS_TERMS} DNS lookups")

    def _void(self, empty: bool) -> None:
        if empty:
            self.void_lookups += 1
            if self.void_lookups > MAX_VOID_LOOKUPS:
                raise _Abort(SpfStatus.PERMERROR, f"more than {MAX_VOID_LOOKUPS} void lookups")

    def _addresses(self, name: str) -> tuple[IPAddress, ...]:
        """A or AAAA records of `name`, the type matching the client's address (5.3)."""
        answer = self.resolver.a(name) if self.ip.version == 4 else self.resolver.aaaa(name)
        return answer.records

    def _matches(self, directive: Directive, domain: str) -> bool:
        """Does a mechanism match (RFC 7208 section 5)? Raises _Abort for errors."""
        mechanism = directive.mechanism
        if mechanism == "all":
            return True
        if mechanism in ("ip4", "ip6"):
            prefix = directive.ip4_prefix if mechanism == "ip4" else directive.ip6_prefix
            assert directive.address is not None
            return _ip_in(self.ip, directive.address, prefix)
        self._count_dns_term()
        spec = directive.domain_spec
        target = domain if spec is None else self._expand_name(spec, domain)
        try:
            if mechanism == "include":
                return self._include(target, domain)
            if mechanism == "a":
                addresses = self._addresses(target)
                self._void(not addresses)
                return self._any_in(addresses, directive)
            if mechanism == "mx":
                return self._mx(target, directive)
            if mechanism == "ptr":
                return bool(self._validated_names(target, count_void=True))
            # exists: "The resulting domain name is used for a DNS A RR lookup
            # (even when the connection type is IPv6). If any A record is
            # returned, this mechanism matches."
            found = self.resolver.a(target).records
            self._void(not found)
            return bool(found)
        except DnsTemporaryError as exc:
            raise _Abort(SpfStatus.TEMPERROR, f"{directive}: {exc}") from None
        except DnsPermanentError as exc:
            raise _Abort(SpfStatus.PERMERROR, f"{directive}: {exc}") from None

    def _any_in(self, addresses: tuple[IPAddress, ...], directive: Directive) -> bool:
        # dual-cidr-length: the IPv4 length for an IPv4 client, the IPv6 one for IPv6.
        prefix = directive.ip4_prefix if self.ip.version == 4 else directive.ip6_prefix
        return any(_ip_in(self.ip, address, prefix) for address in addresses)

    def _include(self, target: str, domain: str) -> bool:
        """RFC 7208 section 5.2: pass matches; fail, softfail, neutral do not;
        temperror and permerror propagate; none is a permerror."""
        name = _a_label_domain(target)
        if name is None:
            raise _Abort(SpfStatus.PERMERROR, f"invalid include target {target!r} in {domain}")
        outcome = self.check(name)
        if outcome.status is SpfStatus.NONE:
            raise _Abort(SpfStatus.PERMERROR, f"no SPF record at include target {name}")
        return outcome.status is SpfStatus.PASS

    def _mx(self, target: str, directive: Directive) -> bool:
        """RFC 7208 section 5.4; no implicit MX: "check_host() MUST NOT apply
        the implicit MX rules of [RFC5321]"."""
        records = self.resolver.mx(target).records
        self._void(not records)
        if len(records) > MAX_MX_NAMES:
            # "If this limit is exceeded, the "mx" mechanism MUST produce a
            # "permerror" result."
            raise _Abort(SpfStatus.PERMERROR, f"{target} has more than {MAX_MX_NAMES} MX records")
        for record in sorted(records, key=lambda r: r.preference):
            if not record.host:
                continue  # the null MX "." (RFC 7505) names no host
            try:
                addresses = self._addresses(record.host)
            except DnsPermanentError:
                continue
            if self._any_in(addresses, directive):
                return True
        return False

    def _validated_names(self, target: str | None, *, count_void: bool) -> list[str]:
        """The validated domain names of <ip> (RFC 7208 section 5.5), those equal
        to or under `target` when given.

        "If a DNS error occurs while doing the PTR RR lookup, then this mechanism
        fails to match. If a DNS error occurs while doing an A RR lookup, then
        that domain name is skipped and the search continues."
        """
        try:
            answer = self.resolver.ptr(self.ip)
        except DnsError:
            return []
        if count_void:
            self._void(not answer.records)
        names = answer.records[:MAX_PTR_NAMES]
        if target is not None:
            names = tuple(n for n in names if n == target or n.endswith("." + target))
        validated = []
        for name in names:
            try:
                if self.ip in self._addresses(name):
                    validated.append(name)
            except DnsError:
                continue
        return validated

    def _p_macro(self, domain: str) -> str:
        """%{p}: "If the <domain> is present in the list of validated domains, it
        SHOULD be used. Otherwise, if a subdomain of the <domain> is present, it
        SHOULD be used. Otherwise, any name from the list can be used. If there
        are no validated domain names or if a DNS error occurs, the string
        "unknown" is used." (RFC 7208 section 7.3)"""
        if self._validated is None:
            self._validated = self._validated_names(None, count_void=False)
        names = self._validated
        for name in names:
            if name == domain:
                return name
        for name in names:
            if name.endswith("." + domain):
                return name
        return names[0] if names else "unknown"

    def _macro_value(self, letter: str, domain: str) -> str:
        local, _, sender_domain = self.sender.rpartition("@")
        # RFC 7208 section 4.3: "If the <sender> has no local-part, substitute
        # the string "postmaster" for the local-part."
        local = local or "postmaster"
        match letter:
            case "s":
                return f"{local}@{sender_domain}"
            case "l":
                return local
            case "o":
                return sender_domain
            case "d":
                return domain
            case "i":
                if self.ip.version == 4:
                    return str(self.ip)
                # "For IPv6 addresses, the "i" macro expands to a dot-format address"
                return ".".join(self.ip.exploded.replace(":", ""))
            case "p":
                return self._p_macro(domain)
            case "v":
                return "in-addr" if self.ip.version == 4 else "ip6"
            case "h":
                return self.helo
            case "c":
                return str(self.ip)
            case "r":
                return self.receiver_host or "unknown"
            case "t":
                now = self.now if self.now.tzinfo is not None else self.now.replace(tzinfo=UTC)
                return str(int(now.timestamp()))
            case "%":
                return "%"
            case "_":
                return " "
            case "-":
                return "%20"
        raise AssertionError(f"unhandled macro letter {letter!r}")

    def expand(self, text: str, domain: str, *, explain: bool, count: bool = True) -> str:
        """Expand a macro-string or explain-string (RFC 7208 section 7.3).

        `count`: a %{p} counts as a DNS-querying term (not while explaining).
        """
        letters = _ALL_LETTERS if explain else _TERM_LETTERS
        out: list[str] = []
        for token in _parse_macro_string(text, explain=explain, letters=letters):
            if isinstance(token, str):
                out.append(token)
            elif token.letter in "%_-":
                out.append(self._macro_value(token.letter, domain))
            else:
                if token.letter == "p" and self._validated is None and count:
                    # RFC 7208 section 4.6.4: the PTR lookups of %{p} count.
                    self._count_dns_term()
                out.append(_split_join(self._macro_value(token.letter, domain), token))
        return "".join(out)

    def _expand_name(self, spec: str, domain: str) -> str:
        try:
            return _target_name(self.expand(spec, domain, explain=False))
        except SpfSyntaxError as exc:
            raise _Abort(SpfStatus.PERMERROR, str(exc)) from None

    def explanation(self, spec: str, domain: str) -> str | None:
        """The exp= text (RFC 7208 section 6.2); None on any problem.

        "If there are any DNS processing errors (any RCODE other than 0), or if
        no records are returned, or if more than one record is returned, or if
        there are syntax errors in the explanation string, then proceed as if
        no "exp" modifier was given."
        """
        try:
            target = _target_name(self.expand(spec, domain, explain=False, count=False))
            records = self.resolver.txt(target).records
            if len(records) != 1:
                return None
            # The explain-string grammar admits only US-ASCII, as 6.2 requires.
            text = self.expand(records[0], domain, explain=True, count=False)
        except (DnsError, SpfSyntaxError, _Abort):
            return None
        return text[:MAX_EXPLANATION_LENGTH]


def check_host(
    resolver: Resolver,
    ip: IPAddress,
    domain: str,
    sender: str,
    *,
    helo: str,
    receiver_host: str,
    now: datetime,
) -> SpfResult:
    """check_host(<ip>, <domain>, <sender>) of RFC 7208 section 4.

    `sender` is the MAIL FROM address or postmaster@<HELO domain>; `helo` the
    HELO/EHLO argument (%{h}); `receiver_host` our host name (%{r}); `now` the
    time for %{t}.
    """
    # An IPv4-mapped IPv6 client is an IPv4 client (RFC 4291 section 2.5.5.2).
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    name = _a_label_domain(domain)
    if name is None:
        return SpfResult(SpfStatus.NONE, domain.lower(), problem=None)
    evaluation = _Evaluation(resolver, ip, sender, helo, receiver_host, now)
    try:
        outcome = evaluation.check(name)
    except _Abort as abort:
        return SpfResult(abort.status, name, problem=abort.problem)
    explanation = None
    if outcome.status is SpfStatus.FAIL and outcome.explanation is not None:
        explanation = evaluation.explanation(*outcome.explanation)
    return SpfResult(outcome.status, name, explanation, outcome.mechanism)


def verify_sender(
    resolver: Resolver,
    ip: IPAddress,
    mail_from: str,
    helo: str,
    *,
    receiver_host: str,
    now: datetime,
) -> SpfVerification:
    """Check the HELO and the MAIL FROM identities (RFC 7208 sections 2.3, 2.4).

    `mail_from` is the reverse-path address ("" for the null reverse-path).
    """
    helo_domain = _a_label_domain(helo)
    if helo_domain is None:
        # RFC 7208 section 2.3: "This SPF check can only be performed when the
        # "HELO" string is a valid, multi-label domain name."
        helo_result = SpfResult(SpfStatus.NONE, helo.lower())
    else:
        helo_result = check_host(
            resolver,
            ip,
            helo_domain,
            f"postmaster@{helo_domain}",
            helo=helo,
            receiver_host=receiver_host,
            now=now,
        )
    if not mail_from:
        # RFC 7208 section 2.4: "When the reverse-path is null, this document
        # defines the "MAIL FROM" identity to be the mailbox composed of the
        # local-part "postmaster" and the "HELO" identity".
        return SpfVerification(helo_result, helo_result, SpfIdentity.HELO)
    domain = mail_from.rpartition("@")[2]
    mail_from_result = check_host(
        resolver, ip, domain, mail_from, helo=helo, receiver_host=receiver_host, now=now
    )
    return SpfVerification(helo_result, mail_from_result, SpfIdentity.MAILFROM)


# ---------------------------------------------------------------------------
# Received-SPF (RFC 7208 section 9.1)

_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _header_value(text: str) -> str:
    """dot-atom / quoted-string (RFC 5322 section 3.2.4), ASCII only."""
    if _DOT_ATOM.fullmatch(text):
        return text
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text)
    return "(" + re.sub(r"([()\\])", r"\\\1", cleaned) + ")"


_COMMENTS = {
    SpfStatus.PASS: "domain of {who} designates {ip} as permitted sender",
    SpfStatus.FAIL: "domain of {who} does not designate {ip} as permitted sender",
    SpfStatus.SOFTFAIL: "domain of transitioning {who} does not designate {ip} as permitted sender",
    SpfStatus.NEUTRAL: "{ip} is neither permitted nor denied by domain of {who}",
    SpfStatus.NONE: "domain of {who} does not publish an SPF record",
    SpfStatus.TEMPERROR: "error in processing during lookup of {who}",
    SpfStatus.PERMERROR: "domain of {who} has an invalid SPF record",
}


def received_spf_header(
    result: SpfResult,
    *,
    ip: IPAddress,
    identity: SpfIdentity,
    mail_from: str,
    helo: str,
    receiver_host: str,
) -> bytes:
    """The Received-SPF header field for a result (RFC 7208 section 9.1), CRLF-terminated.

    header-field = "Received-SPF:" [CFWS] result FWS [comment FWS]
                   [ key-value-list ] CRLF
    key-value-list = key-value-pair *( ";" [CFWS] key-value-pair ) [";"]
    key-value-pair = key [CFWS] "=" ( dot-atom / quoted-string )
    """
    who = mail_from if identity is SpfIdentity.MAILFROM and mail_from else f"postmaster@{helo}"
    comment = f"{receiver_host}: " + _COMMENTS[result.status].format(who=who, ip=ip)
    pairs = [
        ("client-ip", str(ip)),
        ("envelope-from", mail_from),
        ("helo", helo),
        ("receiver", receiver_host),
        ("identity", identity.value),
    ]
    if result.mechanism is not None:
        pairs.append(("mechanism", result.mechanism))
    if result.problem is not None:
        pairs.append(("problem", result.problem))
    lines = [f"Received-SPF: {result.status.value} {_comment(comment)}"]
    lines.extend(f"\t{key}={_header_value(value)};" for key, value in pairs)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")
