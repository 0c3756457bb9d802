"""Ingest: decode, dedupe, chain and append records to a real ledger file (no Kafka).

The builders (make_event, make_record, open_writer) live in tests/support/builders.py.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path

import pytest
from builders import CODEC, make_event, make_record, open_writer, record_streams, v2_schemas
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.audit.verify import verify_ledger
from ledger.errors import LedgerLockedError, StoreError
from ledger.ingest.pipeline import Ingestor, reprocess
from ledger.model.events import canonical_json, to_json
from ledger.store import Ledger, iter_entries
from ledger.store.index import entry_columns, micros, side_rows
from ledger.tlog.chain import leaf_hash, link
from ledger.wire.codec import Codec
from ledger.wire.record import Record


def statuses(ledger: Ledger) -> list[tuple]:
    return [(e.topic, e.partition, e.offset, e.status) for e in iter_entries(ledger)]


# -- index: the columns verify re-derives --------------------------------------------------------
@given(st.integers(0, 10_000), st.sampled_from(["DataAccessed", "DataShared", "LegalDisclosure",
                                                "ConsentChanged", "SubjectNotified"]),
       st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()),
       st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=3))
def test_entry_columns_match_the_event_contract(n, etype, when, attributes):
    """The JSON form equals events.canonical_json(events.to_json(...)), occurred_at is exact µs."""
    event = make_event(n, etype, occurred_at=when, attributes=attributes)
    cols = entry_columns(event)
    assert cols["json"] == canonical_json(to_json(event))
    assert json.loads(cols["json"])["type"] == etype
    utc = when.astimezone(timezone.utc)
    assert cols["occurred_at"] == micros(utc) == (utc - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(
        microseconds=1)
    assert (cols["event_id"], cols["type"]) == (event["event_id"], etype)


def test_side_rows_are_sorted_and_keyed_by_seq():
    """side_rows gives (key, seq, occurred_at, type) per table, sorted by key, one per distinct value."""
    event = make_event(3, "DataShared")
    rows = side_rows(7, event)
    t = micros(event["occurred_at"])
    assert rows == {
        "subjects": [("cust-0003", 7, t, "DataShared"), ("cust-0004", 7, t, "DataShared")],
        "actors": [("emp-0", 7, t, "DataShared")],
        "recipients": [("rcpt-adreach", 7, t, "DataShared")],
        "categories": [("user.contact.email", 7, t, "DataShared"), ("user.contact.phone", 7, t, "DataShared")],
    }


# -- statuses and index rows --------------------------------------------------------------------
def test_decoded_records_become_entries_with_index_rows(tmp_path):
    """A decodable record is an `entry` with its decoded columns and one side row per subject/actor/category."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    event = make_event(1)
    result = ingestor.ingest([make_record(event)])
    assert result.counts["entry"] == 1 and result.rejected == []
    entry = ledger.entry_at("ledger.access", 0, 0)
    assert (entry["status"], entry["event_id"], entry["type"]) == ("entry", event["event_id"], "DataAccessed")
    assert json.loads(entry["json"])["subject_ids"] == ["cust-0001", "cust-0002"]
    conn = ledger.conn
    assert conn.execute("SELECT subject_id FROM subjects ORDER BY 1").fetchall() == [("cust-0001",), ("cust-0002",)]
    assert conn.execute("SELECT actor_id, type FROM actors").fetchall() == [("emp-1", "DataAccessed")]
    assert conn.execute("SELECT category FROM categories").fetchall() == [("user.contact.email",)]
    assert conn.execute("SELECT count(*) FROM recipients").fetchone() == (0,)


