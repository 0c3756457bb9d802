"""The stored readable form is the writer's: live == replay across a schema upgrade (issue 11, defect 6).

Entries used to be read with the newest schema installed at ingest time, so a
v1 record ingested before a v2 was installed had no key for v2's new field,
one ingested after it (and every entry of a replay) had the field with its
default: ``who-saw --format json`` differed between a live ledger and its
replay while ``ledger diff`` said "same records". Now the ``json`` column is
derived from the writer's own schema, and ``ledger diff`` also compares it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from builders import make_event
from kafkautil import read_topics

from ledger.audit.diff import diff_ledgers
from ledger.audit.verify import verify_ledger
from ledger.ingest.pipeline import Ingestor
from ledger.model import events
from ledger.produce.producer import AuditProducer
from ledger.store import Ledger, iter_entries
from ledger.wire.codec import Codec, default_codec
from ledger.wire.record import Record

NEW_FIELD = {"name": "review_note", "type": ["null", "string"], "default": None, "doc": "Added in v2."}
SUBJECTS = [f"cust-{n:04d}" for n in range(0, 13)]


def _v2_root(tmp_path: Path) -> Path:
    root = tmp_path / "schemas-v2"
    shutil.copytree(events.schemas_dir(), root)
    schema = json.loads((root / "DataAccessed" / "v1.avsc").read_text())
    schema["fields"].append(NEW_FIELD)
    (root / "DataAccessed" / "v2.avsc").write_text(json.dumps(schema, indent=2))
    return root


def _cli(settings, *args, schemas: Path | None = None, db: str | None = None):
    env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LEDGER_KAFKA_CLIENT": settings.kafka_client,
           "LEDGER_TOPIC_PREFIX": settings.topic_prefix, "LEDGER_DB": db or settings.db}
    env.pop("LEDGER_SCHEMAS_DIR", None)
    if schemas is not None:
        env["LEDGER_SCHEMAS_DIR"] = str(schemas)
    done = subprocess.run([sys.executable, "-m", "ledger", *args], env=env, capture_output=True, text=True,
                          timeout=300)
    return done


def _emit(settings, evts, codec: Codec) -> None:
    with AuditProducer(settings, codec=codec) as producer:
        for e in evts:
            producer.emit(e)
        producer.flush()


def _who_saw(settings, db: str, schemas: Path) -> dict[str, str]:
    out = {}
    for subject in SUBJECTS:
        done = _cli(settings, "who-saw", subject, "--format", "json", schemas=schemas, db=db)
        assert done.returncode == 0, done.stderr
        out[subject] = done.stdout
    return out


def test_live_and_replay_read_the_same_across_a_schema_upgrade(settings, tmp_path):
    """v1 records ingested with only v1 installed, then v1 and v2 records with v2 installed, then a replay of
    everything with v2 installed: who-saw --format json is identical, the v1 records have no v2 field in
    either ledger, verify passes on both and ledger diff finds nothing."""
    v2 = _v2_root(tmp_path)
    codec_v1, codec_v2 = default_codec(), Codec.load(v2)
    _emit(settings, [make_event(n) for n in range(0, 4)], codec_v1)
    consumed = _cli(settings, "consume", "--until-idle")  # only v1 installed
    assert consumed.returncode == 0, consumed.stderr
    _emit(settings, [make_event(n) for n in range(4, 8)], codec_v1)  # an old producer, after the upgrade
    _emit(settings, [make_event(n, codec=codec_v2, review_note=f"r{n}") for n in range(8, 12)], codec_v2)
    consumed = _cli(settings, "consume", "--until-idle", schemas=v2)
    assert consumed.returncode == 0, consumed.stderr
    replayed_db = str(tmp_path / "replayed.db")
    replayed = _cli(settings, "replay", "--into", replayed_db, "--quiet", schemas=v2)
    assert replayed.returncode == 0, replayed.stderr

    live, replay = _who_saw(settings, settings.db, v2), _who_saw(settings, replayed_db, v2)
    assert live == replay
    rows = {r["event_id"]: r for text in live.values() for r in json.loads(text)}
    assert len(rows) == 12
    for n in range(12):
        row = rows[make_event(n)["event_id"]]
        assert ("review_note" in row) == (n >= 8), n  # what the producer sent, nothing more
    for db in (settings.db, replayed_db):
        with Ledger.open(db) as ledger:
            verify_ledger(ledger, codec=codec_v2).raise_if_bad()
    same = _cli(settings, "diff", settings.db, replayed_db, schemas=v2)
    assert same.returncode == 0 and "same records" in same.stdout, same.stdout


def test_diff_reports_the_same_bytes_read_differently(settings, tmp_path):
    """Two ledgers with identical records but a different json column (here: v1 records read with the newest
    reader, as ingest did before) are reported as 'readable form (json) differs', exit 1."""
    v2 = _v2_root(tmp_path)
    codec_v2 = Codec.load(v2)
    _emit(settings, [make_event(n) for n in range(3)], default_codec())
    records = [Record(m.topic, m.partition, m.offset, m.timestamp, m.key, m.value,
                      tuple((k, v) for k, v in m.headers)) for m in read_topics(settings)]
    paths = {}
    for name, codec in (("writer", codec_v2), ("newest", _NewestReader(codec_v2))):
        paths[name] = tmp_path / f"{name}.db"
        with Ledger.open(paths[name], readonly=False, create=True) as ledger:
            Ingestor(ledger, codec=codec).ingest(records)
    with Ledger.open(paths["newest"]) as ledger:
        assert all('"review_note":null' in e.json for e in iter_entries(ledger) if e.kind == "record")
    result = diff_ledgers(paths["writer"], paths["newest"])
    assert result.compared == 3 and {d.kind for d in result.differences} == {"json_differs"}
    assert len(result.differences) == 3
    done = _cli(settings, "diff", str(paths["writer"]), str(paths["newest"]))
    assert done.returncode == 1 and "readable form (json) differs" in done.stdout
    with Ledger.open(paths["newest"]) as ledger:  # verify knows one right form: the old rule's is flagged
        problems = [str(p) for p in verify_ledger(ledger, codec=codec_v2).problems]
    assert len(problems) == 3 and all("json differs from the raw value" in p for p in problems), problems
    with Ledger.open(paths["writer"]) as ledger:
        assert verify_ledger(ledger, codec=codec_v2).ok


class _NewestReader:
    """A codec that reads every record with the newest schema installed: the old, install-dependent rule."""

    def __init__(self, codec: Codec):
        self._codec = codec

    def decode_as_written(self, data):
        return self._codec.decode(data)

    def __getattr__(self, name):
        return getattr(self._codec, name)
