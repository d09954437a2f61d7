"""Property tests of protocol/dmarcrpt.

- parse_report and find_report never fail other than with DmarcReportError / None,
  whatever the bytes;
- report_xml output reads back equal with our parser, plain, gzipped and zipped;
- parsedmarc, an independent reader that DMARC report users run, reads the reports
  we write with the same counts, domains and results;
- records_from_evaluations keeps every message: counts add up to the evaluations.
"""

from __future__ import annotations

import gzip
import io
import re
import warnings
import zipfile
from collections import Counter
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailactors.protocol.dmarcrpt import (
    DkimAuth,
    DmarcReportError,
    Evaluation,
    Feedback,
    PolicyPublished,
    ReportMetadata,
    ReportRecord,
    SpfAuth,
    find_report,
    parse_report,
    records_from_evaluations,
    report_xml,
)


def _parsedmarc() -> ModuleType:
    # Importing parsedmarc leaves /dev/null open (a ResourceWarning); see common rules.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import parsedmarc
    return parsedmarc


# ---- strategies ----------------------------------------------------------------------

labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
domains = st.lists(labels, min_size=2, max_size=4).map(".".join)
ips = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)

# Characters XML 1.0 can carry (section 2.2) minus controls: text that survives a
# round trip; leading and trailing white space is not significant in reports.
_UNWRITABLE = re.compile("[^\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
free_text = (
    st.text(
        st.one_of(st.characters(exclude_categories=("Cs", "Cc")), st.sampled_from("<>&\"']")),
        min_size=1,
        max_size=16,
    )
    .map(str.strip)
    .filter(lambda s: bool(s) and not _UNWRITABLE.search(s))
)
# parsedmarc shortens org names without spaces to their base domain, and report ids
# to what precedes an "@"; these stay as they are.
org_names = labels.map(lambda word: f"Receiver {word}")
report_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True)

dispositions = st.sampled_from(["none", "quarantine", "reject"])
aligned = st.sampled_from(["pass", "fail"])
dkim_results = st.sampled_from(
    ["none", "pass", "fail", "policy", "neutral", "temperror", "permerror"]
)
spf_results = st.sampled_from(
    ["none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"]
)
reason_types = st.sampled_from(
    ["forwarded", "sampled_out", "trusted_forwarder", "mailing_list", "local_policy", "other"]
)

dkim_auths = st.builds(
    DkimAuth,
    domain=domains,
    selector=st.none() | labels,
    result=dkim_results,
    human_result=st.none() | free_text,
)
spf_auths = st.builds(
    SpfAuth, domain=domains, scope=st.sampled_from(["mfrom", "helo"]), result=spf_results
)
reasons = st.lists(st.tuples(reason_types, st.none() | free_text), max_size=2).map(tuple)

evaluations = st.builds(
    Evaluation,
    source_ip=ips,
    disposition=dispositions,
    dkim_aligned=aligned,
    spf_aligned=aligned,
    reasons=reasons,
    header_from=domains,
    envelope_from=st.none() | domains,
    envelope_to=st.none() | domains,
    dkim=st.lists(dkim_auths, max_size=2).map(tuple),
    spf=st.lists(spf_auths, max_size=2).map(tuple),
)

records = st.builds(
    ReportRecord,
    source_ip=ips,
    count=st.integers(0, 2**40),
    disposition=dispositions,
    dkim_aligned=aligned,
    spf_aligned=aligned,
    reasons=reasons,
    header_from=domains,
    envelope_from=st.none() | domains,
    envelope_to=st.none() | domains,
    dkim=st.lists(dkim_auths, max_size=2).map(tuple),
    spf=st.lists(spf_auths, max_size=2).map(tuple),
)


@st.composite
def feedbacks(draw: st.DrawFn, min_records: int = 0) -> Feedback:
    begin = draw(st.integers(0, 2**33))
    # One hour, as we send them; at most a day, so parsedmarc does not split records.
    end = begin + draw(st.integers(0, 86_399))
    metadata = ReportMetadata(
        org_name=draw(org_names),
        email=f"dmarc-reports@{draw(domains)}",
        extra_contact_info=draw(st.none() | free_text),
        report_id=draw(report_ids),
        begin=begin,
        end=end,
        errors=tuple(draw(st.lists(free_text, max_size=2))),
    )
    p = draw(dispositions)
    policy = PolicyPublished(
        domain=draw(domains),
        adkim=draw(st.sampled_from(["r", "s"])),
        aspf=draw(st.sampled_from(["r", "s"])),
        p=p,
        sp=draw(dispositions),
        pct=draw(st.integers(0, 100)),
        fo=draw(st.sampled_from(["0", "1", "d", "s", "0:d"])),
    )
    rows = draw(st.lists(records, min_size=min_records, max_size=5))
    return Feedback(version="1.0", metadata=metadata, policy=policy, records=tuple(rows))


# ---- never crash ---------------------------------------------------------------------


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_parse_report_on_any_bytes_raises_only_dmarc_report_error(data: bytes) -> None:
    try:
        parse_report(data)
    except DmarcReportError:
        pass