@pytest.mark.parametrize("etype,recipients,categories", [
    ("DataShared", 1, 2), ("LegalDisclosure", 1, 1), ("ConsentChanged", 0, 0), ("SubjectNotified", 0, 0),
])
def test_side_rows_follow_the_event_type(tmp_path, etype, recipients, categories):
    """Recipients are indexed for shares and disclosures, categories only where the event has them."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    ingestor.ingest([make_record(make_event(1, etype))])
    conn = ledger.conn
    assert conn.execute("SELECT count(*) FROM recipients").fetchone()[0] == recipients
    assert conn.execute("SELECT count(*) FROM categories").fetchone()[0] == categories
    assert conn.execute("SELECT count(*) FROM actors").fetchone()[0] == 1


def test_repeat_on_same_partition_is_duplicate_and_not_indexed(tmp_path):
    """A repeated event_id on the same partition is kept as `duplicate`; the first offset wins."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    event = make_event(1)
    ingestor.ingest([make_record(event, offset=0)])
    result = ingestor.ingest([make_record(event, offset=1), make_record(event, offset=2)])
    assert result.counts["duplicate"] == 2
    assert [s for *_, s in statuses(ledger)] == ["entry", "duplicate", "duplicate"]
    assert ledger.conn.execute("SELECT count(*) FROM subjects").fetchone() == (2,)
    assert ledger.first_seen([event["event_id"]])[event["event_id"]].seq == 1


def test_repeat_on_another_partition_is_a_conflict(tmp_path):
    """The same event_id on another topic-partition is kept as `conflict` with a conflicts row."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    event = make_event(1)
    result = ingestor.ingest([make_record(event, partition=0), make_record(event, partition=1)])
    assert result.counts["conflict"] == 1
    assert ledger.conn.execute("SELECT seq, event_id, first_seq FROM conflicts").fetchall() == [
        (2, event["event_id"], 1)]


def test_repeat_with_other_content_is_a_contradiction_on_any_partition(tmp_path):
    """A repeated event_id whose decoded content differs is `contradiction` (not duplicate/conflict), with a
    reason naming the entry and the fields, a conflicts row and side rows; identical repeats stay as they were."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    event = make_event(1)
    other = make_event(1, purpose="marketing.email", subject_ids=["cust-0009"])
    ingestor.ingest([make_record(event, offset=0)])  # the entry is then found in the file
    result = ingestor.ingest([make_record(other, offset=1), make_record(other, partition=1),
                              make_record(event, offset=2), make_record(event, partition=2)])
    assert [s for *_, s in statuses(ledger)] == ["entry", "contradiction", "contradiction", "duplicate", "conflict"]
    assert (result.counts["contradiction"], result.counts["duplicate"], result.counts["conflict"]) == (2, 1, 1)
    reasons = [e.reason for e in iter_entries(ledger)]
    assert reasons == [None, "contradicts seq 1 (ledger.access[0]@0): purpose, subject_ids",
                       "contradicts seq 1 (ledger.access[0]@0): purpose, subject_ids", None, None]
    assert ledger.conn.execute("SELECT seq, first_seq FROM conflicts ORDER BY seq").fetchall() == [
        (2, 1), (3, 1), (5, 1)]
    assert ledger.conn.execute("SELECT DISTINCT seq FROM subjects WHERE subject_id = 'cust-0009' ORDER BY seq"
                               ).fetchall() == [(2,), (3,)]
    assert verify_ledger(ledger, codec=CODEC).ok


def test_a_legal_disclosure_reusing_an_access_id_is_a_contradiction(tmp_path):
    """The issue's case: a LegalDisclosure with a DataAccessed's event_id, in the same batch, is kept and marked."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    access = make_event(1)
    disclosure = make_event(7, "LegalDisclosure", event_id=access["event_id"])
    ingestor.ingest([make_record(access), make_record(disclosure)])
    entry = ledger.entry_at("ledger.disclosure", 0, 0)
    assert entry["status"] == "contradiction"
    assert entry["reason"].startswith("contradicts seq 1 (ledger.access[0]@0): type, access_type, ")


def test_misrouted_records_are_rejected_with_what_is_wrong(tmp_path):
    """Wrong topic, a header that contradicts the schema, a key other than min(subject_ids): rejected, named,
    handed back for the dead-letter topic, never indexed."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    event = make_event(1)
    good = make_record(event)
    lying = Record("ledger.access", 0, 0, good.timestamp, good.key, good.value, (("event_type", b"ConsentChanged"),))
    result = ingestor.ingest([make_record(event, "ledger.consent"), lying, make_record(event, offset=1, key=b"x")])
    assert [reason for _, reason in result.rejected] == [
        "routing: DataAccessed on topic ledger.consent (expected ledger.access)",
        "routing: header event_type=ConsentChanged contradicts the schema DataAccessed",
        "routing: key 'x' (expected 'cust-0001')"]
    assert [s for *_, s in statuses(ledger)] == ["rejected"] * 3
    assert ledger.conn.execute("SELECT count(*) FROM subjects").fetchone() == (0,)
    assert ledger.entry_at("ledger.consent", 0, 0)["event_id"] == event["event_id"]
    assert verify_ledger(ledger, codec=CODEC).ok


