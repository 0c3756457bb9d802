"""`ledger checkpoint --witness`: cosignatures from a real `ledger witness serve`, kept in the ledger and receipts.

Ledgers are filled through the real Ingestor (tests/support/fill.py); the last test writes one with
the real writer from a real broker. Witnesses that are down or answer garbage are real sockets.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import uuid
from typing import ClassVar

import pytest
import tlog_fixtures as fx
from httpkit import free_port
from witnesskit import SyntheticLog, get, post, start_witness, write_key_files

from ledger.dev.simulate import simulate
from ledger.tlog import note
from ledger.wire.codec import default_codec
from tests.support.fill import ingest_records, to_records

ORIGIN = fx.LOG_ORIGIN  # the log key of tlog_fixtures, which the witness trusts


def cli(*args):
    env = {**os.environ, "LEDGER_LOG_ORIGIN": ORIGIN}
    return subprocess.run([sys.executable, "-m", "ledger", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def records():
    w = simulate(seed=5, events=400, subjects=30)
    return w, list(to_records(w.events, codec=default_codec()))


@pytest.fixture
def keys(tmp_path):
    """The log's key (fixed, trusted by the witness) and the witness's vkey, as files."""
    log_key, log_vkey = write_key_files(fx.LOG_KEY, tmp_path / "keys", "log")
    _, witness_vkey = write_key_files(fx.WITNESS_KEY, tmp_path / "wkeys", "w1")
    _, other_vkey = write_key_files(fx.OTHER_WITNESS_KEY, tmp_path / "wkeys", "w2")
    return {"key": log_key, "vkey": log_vkey, "witness_vkey": witness_vkey, "other_vkey": other_vkey}


@pytest.fixture
def witness(tmp_path):
    w = start_witness(tmp_path / "witness")
    yield w
    w.stop()
    assert "Traceback" not in w.log_text()


def checkpoint(db, keys, *witness_args, out=None):
    args = ["checkpoint", "--db", str(db), "--key", str(keys["key"]), "--no-publish", *witness_args]
    return cli(*args, *(["--out", str(out)] if out else []))


def with_witness(witness, keys, *extra):
    return ("--witness", witness.url, "--witness-vkey", str(keys["witness_vkey"]), *extra)


def stored_notes(db) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT origin, note FROM checkpoints ORDER BY origin, size").fetchall()
    finally:
        conn.close()
    return dict(rows)  # the largest size of each origin last


def cosigned_by_witness(text: str) -> bool:
    return bool(note.verified_signatures(note.parse_note(text), [fx.WITNESS_KEY.verifier()]))


def test_checkpoints_are_cosigned_and_receipts_carry_it(records, keys, witness, tmp_path):
    """Every partition's checkpoint gets the witness's cosignature: in the ledger, in --out, in `prove`'s receipt."""
    work, recs = records
    db = tmp_path / "ledger.db"
    ingest_records(db, recs, batch=100)
    run = checkpoint(db, keys, *with_witness(witness, keys))
    assert run.returncode == 0, run.stderr
    assert "cosigned by witness.example.org/w1+" in run.stdout
    notes = stored_notes(db)
    assert len(notes) > 1 and all(cosigned_by_witness(n) for n in notes.values())
    files = sorted((tmp_path / "checkpoints").glob("*.checkpoint"))
    assert len(files) == len(notes) and all(cosigned_by_witness(f.read_text()) for f in files)
    receipt = tmp_path / "entry.tlog-proof"
    receipt.write_text(cli("prove", work.events[11]["event_id"], "--db", str(db)).stdout)
    ok = cli("verify-receipt", str(receipt), "--vkey", str(keys["vkey"]), "--witness-vkey",
             str(keys["witness_vkey"]), "--min-witnesses", "1")
    assert ok.returncode == 0 and "witness.example.org/w1" in ok.stdout, ok.stderr
    wrong = cli("verify-receipt", str(receipt), "--vkey", str(keys["vkey"]), "--witness-vkey",
                str(keys["other_vkey"]), "--min-witnesses", "1")
    assert wrong.returncode == 1 and "cosignature: 0 valid witness cosignature(s) (none), 1 required" in wrong.stderr
    # The witness's monitoring view is the same tree.
    origin = next(iter(notes))
    status, _, body = get(f"{witness.url}/{hashlib.sha256(origin.encode()).hexdigest()}/checkpoint")
    assert status == 200 and body.decode().split("\n")[:3] == notes[origin].split("\n")[:3]


def test_growth_is_sent_with_a_proof_and_a_rerun_is_not_resent(records, keys, witness, tmp_path):
    """A grown tree is cosigned from the size signed before; an unchanged, fully cosigned one is not resent."""
    _, recs = records
    db = tmp_path / "ledger.db"
    ingest_records(db, recs[:150], batch=50)
    assert checkpoint(db, keys, *with_witness(witness, keys)).returncode == 0
    ingest_records(db, recs[150:], batch=50)
    grown = checkpoint(db, keys, *with_witness(witness, keys))
    assert grown.returncode == 0, grown.stderr
    assert "new (from " in grown.stdout and all(cosigned_by_witness(n) for n in stored_notes(db).values())
    again = checkpoint(db, keys, *with_witness(witness, keys))
    resent = again.stdout.count("already cosigned, not resent")
    assert again.returncode == 0 and resent == len(stored_notes(db)), again.stdout


