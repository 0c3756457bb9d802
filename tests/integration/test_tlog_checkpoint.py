"""`ledger checkpoint`, `ledger prove` and `ledger verify-receipt` end to end on a ledger written by the real writer.

Pins: a receipt printed by `prove` verifies offline; the signer refuses to sign a ledger restored
from an older copy or rewritten (a fork), checking its own state file beside the key.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys

import pytest

from ledger.dev.simulate import simulate
from ledger.wire.codec import default_codec
from tests.support.fill import ingest_records, to_records

ORIGIN = "ledger.test/audit"


def cli(*args, cwd=None):
    env = {**os.environ, "LEDGER_LOG_ORIGIN": ORIGIN}
    if args[0] == "checkpoint":  # no broker here: publishing is tested in test_checkpoint_topic.py
        args = (*args, "--no-publish")
    return subprocess.run([sys.executable, "-m", "ledger", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def work():
    w = simulate(seed=3, events=600, subjects=30)
    return w, list(to_records(w.events, codec=default_codec()))


@pytest.fixture()
def key(tmp_path):
    made = cli("keys", "generate", ORIGIN, "--out", str(tmp_path / "keys"))
    assert made.returncode == 0, made.stderr
    return tmp_path / "keys" / "ledger.test_audit.key", tmp_path / "keys" / "ledger.test_audit.vkey"


def test_prove_prints_one_receipt_that_verifies_offline(work, key, tmp_path):
    """checkpoint then prove: stdout is exactly one receipt, and verify-receipt accepts it."""
    events, records = work
    db = tmp_path / "ledger.db"
    ingest_records(db, records, batch=128)
    signed = cli("checkpoint", "--db", str(db), "--key", str(key[0]))
    assert signed.returncode == 0, signed.stderr
    files = sorted((tmp_path / "checkpoints").glob("*.checkpoint"))
    assert files and files[0].read_text().startswith(ORIGIN + "/")
    event_id = events.events[17]["event_id"]
    proved = cli("prove", event_id, "--db", str(db))
    assert proved.returncode == 0, proved.stderr
    assert proved.stdout.startswith("c2sp.org/tlog-proof@v1\n") and proved.stdout.count("c2sp.org/tlog-proof@v1") == 1
    receipt = tmp_path / "entry.tlog-proof"
    receipt.write_text(proved.stdout)
    checked = cli("verify-receipt", str(receipt), "--vkey", str(key[1]))
    assert checked.returncode == 0, checked.stderr
    assert event_id in checked.stdout
    flipped = proved.stdout.replace("index ", "index 1", 1)
    receipt.write_text(flipped)
    assert cli("verify-receipt", str(receipt), "--vkey", str(key[1])).returncode == 1


def test_consistency_proof_from_an_old_checkpoint(work, key, tmp_path):
    """prove --consistency prints origin, sizes and the proof from an older checkpoint to the latest."""
    _, records = work
    db = tmp_path / "ledger.db"
    ingest_records(db, records[:300], batch=100)
    assert cli("checkpoint", "--db", str(db), "--key", str(key[0]), "--out", str(tmp_path / "old")).returncode == 0
    ingest_records(db, records[300:], batch=100)
    assert cli("checkpoint", "--db", str(db), "--key", str(key[0])).returncode == 0
    old = sorted((tmp_path / "old").glob("*.checkpoint"))[0]
    proved = cli("prove", "--db", str(db), "--consistency", str(old))
    assert proved.returncode == 0, proved.stderr
    origin, old_size, new_size, *proof = proved.stdout.splitlines()
    assert old.read_text().startswith(origin + "\n") and int(old_size) < int(new_size) and proof


def test_a_restored_old_copy_is_not_signed(work, key, tmp_path):
    """After signing a larger tree, the signer refuses the same ledger restored from an older backup."""
    _, records = work
    db = tmp_path / "ledger.db"
    ingest_records(db, records[:300], batch=100)
    shutil.copy(db, tmp_path / "backup.db")
    ingest_records(db, records[300:], batch=100)
    assert cli("checkpoint", "--db", str(db), "--key", str(key[0])).returncode == 0
    refused = cli("checkpoint", "--db", str(tmp_path / "backup.db"), "--key", str(key[0]))
    assert refused.returncode == 1
    assert "restored from an older copy or rewritten" in refused.stderr and "Traceback" not in refused.stderr


def test_a_rewritten_history_is_not_signed(work, key, tmp_path):
    """A freshly, correctly chained ledger with other content is a fork: the signer refuses it."""
    events, records = work
    db = tmp_path / "ledger.db"
    ingest_records(db, records[:300], batch=100)
    assert cli("checkpoint", "--db", str(db), "--key", str(key[0])).returncode == 0
    other = tmp_path / "rewritten.db"
    changed = list(records)
    r = changed[0]
    changed[0] = r.__class__(r.topic, r.partition, r.offset, r.timestamp + 1, r.key, r.value, r.headers)
    ingest_records(other, changed, batch=100)
    refused = cli("checkpoint", "--db", str(other), "--key", str(key[0]))
    assert refused.returncode == 1
    assert "not consistent" in refused.stderr and "Not signing" in refused.stderr


def test_a_signing_waits_for_another_holding_the_signer_lock(work, key, tmp_path):
    """The writer's own rounds and `ledger checkpoint` share one key: a signing waits while another holds the lock."""
    import fcntl
    import threading

    from ledger.store.checkpoints import issue_checkpoints, state_path
    from ledger.tlog.keyfile import load_signer

    _, records = work
    db = tmp_path / "ledger.db"
    ingest_records(db, records[:100], batch=50)
    lock = state_path(key[0]).with_name(state_path(key[0]).name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (issue_checkpoints(db, load_signer(key[0]), key[0], ORIGIN), done.set()))
    thread.start()
    try:
        assert not done.wait(1.0) and not state_path(key[0]).exists()
    finally:
        os.close(fd)
    thread.join(30)
    assert done.is_set() and state_path(key[0]).exists()


def test_publication_steps_chain_each_origin_from_the_stored_checkpoint_below(work, key, tmp_path):
    """Steps above the marker, oldest first per origin, each with a proof from the size below it that verifies."""
    from ledger.store import tiles
    from ledger.store.checkpoints import issue_checkpoints, publication_steps
    from ledger.tlog.keyfile import load_signer
    from ledger.tlog.merkle import verify_consistency

    _, records = work
    db = tmp_path / "ledger.db"
    signer = load_signer(key[0])
    for start, end in ((0, 150), (150, 400), (400, 600)):
        ingest_records(db, records[start:end], batch=50)
        issue_checkpoints(db, signer, key[0], ORIGIN)
    steps = publication_steps(db, ORIGIN, {})
    import sqlite3

    conn = sqlite3.connect(db)
    by_origin: dict[str, list] = {}
    for step in steps:
        by_origin.setdefault(step.origin, []).append(step)
    for origin, chain in by_origin.items():
        topic, _, part = origin[len(ORIGIN) + 1:].rpartition("/")
        reader = tiles.reader(conn, topic, int(part))
        assert chain[0].old_size == 0 and chain[0].proof == ()
        for before, after in itertools.pairwise(chain):
            assert after.old_size == before.size < after.size
            verify_consistency(after.old_size, after.size, list(after.proof), reader.root(after.old_size),
                               reader.root(after.size))
    conn.close()
    marker = {o: chain[0].size for o, chain in by_origin.items()}
    later = publication_steps(db, ORIGIN, marker)
    assert later == [s for s in steps if s.size > marker[s.origin]]
    assert publication_steps(db, "another.example/log", {}) == []