def test_a_same_content_copy_recorded_earlier_gets_an_earlier_copies_row(tmp_path):
    """When a repeat with an earlier Kafka timestamp is appended after the entry, the event's earliest
    recorded time is kept (earlier_copies); a later or contradicting copy adds nothing."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    event = make_event(1)
    ingestor.ingest([make_record(event, partition=1, timestamp=2_000)])
    ingestor.ingest([make_record(event, partition=0, timestamp=1_000), make_record(event, partition=2, timestamp=3_000),
                     make_record(make_event(1, purpose="marketing.email"), partition=1, offset=1, timestamp=500)])
    assert ledger.conn.execute("SELECT * FROM earlier_copies").fetchall() == [(1, 2, 1_000)]
    assert verify_ledger(ledger, codec=CODEC).ok


def fingerprint_swapped(data: bytes) -> bytes:
    return data[:2] + bytes(8) + data[10:]


def invalid_but_avro(event: dict) -> bytes:
    """Avro-valid bytes with the current fingerprint whose content fails validation (no subjects)."""
    version = CODEC.newest("DataAccessed")
    out = BytesIO()
    out.write(b"\xc3\x01" + version.fingerprint)
    schemaless_writer(out, version.parsed, {**event, "subject_ids": []})
    return out.getvalue()


@pytest.mark.parametrize("make_value,reason,readable_id", [
    (lambda e: None, "no value (null)", False),
    (lambda e: b"not avro", "not Avro single-object encoded", False),
    (lambda e: fingerprint_swapped(CODEC.encode(e)), "unknown writer schema fingerprint", True),
    (invalid_but_avro, "is invalid: subject_ids", True),
    (lambda e: CODEC.encode(e) + b"\x00", "trailing byte", True),
])
def test_undecodable_records_are_kept_as_rejected(tmp_path, make_value, reason, readable_id):
    """A record that cannot be decoded or validated is appended raw, rejected with its reason, never indexed."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    event = make_event(1)
    record = make_record(make_value(event), etype="DataAccessed")
    prepared = ingestor.prepare([record])
    assert [(r, why) for r, why in prepared.rejected if reason in why] == [(record, prepared.rejected[0][1])]
    ingestor.commit(prepared)
    entry = ledger.entry_at("ledger.access", 0, 0)
    assert entry["status"] == "rejected" and reason in entry["reason"]
    assert entry["value"] == record.value and entry["type"] == "DataAccessed"
    assert entry["event_id"] == (event["event_id"] if readable_id else None)
    assert ledger.conn.execute("SELECT count(*) FROM subjects").fetchone() == (0,)
    assert ledger.conn.execute("SELECT count(*) FROM event_ids").fetchone() == (0,)


def test_oversized_records_are_rejected(tmp_path):
    """A value above the codec's size limit is rejected, not decoded."""
    small = Codec.load(max_record_bytes=64)
    ledger, ingestor = open_writer(tmp_path / "l.db", codec=small)
    ingestor.ingest([make_record(make_event(1))])
    assert "limit" in ledger.entry_at("ledger.access", 0, 0)["reason"]


