"""`ledger export --flat`: tables per event type, subjects, labels, views, FTS; audience rules; recorded as an EXPORT."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
from fill import cached_ledger, workload  # noqa: F401 (fixture)

from ledger.audit import query
from ledger.cli import main
from ledger.store import Ledger
from ledger.wire.codec import default_codec


@pytest.fixture(scope="module")
def db(workload) -> str:
    return str(cached_ledger(workload, ("query",)).path)


def outbox_events(path) -> list[dict]:
    codec = default_codec()
    conn = sqlite3.connect(path)
    try:
        return [codec.decode(v) for (v,) in conn.execute("SELECT value FROM outbox ORDER BY id")]
    finally:
        conn.close()


def test_flat_export_holds_every_event_and_answers_who_saw_like_the_library(db, workload, tmp_path, monkeypatch):
    """Rows per type equal the ledger's; the who_saw view gives the library's event ids; the file is read-only."""
    monkeypatch.setenv("LEDGER_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    out, outbox = tmp_path / "flat.db", tmp_path / "o.db"
    code = main(["export", "--flat", str(out), "--db", db, "--holder", "emp-9", "--justification", "audit AUD-1",
                 "--outbox", str(outbox)])
    assert code == 0
    assert not stat.S_IMODE(os.stat(out).st_mode) & 0o222
    conn = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("data_accessed", "data_shared", "legal_disclosure")}
    by_type = {}
    for e in workload.events:
        by_type[e["type"]] = by_type.get(e["type"], 0) + 1
    assert counts == {"data_accessed": by_type["DataAccessed"], "data_shared": by_type["DataShared"],
                      "legal_disclosure": by_type["LegalDisclosure"]}
    subject = workload.a_rich_subject()
    with Ledger.open(db) as ledger:
        expected = {r["event_id"] for r in query.who_saw(ledger, subject)}
    got = {r[0] for r in conn.execute("SELECT event_id FROM who_saw WHERE subject_id = ?", (subject,))}
    assert got == expected
    assert conn.execute("SELECT count(*) FROM purposes").fetchone()[0] > 5
    assert conn.execute("SELECT count(*) FROM disclosures_by_recipient").fetchone()[0] > 0
    role = conn.execute("SELECT actor_role FROM data_accessed LIMIT 1").fetchone()[0]
    assert conn.execute("SELECT count(*) FROM data_accessed_fts WHERE data_accessed_fts MATCH ?",
                        (f'"{role}"',)).fetchone()[0] > 0
    assert "actor_id" in [r[1] for r in conn.execute("PRAGMA table_info(data_accessed)")]
    conn.close()
    recorded = outbox_events(outbox)
    exported = {s for e in recorded for s in e["subject_ids"]}
    assert exported == {s for e in workload.events for s in e["subject_ids"]}
    assert all(e["access_type"] == "EXPORT" and e["actor"]["id"] == "emp-9" for e in recorded)
    assert all(e["justification"]["note"] == "audit AUD-1" for e in recorded)


def test_the_subject_audience_drops_staff_ids_notes_and_delayed_disclosures(db, tmp_path, monkeypatch):
    """--audience subject: no actor_id, justification_note or attributes columns; fewer legal disclosures."""
    monkeypatch.setenv("LEDGER_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    full, subj = tmp_path / "a.db", tmp_path / "s.db"
    for out, audience in ((full, "auditor"), (subj, "subject")):
        assert main(["export", "--flat", str(out), "--db", db, "--holder", "emp-9", "--justification", "x",
                     "--audience", audience, "--outbox", str(tmp_path / "o.db"),
                     "--as-of", "2026-02-15T00:00:00Z"]) == 0
    conn = sqlite3.connect(subj)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(data_accessed)")}
    assert not columns & {"actor_id", "justification_note", "attributes", "trace_id"}
    n_subject = conn.execute("SELECT count(*) FROM legal_disclosure").fetchone()[0]
    conn.close()
    conn = sqlite3.connect(full)
    n_full = conn.execute("SELECT count(*) FROM legal_disclosure").fetchone()[0]
    conn.close()
    assert n_subject < n_full


def test_flat_export_needs_a_holder_and_a_reason(db, tmp_path, capsys):
    """Without --holder/--justification: one clean error, no file."""
    assert main(["export", "--flat", str(tmp_path / "f.db"), "--db", db]) == 1
    assert "--holder" in capsys.readouterr().err and not (tmp_path / "f.db").exists()
