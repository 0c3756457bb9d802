"""verify: a clean ledger passes; each tamper case in tests/data/tamper is found and named."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from builders import make_event, make_record, open_writer, record_streams, v2_schemas
from hypothesis import HealthCheck, given, settings
from ledgers import sample_ledger, tamper, verify_file

from ledger.errors import StoreError, VerificationError
from ledger.ingest.pipeline import reprocess
from ledger.store import Head, Ledger, iter_entries, read_heads
from ledger.tlog.chain import leaf_hash, link
from ledger.tlog.merkle import MemoryHashStore, MerkleTree
from ledger.wire.codec import Codec

TAMPER_DIR = Path(__file__).parent.parent / "data" / "tamper"
TAMPER_CASES = sorted(TAMPER_DIR.glob("*.json"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return sample_ledger(tmp_path_factory.mktemp("pristine") / "ledger.db")


def test_sample_ledger_verifies(pristine):
    """The sample ledger (every status, a gap) passes and every entry is counted."""
    report = verify_file(pristine)
    assert report.ok, [str(p) for p in report.problems]
    assert report.checked == 12
    assert report.contradictions == 1
    with Ledger.open(pristine) as ledger:
        assert [e.status for e in iter_entries(ledger)] == [
            "entry", "entry", "duplicate", "conflict", "rejected", "gap", "entry", "entry", "entry",
            "contradiction", "rejected", "duplicate"]
        assert ledger.entry_at("ledger.disclosure", 0, 1)["reason"].startswith(
            "contradicts seq 2 (ledger.access[0]@1): type, ")
        assert ledger.entry_at("ledger.consent", 0, 0)["reason"] == (
            "routing: DataAccessed on topic ledger.consent (expected ledger.access)")
        assert ledger.conn.execute("SELECT * FROM earlier_copies").fetchall() == [
            (2, 4, 1_772_323_200_000), (7, 12, 1_772_323_200_000)]  # seq 4 too: offset 0 of its partition


@pytest.mark.parametrize("case", TAMPER_CASES, ids=lambda p: p.stem)
def test_tamper_case_is_detected(pristine, tmp_path, case):
    """Changing, deleting or inserting one row (entries or side tables) is found, naming the entry."""
    spec = json.loads(case.read_text())
    path = tmp_path / "ledger.db"
    shutil.copy(pristine, path)
    tamper(path, spec["sql"])
    report = verify_file(path)
    found = [str(p) for p in report.problems]
    assert not report.ok, spec["description"]
    for finding in spec["findings"]:
        assert any(finding["entry"] in f and finding["what"] in f for f in found), (finding, found)
    with pytest.raises(VerificationError):
        report.raise_if_bad()


def test_consistent_rewrite_is_caught_by_an_earlier_head(pristine, tmp_path):
    """Rewriting a record and recomputing every later hash (and the tiles) passes alone, but not against a head written down."""
    path = tmp_path / "ledger.db"
    shutil.copy(pristine, path)
    with Ledger.open(path) as ledger:
        heads = ledger.heads()
        entries = [e for e in iter_entries(ledger) if (e.topic, e.partition) == ("ledger.access", 1)]
    statements, prev, leaves = [], None, []
    for e in entries:  # change seq 7's timestamp and re-chain the partition
        record = e.record()
        if e.seq == 7:
            record = type(record)(**{**{f: getattr(record, f) for f in record.__slots__},
                                     "timestamp": record.timestamp + 1})
            statements.append(f"UPDATE entries SET timestamp = {record.timestamp} WHERE seq = 7")
        leaf = e.leaf_hash if e.kind == "gap" else leaf_hash(record)
        prev = link(prev, leaf)
        statements.append(f"UPDATE entries SET leaf_hash = X'{leaf.hex()}', chain_hash = X'{prev.hex()}' "
                          f"WHERE seq = {e.seq}")
        statements.append(f"UPDATE offsets SET chain_hash = X'{prev.hex()}' WHERE last_seq = {e.seq}")
        leaves.append(leaf)
    # ...and rebuilds the partition's Merkle tiles, which are in the same file (only a signed
    # checkpoint held elsewhere catches this: test_tlog_checkpoint).
    store = MemoryHashStore()
    tree = MerkleTree(store)
    tree.extend(leaves)
    tree.flush()
    statements.append("DELETE FROM tlog_tiles WHERE topic = 'ledger.access' AND partition = 1")
    statements += [f"INSERT INTO tlog_tiles VALUES ('ledger.access', 1, {lv}, {ix}, X'{h.hex()}')"
                   for (lv, ix), h in store.tiles.items()]
    tamper(path, statements)
    assert verify_file(path).ok
    report = verify_file(path, expected_heads=heads)
    assert not report.ok
    assert any("head written down earlier ledger.access 1 6" in str(p) for p in report.problems)


def test_ledger_extends_earlier_heads(pristine, tmp_path):
    """Heads written down earlier still verify after more records are appended."""
    path = tmp_path / "ledger.db"
    shutil.copy(pristine, path)
    with Ledger.open(path) as ledger:
        heads = ledger.heads()
    ledger, ingestor = open_writer(path)
    ingestor.ingest([make_record(make_event(10), offset=3), make_record(make_event(11), partition=2)])
    ledger.close()
    assert verify_file(path, expected_heads=heads).ok
    missing = [Head("ledger.access", 0, 99, bytes(32))]
    assert "has no entry at that offset" in str(verify_file(path, expected_heads=missing).problems[0])


def test_heads_file_formats(tmp_path):
    """read_heads accepts the text and the JSON output of `ledger head` and refuses anything else."""
    head = Head("ledger.access", 3, 17, bytes(range(32)))
    (tmp_path / "h.txt").write_text(head.line() + "\n")
    (tmp_path / "h.json").write_text(json.dumps({"heads": [
        {"topic": "ledger.access", "partition": 3, "offset": 17, "chain_hash": bytes(range(32)).hex()}]}))
    (tmp_path / "bad.txt").write_text("not a head\n")
    assert read_heads(tmp_path / "h.txt") == read_heads(tmp_path / "h.json") == [head]
    with pytest.raises(StoreError, match="not the output of `ledger head`"):
        read_heads(tmp_path / "bad.txt")


def test_entries_written_with_an_older_reader_still_verify(tmp_path):
    """After a v2 schema is installed, entries ingested with only v1 still verify: the stored form is the
    writer's (v1) whatever is installed (issue 11, defect 6)."""
    path = sample_ledger(tmp_path / "ledger.db")
    report = verify_file(path, codec=Codec.load(v2_schemas(tmp_path)))
    assert report.ok, [str(p) for p in report.problems]