# -- offsets, gaps, restarts ---------------------------------------------------------------------
def test_jumps_in_offsets_get_gap_entries(tmp_path):
    """A first record above offset 0, and any later jump, are preceded by an explicit gap entry."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    result = ingestor.ingest([make_record(make_event(1), offset=3), make_record(make_event(2), offset=4),
                              make_record(make_event(3), offset=9)])
    assert result.counts["gap"] == 2
    rows = ledger.conn.execute("SELECT offset, kind, gap_end, status FROM entries ORDER BY seq").fetchall()
    assert rows == [(0, "gap", 3, "gap"), (3, "record", None, "entry"), (4, "record", None, "entry"),
                    (5, "gap", 9, "gap"), (9, "record", None, "entry")]
    assert ledger.positions() == {("ledger.access", 0): 10}


def test_records_already_in_the_ledger_are_skipped(tmp_path):
    """Re-delivered offsets at or below the tip are skipped: exactly once across restarts."""
    path = tmp_path / "l.db"
    ledger, ingestor = open_writer(path)
    records = [make_record(make_event(i), offset=i) for i in range(5)]
    ingestor.ingest(records[:3])
    ledger.close()
    ledger, ingestor = open_writer(path)
    result = ingestor.ingest(records)
    assert (result.counts["skipped"], result.counts["entry"]) == (3, 2)
    assert [o for _, _, o, _ in statuses(ledger)] == [0, 1, 2, 3, 4]


def test_prepare_writes_nothing_and_batches_commit_only_in_order(tmp_path):
    """prepare() leaves the file untouched; a batch prepared after another builds on it and must commit after it."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    first = ingestor.prepare([make_record(make_event(1), offset=0)])
    second = ingestor.prepare([make_record(make_event(2), offset=1)])
    assert ledger.count() == 0
    with pytest.raises(StoreError, match="not the next to commit"):
        ingestor.commit(second)
    ingestor.commit(first)
    ingestor.commit(second)
    assert ledger.count() == 2
    assert verify_ledger(ledger, codec=CODEC).ok


def test_a_repeat_of_an_event_still_in_flight_is_a_duplicate(tmp_path):
    """An event_id first seen in a batch not yet committed is recognised as a repeat in the next batch."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    event = make_event(1)
    first = ingestor.prepare([make_record(event, offset=0)])
    second = ingestor.prepare([make_record(event, offset=1)])
    assert second.counts["duplicate"] == 1
    ingestor.commit(first)
    ingestor.commit(second)
    assert verify_ledger(ledger, codec=CODEC).ok


def test_a_contradiction_of_an_event_still_in_flight_is_found(tmp_path):
    """A repeat with other content of an event in a batch not yet committed is a contradiction of it, and an
    earlier-stamped identical copy gets its earlier_copies row, as if the first batch were in the file."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    event = make_event(1)
    first = ingestor.prepare([make_record(event, offset=0, timestamp=5_000)])
    second = ingestor.prepare([make_record(make_event(1, outcome="DENIED"), offset=1),
                               make_record(event, partition=1, timestamp=4_000)])
    assert (second.counts["contradiction"], second.counts["conflict"]) == (1, 1)
    ingestor.commit(first)
    ingestor.commit(second)
    assert ledger.entry_at("ledger.access", 0, 1)["reason"] == "contradicts seq 1 (ledger.access[0]@0): outcome"
    assert ledger.conn.execute("SELECT * FROM earlier_copies").fetchall() == [(1, 3, 4_000)]
    assert verify_ledger(ledger, codec=CODEC).ok


def test_a_second_writer_is_refused(tmp_path):
    """An Ingestor takes the writer lock; another one on the same file gets LedgerLockedError."""
    path = tmp_path / "l.db"
    open_writer(path)
    other = Ledger.open(path, readonly=False)
    with pytest.raises(LedgerLockedError, match="locked by another writer"):
        Ingestor(other, codec=CODEC)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record_streams())
