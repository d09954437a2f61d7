"""The Authentication-Results header field (RFC 8601): build ours, parse any.

We add one field per received message, naming our host as authserv-id, with the results
of SPF (smtp.mailfrom or smtp.helo), each DKIM signature (header.d, header.s, header.b,
header.i), DMARC (header.from, the policy in a comment) and optionally iprev. Fields that
arrive with our authserv-id are forgeries to remove (RFC 8601 section 5): `is_ours`.

RFC 8601 section 2.2:
    authres-header-field = "Authentication-Results:" authres-payload
    authres-payload = [CFWS] authserv-id
                      [ CFWS authres-version ]
                      ( no-result / 1*resinfo ) [CFWS] CRLF
    authserv-id     = value
    authres-version = 1*DIGIT [CFWS]
    no-result       = [CFWS] ";" [CFWS] "none"
    resinfo         = [CFWS] ";" methodspec [ CFWS reasonspec ]
                      [ CFWS 1*propspec ]
    methodspec      = [CFWS] method [CFWS] "=" [CFWS] result
    reasonspec      = "reason" [CFWS] "=" [CFWS] value
    propspec        = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
    method          = Keyword [ [CFWS] "/" [CFWS] method-version ]
    method-version  = 1*DIGIT [CFWS]
    result          = Keyword
    ptype           = Keyword
    property        = special-smtp-verb / Keyword
    special-smtp-verb = "mailfrom" / "rcptto"
    pvalue          = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
    Keyword         = ldh-str                     ; RFC 5321 4.1.2
    value           = token / quoted-string       ; RFC 2045 5.1

Method, result, ptype and property names are case-insensitive; the parser returns them in
lower case.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailactors.protocol.dmarc import DkimInput, DmarcEvaluation

__all__ = [
    "FIELD_NAME",
    "AuthResults",
    "AuthResultsSyntaxError",
    "MethodResult",
    "ResultProperty",
    "authentication_results",
    "dkim_method",
    "dmarc_method",
    "format_authentication_results",
    "iprev_method",
    "is_ours",
    "parse_authentication_results",
    "spf_method",
]

FIELD_NAME = "Authentication-Results"
# RFC 5322 2.1.1: "Each line of characters MUST be no more than 998 characters, and SHOULD
# be no more than 78 characters, excluding the CRLF."
FOLD_AT = 78
MAX_LINE = 998
# Version numbers are small; this bounds the integer conversion on hostile input.
_MAX_VERSION_DIGITS = 9

# RFC 2045 5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials>
#               tspecials := "(" / ")" / "<" / ">" / "@" / "," / ";" / ":" / "\" / <">
#                            "/" / "[" / "]" / "?" / "="
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
# RFC 5321 4.1.2: ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig
_KEYWORD = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]")
# RFC 5322 3.2.3 dot-atom-text with RFC 6532 3.2 UTF8-non-ascii in atext; RFC 6376 3.5
# domain-name = sub-domain 1*("." sub-domain).
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_SUB_DOMAIN = (
    r"[A-Za-z0-9\u0080-\U0010ffff](?:[A-Za-z0-9\-\u0080-\U0010ffff]*[A-Za-z0-9\u0080-\U0010ffff])?"
)
# RFC 5322 3.2.4 quoted-string without folding white space: qtext / quoted-pair.
_QUOTED_LOCAL = r'"(?:[^"\\\x00-\x1f\x7f]|\\[\x20-\x7e\u0080-\U0010ffff])*"'
_ADDRESS = re.compile(rf"(?:{_DOT_ATOM}|{_QUOTED_LOCAL})?@{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})+")
# Characters an unquoted value may not contain (beyond white space): the comment and
# quoted-string delimiters, the resinfo separator and the escape.
_UNQUOTED_STOPS = frozenset(' \t()";\\')
_WSP = " \t"


class AuthResultsSyntaxError(ValueError):
    """An Authentication-Results field value does not follow RFC 8601 2.2."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} at offset {position}")
        self.reason = reason
        self.position = position


