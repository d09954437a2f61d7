"""Authentication of an incoming message: SPF, DKIM, DMARC and the Authentication-Results field.

One function runs the three checks in order (RFC 7489 section 4: DMARC uses the
SPF and DKIM results) and returns what the SMTP session needs: the header field to
prepend (RFC 8601 section 5: "the MTA ... adds the header field"), the DMARC
disposition to apply, and, when the From domain asks for aggregate reports, the
policy and evaluation row an aggregate report is made of (RFC 7489 appendix C).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from mailactors.protocol import authres, dkim, dmarc, spf
from mailactors.protocol.dmarcrpt import DkimAuth, Evaluation, PolicyPublished, SpfAuth
from mailactors.protocol.dns import Resolver


@dataclass(frozen=True, slots=True)
class InboundAuth:
    """The verdict on one incoming message."""

    header: bytes  # "Authentication-Results: ...\r\n"
    spf: spf.SpfVerification
    dkim: tuple[dkim.DkimResult, ...]
    dmarc: dmarc.DmarcEvaluation | None  # None when the From field is unusable
    from_error: str | None
    # For the aggregate report, when the applied record has a rua (RFC 7489 7.2).
    report_policy: PolicyPublished | None
    report_evaluation: Evaluation | None
    rua: tuple[str, ...]

    @property
    def disposition(self) -> str:
        """ "none", "quarantine" or "reject" (RFC 7489 6.6.4 after pct)."""
        return self.dmarc.disposition if self.dmarc is not None else "none"


def _dkim_input(result: dkim.DkimResult) -> dmarc.DkimInput:
    return dmarc.DkimInput(
        status=cast(dmarc.DkimStatus, str(result.status)),
        domain=result.domain,
        selector=result.selector,
        signature_b=result.signature_b,
        identity=result.identity,
    )


def _rua_text(uri: dmarc.ReportUri) -> str:
    # RFC 7489 6.2: dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]
    return uri.uri if uri.max_size is None else f"{uri.uri}!{uri.max_size}"


def _report_parts(
    evaluation: dmarc.DmarcEvaluation,
    verification: spf.SpfVerification,
    dkim_results: Sequence[dkim.DkimResult],
    *,
    ip: str,
    mail_from: str,
    rcpt_to: str | None,
) -> tuple[PolicyPublished, Evaluation] | None:
    record = evaluation.record
    if record is None or evaluation.record_domain is None:
        return None
    policy = PolicyPublished(
        domain=evaluation.record_domain,
        adkim=record.adkim,
        aspf=record.aspf,
        p=record.policy,
        sp=record.subdomain_policy,
        pct=record.pct,
        fo=":".join(record.fo),
    )
    spf_results = [
        SpfAuth(verification.mail_from.domain, "mfrom", str(verification.mail_from.status))
    ]
    if verification.identity == spf.SpfIdentity.HELO:
        spf_results = [SpfAuth(verification.helo.domain, "helo", str(verification.helo.status))]
    row = Evaluation(
        source_ip=ip,
        disposition=evaluation.disposition,
        dkim_aligned="pass" if evaluation.aligned_dkim else "fail",
        spf_aligned="pass" if evaluation.aligned_spf else "fail",
        reasons=tuple((r.type, r.comment) for r in evaluation.reasons),
        header_from=evaluation.from_domain,
        envelope_from=mail_from.rpartition("@")[2].lower() if mail_from else None,
        envelope_to=rcpt_to.rpartition("@")[2].lower() if rcpt_to else None,
        dkim=tuple(
            DkimAuth(r.domain, r.selector or None, str(r.status), r.problem) for r in dkim_results
        ),
        spf=tuple(spf_results),
    )
    return policy, row


def authenticate_inbound(
    resolver: Resolver,
    *,
    message: bytes,
    ip: str,
    helo: str,
    mail_from: str,
    rcpt_to: str | None,
    authserv_id: str,
    now: datetime,
    pct_draw: int,
) -> InboundAuth:
    """Check SPF (RFC 7208), DKIM (RFC 6376) and DMARC (RFC 7489) for one message."""
    address = ipaddress.ip_address(ip)
    verification = spf.verify_sender(
        resolver, address, mail_from, helo, receiver_host=authserv_id, now=now
    )
    dkim_results = dkim.verify(message, resolver, now=int(now.timestamp()))
    checked = verification.mail_from
    if verification.identity == spf.SpfIdentity.HELO:
        checked = verification.helo
    spf_field = authres.spf_method(
        str(checked.status),
        mailfrom=mail_from or None,
        helo=helo if not mail_from else None,
    )
    dkim_fields = [authres.dkim_method(_dkim_input(r)) for r in dkim_results]
    if not dkim_fields:
        dkim_fields = [authres.MethodResult("dkim", "none")]
    evaluation: dmarc.DmarcEvaluation | None = None
    from_error: str | None = None
    dmarc_field: authres.MethodResult | None = None
    try:
        domain = dmarc.from_domain(message)
    except dmarc.DmarcFromError as exc:
        from_error = str(exc)
        dmarc_field = authres.MethodResult("dmarc", "permerror", comment=from_error)
    else:
        evaluation = dmarc.evaluate(
            resolver,
            from_domain=domain,
            spf=dmarc.SpfInput(cast(dmarc.SpfStatus, str(checked.status)), checked.domain),
            dkim=[_dkim_input(r) for r in dkim_results],
            pct_draw=pct_draw,
        )
        dmarc_field = authres.dmarc_method(evaluation)
    header = authres.authentication_results(
        authserv_id, spf=spf_field, dkim=dkim_fields, dmarc=dmarc_field
    ).encode("utf-8")
    policy = row = None
    rua: tuple[str, ...] = ()
    if evaluation is not None and evaluation.reportable and evaluation.record is not None:
        parts = _report_parts(
            evaluation, verification, dkim_results, ip=ip, mail_from=mail_from, rcpt_to=rcpt_to
        )
        if parts is not None:
            policy, row = parts
            rua = tuple(_rua_text(u) for u in evaluation.record.rua)
    return InboundAuth(
        header=header,
        spf=verification,
        dkim=tuple(dkim_results),
        dmarc=evaluation,
        from_error=from_error,
        report_policy=policy,
        report_evaluation=row,
        rua=rua,
    )