def _mutations() -> st.SearchStrategy[bytes]:
    """Reports with a slice cut out or replaced: near-valid input reaches deep code."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        xml = report_xml(draw(feedbacks(min_records=1)))
        container = draw(st.sampled_from(["xml", "gzip", "zip"]))
        if container == "gzip":
            xml = gzip.compress(xml, mtime=0)
        elif container == "zip":
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("report.xml", xml)
            xml = buffer.getvalue()
        start = draw(st.integers(0, len(xml)))
        stop = draw(st.integers(start, min(len(xml), start + 64)))
        return xml[:start] + draw(st.binary(max_size=8)) + xml[stop:]

    return mutate()


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_parse_report_on_damaged_reports_raises_only_dmarc_report_error(data: bytes) -> None:
    try:
        feedback = parse_report(data)
    except DmarcReportError:
        return
    assert all(r.count >= 0 for r in feedback.records)
    assert feedback.metadata.begin <= feedback.metadata.end


@settings(max_examples=200)
@given(st.binary(max_size=2048))
def test_find_report_on_any_bytes_returns_bytes_or_none(data: bytes) -> None:
    found = find_report(data)
    assert found is None or isinstance(found, bytes)


# ---- round trips ---------------------------------------------------------------------


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(feedbacks(), st.sampled_from(["xml", "gzip", "zip"]))
def test_report_xml_reads_back_equal(feedback: Feedback, container: str) -> None:
    data = report_xml(feedback)
    if container == "gzip":
        data = gzip.compress(data)
    elif container == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("r.xml", data)
        data = buffer.getvalue()
    assert parse_report(data) == feedback


@settings(max_examples=60)
@given(st.lists(evaluations, max_size=12))
def test_records_from_evaluations_keep_every_message(items: list[Evaluation]) -> None:
    grouped = records_from_evaluations(items)
    assert sum(r.count for r in grouped) == len(items)
    assert len(grouped) == len(set(items))
    expected = Counter(items)
    for record in grouped:
        key = Evaluation(
            source_ip=record.source_ip,
            disposition=record.disposition,
            dkim_aligned=record.dkim_aligned,  # type: ignore[arg-type]
            spf_aligned=record.spf_aligned,  # type: ignore[arg-type]
            reasons=record.reasons,
            header_from=record.header_from,
            envelope_from=record.envelope_from,
            envelope_to=record.envelope_to,
            dkim=record.dkim,
            spf=record.spf,
        )
        assert expected[key] == record.count


# ---- parsedmarc reads what we write --------------------------------------------------


def _assert_parsedmarc_agrees(feedback: Feedback, parsed: Any) -> None:
    meta = parsed["report_metadata"]
    assert meta["org_name"] == feedback.metadata.org_name
    assert meta["org_email"] == feedback.metadata.email
    assert meta["org_extra_contact_info"] == feedback.metadata.extra_contact_info
    assert meta["report_id"] == feedback.metadata.report_id
    assert meta["original_timespan_seconds"] == feedback.metadata.end - feedback.metadata.begin
    assert meta["errors"] == list(feedback.metadata.errors)
    policy = parsed["policy_published"]
    expected_policy = feedback.policy
    assert policy["domain"] == expected_policy.domain
    assert (policy["adkim"], policy["aspf"]) == (expected_policy.adkim, expected_policy.aspf)
    assert (policy["p"], policy["sp"]) == (expected_policy.p, expected_policy.sp)
    assert policy["pct"] == str(expected_policy.pct)
    assert policy["fo"] == expected_policy.fo
    assert len(parsed["records"]) == len(feedback.records)
    for got, want in zip(parsed["records"], feedback.records, strict=True):
        assert got["source"]["ip_address"] == want.source_ip
        assert got["count"] == want.count
        evaluated = got["policy_evaluated"]
        assert evaluated["disposition"] == want.disposition
        assert (evaluated["dkim"], evaluated["spf"]) == (want.dkim_aligned, want.spf_aligned)
        assert [(r["type"], r["comment"]) for r in evaluated["policy_override_reasons"]] == list(
            want.reasons
        )
        assert got["alignment"]["dmarc"] == ("pass" in (want.dkim_aligned, want.spf_aligned))
        ids = got["identifiers"]
        assert ids["header_from"] == want.header_from
        assert ids["envelope_to"] == want.envelope_to
        # parsedmarc fills a missing envelope_from in from the last SPF result.
        backfill = want.spf[-1].domain if want.spf else None
        assert ids["envelope_from"] == (want.envelope_from or backfill)
        assert [
            (d["domain"], d["selector"], d["result"], d["human_result"])
            for d in got["auth_results"]["dkim"]
        ] == [(d.domain, d.selector or "none", d.result, d.human_result) for d in want.dkim]
        assert [(s["domain"], s["scope"], s["result"]) for s in got["auth_results"]["spf"]] == [
            (s.domain, s.scope, s.result) for s in want.spf
        ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feedbacks(min_records=1))
def test_parsedmarc_reads_our_reports_with_the_same_counts_and_results(
    feedback: Feedback,
) -> None:
    parsedmarc = _parsedmarc()
    parsed = parsedmarc.parse_aggregate_report_xml(report_xml(feedback), offline=True)
    _assert_parsedmarc_agrees(feedback, parsed)
    # The gzip form too, through parsedmarc's own container sniffing.
    from_file = parsedmarc.parse_aggregate_report_file(
        gzip.compress(report_xml(feedback)), offline=True
    )
    _assert_parsedmarc_agrees(feedback, from_file)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(evaluations, min_size=1, max_size=10), feedbacks())
def test_parsedmarc_counts_match_what_was_evaluated(
    items: list[Evaluation], template: Feedback
) -> None:
    feedback = Feedback(
        template.version, template.metadata, template.policy, records_from_evaluations(items)
    )
    parsed = _parsedmarc().parse_aggregate_report_xml(report_xml(feedback), offline=True)
    assert sum(r["count"] for r in parsed["records"]) == len(items)
    per_ip = Counter[str]()
    for record in parsed["records"]:
        per_ip[record["source"]["ip_address"]] += record["count"]
    assert per_ip == Counter(e.source_ip for e in items)
    dkim_pass = sum(r["count"] for r in parsed["records"] if r["alignment"]["dkim"])
    assert dkim_pass == sum(1 for e in items if e.dkim_aligned == "pass")