@dataclass(frozen=True, slots=True)
class ResultProperty:
    """One propspec: `ptype.name=value`, e.g. header.d=example.com (RFC 8601 2.3)."""

    ptype: str
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One resinfo: `method[/version]=result (comment) reason=... ptype.name=value...`."""

    method: str
    result: str
    version: int | None = None
    reason: str | None = None
    comment: str | None = None
    properties: tuple[ResultProperty, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthResults:
    """A whole field value; no results is written as "none" (no-result)."""

    authserv_id: str
    results: tuple[MethodResult, ...] = ()
    version: int | None = None


# ---------------------------------------------------------------------------------------
# Building


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _check_text(text: str, what: str) -> None:
    # RFC 5322 3.2.4/3.2.2: qtext and ctext are printable (RFC 6532 adds UTF-8); folding
    # white space is ours to add, so no control characters (C0, DEL, C1) may come in.
    if _CONTROL.search(text):
        raise ValueError(f"control character in {what} {text!r}")


def _quoted(text: str) -> str:
    # RFC 5322 3.2.4: quoted-string; "\" and DQUOTE as quoted-pair.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format_value(text: str, *, address: bool = False) -> str:
    """`value` (RFC 2045 token or quoted-string), or for a pvalue also an address form."""
    _check_text(text, "value")
    if _TOKEN.fullmatch(text) or (address and _ADDRESS.fullmatch(text)):
        return text
    return _quoted(text)


def _format_comment(text: str) -> str:
    # RFC 5322 3.2.2: comment = "(" *([FWS] ccontent) [FWS] ")"; "(", ")" and "\" are
    # written as quoted-pair so the comment never nests by accident.
    _check_text(text, "comment")
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped})"


def _check_keyword(text: str, what: str) -> str:
    if _KEYWORD.fullmatch(text) is None:
        raise ValueError(f"{what} {text!r} is not a keyword (RFC 5321 ldh-str)")
    return text


def _resinfo_chunks(result: MethodResult) -> list[str]:
    method = _check_keyword(result.method, "method")
    if result.version is not None:
        method += f"/{result.version}"
    chunks = [f"{method}={_check_keyword(result.result, 'result')}"]
    if result.comment is not None:
        chunks.append(_format_comment(result.comment))
    if result.reason is not None:
        chunks.append(f"reason={_format_value(result.reason)}")
    for prop in result.properties:
        ptype = _check_keyword(prop.ptype, "ptype")
        name = _check_keyword(prop.name, "property")
        chunks.append(f"{ptype}.{name}={_format_value(prop.value, address=True)}")
    return chunks


def format_authentication_results(results: AuthResults) -> str:
    """The whole header field, "Authentication-Results: ..." folded, ending in CRLF.

    Each resinfo starts a new line; lines are folded at white space to stay within 78
    characters where the pieces allow it (RFC 5322 2.1.1, 2.2.3). Raises ValueError for
    values that cannot be written (control characters, non-keyword names, a line over
    998 characters).
    """
    head = f"{FIELD_NAME}: {_format_value(results.authserv_id)}"
    if results.version is not None:
        head += f" {results.version}"
    if not results.results:
        # RFC 8601 2.2: no-result = [CFWS] ";" [CFWS] "none"
        lines = [head + "; none"]
    else:
        lines = [head + ";"]
        for index, result in enumerate(results.results):
            chunks = _resinfo_chunks(result)
            if index < len(results.results) - 1:
                chunks[-1] += ";"
            line = "\t" + chunks[0]
            for chunk in chunks[1:]:
                if len(line) + 1 + len(chunk) <= FOLD_AT:
                    line += " " + chunk
                else:
                    lines.append(line)
                    line = "\t" + chunk
            lines.append(line)
    if any(len(line) > MAX_LINE for line in lines):
        raise ValueError(f"an {FIELD_NAME} line would exceed {MAX_LINE} characters")
    return "\r\n".join(lines) + "\r\n"


def spf_method(
    status: str, *, mailfrom: str | None, helo: str | None, comment: str | None = None
) -> MethodResult:
    """spf=status with smtp.mailfrom, or smtp.helo when the reverse-path is null.

    RFC 8601 2.7.2: "smtp.mailfrom" is the MAIL FROM address (or domain) that was checked,
    "smtp.helo" the HELO/EHLO domain when that identity was checked.
    """
    if mailfrom:
        prop = ResultProperty("smtp", "mailfrom", mailfrom)
    elif helo:
        prop = ResultProperty("smtp", "helo", helo)
    else:
        return MethodResult("spf", status, comment=comment)
    return MethodResult("spf", status, comment=comment, properties=(prop,))


def dkim_method(result: DkimInput, *, comment: str | None = None) -> MethodResult:
    """dkim=status with header.d, header.s, header.b (RFC 6008) and header.i (RFC 8601 2.7.1)."""
    props = [
        ResultProperty("header", "d", result.domain),
        ResultProperty("header", "s", result.selector),
    ]
    if result.signature_b:
        # RFC 6008: header.b holds the leading characters of the b= tag so that
        # signatures of the same domain can be told apart.
        props.append(ResultProperty("header", "b", result.signature_b))
    if result.identity:
        props.append(ResultProperty("header", "i", result.identity))
    return MethodResult("dkim", result.status, comment=comment, properties=tuple(props))


def dmarc_method(evaluation: DmarcEvaluation) -> MethodResult:
    """dmarc=status header.from=domain (RFC 7489 11.1), the policy and disposition in a comment.

    Only the registered ptype "header" is used as a property; "p=... sp=... dis=..." go in
    the comment, as OpenDMARC writes them.
    """
    comment = None
    record = evaluation.record
    if record is not None:
        parts = [f"p={record.policy}"]
        if record.subdomain_policy is not None:
            parts.append(f"sp={record.subdomain_policy}")
        if record.pct != 100:
            parts.append(f"pct={record.pct}")
        parts.append(f"dis={evaluation.disposition}")
        comment = " ".join(parts)
    return MethodResult(
        "dmarc",
        evaluation.status,
        comment=comment,
        properties=(ResultProperty("header", "from", evaluation.from_domain),),
    )


def iprev_method(status: str, address: str, names: Sequence[str] = ()) -> MethodResult:
    """iprev=status policy.iprev=address, the names found in a comment (RFC 8601 2.7.3)."""
    return MethodResult(
        "iprev",
        status,
        comment=" ".join(names) if names else None,
        properties=(ResultProperty("policy", "iprev", address),),
    )


def authentication_results(
    authserv_id: str,
    *,
    spf: MethodResult | None = None,
    dkim: Sequence[MethodResult] = (),
    dmarc: MethodResult | None = None,
    iprev: MethodResult | None = None,
) -> str:
    """Our one field for a message, in the order iprev, spf, dkim..., dmarc."""
    results = [r for r in (iprev, spf) if r is not None] + list(dkim)
    if dmarc is not None:
        results.append(dmarc)
    return format_authentication_results(AuthResults(authserv_id, tuple(results)))


# ---------------------------------------------------------------------------------------
# Parsing


# RFC 5322 2.2.3: "Unfolding is accomplished by simply removing any CRLF that is
# immediately followed by WSP."
_FOLD = re.compile(r"\r?\n(?=[ \t])")


class _Cursor:
    """A position in an unfolded field value; every method either advances or raises."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, reason: str) -> AuthResultsSyntaxError:
        return AuthResultsSyntaxError(reason, self.pos)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.error(f"expected {char!r}")
        self.pos += 1

    def cfws(self) -> list[str]:
        """Skip CFWS (RFC 5322 3.2.2); return the comments' texts, quoted-pairs resolved."""
        comments: list[str] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in _WSP:
                self.pos += 1
            elif char == "(":
                comments.append(self._comment())
            else:
                break
        return comments

    def _comment(self) -> str:
        # comment = "(" *([FWS] ccontent) [FWS] ")"; ccontent = ctext / quoted-pair / comment
        text = self.text
        start = self.pos
        self.pos += 1
        depth = 1
        out: list[str] = []
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\" and self.pos + 1 < len(text):
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    return "".join(out)
            out.append(char)
        self.pos = start
        raise self.error("unterminated comment")

    def quoted_string(self) -> str:
        # RFC 5322 3.2.4: quoted-string = [CFWS] DQUOTE *([FWS] qcontent) [FWS] DQUOTE [CFWS]
        text = self.text
        start = self.pos
        self.pos += 1
        out: list[str] = []
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\" and self.pos + 1 < len(text):
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if char == '"':
                return "".join(out)
            out.append(char)
        self.pos = start
        raise self.error("unterminated quoted-string")

    def keyword(self, what: str) -> str:
        match = _KEYWORD.match(self.text, self.pos)
        # A keyword ends where the ldh-str ends; "-" may not be its last character.
        if match is None or self.text[match.end() : match.end() + 1] == "-":
            raise self.error(f"expected {what}")
        self.pos = match.end()
        return match.group().lower()

    def digits(self) -> int:
        start = self.pos
        while self.peek().isascii() and self.peek().isdigit():
            self.pos += 1
        if self.pos == start or self.pos - start > _MAX_VERSION_DIGITS:
            raise self.error("expected a version number")
        return int(self.text[start : self.pos])

    def value(self) -> str:
        """value / pvalue: a quoted-string, or an unquoted run (token or address).

        Unquoted runs are taken as written up to white space, a comment, ";" or a quote,
        which also accepts the slash, "=" and ":" that real fields carry unquoted in
        header.b and IPv6 policy.iprev values.
        """
        if self.peek() == '"':
            start = self.pos
            quoted = self.quoted_string()
            if self.peek() != "@":
                return quoted
            # [local-part] "@" domain-name with a quoted local-part: keep it as written.
            return self.text[start : self.pos] + self._run()
        run = self._run()
        if not run:
            raise self.error("expected a value")
        return run

    def _run(self) -> str:
        text = self.text
        start = self.pos
        while self.pos < len(text) and text[self.pos] not in _UNQUOTED_STOPS:
            if ord(text[self.pos]) < 0x20 or text[self.pos] == "\x7f":
                raise self.error("control character")
            self.pos += 1
        return text[start : self.pos]


