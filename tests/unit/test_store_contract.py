"""The store's contract: what any ledger store must do, written against its interface only.

The interface is :class:`ledger.store.Ledger` (append, positions, tips, heads,
first_seen, snapshot, reader) and ledger/store/reads.py (the audit stage's
reads). Nothing here writes SQL or looks at tables, so a second backend
(PostgreSQL) is held to the same tests by adding a parameter to the ``store``
fixture that opens one of its own.
"""

from __future__ import annotations

import json

import pytest

from ledger.errors import StoreError
from ledger.store import AppendBatch, Head, IndexRow, Ledger, Move, StoredOccurrence, iter_side_rows, reads

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs
MINUTE = 60_000_000


def _sqlite(tmp_path):
    """A new SQLite ledger file, buckets of 4 entries so reads cross many buckets."""
    path = tmp_path / "contract.db"
    writer = Ledger.open(path, readonly=False, create=True, bucket_bits=2)
    return writer, lambda: Ledger.open(path, readonly=True)


@pytest.fixture(params=["sqlite"])
def store(request, tmp_path):
    """``(writer, open_reader)`` for each store implementation (a PostgreSQL one adds a param here)."""
    writer, open_reader = {"sqlite": _sqlite}[request.param](tmp_path)
    readers = []

    def reader():
        readers.append(open_reader())
        return readers[-1]

    yield writer, reader
    for r in readers:
        r.close()
    writer.close()


def event(n: int, etype: str = "DataAccessed", *, subject="cust-1", actor="agent-1", recipient=None,
          minutes: int | None = None) -> dict:
    occurred = T0 + (n if minutes is None else minutes) * MINUTE
    doc = {"event_id": f"00000000-0000-4000-8000-{n:012d}", "type": etype, "occurred_at": occurred,
           "subject_ids": [subject], "actor": {"id": actor}, "data_categories": ["contact"]}
    if recipient:
        doc["recipient"] = {"id": recipient}
    if etype == "LegalDisclosure":
        doc["disclosure_event_id"] = doc["event_id"]
    return doc


def batch(ledger: Ledger, events: list[dict], *, topic="ledger.access", partition=0, first_offset=0,
          recorded_ms=None) -> AppendBatch:
    """An AppendBatch of entries for ``events`` at consecutive offsets (what ingest hands the store)."""
    out = AppendBatch()
    seq = ledger.next_seq()
    for i, e in enumerate(events):
        s, offset = seq + i, first_offset + i
        ts = recorded_ms if recorded_ms is not None else e["occurred_at"] // 1000 + 1000
        text = json.dumps({**e, "occurred_at": str(e["occurred_at"])}, sort_keys=True)
        out.entries.append((s, topic, partition, offset, "record", None, ts, b"k", "[]", b"v", b"\0" * 8, "entry",
                            None, e["event_id"], e["type"], e["occurred_at"], text, bytes([s % 256]) * 32,
                            bytes([(s * 7) % 256]) * 32))
        out.index.append([s, e["occurred_at"], e["type"], e["actor"]["id"],
                          e["recipient"]["id"] if "recipient" in e else None, e["subject_ids"], e["data_categories"]])
        out.event_ids.append((e["event_id"], s, topic, partition))
    last = out.entries[-1]
    out.offsets.append((topic, partition, last[3] + 1, last[0], last[18]))
    return out


def seqs(rows) -> list[int]:
    return [r.seq for r in rows]


def test_append_sets_positions_tips_and_heads(store):
    """After an append the store reports each partition's next offset, tip and head."""
    writer, _ = store
    b = batch(writer, [event(1), event(2), event(3)], first_offset=10)
    writer.append(b)
    assert writer.positions() == {("ledger.access", 0): 13}
    tip = writer.tips()[("ledger.access", 0)]
    assert (tip.offset, tip.seq, tip.chain_hash) == (12, 3, b.entries[-1][18])
    assert writer.heads() == [Head("ledger.access", 0, 12, b.entries[-1][18])]
    assert writer.next_seq() == 4 and writer.count() == 3


def test_a_failed_append_writes_nothing(store):
    """An append is atomic: a batch that cannot be written leaves entries, side rows and positions as they were."""
    writer, _ = store
    writer.append(batch(writer, [event(1)]))
    bad = batch(writer, [event(2), event(3)])  # offset 0 again: refused by the store
    with pytest.raises(StoreError):
        writer.append(bad)
    assert writer.count() == 1 and writer.positions() == {("ledger.access", 0): 1}
    assert seqs(reads.side_rows(writer, "subjects", "cust-1", ("DataAccessed",))) == [1]


