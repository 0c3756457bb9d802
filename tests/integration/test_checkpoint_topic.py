"""The checkpoints topic on a real broker, once per client: `ledger checkpoint` publishes, the writer
checkpoints on its own (`ledger consume --checkpoint-every`), `ledger witness follow` witnesses what is
published, and a forked checkpoint put on the topic raises an alarm.

Pins: every new checkpoint is on the topic with key = origin and the add-checkpoint body; one origin's
records chain (each proves from the previous one's size); a failed publish keeps the checkpoint and the
next run sends it; a SIGKILLed writer with --checkpoint-every never gets a fork signed.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from kafkautil import read_topics

from ledger.dev.simulate import simulate
from ledger.ingest.checkpointing import Checkpointer, Every, PublishError, publish_checkpoints, published_path
from ledger.ingest.writer import LedgerWriter
from ledger.kafka import open_producer
from ledger.kafka.topics import checkpoints_topic
from ledger.produce.producer import AuditProducer
from ledger.store.checkpoints import issue_checkpoints
from ledger.tlog.checkpoint import Checkpoint, parse_checkpoint
from ledger.tlog.keyfile import load_signer, write_key_pair
from ledger.tlog.merkle import verify_consistency
from ledger.tlog.note import parse_note, verified_signatures
from ledger.tlog.witness import add_checkpoint_body, parse_add_checkpoint

WITNESS = "witness.test/w1"


def emit_all(settings, events) -> None:
    with AuditProducer(settings) as producer:
        for event in events:
            producer.emit(event)
        producer.flush()


def write(settings, **kwargs):
    return LedgerWriter(settings, batch_size=200, batch_seconds=0.2, group_id=None, **kwargs).run(
        until_idle=True, install_signals=False)


@pytest.fixture
def keys(tmp_path, settings):
    log_key, log_vkey, _ = write_key_pair(settings.log_origin, tmp_path / "keys")
    w_key, w_vkey, _ = write_key_pair(WITNESS, tmp_path / "wkeys", cosigner=True)
    return log_key, log_vkey, w_key, w_vkey


def env_for(settings) -> dict:
    return {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "LEDGER_KAFKA_CLIENT": settings.kafka_client, "LEDGER_TOPIC_PREFIX": settings.topic_prefix,
            "LEDGER_DB": settings.db, "LEDGER_LOG_ORIGIN": settings.log_origin}


def cli(settings, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "ledger", *args], capture_output=True, text=True,
                          env=env_for(settings), timeout=timeout, check=False)


def published(settings) -> list:
    return read_topics(settings, [checkpoints_topic(settings.topic_prefix)])


def chains(records) -> dict[str, list[tuple[int, int]]]:
    """{origin: [(old, size), ...]} in topic order, after checking each record's proof and key."""
    out: dict[str, list[tuple[int, int]]] = {}
    roots: dict[tuple[str, int], bytes] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        request = parse_add_checkpoint(record.value)
        head = parse_checkpoint(parse_note(request.checkpoint).text)
        assert record.key == head.origin.encode()
        if request.old_size:
            verify_consistency(request.old_size, head.size, list(request.proof), roots[(head.origin, request.old_size)],
                               head.root)
        roots[(head.origin, head.size)] = head.root
        out.setdefault(head.origin, []).append((request.old_size, head.size))
    return out


def assert_chained(steps: dict[str, list[tuple[int, int]]]) -> None:
    """Each record proves from the largest size published before it for its origin, or repeats an earlier record."""
    for origin, pairs in steps.items():
        latest = 0
        for i, (old, size) in enumerate(pairs):
            assert old == latest or (old, size) in pairs[:i], (origin, pairs)
            latest = max(latest, size)


def test_checkpoint_publishes_each_new_checkpoint_with_its_proof(settings, keys):
    """checkpoint → topic: one record per origin, key = origin; more entries → records that prove from the last."""
    log_key, log_vkey, *_ = keys
    workload = simulate(seed=21, events=400, subjects=40)
    emit_all(settings, workload.events[:200])
    write(settings)
    first = cli(settings, "checkpoint", "--key", str(log_key))
    assert first.returncode == 0, first.stderr
    assert "checkpoint record(s) published to " + checkpoints_topic(settings.topic_prefix) in first.stdout
    records = published(settings)
    origins = {r.key.decode() for r in records}
    assert origins and all(o.startswith(settings.log_origin + "/") for o in origins) and len(records) == len(origins)
    assert all(parse_add_checkpoint(r.value).old_size == 0 for r in records)

    again = cli(settings, "checkpoint", "--key", str(log_key))  # nothing new: nothing published again
    assert again.returncode == 0 and "0 checkpoint record(s) published" in again.stdout
    assert len(published(settings)) == len(records)

    emit_all(settings, workload.events[200:])
    write(settings)
    assert cli(settings, "checkpoint", "--key", str(log_key)).returncode == 0
    steps = chains(published(settings))
    grown = [pairs for pairs in steps.values() if len(pairs) == 2]
    assert grown and all(pairs[1][0] == pairs[0][1] > 0 for pairs in grown)
    vkey = log_vkey.read_text().strip()
    from ledger.tlog.note import parse_verifier_key

    for record in published(settings):
        note = parse_note(parse_add_checkpoint(record.value).checkpoint)
        assert verified_signatures(note, [parse_verifier_key(vkey)])