def test_a_409_is_followed_from_the_size_the_witness_holds(records, keys, witness, tmp_path):
    """Signed while the witness was down, then signed again: the witness's 409 names an older size and the
    checkpoint is resent with a proof from it (and from 0 for an origin it never saw)."""
    _, recs = records
    db = tmp_path / "ledger.db"
    ingest_records(db, recs[:100], batch=50)
    assert checkpoint(db, keys, *with_witness(witness, keys)).returncode == 0
    ingest_records(db, recs[100:200], batch=50)
    down = f"http://127.0.0.1:{free_port()}"
    missed = checkpoint(db, keys, "--witness", down, "--witness-vkey", str(keys["witness_vkey"]))
    assert missed.returncode == 1 and "unreachable" in missed.stderr and down in missed.stderr
    assert "stored and written without them" in missed.stderr
    ingest_records(db, recs[200:], batch=50)
    caught_up = checkpoint(db, keys, *with_witness(witness, keys))
    assert caught_up.returncode == 0, caught_up.stderr
    assert all(cosigned_by_witness(n) for n in stored_notes(db).values())
    assert "add-checkpoint 409" in witness.log_text()
    second = start_witness(tmp_path / "second")  # never saw this log: 409 "0", then old 0
    try:
        fresh = checkpoint(db, keys, "--witness", second.url, "--witness-vkey", str(keys["witness_vkey"]))
        assert fresh.returncode == 0, fresh.stderr
    finally:
        second.stop()


def test_a_witness_holding_a_larger_tree_is_an_alarm(records, keys, witness, tmp_path):
    """Another signer state with the same key signs a shorter copy: the witness's 409 size is above the log's
    tree, named with both sizes, not retried, and the command fails."""
    _, recs = records
    db = tmp_path / "ledger.db"
    ingest_records(db, recs, batch=100)
    assert checkpoint(db, keys, *with_witness(witness, keys)).returncode == 0
    short = tmp_path / "short.db"
    ingest_records(short, recs[:120], batch=60)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    key_copy = elsewhere / "log.key"
    shutil.copy(keys["key"], key_copy)  # no .signed.json here: this signer does not know what was signed
    run = cli("checkpoint", "--db", str(short), "--key", str(key_copy), "--no-publish", "--witness", witness.url,
              "--witness-vkey", str(keys["witness_vkey"]), "--min-witnesses", "0")
    assert run.returncode == 1
    assert "ALARM" in run.stderr and witness.url in run.stderr and "Not retrying" in run.stderr
    assert "the log's tree has" in run.stderr and "Traceback" not in run.stderr
    assert witness.log_text().count("add-checkpoint 409") == len(stored_notes(short))  # one per origin: no retry


def test_a_wrong_witness_vkey_is_named_and_nothing_is_attached(records, keys, witness, tmp_path):
    """Cosignatures by a key not given with --witness-vkey are ignored; the command says so and exits 1."""
    _, recs = records
    db = tmp_path / "ledger.db"
    ingest_records(db, recs[:60], batch=60)
    run = checkpoint(db, keys, "--witness", witness.url, "--witness-vkey", str(keys["other_vkey"]))
    assert run.returncode == 1
    assert "no cosignature by a trusted witness key (it signed as witness.example.org/w1+" in run.stderr
    assert not any(cosigned_by_witness(n) for n in stored_notes(db).values())
    assert len(list((tmp_path / "checkpoints").glob("*.checkpoint"))) == len(stored_notes(db))  # written anyway


def test_only_cosignatures_by_given_keys_are_kept(records, keys, tmp_path):
    """A witness cosigning with two keys (a rotation): both lines come back, only the --witness-vkey one is kept."""
    _, recs = records
    db = tmp_path / "ledger.db"
    ingest_records(db, recs[:60], batch=60)
    w = start_witness(tmp_path / "two-keys", more_keys=(fx.OTHER_WITNESS_KEY,))
    try:
        run = checkpoint(db, keys, *with_witness(w, keys))
        raw = SyntheticLog(f"{ORIGIN}/raw/0")
        status, _, body = post(w.url + "/add-checkpoint", raw.request(0, 3))
    finally:
        w.stop()
    assert status == 200 and [line.split(" ")[1] for line in body.decode().splitlines()] == [
        fx.WITNESS_KEY.name, fx.OTHER_WITNESS_KEY.name]  # it answers with both keys
    assert run.returncode == 0, run.stderr
    for text in stored_notes(db).values():
        assert cosigned_by_witness(text) and fx.OTHER_WITNESS_KEY.name not in text


