"""Auditor queries and verify running while the writer appends."""

from __future__ import annotations

import random
import time
from pathlib import Path

from faultcheck import Expected, check
from faultkit import WriterProcess, record, scale
from traffic import emit_acknowledged

from ledger.audit.query import disclosures, who_saw
from ledger.audit.verify import verify_ledger
from ledger.dev.simulate import simulate
from ledger.errors import StoreError
from ledger.store import Ledger


def _open_when_ready(path: str, writer: WriterProcess, timeout: float = 60) -> Ledger:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if Path(path).exists():
                return Ledger.open(path)
        except StoreError:
            pass  # created but its tables not committed yet
        assert writer.alive() and time.monotonic() < deadline, writer.stderr()
        time.sleep(0.05)


def test_queries_and_verify_during_appends_see_consistent_growing_answers(settings):
    """While the writer appends, every query returns only acknowledged events, none twice, never fewer than before; verify passes mid-ingest."""
    events = scale(20_000, 120_000)
    workload = simulate(seed=91, events=events, subjects=scale(300, 2_000))
    told = set(emit_acknowledged(settings, workload.events))
    subjects = [workload.a_rich_subject(), *random.Random(4).sample(workload.subjects, 4)]

    writer = WriterProcess(settings, until_idle=True, batch_size=500).start()
    queries, verifies, seen = 0, [], {}
    next_verify = 0.0
    try:
        ledger = _open_when_ready(settings.db, writer)
        try:
            while writer.alive():
                for name, rows in [*((s, who_saw(ledger, s)) for s in subjects), ("disclosures", disclosures(ledger))]:
                    ids = [row["event_id"] for row in rows]
                    queries += 1
                    assert len(ids) == len(set(ids)), f"{name}: an event listed twice"
                    assert set(ids) <= told, f"{name}: an event nobody emitted"
                    assert len(ids) >= seen.get(name, 0), f"{name}: fewer rows than a moment ago"
                    seen[name] = len(ids)
                if len(verifies) < scale(3, 8) and seen["disclosures"] and time.monotonic() >= next_verify:
                    report = verify_ledger(ledger)  # in one read snapshot while batches commit
                    verifies.append((report.ok, report.checked, [str(p) for p in report.problems[:3]]))
                    next_verify = time.monotonic() + 1.0
                time.sleep(0.01)
        finally:
            ledger.close()
        assert writer.wait() == 0, writer.stderr()
    finally:
        writer.close()

    with Ledger.open(settings.db) as ledger:  # the end state answers as the oracle does
        for subject in subjects:
            assert {r["event_id"] for r in who_saw(ledger, subject)} == {
                e["event_id"] for e in workload.touching(subject)}
    outcome = check(settings, Expected(told=told))
    mid = ", ".join(f"{'ok' if ok else 'FAILED'} at {n:,}" for ok, n, _ in verifies)
    record("queries + verify during appends", f"{queries} queries, {len(verifies)} verifies mid-ingest",
           outcome, f"mid-ingest verify: {mid}" if verifies else "no verify ran mid-ingest")
    outcome.assert_ok()
    assert all(ok for ok, _, _ in verifies), verifies
    assert queries > len(subjects) + 1