def test_reads_by_subject_actor_and_recipient_newest_first(store):
    """side_rows answers per key, newest event first, across buckets, for each side table."""
    writer, reader = store
    events = [event(n, subject=f"cust-{n % 2}", actor=f"agent-{n % 3}") for n in range(1, 21)]
    events += [event(100 + n, "DataShared", subject="cust-0", recipient=f"acme-{n % 2}", minutes=30 + n)
               for n in range(4)]
    writer.append(batch(writer, events))
    led = reader()
    by_subject = list(reads.side_rows(led, "subjects", "cust-1", ("DataAccessed",)))
    assert seqs(by_subject) == [n for n in range(19, 0, -2)]
    assert [r.occurred_at for r in by_subject] == sorted((r.occurred_at for r in by_subject), reverse=True)
    assert seqs(reads.side_rows(led, "actors", "agent-0", ("DataAccessed",))) == [18, 15, 12, 9, 6, 3]
    shared = list(reads.side_rows(led, "recipients", "acme-1", ("DataShared",)))
    assert [r.event_id for r in shared] == [events[23]["event_id"], events[21]["event_id"]]
    assert all(r.status == "entry" and r.marks is None for r in shared)
    assert len(list(reads.side_rows(led, "subjects", None, ("DataAccessed", "DataShared")))) == 24


def test_reads_by_time_window_and_as_of(store):
    """since is inclusive, until exclusive (event time); as_of keeps entries recorded by then."""
    writer, reader = store
    writer.append(batch(writer, [event(n) for n in range(1, 11)]))
    led = reader()
    window = reads.side_rows(led, "subjects", "cust-1", ("DataAccessed",),
                             since_us=T0 + 3 * MINUTE, until_us=T0 + 7 * MINUTE)
    assert seqs(window) == [6, 5, 4, 3]
    recorded_by = (T0 + 5 * MINUTE) // 1000 + 1000  # entry 5's recorded time
    assert seqs(reads.side_rows(led, "subjects", "cust-1", ("DataAccessed",), as_of_ms=recorded_by)) == [5, 4, 3, 2, 1]
    assert seqs(reads.side_rows(led, "subjects", "cust-1", ("ConsentChanged",))) == []


def test_notice_cases_are_read_by_type_and_as_of(store):
    """notice_entries returns the notice events (and only them) with where they were recorded."""
    writer, reader = store
    writer.append(batch(writer, [event(1), event(2, "LegalDisclosure", recipient="court"), event(3)]))
    writer.append(batch(writer, [event(4, "LegalDisclosure", recipient="court")], topic="ledger.legal", partition=1))
    led = reader()
    types = ("LegalDisclosure", "NotificationStatusChanged", "SubjectNotified")
    cases = sorted(reads.notice_entries(led, types), key=lambda c: (c.topic, c.offset))
    assert [(c.topic, c.partition, c.offset) for c in cases] == [("ledger.access", 0, 1), ("ledger.legal", 1, 0)]
    assert json.loads(cases[0].json)["event_id"] == event(2)["event_id"]
    early = (T0 + 2 * MINUTE) // 1000 + 1000
    assert len(list(reads.notice_entries(led, types, early))) == 1


def test_notice_cases_of_some_disclosures_are_only_theirs(store):
    """disclosure_ids keeps each named disclosure and the notices naming it, whatever their subjects."""
    writer, reader = store
    legal = [event(n, "LegalDisclosure", recipient="court") for n in (1, 2, 3)]
    notices = []
    for n, (disclosure, etype) in enumerate([(legal[0], "NotificationStatusChanged"), (legal[1], "SubjectNotified"),
                                             (legal[0], "SubjectNotified")], start=10):
        e = event(n, etype, subject="cust-other")  # a notice need not name the disclosure's customer
        e["disclosure_event_id"] = disclosure["event_id"]
        notices.append(e)
    writer.append(batch(writer, [*legal, *notices, event(20)]))
    led = reader()
    types = ("LegalDisclosure", "NotificationStatusChanged", "SubjectNotified")

    def ids(found):
        return sorted(json.loads(c.json)["event_id"] for c in found)

    assert ids(reads.notice_entries(led, types, disclosure_ids=[legal[0]["event_id"]])) == \
        sorted([legal[0]["event_id"], notices[0]["event_id"], notices[2]["event_id"]])
    assert ids(reads.notice_entries(led, types, disclosure_ids=[legal[1]["event_id"], legal[2]["event_id"]])) == \
        sorted([legal[1]["event_id"], legal[2]["event_id"], notices[1]["event_id"]])
    assert ids(reads.notice_entries(led, types, disclosure_ids=[])) == []
    assert ids(reads.notice_entries(led, types, disclosure_ids=["unknown"])) == []
    assert len(ids(reads.notice_entries(led, types))) == 6


