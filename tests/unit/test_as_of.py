"""--as-of counts an event from the earliest Kafka timestamp of its same-content copies, in any read order.

Copies of one event on several partitions are read in whatever order the
consumer interleaves the partitions; the first one appended becomes the
``entry``. Before earlier_copies, ``who-saw --as-of T`` for T between the
copies missed the event when the later-stamped copy happened to be appended
first.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from builders import CODEC, make_event, make_record, open_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.audit.obligations import obligations
from ledger.audit.query import disclosures, iso_millis, who_saw
from ledger.audit.verify import verify_ledger
from ledger.store import Ledger

SUBJECT = "cust-0001"


@st.composite
def copied_events(draw):
    """Events of one customer, each with 1-3 copies on random partitions at random timestamps, per partition
    in a random order; returns ({event_id: earliest timestamp}, {(topic, partition): [record values...]})."""
    streams: dict[tuple[str, int], list[tuple[dict, int]]] = {}
    earliest = {}
    for n in range(draw(st.integers(1, 5))):
        etype = draw(st.sampled_from(["DataAccessed", "LegalDisclosure"]))
        event = make_event(n, etype, subject_ids=[SUBJECT])
        times = draw(st.lists(st.integers(0, 60), min_size=1, max_size=3))
        earliest[event["event_id"]] = min(times)
        for ts in times:
            partition = draw(st.integers(0, 2))
            streams.setdefault((make_record(event).topic, partition), []).append((event, ts))
    for copies in streams.values():
        draw(st.randoms(use_true_random=False)).shuffle(copies)
    return earliest, streams


def interleave(streams: dict, rng) -> list:
    """One read order: partitions merged at random, each partition's records in offset order."""
    queues = {where: [make_record(e, where[0], where[1], offset, timestamp=ts) for offset, (e, ts) in enumerate(copies)]
              for where, copies in streams.items()}
    order = []
    while queues:
        where = rng.choice(sorted(queues))
        order.append(queues[where].pop(0))
        if not queues[where]:
            del queues[where]
    return order


def answers(path: Path, times) -> dict:
    with Ledger.open(path) as ledger:
        assert verify_ledger(ledger, codec=CODEC).ok
        out = {}
        for t in times:
            when = iso_millis(t).replace("000Z", "Z")
            notices, _ = obligations(ledger, as_of=when, now="2026-06-01T00:00:00Z")
            out[t] = (sorted((r["event_id"], r["recorded_at"]) for r in who_saw(ledger, SUBJECT, as_of=when)),
                      sorted(r["event_id"] for r in disclosures(ledger, as_of=when)),
                      sorted(n.disclosure_event_id for n in notices))
        return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(copied_events(), st.randoms(use_true_random=False), st.randoms(use_true_random=False))
def test_as_of_answers_do_not_depend_on_the_read_order(events, rng_a, rng_b):
    """Two read orders of the same partitions give the same as-of answers (who-saw, disclosures, obligations),
    and an event is in them exactly from the earliest timestamp of its copies, shown as its recorded_at."""
    earliest, streams = events
    times = sorted(set(earliest.values()) | {t - 1 for t in earliest.values()} | {61})
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for name, rng in (("a", rng_a), ("b", rng_b)):
            path = Path(tmp) / f"{name}.db"
            ledger, ingestor = open_writer(path)
            records = interleave(streams, rng)
            cut = rng.randrange(len(records) + 1)
            ingestor.ingest(records[:cut])
            ingestor.ingest(records[cut:])
            ledger.close()
            results.append(answers(path, times))
    assert results[0] == results[1]
    for t, (seen, _, _) in results[0].items():
        assert seen == sorted((i, iso_millis(ts)) for i, ts in earliest.items() if ts <= t)