def test_no_publish_leaves_the_topic_alone(settings, keys):
    """--no-publish signs and stores but sends nothing; a later run without it publishes what was stored."""
    emit_all(settings, simulate(seed=22, events=100, subjects=10).events)
    write(settings)
    quiet = cli(settings, "checkpoint", "--key", str(keys[0]), "--no-publish")
    assert quiet.returncode == 0 and "published" not in quiet.stdout
    assert published(settings) == []
    assert cli(settings, "checkpoint", "--key", str(keys[0])).returncode == 0
    assert published(settings)


def test_a_failed_publish_keeps_the_checkpoint_and_the_next_run_sends_it(settings, keys):
    """No broker: PublishError, the checkpoint stays stored; with the broker back the same record goes out."""
    emit_all(settings, simulate(seed=23, events=100, subjects=10).events)
    write(settings)
    issue_checkpoints(settings.db, load_signer(keys[0]), keys[0], settings.log_origin)
    down = settings.with_(bootstrap_servers="127.0.0.1:9")
    with pytest.raises(PublishError, match="stored in the ledger and will be sent again"):
        publish_checkpoints(down, timeout=2)
    assert not published_path(settings.db).exists() or published_path(settings.db).read_text().strip() == "{}"
    from ledger.cli.tlog import publish

    sent = publish_checkpoints(settings)
    assert sent and sorted(r.value for r in published(settings)) == sorted(
        add_checkpoint_body(s.old_size, s.proof, s.note) for s in sent)
    assert publish(settings) == 0 and len(published(settings)) == len(sent)  # marked: not sent twice


def test_the_cli_reports_a_failed_publish_and_exits_1(settings, keys, capsys):
    """`ledger checkpoint`'s publish step: one line on stderr naming what is kept, exit 1, no traceback."""
    from ledger.cli.tlog import publish

    emit_all(settings, simulate(seed=24, events=50, subjects=5).events)
    write(settings)
    issue_checkpoints(settings.db, load_signer(keys[0]), keys[0], settings.log_origin)
    assert publish(settings.with_(bootstrap_servers="127.0.0.1:9"), timeout=2) == 1
    err = capsys.readouterr().err
    assert "could not publish" in err and "stored in the ledger" in err and "Traceback" not in err


def test_the_writer_checkpoints_every_n_entries_and_publishes(settings, keys):
    """--checkpoint-every 150: checkpoints appear in the ledger and on the topic while consuming, chained."""
    emit_all(settings, simulate(seed=25, events=900, subjects=60).events)
    checkpointer = Checkpointer(settings, keys[0], Every(entries=150), log=sys.stderr)
    write(settings, checkpointer=checkpointer)
    assert checkpointer.rounds >= 3 and checkpointer.publish_failures == 0
    conn = sqlite3.connect(settings.db)
    stored = conn.execute("SELECT origin, max(size), count(*) FROM checkpoints GROUP BY origin").fetchall()
    sizes = dict(conn.execute("SELECT topic || '/' || partition, count(*) FROM entries GROUP BY topic, partition"))
    conn.close()
    assert {o: n for o, n, _ in stored} == {f"{settings.log_origin}/{tp}": n for tp, n in sizes.items()}
    assert any(count > 1 for *_, count in stored)  # checkpointed more than once while consuming
    steps = chains(published(settings))
    assert_chained(steps)
    assert sum(len(p) for p in steps.values()) == sum(count for *_, count in stored)


def test_consume_checkpoint_every_needs_a_key(settings):
    """A clean error naming the option, before any work."""
    run = cli(settings, "consume", "--until-idle", "--checkpoint-every", "60s")
    assert run.returncode == 1 and "--checkpoint-every needs --key" in run.stderr and "Traceback" not in run.stderr