def test_restart_continues_the_chain_identically(stream):
    """Ingesting in batches with a new Ingestor (reopened file) between them equals one uninterrupted run."""
    records, cuts = stream
    with tempfile.TemporaryDirectory() as tmp:
        ledger, ingestor = open_writer(Path(tmp) / "one.db")
        ingestor.ingest(records)
        one = list(iter_entries(ledger))
        heads = ledger.heads()
        ledger.close()
        path = Path(tmp) / "restarted.db"
        for start, end in zip([0, *cuts], [*cuts, len(records)]):
            ledger, ingestor = open_writer(path)
            ingestor.ingest(records[max(0, start - 2) : end])  # overlap: a restart re-delivers some
            ledger.close()
        with Ledger.open(path) as ledger:
            assert list(iter_entries(ledger)) == one
            assert ledger.heads() == heads


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record_streams())
def test_a_bulk_load_equals_a_live_one(stream):
    """A bulk load (indexes staged, built at the end) decides every status and index row as live batches do."""
    records, cuts = stream
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for mode in ("live", "bulk"):
            path = Path(tmp) / f"{mode}.db"
            ledger = Ledger.open(path, readonly=False, create=True, bucket_bits=1)
            ingestor = Ingestor(ledger, codec=CODEC)
            if mode == "bulk":
                ledger.begin_bulk()
            for start, end in zip([0, *cuts], [*cuts, len(records)]):
                ingestor.ingest(records[start:end])
            if mode == "bulk":
                assert ledger.conn.execute("SELECT count(*) FROM event_ids").fetchone() == (0,)  # still staged
                ledger.finish_bulk()
            ledger.close()
            files[mode] = path
        tables = ("event_ids", "conflicts", "subjects", "actors", "recipients", "categories")
        with Ledger.open(files["live"]) as live, Ledger.open(files["bulk"]) as bulk:
            assert list(iter_entries(bulk)) == list(iter_entries(live))
            for table in tables:
                sql = f"SELECT * FROM {table} ORDER BY 1, 2, 3"
                assert bulk.conn.execute(sql).fetchall() == live.conn.execute(sql).fetchall(), table
            assert verify_ledger(bulk, codec=CODEC).ok


# -- reprocess ---------------------------------------------------------------------------------
def test_reprocess_indexes_what_new_schemas_decode(tmp_path):
    """Rejected for an unknown schema, an entry is indexed by reprocess once v2 is installed; the chain is untouched."""
    codec_v2 = Codec.load(v2_schemas(tmp_path))
    ledger, ingestor = open_writer(tmp_path / "l.db")  # the writer only knows v1
    new = make_event(1, codec=codec_v2, review_note="ok")
    old = make_event(2)
    ingestor.ingest([make_record(new, offset=0, codec=codec_v2), make_record(old, offset=1),
                     make_record(new, offset=2, codec=codec_v2)])
    before = [(e.seq, e.leaf_hash, e.chain_hash) for e in iter_entries(ledger)]
    assert [s for *_, s in statuses(ledger)] == ["rejected", "entry", "rejected"]
    result = reprocess(ledger, codec=codec_v2)
    assert (result.examined, result.counts["entry"], result.counts["duplicate"]) == (2, 1, 1)
    assert [s for *_, s in statuses(ledger)] == ["entry", "entry", "duplicate"]
    assert [(e.seq, e.leaf_hash, e.chain_hash) for e in iter_entries(ledger)] == before
    assert json.loads(ledger.entry_at("ledger.access", 0, 0)["json"])["review_note"] == "ok"
    log = ledger.conn.execute("SELECT seq, after_seq, new_status FROM reprocess_log ORDER BY id").fetchall()
    assert log == [(1, 3, "entry"), (3, 3, "duplicate")]
    assert reprocess(ledger, codec=codec_v2).examined == 0


