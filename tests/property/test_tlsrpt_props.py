"""Property tests for RFC 8460 TLS reporting: parsedmarc agrees with our reports,
reports round-trip, parsers only raise their own errors, and ResultStore adds up
like a dict model (hypothesis stateful testing)."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mailactors.protocol.tlsrpt import (
    MAX_SESSION_COUNT,
    FailureDetails,
    Policy,
    PolicyType,
    Report,
    ResultType,
    TlsReportError,
    TlsResult,
    TlsRptRecordError,
    build_report,
    compose_report_message,
    find_report,
    mailto_address,
    parse_record,
    parse_report,
    report_gzip,
    report_json,
)
from mailactors.storage import db
from mailactors.storage.tlsrptdb import ResultEntry, ResultStore

DATA = Path(__file__).resolve().parents[1] / "data" / "tlsrpt"


def _parsedmarc() -> ModuleType:
    # Importing parsedmarc leaves /dev/null open (a ResourceWarning); see common rules.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import parsedmarc
    return parsedmarc


# ---- strategies ------------------------------------------------------------------------

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
domains = st.builds(
    lambda labels: ".".join([*labels, "example"]), st.lists(label, min_size=1, max_size=3)
)
# Optional string fields: None or non-blank text (parsedmarc treats blank as absent,
# we treat "" as absent).
field_text = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() != "")
optional_text = st.none() | field_text
result_types = st.sampled_from([t for t in ResultType if t is not ResultType.SUCCESS]) | (
    st.from_regex(r"[a-z][a-z-]{0,20}", fullmatch=True)
)
policies = st.builds(
    Policy,
    st.sampled_from(list(PolicyType)),
    domains,
    st.lists(st.text(max_size=40), max_size=4).map(tuple),
    st.lists(domains, max_size=3).map(tuple),
)


def details(counts: st.SearchStrategy[int]) -> st.SearchStrategy[FailureDetails]:
    return st.builds(
        FailureDetails,
        result_types,
        counts,
        sending_mta_ip=st.none() | st.ip_addresses().map(str),
        receiving_mx_hostname=st.none() | domains,
        receiving_mx_helo=optional_text,
        receiving_ip=st.none() | st.ip_addresses().map(str),
        additional_information=optional_text,
        failure_reason_code=optional_text,
    )


small = st.integers(0, 10**6)
results = st.builds(
    TlsResult,
    policies,
    small,
    small,
    st.lists(details(small), max_size=4).map(tuple),
)
huge = st.integers(0, MAX_SESSION_COUNT)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
reports = st.builds(
    lambda org, start, span, contact, rid, pols: Report(
        org, start, start + span, contact, rid, tuple(pols)
    ),
    field_text,
    times,
    st.timedeltas(timedelta(0), timedelta(days=2)),
    st.just("") | field_text,
    field_text,
    st.lists(
        st.builds(TlsResult, policies, huge, huge, st.lists(details(huge), max_size=3).map(tuple)),
        max_size=4,
    ),
)


# ---- parsedmarc reads what we send ------------------------------------------------------


def _expected_details(detail: FailureDetails) -> dict[str, Any]:
    expected: dict[str, Any] = {
        "result_type": str(detail.result_type),
        "failed_session_count": detail.failed_session_count,
    }
    for name in (
        "sending_mta_ip",
        "receiving_ip",
        "receiving_mx_hostname",
        "receiving_mx_helo",
        "failure_reason_code",
    ):
        value = getattr(detail, name)
        if value is not None:
            expected[name] = value
    if detail.additional_information is not None:
        expected["additional_info_uri"] = detail.additional_information
    return expected


@settings(max_examples=100, deadline=None)
@given(st.lists(results, max_size=8), field_text, field_text)
def test_parsedmarc_parses_our_reports(
    outcomes: list[TlsResult], organization: str, report_id: str
) -> None:
    report = build_report(
        outcomes,
        organization=organization,
        contact="tlsrpt@sender.example",
        report_id=report_id,
        day_start=datetime(2026, 11, 23, tzinfo=UTC),
        day_end=datetime(2026, 11, 24, tzinfo=UTC),
    )
    parsed = _parsedmarc().parse_smtp_tls_report_json(report_json(report))
    assert parsed["organization_name"] == organization
    assert parsed["report_id"] == report_id
    assert parsed["begin_date"] == "2026-11-23T00:00:00Z"
    assert parsed["end_date"] == "2026-11-24T00:00:00Z"
    # Expected values come from the inputs, added up here independently of our merge:
    # per policy (in order of first appearance) the session counts, and per failure
    # key the fields as first seen and the summed count.
    expected: dict[Policy, list[Any]] = {}
    for outcome in outcomes:
        totals = expected.setdefault(outcome.policy, [0, 0, {}, {}])
        totals[0] += outcome.successful
        totals[1] += outcome.failed
        for detail in outcome.failure_details:
            totals[2].setdefault(detail.key(), _expected_details(detail))
            totals[3][detail.key()] = totals[3].get(detail.key(), 0) + detail.failed_session_count
    assert len(parsed["policies"]) == len(expected)
    for got, (policy, (ok, failed, shown, counts)) in zip(
        parsed["policies"], expected.items(), strict=True
    ):
        assert got["policy_domain"] == policy.policy_domain
        assert got["policy_type"] == str(policy.policy_type)
        assert got.get("policy_strings", []) == list(policy.policy_strings)
        assert got["successful_session_count"] == ok
        assert got["failed_session_count"] == failed
        want = [{**fields, "failed_session_count": counts[key]} for key, fields in shown.items()]
        assert got["failure_details"] == want


@settings(max_examples=100, deadline=None)
@given(reports)
def test_reports_round_trip(report: Report) -> None:
    assert parse_report(report_json(report)) == report
    assert parse_report(report_gzip(report)) == report


@settings(max_examples=60, deadline=None)
@given(reports, domains, domains)
def test_report_messages_round_trip(report: Report, policy_domain: str, submitter: str) -> None:
    # Our report-ids are msg-id like (RFC 8460 5.3 Subject); other fields are arbitrary.
    report = dataclasses.replace(report, report_id=f"{policy_domain}.1@{submitter}")
    message = compose_report_message(
        report,
        policy_domain=policy_domain,
        from_addr=f"postmaster@{submitter}",
        to_addrs=[f"tlsrpt@{policy_domain}"],
        submitter=submitter,
        message_id=f"<r1@{submitter}>",
        now=datetime(2026, 11, 24, tzinfo=UTC),
    )
    found = find_report(message)
    assert found is not None
    assert parse_report(found) == report


# ---- hostile input ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parse_report_raises_only_its_error_on_bytes(data: bytes) -> None:
    try:
        parse_report(data)
    except TlsReportError:
        pass


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_EXAMPLE: dict[str, Any] = json.loads((DATA / "rfc8460-example.json").read_bytes())


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index))
    return found


_EXAMPLE_PATHS = _paths(_EXAMPLE)[1:]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_EXAMPLE_PATHS), json_values, st.booleans())
def test_parse_report_raises_only_its_error_on_mutated_reports(
    path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    document = json.loads(json.dumps(_EXAMPLE))
    target = document
    for step in path[:-1]:
        target = target[step]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    try:
        report = parse_report(json.dumps(document).encode())
    except TlsReportError:
        return
    # Whatever was accepted serializes and reads back the same.
    assert parse_report(report_json(report)) == report


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.builds("v=TLSRPTv1;{}".format, st.text(max_size=100)))
def test_parse_record_raises_only_its_error(text: str) -> None:
    try:
        record = parse_record(text)
    except TlsRptRecordError:
        return
    assert record.rua
    for uri in record.rua:
        assert uri.lower().startswith("https:") or mailto_address(uri) is not None


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds("mailto:{}@{}".format, label, domains),
            st.builds("https://{}/{}".format, domains, label),
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(
        st.builds("{}={}".format, st.from_regex(r"x[a-z0-9_.-]{0,5}", fullmatch=True), label),
        max_size=2,
    ),
    st.sampled_from([";", " ; ", "\t;"]),
)
def test_valid_records_parse(uris: list[str], extensions: list[str], delim: str) -> None:
    text = delim.join(["v=TLSRPTv1", *extensions, "rua=" + " , ".join(uris)])
    assert parse_record(text).rua == tuple(uris)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1000))
def test_find_report_never_raises(data: bytes) -> None:
    found = find_report(data)
    assert found is None or isinstance(found, bytes)


# ---- ResultStore against a dict model ---------------------------------------------------

DAYS = [date(2026, 11, 21), date(2026, 11, 22), date(2026, 11, 23)]
POLICIES = [
    Policy(PolicyType.STS, "a.example", ("version: STSv1", "mode: enforce"), ("mx.a.example",)),
    Policy(PolicyType.STS, "a.example", ("version: STSv1", "mode: testing")),
    Policy(PolicyType.NO_POLICY_FOUND, "b.example"),
    Policy(PolicyType.TLSA, "mx.a.example", ("3 1 1 aa",), ("mx.a.example",)),
]
DETAILS = [
    FailureDetails(ResultType.CERTIFICATE_EXPIRED, sending_mta_ip="192.0.2.1"),
    FailureDetails(ResultType.CERTIFICATE_EXPIRED, sending_mta_ip="192.0.2.2"),
    FailureDetails(ResultType.STARTTLS_NOT_SUPPORTED, receiving_mx_hostname="mx.a.example"),
    FailureDetails("other-type", failure_reason_code="x"),
]

_ModelKey = tuple[str, date, Policy, str, bool, bool]


class ResultStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="mailactors-tlsrpt-"))
        self.log = logging.getLogger("mailactors.test.tlsrpt")
        self.store = ResultStore(self.tmp / "tlsrptresult.db", self.log)
        self.store.init()
        self.model: dict[_ModelKey, tuple[int, int, dict[tuple[str, ...], int]]] = {}

    def teardown(self) -> None:
        try:
            self.store.close()
            assert db.open_databases() == []
        finally:
            shutil.rmtree(self.tmp)

    @rule(
        day=st.sampled_from(DAYS),
        policy=st.sampled_from(POLICIES),
        recipient=st.sampled_from(["a.example", "b.example"]),
        is_host=st.booleans(),
        send_report=st.booleans(),
        ok=st.integers(0, 3),
        failures=st.lists(st.tuples(st.sampled_from(DETAILS), st.integers(0, 3)), max_size=3),
    )
    def add(
        self,
        day: date,
        policy: Policy,
        recipient: str,
        is_host: bool,
        send_report: bool,
        ok: int,
        failures: list[tuple[FailureDetails, int]],
    ) -> None:
        details = tuple(
            FailureDetails(
                d.result_type,
                n,
                d.sending_mta_ip,
                d.receiving_mx_hostname,
                failure_reason_code=d.failure_reason_code,
            )
            for d, n in failures
        )
        failed = sum(n for _, n in failures)
        self.store.add(
            ResultEntry(
                day, recipient, is_host, send_report, TlsResult(policy, ok, failed, details)
            )
        )
        key = (policy.policy_domain, day, policy, recipient, is_host, send_report)
        m_ok, m_failed, m_details = self.model.get(key, (0, 0, {}))
        m_details = dict(m_details)
        for detail in details:
            m_details[detail.key()] = m_details.get(detail.key(), 0) + detail.failed_session_count
        self.model[key] = (m_ok + ok, m_failed + failed, m_details)

    @rule(
        domain=st.sampled_from(["a.example", "b.example", "mx.a.example"]),
        day=st.sampled_from(DAYS),
    )
    def remove(self, domain: str, day: date) -> None:
        removed = self.store.remove(domain, day)
        keys = [k for k in self.model if k[0] == domain and k[1] == day]
        assert removed == len(keys)
        for key in keys:
            del self.model[key]

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = ResultStore(self.tmp / "tlsrptresult.db", self.log)
        self.store.init()

    @invariant()
    def agrees_with_model(self) -> None:
        seen: dict[_ModelKey, tuple[int, int, dict[tuple[str, ...], int]]] = {}
        for entry in self.store.pending():
            key = (
                entry.policy_domain,
                entry.day,
                entry.result.policy,
                entry.recipient_domain,
                entry.is_host,
                entry.send_report,
            )
            assert key not in seen
            seen[key] = (
                entry.result.successful,
                entry.result.failed,
                {d.key(): d.failed_session_count for d in entry.result.failure_details},
            )
        assert seen == self.model

    @invariant()
    def days_due_and_results_agree(self) -> None:
        due = self.store.days_due(DAYS[-1])
        assert due == sorted(
            {(k[0], k[1]) for k in self.model if k[1] < DAYS[-1]},
            key=lambda pair: (pair[1], pair[0]),
        )
        for domain, day in due:
            reported = self.store.results(domain, day)
            assert all(e.send_report for e in reported)
            assert len(reported) == sum(
                1 for k in self.model if k[0] == domain and k[1] == day and k[5]
            )


ResultStoreMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestResultStore = ResultStoreMachine.TestCase
