"""One outgoing delivery attempt, blocking, on a queue worker thread (RFC 5321 section 5).

Theory of operation. The QueueActor hands a DeliveryJob (one message, its
recipients in one domain) to `Deliverer.deliver`, which:

1. finds the domain's MTA-STS policy (cached, or fetched; RFC 8461 section 5.1,
   see delivery_policy);
2. looks up the MX hosts (null MX and NXDOMAIN fail permanently, DNS trouble
   temporarily) and, under an enforced policy, keeps only the hosts it lists
   (RFC 8461 section 5);
3. tries the hosts in order, each host's addresses (IPv6 first); per host DANE
   decides when the MX and address answers were DNSSEC-authenticated (RFC 7672
   section 2.2). Each connection gets a CheckedContext (delivery_tls): DANE, or
   PKIX, enforced when DANE, an enforced MTA-STS policy or REQUIRETLS demand it,
   otherwise only recorded (opportunistic TLS, RFC 7435);
4. turns the replies into one RecipientOutcome per recipient: 2xx delivered, a
   server's 5xx permanent, anything else is tried at the next address or host
   and ends temporary;
5. records one RFC 8460 TLS result per connection that reached the server:
   under the recipient domain's policy (sts or no-policy-found), plus the MX
   host's own tlsa result when DANE applied (`record_tls`).

"TLS-Required: No" (RFC 8689 section 5) turns every TLS requirement into a
recorded observation; REQUIRETLS (RFC 8689 section 4.2.1) needs verified TLS to
a server that offers REQUIRETLS, and fails permanently with 5.7.30 otherwise.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from mailactors.actors.delivery_policy import (
    LocalPolicyCache,
    PolicyCacheAccess,
    StsState,
    current_policy,
    policy_strings,
)
from mailactors.actors.delivery_tls import (
    Check,
    CheckedContext,
    dane_check,
    pkix_check,
    source_ip_for,
)
from mailactors.actors.messages import RecipientOutcome
from mailactors.actors.queue import DeliveryJob
from mailactors.net.https import DEFAULT_TIMEOUT as FETCH_TIMEOUT
from mailactors.net.https import fetch_policy
from mailactors.net.smtpclient import (
    DEFAULT_CONNECT_TIMEOUT,
    FailureKind,
    SessionResult,
    Transaction,
)
from mailactors.net.smtpclient import RecipientOutcome as SmtpRecipientOutcome
from mailactors.net.smtpclient import deliver as smtp_deliver
from mailactors.net.tlstrust import TrustStore
from mailactors.protocol.dane import DaneMode, TlsaLookup, dane_applicable, lookup_tlsa
from mailactors.protocol.dns import DnsError, IPAddress, Resolver, TlsaRecord
from mailactors.protocol.mtasts import StsMode, StsMxCandidate, mx_matches, select
from mailactors.protocol.mxselect import MxError, MxTargets, host_addresses, mx_targets
from mailactors.protocol.smtp.client import Reply, Timeouts
from mailactors.protocol.tlsrpt import FailureDetails, Policy, PolicyType, ResultType, TlsResult
from mailactors.storage.tlsrptdb import ResultEntry

__all__ = ["REPORT_KINDS", "Deliverer", "LocalPolicyCache", "PolicyCacheAccess"]

# RFC 8460 section 5.3: the sessions that deliver reports are not themselves reported;
# the message kinds (QueueMessage.kind) whose TLS results are counted, never reported.
REPORT_KINDS = frozenset({"dmarc-report", "tls-report"})

# RFC 8460 4.3 "failure-reason-code" is free text; ours is the verifier's detail, cut
# to this length so a day's rows stay few and small.
MAX_REASON_LENGTH = 200

# RFC 3463 / RFC 8689 section 5 (IANA): 5.7.30 "REQUIRETLS support required".
REQUIRETLS_STATUS = "5.7.30"

# A domain with a null MX: reply code 556 "domain does not accept mail" (RFC 7504
# section 3) with status 5.1.10 (RFC 7505 section 4.1).
NULL_MX_CODE = 556


@dataclass
class _Recipient:
    """What this attempt knows about one recipient so far."""

    id: int
    address: str
    final: RecipientOutcome | None = None
    temporary: Reply | None = None  # the last temporary failure
    permanent: Reply | None = None  # the last permanent failure that may not be final

    def note(self, reply: Reply, *, permanent: bool) -> None:
        if permanent:
            self.permanent = reply
        else:
            self.temporary = reply

    def outcome(self) -> RecipientOutcome:
        if self.final is not None:
            return self.final
        # A temporary failure anywhere keeps the recipient queued: another try may work.
        if self.temporary is not None or self.permanent is None:
            reply = self.temporary or Reply(451, "4.4.0", "no MX host could be tried")
            return _outcome(self.id, "temporary", reply)
        return _outcome(self.id, "permanent", self.permanent)


def _outcome(rid: int, status: str, reply: Reply, remote: str = "") -> RecipientOutcome:
    text = " ".join(" ".join(reply.lines).split())
    return RecipientOutcome(rid, status, reply.code, reply.enhanced or "", text, remote)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to connect to one MX host: what TLS it needs and how it is verified."""

    host: str
    candidate: StsMxCandidate
    dane: DaneMode
    tlsa: TlsaLookup | None
    check: str | None  # "dane", "pkix" or None (no verification)
    tls_required: bool
    enforce: bool  # a failed verification refuses the host