def test_reprocess_classifies_repeats_and_routing_as_ingest_does(tmp_path):
    """A rejected record decoded later by reprocess is a contradiction when its content differs, with the same
    reason ingest would give; a misrouted one stays rejected; the result verifies."""
    codec_v2 = Codec.load(v2_schemas(tmp_path))
    ledger, ingestor = open_writer(tmp_path / "l.db")  # the writer only knows v1
    first = make_event(1)
    other = make_event(1, codec=codec_v2, review_note="changed")
    ingestor.ingest([make_record(first, offset=0), make_record(other, offset=1, codec=codec_v2),
                     make_record(make_event(2, codec=codec_v2), "ledger.consent", codec=codec_v2)])
    result = reprocess(ledger, codec=codec_v2)
    assert (result.counts["contradiction"], result.still_rejected) == (1, 1)
    assert ledger.entry_at("ledger.access", 0, 1)["reason"] == "contradicts seq 1 (ledger.access[0]@0): review_note"
    assert ledger.entry_at("ledger.consent", 0, 0)["status"] == "rejected"
    assert ledger.conn.execute("SELECT seq, first_seq FROM conflicts").fetchall() == [(2, 1)]
    assert verify_ledger(ledger, codec=codec_v2).ok


# -- a replayed window -------------------------------------------------------------------------
def test_a_window_ledger_starts_each_chain_at_its_first_record(tmp_path):
    """With start_mid_chain the first record of a partition opens its chain (no gap from 0); verify accepts it."""
    ledger = Ledger.open(tmp_path / "w.db", readonly=False, create=True)
    ingestor = Ingestor(ledger, codec=CODEC, start_mid_chain=True)
    records = [make_record(make_event(1), offset=7), make_record(make_event(2), offset=9)]
    ingestor.ingest(records)
    assert [(o, s) for _, _, o, s in statuses(ledger)] == [(7, "entry"), (8, "gap"), (9, "entry")]
    assert ledger.entry_at("ledger.access", 0, 7)["chain_hash"] == link(None, leaf_hash(records[0]))
    assert ledger.meta()["chain_start"] == "mid"
    ledger.close()
    with Ledger.open(tmp_path / "w.db") as reader:
        assert verify_ledger(reader, codec=CODEC).ok
    ledger, ingestor = open_writer(tmp_path / "w.db")  # a later writer keeps the ledger's convention
    ingestor.ingest([make_record(make_event(3), partition=1, offset=4)])
    assert ledger.entry_at("ledger.access", 1, 4)["status"] == "entry"
    ledger.close()


def test_start_mid_chain_is_refused_on_a_ledger_with_entries(tmp_path):
    """An existing full ledger cannot be switched to mid-chain starts."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    ingestor.ingest([make_record(make_event(1))])
    with pytest.raises(StoreError, match="start_mid_chain is for a new ledger"):
        Ingestor(ledger, codec=CODEC, start_mid_chain=True)


def test_a_contradiction_with_implausible_times_carries_both_reasons(tmp_path):
    """A contradicting repeat stamped a year after its claimed time keeps both facts in ``reason``, in a fixed
    order (contradiction, then the time flag), and verify re-derives each part."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    event = make_event(1)
    other = make_event(1, purpose="marketing.email")
    late = int(event["occurred_at"].timestamp() * 1000) + 400 * 86_400_000
    ingestor.ingest([make_record(event, offset=0), make_record(other, offset=1, timestamp=late)])
    reason = ledger.entry_at("ledger.access", 0, 1)["reason"]
    assert reason.startswith("contradicts seq 1 (ledger.access[0]@0): purpose; time: ")
    assert verify_ledger(ledger, codec=CODEC).ok


@given(st.one_of(st.none(), st.just("contradicts seq 3 (ledger.access[1]@2): purpose, type")),
       st.one_of(st.none(), st.just("time: occurred_at 400 days before the recorded time")))
def test_reasons_join_and_split_back(contradiction, flag):
    """split_reason undoes join_reasons for every combination of a contradiction and a time flag."""
    from ledger.ingest.repeats import join_reasons, split_reason

    assert split_reason(join_reasons(contradiction, flag)) == (contradiction, flag)
