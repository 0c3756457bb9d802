"""`ledger head`, `verify`, `export`, `reprocess` on real ledger files."""

from __future__ import annotations

import json

import pytest
from builders import make_event, make_record, open_writer, v2_schemas
from ledgers import sample_ledger, tamper

from ledger.cli import main
from ledger.wire.codec import Codec


@pytest.fixture
def db(tmp_path):
    return sample_ledger(tmp_path / "ledger.db")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_head_prints_one_sorted_line_per_partition(db, capsys):
    """`ledger head` prints topic, partition, offset, chain hash per partition, sorted, same every time."""
    code, out, _ = run(capsys, "head", "--db", str(db))
    lines = out.splitlines()
    assert code == 0 and [line.split()[:3] for line in lines] == [
        ["ledger.access", "0", "2"], ["ledger.access", "1", "6"], ["ledger.consent", "0", "0"],
        ["ledger.disclosure", "0", "1"], ["ledger.sharing", "0", "0"]]  # the sample ledger (ledgers.py)
    assert all(len(line.split()[3]) == 64 for line in lines)
    assert run(capsys, "head", "--db", str(db))[1] == out


def test_head_json_matches_text(db, capsys):
    """`ledger head --json` carries the same values as the text form."""
    _, text, _ = run(capsys, "head", "--db", str(db))
    _, doc, _ = run(capsys, "head", "--db", str(db), "--json")
    heads = json.loads(doc)["heads"]
    assert [f"{h['topic']} {h['partition']} {h['offset']} {h['chain_hash']}" for h in heads] == text.splitlines()


def test_verify_reports_the_count(db, capsys):
    """`ledger verify` on a sound ledger says how many entries it checked and exits 0."""
    code, out, _ = run(capsys, "verify", "--db", str(db))
    assert code == 0 and "ok: 12 entries checked" in out


def test_verify_names_the_bad_entry_and_fails(db, capsys):
    """A tampered entry makes `ledger verify` exit 1 naming topic, partition, offset and event_id."""
    tamper(db, ["UPDATE entries SET timestamp = timestamp + 1 WHERE seq = 2"])
    code, out, err = run(capsys, "verify", "--db", str(db))
    assert code == 1
    assert "BAD ledger.access[0]@1 (seq 2 event_id 00000000-0000-0000-0000-000000000003): leaf hash differs" in out
    assert "verify failed: 1 problem(s)" in err


@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_verify_from_head(db, tmp_path, capsys, fmt):
    """`--from-head FILE` accepts both head formats and fails once the written-down head is gone."""
    heads = tmp_path / "heads"
    heads.write_text(run(capsys, "head", "--db", str(db), *fmt)[1])
    ledger, ingestor = open_writer(db)
    ingestor.ingest([make_record(make_event(20), offset=3)])
    ledger.close()
    code, out, _ = run(capsys, "verify", "--db", str(db), "--from-head", str(heads))
    assert code == 0 and "extends the 5 head(s)" in out
    other = tmp_path / "other.db"
    sample_ledger(other)
    tamper(other, ["UPDATE entries SET chain_hash = zeroblob(32), leaf_hash = zeroblob(32) WHERE seq = 10",
                   "UPDATE offsets SET chain_hash = zeroblob(32) WHERE last_seq = 10"])
    code, out, _ = run(capsys, "verify", "--db", str(other), "--from-head", str(heads))
    assert code == 1 and "head written down earlier ledger.disclosure 0 1" in out


def test_export_writes_a_copy_that_verifies(db, tmp_path, capsys):
    """`ledger export FILE` writes a copy that verifies on its own."""
    target = tmp_path / "copy.db"
    code, out, _ = run(capsys, "export", "--db", str(db), str(target))
    assert code == 0 and "exported 12 entries" in out
    assert run(capsys, "verify", "--db", str(target))[0] == 0


def test_reprocess_moves_entries_that_now_decode(tmp_path, capsys):
    """`ledger reprocess --schemas DIR` indexes rejected entries the new schemas decode; verify still passes."""
    schemas = v2_schemas(tmp_path)
    codec_v2 = Codec.load(schemas)
    db = tmp_path / "ledger.db"
    ledger, ingestor = open_writer(db)
    ingestor.ingest([make_record(make_event(1, codec=codec_v2), codec=codec_v2)])
    ledger.close()
    code, out, _ = run(capsys, "verify", "--db", str(db), "--schemas", str(schemas))
    assert code == 0 and "run `ledger reprocess`" in out
    code, out, _ = run(capsys, "reprocess", "--db", str(db), "--schemas", str(schemas))
    assert code == 0 and "moved 1 entry; 0 still rejected" in out
    code, out, _ = run(capsys, "verify", "--db", str(db), "--schemas", str(schemas))
    assert code == 0 and "note" not in out


def test_missing_ledger_is_a_clean_error(tmp_path, capsys):
    """Commands on a missing file print one line naming it and exit 1."""
    code, _, err = run(capsys, "head", "--db", str(tmp_path / "none.db"))
    assert code == 1 and "no ledger file at" in err and "Traceback" not in err


def test_every_command_has_help_with_an_example(capsys):
    """Each ledger-file command documents itself with an example."""
    for command in ("head", "verify", "export", "reprocess"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert f"example:\n  ledger {command}" in capsys.readouterr().out