def _unfold(value: str) -> str:
    text = _FOLD.sub("", value).rstrip("\r\n")
    if "\r" in text or "\n" in text:
        raise AuthResultsSyntaxError("line break that is not folding", text.find("\n"))
    return text


def _authserv_id(cursor: _Cursor) -> str:
    cursor.cfws()
    if cursor.at_end():
        raise cursor.error("expected authserv-id")
    return cursor.value()


def _resinfo(cursor: _Cursor) -> MethodResult:
    # methodspec = [CFWS] method [CFWS] "=" [CFWS] result
    method = cursor.keyword("method")
    cursor.cfws()
    version = None
    if cursor.peek() == "/":
        cursor.pos += 1
        cursor.cfws()
        version = cursor.digits()
        cursor.cfws()
    cursor.expect("=")
    cursor.cfws()
    result = cursor.keyword("result")
    comments = cursor.cfws()
    reason = None
    properties: list[ResultProperty] = []
    while not cursor.at_end() and cursor.peek() != ";":
        name = cursor.keyword("reason or property")
        cursor.cfws()
        if name == "reason" and cursor.peek() == "=" and reason is None and not properties:
            # reasonspec = "reason" [CFWS] "=" [CFWS] value
            cursor.pos += 1
            cursor.cfws()
            reason = cursor.value()
            cursor.cfws()
            continue
        # propspec = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
        cursor.expect(".")
        cursor.cfws()
        prop = cursor.keyword("property")
        cursor.cfws()
        cursor.expect("=")
        cursor.cfws()
        properties.append(ResultProperty(name, prop, cursor.value()))
        cursor.cfws()
    return MethodResult(
        method=method,
        result=result,
        version=version,
        reason=reason,
        comment=" ".join(comments) if comments else None,
        properties=tuple(properties),
    )


