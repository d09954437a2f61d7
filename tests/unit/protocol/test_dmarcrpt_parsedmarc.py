"""parsedmarc, a reader DMARC report users run, accepts the report messages we send."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from types import ModuleType

from mailactors.protocol.dmarcrpt import (
    DkimAuth,
    Evaluation,
    Feedback,
    PolicyPublished,
    ReportMetadata,
    SpfAuth,
    compose_report_message,
    records_from_evaluations,
)


def _parsedmarc() -> ModuleType:
    # Importing parsedmarc leaves /dev/null open (a ResourceWarning); see common rules.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import parsedmarc
    return parsedmarc


def _evaluation(ip: str, dkim: str, spf: str, disposition: str) -> Evaluation:
    return Evaluation(
        source_ip=ip,
        disposition=disposition,
        dkim_aligned="pass" if dkim == "pass" else "fail",
        spf_aligned="pass" if spf == "pass" else "fail",
        reasons=(),
        header_from="example.org",
        envelope_from="example.org",
        envelope_to="mail.example.net",
        dkim=(DkimAuth("example.org", "2026a", dkim),),
        spf=(SpfAuth("example.org", "mfrom", spf),),
    )


def test_parsedmarc_reads_our_report_message() -> None:
    evaluations = [
        _evaluation("192.0.2.10", "pass", "pass", "none"),
        _evaluation("192.0.2.10", "pass", "pass", "none"),
        _evaluation("198.51.100.7", "fail", "softfail", "reject"),
        _evaluation("2001:db8::25", "pass", "fail", "none"),
    ]
    feedback = Feedback(
        version="1.0",
        metadata=ReportMetadata(
            org_name="mail.example.net",
            email="postmaster@mail.example.net",
            extra_contact_info=None,
            report_id="1767225600.example.org",
            begin=1767225600,
            end=1767229199,
        ),
        policy=PolicyPublished("example.org", "r", "r", "reject", "reject", 100, "0"),
        records=records_from_evaluations(evaluations),
    )
    message = compose_report_message(
        feedback,
        from_addr="postmaster@mail.example.net",
        to_addrs=["dmarc-reports@example.org"],
        submitter="mail.example.net",
        message_id="<dmarc.1767229200@mail.example.net>",
        now=datetime(2026, 1, 1, 1, 5, tzinfo=UTC),
    )
    parsed = _parsedmarc().parse_report_email(message, offline=True)
    assert parsed["report_type"] == "aggregate"
    report = parsed["report"]
    # parsedmarc shortens the org name to its base domain.
    assert report["report_metadata"]["org_name"] == "example.net"
    assert report["report_metadata"]["report_id"] == "1767225600.example.org"
    assert report["policy_published"]["domain"] == "example.org"
    counts = {
        (r["source"]["ip_address"], r["policy_evaluated"]["disposition"]): r["count"]
        for r in report["records"]
    }
    assert counts == {
        ("192.0.2.10", "none"): 2,
        ("198.51.100.7", "reject"): 1,
        ("2001:db8::25", "none"): 1,
    }
    spf_results = sorted(r["auth_results"]["spf"][0]["result"] for r in report["records"])
    assert spf_results == ["fail", "pass", "softfail"]