class _Garbage(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[dict] = {}  # port -> (status, content type, body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, ctype, body = self.answers[self.server.server_port]
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("answer, reason", [
    ((200, "text/plain", b"hello\n"), "200 body is not note signature lines"),
    ((200, "text/plain", b""), "200 with an empty body: no cosignature"),
    ((409, "text/plain", b"5\n"), "409 with Content-Type 'text/plain'"),
    ((409, "text/x.tlog.size", b"five\n"), "is not a tree size"),
    ((503, "text/plain", b"busy"), "unexpected status 503"),
    ((403, "text/plain", b"who are you"), "403: who are you (is the witness configured with this log's vkey?)"),
    ((400, "text/plain", b"bad\x1b[2J\nrequest"), "400: bad [2J request"),  # no terminal escapes passed on
])
def test_a_witness_answering_garbage_is_named_with_the_reason(records, keys, tmp_path, answer, reason):
    """Each off-protocol answer is one stderr line naming the witness and why; the checkpoint is still stored."""
    _, recs = records
    db = tmp_path / "ledger.db"
    ingest_records(db, recs[:40], batch=40)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    _Garbage.answers[server.server_port] = answer
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        run = checkpoint(db, keys, "--witness", url, "--witness-vkey", str(keys["witness_vkey"]))
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 1 and "Traceback" not in run.stderr
    [line] = [line for line in run.stderr.splitlines() if line.startswith(f"ledger checkpoint: witness {url}: ")]
    assert reason in line and line.endswith(" ...]"), run.stderr  # one line for all origins
    assert stored_notes(db)


def test_min_witnesses_0_keeps_going_and_bad_options_sign_nothing(records, keys, tmp_path):
    """--min-witnesses 0 exits 0 with a witness down; option mistakes are refused before anything is signed."""
    _, recs = records
    db = tmp_path / "ledger.db"
    ingest_records(db, recs[:40], batch=40)
    down = f"http://127.0.0.1:{free_port()}"
    run = checkpoint(db, keys, "--witness", down, "--witness-vkey", str(keys["witness_vkey"]),
                     "--min-witnesses", "0")
    assert run.returncode == 0 and "unreachable" in run.stderr
    state = keys["key"].with_name("log.key.signed.json")
    state.unlink()
    for args, message in (
        (("--witness", down), "--witness needs the witnesses' verifier keys"),
        (("--witness", down, "--witness-vkey", str(keys["vkey"])), "signature type 01 is a log key"),
        (("--witness", down, "--witness-vkey", str(keys["witness_vkey"]), "--min-witnesses", "2"),
         "--min-witnesses 2: give 0 to 1"),
        (("--witness", "ftp://x", "--witness-vkey", str(keys["witness_vkey"])), "write http(s)://HOST"),
        (("--witness-vkey", str(keys["witness_vkey"])), "need at least one --witness URL"),
    ):
        refused = checkpoint(db, keys, *args)
        assert refused.returncode == 1 and message in refused.stderr, (args, refused.stderr)
        assert not state.exists()


def test_end_to_end_from_a_real_broker(kafka, tmp_path, keys):
    """Real producer, broker and writer; `ledger witness serve` and `ledger checkpoint --witness` as processes;
    then `ledger prove` and `ledger verify-receipt --witness-vkey --min-witnesses 1` pass, and fail naming why
    with another witness's vkey."""
    from ledger.config import Settings
    from ledger.ingest.writer import LedgerWriter
    from ledger.kafka.topics import create_topics
    from ledger.produce.producer import AuditProducer

    settings = Settings.load(env={}, bootstrap_servers=kafka.bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
                             db=str(tmp_path / "ledger.db"), partitions=3)
    create_topics(settings)
    work = simulate(seed=21, events=300, subjects=20)
    with AuditProducer(settings) as producer:
        for event in work.events:
            producer.emit(event)
        producer.flush()
    LedgerWriter(settings, group_id=None).run(until_idle=True, install_signals=False)
    witness = start_witness(tmp_path / "witness")
    try:
        signed = checkpoint(settings.db, keys, *with_witness(witness, keys), "--min-witnesses", "1")
        assert signed.returncode == 0, signed.stderr
    finally:
        witness.stop()
    assert "Traceback" not in witness.log_text()
    event_id = work.events[123]["event_id"]
    proved = cli("prove", event_id, "--db", settings.db)
    assert proved.returncode == 0, proved.stderr
    receipt = tmp_path / "entry.tlog-proof"
    receipt.write_text(proved.stdout)
    base = ["verify-receipt", str(receipt), "--vkey", str(keys["vkey"]), "--min-witnesses", "1"]
    ok = cli(*base, "--witness-vkey", str(keys["witness_vkey"]))
    assert ok.returncode == 0 and event_id in ok.stdout and "witness.example.org/w1" in ok.stdout, ok.stderr
    wrong = cli(*base, "--witness-vkey", str(keys["other_vkey"]))
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("ledger verify-receipt: error: cosignature: 0 valid witness cosignature(s)")