def test_reprocessed_entries_verify_in_decision_order(tmp_path):
    """Reprocessed entries are deduplicated in the order reprocess decided; verify replays that order."""
    codec_v2 = Codec.load(v2_schemas(tmp_path))
    ledger, ingestor = open_writer(tmp_path / "ledger.db")
    new = make_event(1, codec=codec_v2, review_note="later")
    ingestor.ingest([make_record(new, offset=0, codec=codec_v2)])  # rejected: v2 unknown to the writer
    pending = verify_file(tmp_path / "ledger.db", codec=codec_v2)
    assert pending.ok and "run `ledger reprocess`" in pending.notes[0]
    ingestor.codec = codec_v2  # the writer restarted with v2: the same event arrives again, decodes
    ingestor.ingest([make_record(new, offset=1, codec=codec_v2)])
    reprocess(ledger, codec=codec_v2)  # seq 1 now decodes but seq 2 was first to be decided
    ledger.close()
    with Ledger.open(tmp_path / "ledger.db") as reader:
        assert [e.status for e in iter_entries(reader)] == ["duplicate", "entry"]
    assert verify_file(tmp_path / "ledger.db", codec=codec_v2).ok


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record_streams())
def test_any_ingested_stream_verifies(stream):
    """Whatever mix of entries, duplicates, conflicts, rejects and gaps was ingested, verify passes."""
    records, cuts = stream
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.db"
        for start, end in zip([0, *cuts], [*cuts, len(records)]):
            ledger, ingestor = open_writer(path)
            ingestor.ingest(records[start:end])
            ledger.close()
        report = verify_file(path)
        assert report.ok, [str(p) for p in report.problems]
        assert report.checked == Ledger.open(path).count()