def test_a_killed_writer_with_checkpoints_never_forks(settings, keys, tmp_path):
    """SIGKILL `consume --checkpoint-every` mid-ingest, restart: every published step chains, follow raises no alarm."""
    workload = simulate(seed=26, events=6000, subjects=200)
    emit_all(settings, workload.events)
    command = ["consume", "--quiet", "--batch-size", "100", "--checkpoint-every", "300", "--key", str(keys[0])]
    proc = subprocess.Popen([sys.executable, "-m", "ledger", *command], env=env_for(settings),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:  # kill it once it has published some checkpoints
            time.sleep(0.2)
            if len(published(settings)) >= 4:
                break
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    final = cli(settings, *command, "--until-idle", timeout=300)
    assert final.returncode == 0, final.stderr
    steps = chains(published(settings))
    assert_chained(steps)
    follow = cli(settings, "witness", "follow", "--key", str(keys[2]), "--log-vkey", str(keys[1]),
                 "--state", str(tmp_path / "w.db"), "--until-idle")
    assert follow.returncode == 0, follow.stdout + follow.stderr
    assert "ALARM" not in follow.stdout and "refused" not in follow.stdout


def test_witness_follow_cosigns_what_is_published_and_resumes(settings, keys, tmp_path):
    """follow: each record cosigned (and written to --cosigned-out); a second run reads nothing; --from-beginning
    reads everything again as repeats."""
    log_key, log_vkey, w_key, w_vkey = keys
    emit_all(settings, simulate(seed=27, events=300, subjects=20).events)
    write(settings)
    assert cli(settings, "checkpoint", "--key", str(log_key)).returncode == 0
    args = ["witness", "follow", "--key", str(w_key), "--log-vkey", str(log_vkey), "--state", str(tmp_path / "w.db"),
            "--until-idle", "--cosigned-out", str(tmp_path / "cosigned")]
    first = cli(settings, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    n = len(published(settings))
    assert first.stdout.count("cosigned  ") == n
    files = sorted((tmp_path / "cosigned").glob("*.checkpoint"))
    assert len(files) == n
    from ledger.tlog.keyfile import load_verifier

    witness_verifier, log_verifier = load_verifier(w_vkey), load_verifier(log_vkey)
    for path in files:
        note = parse_note(path.read_text())
        assert verified_signatures(note, [witness_verifier]) and verified_signatures(note, [log_verifier])
    second = cli(settings, *args)
    assert second.returncode == 0 and "no records" in second.stdout
    again = cli(settings, *args, "--from-beginning")
    assert again.returncode == 0 and again.stdout.count("repeat  ") == n


def test_a_forked_checkpoint_on_the_topic_is_an_alarm(settings, keys, tmp_path):
    """Tamper: the log key signs another root for a published size; follow names the fork, exits 2, alarms on stderr."""
    log_key, log_vkey, w_key, _ = keys
    emit_all(settings, simulate(seed=28, events=200, subjects=20).events)
    write(settings)
    assert cli(settings, "checkpoint", "--key", str(log_key)).returncode == 0
    record = published(settings)[0]
    head = parse_checkpoint(parse_note(parse_add_checkpoint(record.value).checkpoint).text)
    forged = Checkpoint(head.origin, head.size, bytes(32)).sign([load_signer(log_key)])
    junk = b"old 1\nnot base64!\n\nx\n"
    with open_producer(settings) as producer:
        producer.send(checkpoints_topic(settings.topic_prefix), key=record.key,
                      value=add_checkpoint_body(0, [], forged)).result(30)
        producer.send(checkpoints_topic(settings.topic_prefix), key=record.key, value=junk).result(30)
    run = cli(settings, "witness", "follow", "--key", str(w_key), "--log-vkey", str(log_vkey),
              "--state", str(tmp_path / "w.db"), "--until-idle")
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"ALARM  {head.origin} size {head.size}" in run.stdout
    assert f"fork: size {head.size} was cosigned with another root" in run.stdout and "ALARM" in run.stderr and "Traceback" not in run.stderr
    assert "refused  -" in run.stdout and "proof line line 2" in run.stdout


def test_a_backlog_is_published_in_passes_and_in_order(settings, keys, monkeypatch):
    """Three rounds stored without publishing, one step per pass: `publish_checkpoints` sends them all, chained;
    the writer's bounded form sends one pass only."""
    from ledger.ingest import checkpointing

    workload = simulate(seed=29, events=300, subjects=20)
    signer = load_signer(keys[0])
    for start in (0, 100, 200):
        emit_all(settings, workload.events[start:start + 100])
        write(settings)
        issue_checkpoints(settings.db, signer, keys[0], settings.log_origin)
    monkeypatch.setattr(checkpointing, "STEPS_PER_CALL", 1)
    first = publish_checkpoints(settings, all_pending=False)
    assert len(first) == len({s.origin for s in first})  # one per origin
    rest = publish_checkpoints(settings)
    steps = chains(published(settings))
    assert_chained(steps)
    assert len(first) + len(rest) == sum(len(pairs) for pairs in steps.values())
    assert max(len(pairs) for pairs in steps.values()) == 3


def test_a_follower_position_beyond_the_topic_end_is_an_error(settings, keys, tmp_path):
    """A state file ahead of the topic (recreated or truncated): a clear error, not a silent wait or a clean exit."""
    from ledger.audit.witness_follow import follow
    from ledger.errors import BrokerError
    from ledger.tlog.follow import Follower, FollowState
    from ledger.tlog.keyfile import load_verifier
    from ledger.tlog.witness import Witness

    state_file = tmp_path / "w.db"
    witness = Witness([load_signer(keys[2], cosigner=True)], [load_verifier(keys[1])], state_file)
    state = FollowState(state_file)
    state.save_positions(checkpoints_topic(settings.topic_prefix), {0: 1000})
    try:
        with pytest.raises(BrokerError, match="was recreated or truncated"):
            follow(settings, Follower(witness, state), until_idle=True)
    finally:
        state.close()
        witness.close()