@dataclass(frozen=True, slots=True)
class _TlsOutcome:
    """The TLS outcome of one session: result_type None is success."""

    result_type: str | None
    detail: str = ""


@dataclass
class _Attempt:
    job: DeliveryJob
    now: datetime.datetime
    send_report: bool
    sts: StsState
    recipients: list[_Recipient]
    results: list[ResultEntry] = field(default_factory=list)

    @property
    def pending(self) -> list[_Recipient]:
        return [r for r in self.recipients if r.final is None]

    def note_all(self, reply: Reply, *, permanent: bool) -> None:
        for r in self.pending:
            r.note(reply, permanent=permanent)

    def record(self, result: TlsResult, *, is_host: bool = False) -> None:
        self.results.append(
            ResultEntry(self.now.date(), self.job.domain, is_host, self.send_report, result)
        )


def _sts_active(sts: StsState) -> bool:
    return sts.policy is not None and sts.policy.mode is not StsMode.NONE


def _tlsa_strings(records: Sequence[TlsaRecord]) -> tuple[str, ...]:
    """RFC 8460 4.3 "policy-string" for DANE: the TLSA records in presentation form."""
    return tuple(f"{r.usage} {r.selector} {r.mtype} {r.data.hex()}" for r in records)


class Deliverer:
    """Delivers DeliveryJobs: `deliver(job)` is the QueueActor's Deliver callable."""

    def __init__(
        self,
        *,
        hostname: str,
        resolver: Resolver,
        trust: TrustStore,
        policies: PolicyCacheAccess,
        record_tls: Callable[[Sequence[ResultEntry]], None],
        our_domains: Callable[[str], bool],
        log: logging.Logger,
        local_target: tuple[str, int] | None = None,
        smtp_port: int = 25,
        mtasts_port: int = 443,
        clock: Callable[[], float] = time.time,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        fetch_timeout: float = FETCH_TIMEOUT,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.hostname = hostname
        self.resolver = resolver
        self.trust = trust
        self.policies = policies
        self.record_tls = record_tls
        self.our_domains = our_domains
        self.log = log
        self.local_target = local_target
        self.smtp_port = smtp_port
        self.mtasts_port = mtasts_port
        self.clock = clock
        self.connect_timeout = connect_timeout
        self.fetch_timeout = fetch_timeout
        self.timeouts = timeouts

    # --- the attempt --------------------------------------------------------------------

    def deliver(self, job: DeliveryJob) -> list[RecipientOutcome]:
        """Try to deliver the job's message to its recipients; one outcome per recipient."""
        recipients = [_Recipient(r.id, r.address) for r in job.recipients]
        with open(job.path, "rb") as message:
            if self.local_target is not None:
                self._deliver_local(job, recipients, message, self.local_target)
                return [r.outcome() for r in recipients]
            now = datetime.datetime.fromtimestamp(self.clock(), datetime.UTC)
            send_report = not (self.our_domains(job.domain) or job.message.kind in REPORT_KINDS)
            sts = self._sts(job.domain, now)
            attempt = _Attempt(job, now, send_report, sts, recipients)
            try:
                self._deliver_remote(attempt, message)
            finally:
                if attempt.results:
                    try:
                        self.record_tls(tuple(attempt.results))
                    except Exception:
                        # A lost TLS result must not turn a delivery into a retry.
                        self.log.exception(
                            "recording TLS results failed", extra={"domain": job.domain}
                        )
        return [r.outcome() for r in recipients]

    def _sts(self, domain: str, now: datetime.datetime) -> StsState:
        def fetch(name: str) -> bytes:
            return fetch_policy(
                name,
                resolver=self.resolver,
                trust=self.trust,
                port=self.mtasts_port,
                timeout=self.fetch_timeout,
                now=now,
            )

        sts = current_policy(
            domain, resolver=self.resolver, cache=self.policies, fetch=fetch, now=now
        )
        if sts.error is not None:
            self.log.info(
                "MTA-STS policy unavailable",
                extra={"domain": domain, "err": f"{sts.error}: {sts.error_detail}"},
            )
        if sts.policy is not None and sts.from_cache:
            self.policies.touch_use(domain, now)
        return sts

    def _deliver_remote(self, attempt: _Attempt, message: BinaryIO) -> None:
        job, sts = attempt.job, attempt.sts
        try:
            targets = mx_targets(self.resolver, job.domain)
        except MxError as exc:
            if sts.error is not None and sts.policy is None:
                attempt.record(self._sts_failure(attempt, None, None, None, None))
            code = 451 if not exc.permanent else (NULL_MX_CODE if exc.status == "5.1.10" else 550)
            attempt.note_all(Reply(code, exc.status, exc.reason), permanent=exc.permanent)
            return
        hosts = [h.host for h in targets.hosts]
        selection = select(sts.policy, hosts)
        # "TLS-Required: No" together with REQUIRETLS contradict each other; the
        # stricter REQUIRETLS wins (here and in _plan).
        relaxed = job.message.tls_required_no and not job.message.requiretls
        candidates = list(selection.candidates)
        if relaxed and selection.mode is StsMode.ENFORCE and sts.policy is not None:
            # RFC 8689 section 5: with "TLS-Required: No" the policy's demands are not
            # acted on; its verdicts are still reported, as under "testing".
            policy = sts.policy
            candidates = [StsMxCandidate(h, mx_matches(policy, h), False, True) for h in hosts]
        else:
            for rejected in selection.rejected:
                # RFC 8461 section 4.1: MX hosts the enforced policy does not list are
                # never delivered to; RFC 8460 4.3.1 calls this validation-failure.
                attempt.record(
                    self._sts_failure(
                        attempt,
                        ResultType.VALIDATION_FAILURE,
                        rejected,
                        None,
                        "MX host not listed in the MTA-STS policy",
                    )
                )
        if not candidates:
            # RFC 8461 section 5: a message that cannot be delivered to any listed MX
            # host is handled as a temporary failure.
            attempt.note_all(
                Reply(451, "4.7.0", "no MX host matches the MTA-STS policy"), permanent=False
            )
            return
        for candidate in candidates:
            if not attempt.pending:
                break
            self._try_host(attempt, targets, candidate, message)
        if sts.error is not None and sts.policy is None and not attempt.results:
            # No session to attach it to: the policy failure is reported on its own.
            attempt.record(self._sts_failure(attempt, None, None, None, None))

    def _try_host(
        self, attempt: _Attempt, targets: MxTargets, candidate: StsMxCandidate, message: BinaryIO
    ) -> None:
        host = candidate.host
        try:
            addresses = host_addresses(self.resolver, host)
        except MxError as exc:
            # RFC 5321 5.1: an unusable MX host is skipped; only an implicit MX that
            # does not exist makes the domain undeliverable.
            permanent = exc.permanent and targets.implicit
            code = 550 if permanent else 451
            status = exc.status if permanent else "4.4.4"
            attempt.note_all(Reply(code, status, exc.reason), permanent=permanent)
            return
        plan = self._plan(attempt, targets, candidate, addresses.authenticated)
        if plan is None:
            return
        for address in addresses.addresses:
            if not attempt.pending:
                return
            self._try_address(attempt, plan, address, message)

    def _plan(
        self,
        attempt: _Attempt,
        targets: MxTargets,
        candidate: StsMxCandidate,
        addresses_authenticated: bool,
    ) -> _Plan | None:
        """Decide TLS for one MX host; None when the host must be skipped (already noted)."""
        msg = attempt.job.message
        host = candidate.host
        requiretls = msg.requiretls
        relaxed = msg.tls_required_no and not requiretls
        tlsa: TlsaLookup | None = None
        mode = DaneMode.NONE
        # RFC 7672 section 2.2: TLSA records count only when the MX and address lookups
        # were DNSSEC-validated.
        if targets.authenticated and addresses_authenticated:
            tlsa = lookup_tlsa(self.resolver, host)
            mode = dane_applicable(True, True, tlsa.answer)
        if mode is DaneMode.TEMPFAIL:
            detail = str(tlsa.answer) if tlsa is not None else "TLSA lookup failed"
            attempt.record(
                TlsResult.failure(
                    self._tlsa_policy(host, ()),
                    FailureDetails(
                        ResultType.DNSSEC_INVALID,
                        receiving_mx_hostname=host,
                        failure_reason_code=detail[:MAX_REASON_LENGTH],
                    ),
                ),
                is_host=True,
            )
            if not relaxed:
                # RFC 7672 section 2.2: a failed TLSA lookup in a signed zone defers
                # delivery to this host; it never falls back to delivery without DANE.
                attempt.note_all(
                    Reply(451, "4.7.5", f"TLSA lookup for {host} failed"), permanent=False
                )
                return None
            mode = DaneMode.NONE
        if requiretls and not (
            targets.authenticated or (candidate.matches and _sts_active(attempt.sts))
        ):
            # RFC 8689 section 4.2.1: the MX host must come from a DNSSEC-validated
            # answer or match an MTA-STS policy.
            attempt.note_all(
                Reply(
                    550,
                    REQUIRETLS_STATUS,
                    f"REQUIRETLS: MX host {host} is not DNSSEC-validated nor listed by MTA-STS",
                ),
                permanent=True,
            )
            return None
        check = "dane" if mode is DaneMode.REQUIRED else "pkix"
        dane_tls = mode in (DaneMode.REQUIRED, DaneMode.ENCRYPT)
        tls_required = (dane_tls or candidate.pkix_required or requiretls) and not relaxed
        enforce = (
            mode is DaneMode.REQUIRED or candidate.pkix_required or requiretls
        ) and not relaxed
        return _Plan(host, candidate, mode, tlsa, check, tls_required, enforce)

    def _check(self, attempt: _Attempt, plan: _Plan) -> Check | None:
        if (
            plan.check == "dane"
            and plan.tlsa is not None
            and not isinstance(plan.tlsa.answer, DnsError)
        ):
            return dane_check(plan.tlsa.answer.records, plan.tlsa.host_names, attempt.now)
        if plan.check == "pkix":
            return pkix_check(self.trust, plan.host, attempt.now)
        return None

    def _connect(
        self,
        attempt: _Attempt,
        ip: str,
        port: int,
        recipients: Sequence[_Recipient],
        message: BinaryIO,
        context: CheckedContext | None,
        server_hostname: str | None,
        tls_required: bool,
    ) -> SessionResult:
        msg = attempt.job.message
        message.seek(0)
        transaction = Transaction(
            mail_from=msg.sender,
            recipients=tuple(r.address for r in recipients),
            message=message,
            needs_8bit=msg.has_8bit,
            needs_smtputf8=msg.smtputf8,
            requiretls=msg.requiretls,
        )
        return smtp_deliver(
            (ip, port),
            ehlo_name=self.hostname,
            transactions=(transaction,),
            tls_context=context,
            server_hostname=server_hostname,
            tls_required=tls_required,
            timeouts=self.timeouts,
            connect_timeout=self.connect_timeout,
        )

    def _try_address(
        self, attempt: _Attempt, plan: _Plan, address: IPAddress, message: BinaryIO
    ) -> None:
        ip = str(address)
        pending = attempt.pending
        context = CheckedContext(self._check(attempt, plan), enforce=plan.enforce)
        result = self._connect(
            attempt, ip, self.smtp_port, pending, message, context, plan.host, plan.tls_required
        )
        tls = self._tls_outcome(result, context)
        if tls is not None:
            self._record_session(attempt, plan, ip, result, context, tls)
        failure = result.failure
        self.log.info(
            "delivery attempt",
            extra={
                "id": attempt.job.message.id,
                "mx": plan.host,
                "ip": ip,
                "tls": result.tls.version if result.tls else "none",
                "tlsresult": "-" if tls is None else (tls.result_type or "success"),
                "err": "" if failure is None else f"{failure.kind.value}: {failure.detail}",
            },
        )
        refused_tls = failure is not None and failure.kind in (
            FailureKind.TLS_HANDSHAKE,
            FailureKind.STARTTLS_MISSING,
        )
        if refused_tls and plan.tls_required:
            reason = failure.detail if failure is not None else ""
            if attempt.job.message.requiretls:
                # RFC 8689 section 4.2.1: without verified TLS the message is not sent;
                # when no MX host will do, it fails with 5.7.30.
                reply = Reply(
                    550,
                    REQUIRETLS_STATUS,
                    f"REQUIRETLS: no verified TLS with {plan.host}: {reason}",
                )
                attempt.note_all(reply, permanent=True)
            else:
                attempt.note_all(
                    Reply(451, "4.7.5", f"TLS required with {plan.host}: {reason}"),
                    permanent=False,
                )
            return
        if failure is not None and failure.kind is FailureKind.TLS_HANDSHAKE:
            # Opportunistic TLS (RFC 7435): a failed handshake is reported, and the
            # message goes again over the same address without TLS.
            result = self._connect(attempt, ip, self.smtp_port, pending, message, None, None, False)
        self._apply(attempt, pending, plan.host, result)

    def _apply(
        self, attempt: _Attempt, pending: Sequence[_Recipient], host: str, result: SessionResult
    ) -> None:
        """Take the replies of one session into the recipients' state."""
        outcomes: Sequence[SmtpRecipientOutcome] = (
            result.transactions[0].recipients if result.transactions else ()
        )
        session_refused = result.failure is not None and result.failure.kind in (
            FailureKind.GREETING_REJECTED,
            FailureKind.HELLO_REJECTED,
        )
        for rcpt, got in zip(pending, outcomes, strict=False):
            reply = got.reply
            if got.delivered:
                rcpt.final = _outcome(rcpt.id, "delivered", reply, host)
            elif got.permanent and not got.local and not session_refused:
                # RFC 5321 4.2.1: a 5yz reply is a permanent failure for this recipient.
                rcpt.final = _outcome(rcpt.id, "permanent", reply, host)
            else:
                # Refused sessions, our own refusals (REQUIRETLS, SMTPUTF8, SIZE) and
                # temporary failures: the next address or MX host may do better.
                rcpt.note(reply, permanent=got.permanent)

    # --- TLS results --------------------------------------------------------------------

    def _tls_outcome(self, result: SessionResult, context: CheckedContext) -> _TlsOutcome | None:
        """What TLS did in this session; None when no session came about to report on."""
        failure = result.failure
        if context.local_ip is None and result.capabilities is None:
            return None  # no connection, or refused before EHLO
        verdict = context.verdict
        if verdict is not None and not verdict.ok:
            return _TlsOutcome(verdict.result_type or ResultType.VALIDATION_FAILURE, verdict.detail)
        if failure is not None and failure.kind is FailureKind.TLS_HANDSHAKE:
            # RFC 8460 4.3.1: validation-failure covers failures not otherwise named.
            return _TlsOutcome(ResultType.VALIDATION_FAILURE, failure.detail)
        if result.tls is None:
            # RFC 8460 4.3.1: starttls-not-supported, STARTTLS not offered (or refused).
            return _TlsOutcome(ResultType.STARTTLS_NOT_SUPPORTED, "")
        return _TlsOutcome(None)

    def _record_session(
        self,
        attempt: _Attempt,
        plan: _Plan,
        ip: str,
        result: SessionResult,
        context: CheckedContext,
        tls: _TlsOutcome,
    ) -> None:
        sending_ip = context.local_ip or source_ip_for(ip, self.smtp_port)
        helo = result.capabilities.domain if result.capabilities is not None else None

        def details(result_type: str, detail: str) -> FailureDetails:
            return FailureDetails(
                result_type,
                sending_mta_ip=sending_ip,
                receiving_mx_hostname=plan.host,
                receiving_mx_helo=helo or None,
                receiving_ip=ip,
                failure_reason_code=detail[:MAX_REASON_LENGTH] or None,
            )

        # The recipient domain's result: its MTA-STS policy, or none.
        sts = attempt.sts
        domain_type = tls.result_type
        domain_detail = tls.detail
        if sts.error is not None and sts.policy is None:
            domain_type, domain_detail = sts.error, sts.error_detail
        elif _sts_active(sts) and not plan.candidate.matches and domain_type is None:
            domain_type = ResultType.VALIDATION_FAILURE
            domain_detail = "MX host not listed in the MTA-STS policy"
        policy = self._domain_policy(attempt)
        if domain_type is None:
            attempt.record(TlsResult.success(policy))
        else:
            attempt.record(TlsResult.failure(policy, details(domain_type, domain_detail)))
        # The MX host's DANE result, reported to the host's own domain.
        if plan.dane in (DaneMode.REQUIRED, DaneMode.ENCRYPT) and plan.tlsa is not None:
            answer = plan.tlsa.answer
            records = () if isinstance(answer, DnsError) else answer.records
            host_policy = self._tlsa_policy(plan.host, records)
            host_type, host_detail = tls.result_type, tls.detail
            if plan.dane is DaneMode.ENCRYPT and result.tls is not None:
                # RFC 7672 section 3.1.3: no usable TLSA record authenticates anything;
                # TLS was used, which is all such records can ask for.
                host_type, host_detail = ResultType.TLSA_INVALID, "no usable TLSA records"
            if host_type is None:
                attempt.record(TlsResult.success(host_policy), is_host=True)
            else:
                attempt.record(
                    TlsResult.failure(host_policy, details(host_type, host_detail)), is_host=True
                )

    def _domain_policy(self, attempt: _Attempt) -> Policy:
        sts, domain = attempt.sts, attempt.job.domain
        if sts.policy is not None and _sts_active(sts):
            return Policy(PolicyType.STS, domain, policy_strings(sts.policy_text), sts.policy.mx)
        if sts.error is not None and sts.policy is None:
            return Policy(PolicyType.STS, domain)
        return Policy(PolicyType.NO_POLICY_FOUND, domain)

    def _tlsa_policy(self, host: str, records: Sequence[TlsaRecord]) -> Policy:
        return Policy(PolicyType.TLSA, host, _tlsa_strings(records))

    def _sts_failure(
        self,
        attempt: _Attempt,
        result_type: str | None,
        host: str | None,
        ip: str | None,
        detail: str | None,
    ) -> TlsResult:
        """A failure under the recipient domain's policy without a session (no MX, rejected MX)."""
        sts = attempt.sts
        return TlsResult.failure(
            self._domain_policy(attempt),
            FailureDetails(
                result_type or sts.error or ResultType.VALIDATION_FAILURE,
                receiving_mx_hostname=host,
                receiving_ip=ip,
                failure_reason_code=(detail or sts.error_detail)[:MAX_REASON_LENGTH] or None,
            ),
        )

    # --- localserve -------------------------------------------------------------------

    def _deliver_local(
        self,
        job: DeliveryJob,
        recipients: list[_Recipient],
        message: BinaryIO,
        target: tuple[str, int],
    ) -> None:
        """localserve: everything goes to our own SMTP listener, TLS unverified if offered."""
        ip, port = target
        attempt = _Attempt(
            job,
            datetime.datetime.fromtimestamp(self.clock(), datetime.UTC),
            False,
            StsState(None),
            recipients,
        )
        server_name = None if _is_ip(ip) else ip
        result = self._connect(
            attempt, ip, port, recipients, message, CheckedContext(None), server_name, False
        )
        if result.failure is not None and result.failure.kind is FailureKind.TLS_HANDSHAKE:
            result = self._connect(attempt, ip, port, recipients, message, None, None, False)
        self._apply(attempt, recipients, ip, result)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
