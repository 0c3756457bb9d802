"""The writer and replay reading ahead in a second process, on a real broker, with each Kafka client.

The same topics give the same ledger whether records are derived in line or
by the read-ahead process, table by table; a reader that dies stops the
writer with a message that says so and a restart loses and repeats nothing;
a writer that dies takes its reader with it, and a Ctrl-C reaches the writer alone, which stops its reader.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ledgers import differing
from processes import stop_process

from ledger.audit.verify import verify_ledger
from ledger.dev.simulate import simulate
from ledger.errors import ReadAheadError
from ledger.ingest.reader import READER_NICE
from ledger.ingest.replay import replay
from ledger.ingest.writer import LedgerWriter
from ledger.kafka import open_producer
from ledger.kafka.topics import topic_for
from ledger.produce.producer import AuditProducer
from ledger.store import Ledger
from ledger.wire.codec import default_codec


def emit_mixed(settings, events: int = 3_000) -> int:
    """Simulated events, repeats of some (duplicates), one reused id with other content, and raw bad values.

    The repeats share their first occurrence's partition (same type and subjects), so what the ledger
    decides for them does not depend on how the reader interleaves partitions.
    """
    workload = simulate(seed=17, events=events, subjects=300).events
    repeats = random.Random(2).sample(workload, 50)
    reused = dict(workload[0], occurred_at=workload[1]["occurred_at"])  # the same id, other content
    with AuditProducer(settings) as producer:
        for event in workload + repeats + [reused]:
            producer.emit(event)
        producer.flush()
    producer = open_producer(settings)
    bad = [b"not avro", b"\xc3\x01" + b"\xff" * 40, None]
    for value in bad:
        producer.send(topic_for("DataAccessed", settings.topic_prefix), key=b"k", value=value)
    producer.flush()
    producer.close()
    return len(workload) + len(repeats) + 1 + len(bad)


def write(settings, db: Path, read_ahead: str, **options) -> None:
    LedgerWriter(settings.with_(db=str(db), read_ahead=read_ahead), group_id=None, **options).run(
        until_idle=True, install_signals=False)


def count(db: Path, sql: str = "SELECT count(*) FROM entries") -> int:
    with Ledger.open(db) as ledger:
        return ledger.conn.execute(sql).fetchone()[0]


def test_read_ahead_and_in_line_write_the_same_ledger(settings, tmp_path):
    total = emit_mixed(settings)
    write(settings, tmp_path / "in-line.db", "off", batch_size=997)
    write(settings, tmp_path / "read-ahead.db", "process", batch_size=997)  # batches end mid-message
    assert count(tmp_path / "read-ahead.db") == total
    statuses = {s for (s,) in Ledger.open(tmp_path / "read-ahead.db").conn.execute("SELECT status FROM entries")}
    assert statuses == {"entry", "duplicate", "contradiction", "rejected"}
    assert differing(tmp_path / "in-line.db", tmp_path / "read-ahead.db") == []


def test_replay_reading_ahead_builds_the_ledger_replay_in_line_builds(settings, tmp_path):
    total = emit_mixed(settings, events=1_500)
    replay(settings.with_(read_ahead="off"), tmp_path / "in-line.db", batch_size=500)
    replay(settings.with_(read_ahead="process"), tmp_path / "read-ahead.db", batch_size=500)
    assert count(tmp_path / "read-ahead.db") == total
    assert differing(tmp_path / "in-line.db", tmp_path / "read-ahead.db") == []


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def readers_of(pid: int) -> list[int]:
    """The read-ahead processes of the writer ``pid``."""
    found = []
    for child in children(pid):
        try:
            if b"ledger.ingest.reader" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_reader_killed_mid_run_stops_the_writer_saying_so_and_a_restart_loses_nothing(settings, tmp_path):
    total = emit_mixed(settings, events=20_000)
    db = tmp_path / "ledger.db"
    writer = LedgerWriter(settings.with_(db=str(db), read_ahead="process"), group_id=None, batch_size=1_000)
    failure = []

    def run():
        try:
            writer.run(install_signals=False)
        except BaseException as err:  # noqa: BLE001 - the test looks at it
            failure.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        reader = wait_for(lambda: readers_of(os.getpid()), what="the read-ahead process")[0]
        wait_for(lambda: db.exists() and count(db) > 0, what="a first commit")
        os.kill(reader, signal.SIGKILL)
        thread.join(60)
    finally:
        writer.stop()
        thread.join(60)
    assert len(failure) == 1 and isinstance(failure[0], ReadAheadError), failure
    assert f"(pid {reader}) was killed by signal 9" in str(failure[0])
    assert 0 < count(db) < total
    write(settings, db, "process")
    assert count(db) == total
    assert count(db, "SELECT count(DISTINCT topic || partition || offset) FROM entries WHERE kind = 'record'") == total
    with Ledger.open(db) as ledger:
        assert verify_ledger(ledger, codec=default_codec()).ok


def test_a_writer_killed_takes_its_reader_with_it(settings, tmp_path):
    """SIGKILL leaves the writer no chance to stop its reader: the reader sees its pipes close and exits."""
    emit_mixed(settings, events=500)
    env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "LEDGER_KAFKA_CLIENT": settings.kafka_client, "LEDGER_TOPIC_PREFIX": settings.topic_prefix,
           "LEDGER_DB": str(tmp_path / "ledger.db"), "LEDGER_READ_AHEAD": "process"}
    writer = subprocess.Popen([sys.executable, "-m", "ledger", "consume"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        reader = wait_for(lambda: readers_of(writer.pid), what="the read-ahead process")[0]
        writer.kill()
        writer.wait(10)
        wait_for(lambda: not alive(reader), timeout=15, what="the reader to exit")
    finally:
        stop_process(writer)


def test_the_reader_runs_below_the_writer_in_the_writer_session_and_a_group_of_its_own(settings, tmp_path):
    """Nice values weigh threads against each other only within one session (Linux autogroups): a reader in
    a session of its own would take a core's fair share from the commit whatever its priority."""
    emit_mixed(settings, events=500)
    env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "LEDGER_KAFKA_CLIENT": settings.kafka_client, "LEDGER_TOPIC_PREFIX": settings.topic_prefix,
           "LEDGER_DB": str(tmp_path / "ledger.db"), "LEDGER_READ_AHEAD": "process"}
    writer = subprocess.Popen([sys.executable, "-m", "ledger", "consume"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        reader = wait_for(lambda: readers_of(writer.pid), what="the read-ahead process")[0]
        writer_nice = os.getpriority(os.PRIO_PROCESS, writer.pid)
        expected = min(19, writer_nice + READER_NICE)
        wait_for(lambda: os.getpriority(os.PRIO_PROCESS, reader) == expected, what=f"the reader at nice {expected}")
        assert os.getsid(reader) == os.getsid(writer.pid)
        assert os.getpgid(reader) not in (os.getpgid(writer.pid), os.getpgid(0))
    finally:
        stop_process(writer)


def test_ctrl_c_stops_the_writer_which_stops_its_reader_and_exits_zero(settings, tmp_path):
    """A terminal's Ctrl-C goes to the writer's process group; the reader runs in a group of its own, so the
    writer finishes its batch, commits, stops the reader and exits 0 (no traceback from either)."""
    emit_mixed(settings, events=500)
    env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "LEDGER_KAFKA_CLIENT": settings.kafka_client, "LEDGER_TOPIC_PREFIX": settings.topic_prefix,
           "LEDGER_DB": str(tmp_path / "ledger.db"), "LEDGER_READ_AHEAD": "process"}
    writer = subprocess.Popen([sys.executable, "-m", "ledger", "consume"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        reader = wait_for(lambda: readers_of(writer.pid), what="the read-ahead process")[0]
        wait_for(lambda: (tmp_path / "ledger.db").exists() and count(tmp_path / "ledger.db") > 0, what="a commit")
        os.killpg(writer.pid, signal.SIGINT)
        assert writer.wait(30) == 0
        assert "Traceback" not in writer.stderr.read().decode()
        wait_for(lambda: not alive(reader), timeout=10, what="the reader to exit")
    finally:
        stop_process(writer)