def test_first_seen_names_the_first_occurrence(store):
    """first_seen maps each known event_id to its entry's (seq, topic, partition); unknown ids are absent."""
    writer, _ = store
    writer.append(batch(writer, [event(1), event(2)], topic="ledger.access", partition=2))
    found = writer.first_seen([event(2)["event_id"], "unknown"])
    assert found == {event(2)["event_id"]: (2, "ledger.access", 2)}


def test_a_read_snapshot_sees_one_state_while_the_writer_appends(store):
    """Reads inside one snapshot agree with each other however many batches the writer commits meanwhile."""
    writer, reader = store
    writer.append(batch(writer, [event(1), event(2)]))
    led = reader()
    with reads.snapshot(led):
        before = seqs(reads.side_rows(led, "subjects", "cust-1", ("DataAccessed",)))
        writer.append(batch(writer, [event(3)], first_offset=2))
        assert seqs(reads.side_rows(led, "subjects", "cust-1", ("DataAccessed",))) == before == [2, 1]
        assert led.heads()[0].offset == 1 and led.count() == 2
    assert led.heads()[0].offset == 2 and led.count() == 3


def test_table_counts_and_offsets_rows(store):
    """Verify's reads: a count per table and one offsets row per partition per batch."""
    writer, reader = store
    writer.append(batch(writer, [event(1), event(2)]))
    writer.append(batch(writer, [event(3)], first_offset=2))
    led = reader()
    assert reads.table_count(led, "event_ids") == 3 and reads.table_count(led, "conflicts") == 0
    assert [(r.next_offset, r.last_seq) for r in reads.offsets_rows(led)] == [(2, 2), (3, 3)]
    with pytest.raises(StoreError, match="no ledger table"):
        reads.table_count(led, "sqlite_master")


def test_side_table_rows_and_first_details_are_named_rows(store):
    """iter_side_rows gives IndexRows (filed under bucket seq >> bucket_bits); first_details StoredOccurrences."""
    writer, reader = store
    b = batch(writer, [event(n, subject=f"cust-{n}") for n in range(1, 7)], first_offset=40)
    writer.append(b)
    led = reader()
    rows = list(iter_side_rows(led, "subjects"))
    assert all(isinstance(r, IndexRow) for r in rows)
    assert [(r.key, r.seq, r.bucket) for r in rows] == [(f"cust-{n}", n, n >> 2) for n in range(1, 7)]
    assert rows[0].without_bucket() == ("cust-1", 1, event(1)["occurred_at"], "DataAccessed")
    assert type(rows[0].without_bucket()) is tuple  # verify prints it as the values index.side_rows derives
    found = led.first_details([2, 5, 99])
    assert set(found) == {2, 5}
    assert found[5] == StoredOccurrence(offset=44, timestamp=b.entries[4][6], value=b"v", json=b.entries[4][16])


def test_a_reprocess_move_is_logged_and_read_back_as_named_rows(store):
    """mark_reprocessed takes Moves; reprocess_log, conflict_rows and earlier_copies read named rows back."""
    writer, reader = store
    first, repeat = event(1), event(2)
    b = batch(writer, [first, repeat])
    entry = list(b.entries[1])  # seq 2 arrived rejected: a schema the writer did not know yet
    entry[11:17] = ["rejected", "unknown schema", None, None, None, None]
    b.entries[1] = tuple(entry)
    del b.index[1], b.event_ids[1]
    writer.append(b)
    text = b.entries[0][16]
    moves = [Move(seq=2, after_seq=2, old_reason="unknown schema", new_status="conflict",
                  new_reason="conflicts with seq 1", event_id=first["event_id"], type="DataAccessed",
                  occurred_at=repeat["occurred_at"], json=text)]
    rows = AppendBatch()
    rows.conflicts.append((2, first["event_id"], 1))
    rows.earlier.append((1, 2, 5))  # the store keeps the rows it is given; which a move needs is ingest's call
    writer.mark_reprocessed(moves, rows)
    led = reader()
    log = reads.reprocess_log(led)
    assert list(log) == [2] and isinstance(log[2], reads.Reprocessed)
    assert (log[2].after_seq, log[2].new_status) == (2, "conflict")
    assert reads.conflict_rows(led, [1, 2]) == {2: reads.ConflictRow(event_id=first["event_id"], first_seq=1)}
    assert reads.earlier_copies(led) == {2: reads.EarlierCopy(entry_seq=1, timestamp=5)}
    assert reads.reprocess_mismatches(led) == []
    moved = led.entry_at("ledger.access", 0, 1)
    assert (moved["status"], moved["reason"]) == ("conflict", "conflicts with seq 1")
    assert moved["event_id"] == first["event_id"]
