"""EvaluationStore against a list model (hypothesis stateful testing).

Random adds, removals and close-and-reopen; after every step the store's answers to
domains_due, evaluations and pending agree with the plain list of what was added
and not yet removed.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mailactors.protocol.dmarcrpt import DkimAuth, Evaluation, PolicyPublished, SpfAuth
from mailactors.storage.dmarcdb import EvaluationStore, PendingDomain, StoredEvaluation

DOMAINS = ["a.example", "b.example", "c.example"]
TIMES = st.integers(0, 20_000)

stored_evaluations = st.builds(
    StoredEvaluation,
    evaluated_at=TIMES,
    policy=st.builds(
        PolicyPublished,
        domain=st.sampled_from(DOMAINS),
        adkim=st.sampled_from([None, "r", "s"]),
        aspf=st.sampled_from([None, "r", "s"]),
        p=st.sampled_from(["none", "quarantine", "reject"]),
        sp=st.sampled_from([None, "none", "reject"]),
        pct=st.none() | st.integers(0, 100),
        fo=st.sampled_from([None, "0", "1:d"]),
    ),
    evaluation=st.builds(
        Evaluation,
        source_ip=st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::1"]),
        disposition=st.sampled_from(["none", "quarantine", "reject"]),
        dkim_aligned=st.sampled_from(["pass", "fail"]),
        spf_aligned=st.sampled_from(["pass", "fail"]),
        reasons=st.lists(
            st.tuples(st.sampled_from(["forwarded", "other"]), st.none() | st.text(max_size=5)),
            max_size=2,
        ).map(tuple),
        header_from=st.sampled_from(DOMAINS),
        envelope_from=st.none() | st.sampled_from(DOMAINS),
        envelope_to=st.none() | st.just("mail.example.net"),
        dkim=st.lists(
            st.builds(
                DkimAuth,
                domain=st.sampled_from(DOMAINS),
                selector=st.none() | st.just("s1"),
                result=st.sampled_from(["pass", "fail"]),
                human_result=st.none() | st.text(max_size=5),
            ),
            max_size=2,
        ).map(tuple),
        spf=st.lists(
            st.builds(
                SpfAuth,
                domain=st.sampled_from(DOMAINS),
                scope=st.sampled_from(["mfrom", "helo"]),
                result=st.sampled_from(["pass", "softfail"]),
            ),
            max_size=2,
        ).map(tuple),
    ),
    rua=st.lists(st.sampled_from(["mailto:r@a.example", "mailto:r@x.example!10m"]), max_size=2).map(
        tuple
    ),
)


class EvaluationStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="mailactors-dmarceval-"))
        self.log = logging.getLogger("mailactors.test.dmarceval")
        self.store = EvaluationStore(self.tmp / "dmarceval.db", self.log)
        self.store.init()
        self.model: list[StoredEvaluation] = []

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(evaluation=stored_evaluations)
    def add(self, evaluation: StoredEvaluation) -> None:
        new_id = self.store.add(evaluation)
        assert all(new_id > e.id for e in self.model)
        self.model.append(replace(evaluation, id=new_id))

    @rule(domain=st.sampled_from(DOMAINS), before=TIMES)
    def remove(self, domain: str, before: int) -> None:
        removed = self.store.remove(domain, before)
        keep = [
            e for e in self.model if not (e.policy_domain == domain and e.evaluated_at < before)
        ]
        assert removed == len(self.model) - len(keep)
        self.model = keep

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = EvaluationStore(self.tmp / "dmarceval.db", self.log)
        self.store.init()

    @rule(before=TIMES)
    def domains_due(self, before: int) -> None:
        expected = sorted({e.policy_domain for e in self.model if e.evaluated_at < before})
        assert self.store.domains_due(before) == expected

    @rule(domain=st.sampled_from(DOMAINS), begin=TIMES, length=st.integers(0, 10_000))
    def evaluations(self, domain: str, begin: int, length: int) -> None:
        end = begin + length
        expected = sorted(
            (e for e in self.model if e.policy_domain == domain and begin <= e.evaluated_at < end),
            key=lambda e: (e.evaluated_at, e.id),
        )
        assert self.store.evaluations(domain, begin, end) == expected

    @invariant()
    def pending_agrees(self) -> None:
        expected = []
        for domain in sorted({e.policy_domain for e in self.model}):
            times = [e.evaluated_at for e in self.model if e.policy_domain == domain]
            expected.append(PendingDomain(domain, len(times), min(times), max(times)))
        assert self.store.pending() == expected


EvaluationStoreMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
TestEvaluationStore = EvaluationStoreMachine.TestCase