def parse_authentication_results(value: str) -> AuthResults:
    """Parse a field value (after the colon, folded or not); AuthResultsSyntaxError on errors.

    A trailing ";" after the last resinfo is tolerated, as several MTAs write one.
    """
    cursor = _Cursor(_unfold(value))
    authserv_id = _authserv_id(cursor)
    cursor.cfws()
    version = None
    if cursor.peek().isascii() and cursor.peek().isdigit():
        # authres-version = 1*DIGIT [CFWS]
        version = cursor.digits()
        cursor.cfws()
    if cursor.at_end():
        raise cursor.error("expected ';'")
    results: list[MethodResult] = []
    while not cursor.at_end():
        cursor.expect(";")
        cursor.cfws()
        if cursor.at_end() and results:
            break
        start = cursor.pos
        if not results and cursor.keyword("result") == "none":
            # no-result = [CFWS] ";" [CFWS] "none"
            cursor.cfws()
            if cursor.at_end():
                return AuthResults(authserv_id, (), version)
        cursor.pos = start
        results.append(_resinfo(cursor))
    return AuthResults(authserv_id, tuple(results), version)


def is_ours(field_value: str, authserv_id: str) -> bool:
    """Whether a received field claims our authserv-id (RFC 8601 section 5).

    RFC 8601 5: "any MTA conforming to this specification MUST delete any discovered
    instance of this header field that claims, by virtue of its authentication service
    identifier, to have been added within its trust boundary but that did not come
    directly from another trusted MTA". Only the authserv-id is parsed, so a field that is otherwise
    malformed is still recognized; host names compare case-insensitively.
    """
    try:
        cursor = _Cursor(_unfold(field_value))
        found = _authserv_id(cursor)
    except AuthResultsSyntaxError:
        return False
    return found.lower().rstrip(".") == authserv_id.lower().rstrip(".")
