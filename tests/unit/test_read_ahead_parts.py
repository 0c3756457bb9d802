"""Reading ahead in a second process (ledger/ingest/readahead.py, reader.py): what the writer may take from it unchecked.

The reader derives each record's part (derive.py) and sends it through a pipe
with ``marshal``; the Ingestor then takes the part as it comes. So a part must
survive the trip exactly and give the very ledger an in-line derive gives; a
reader error must reach the writer with its own type and message; the reader
must never run more than its byte bound ahead; and the choice of running it
must say why. (The process itself, on a real broker: tests/integration/test_read_ahead.py.)
"""

from __future__ import annotations

import marshal
import os
import pickle
import subprocess
import sys
import threading

import pytest
from builders import CODEC, make_event, make_record
from ledgers import sample_records, table_differences

import ledger.ingest.readahead as readahead
import ledger.ingest.reader as reader
from ledger.config import Settings
from ledger.errors import ConfigError, LedgerError, OffsetOutOfRangeError
from ledger.ingest.derive import DerivedRecord, derive
from ledger.ingest.pipeline import Ingestor
from ledger.model.timecheck import TimeLimits
from ledger.store import Ledger
from ledger.wire.codec import Codec


def through_the_pipe(records, limits) -> list[DerivedRecord]:
    """What the writer receives for ``records``: their parts derived, marshalled and read back, as readahead does."""
    rows = [(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, r.headers) for r in records]
    parts = [derive(r, CODEC, limits) for r in records]
    rows, parts, _ = marshal.loads(marshal.dumps((rows, parts, ())))
    return [DerivedRecord(*row, part) for row, part in zip(rows, parts)]


def ingest(path, records, *, batch: int = 5) -> None:
    ledger = Ledger.open(path, readonly=False, create=True)
    try:
        ingestor = Ingestor(ledger, codec=CODEC)
        for i in range(0, len(records), batch):
            ingestor.ingest(records[i:i + batch])
    finally:
        ledger.close()


def every_status_and_more() -> list:
    """The sample of every status (entry, duplicate, conflict, rejected, gap, contradiction, misrouted,
    recorded earlier), then a record whose time is flagged and one with null key, value and headers."""
    late = make_record(make_event(40), partition=2, offset=0, timestamp=1_000)  # occurred long after its timestamp
    return [*sample_records(), late, make_record(None, partition=2, offset=1, etype=None)]


def test_parts_that_crossed_the_pipe_give_the_ledger_an_in_line_derive_gives(tmp_path):
    records = every_status_and_more()
    ingest(tmp_path / "in-line.db", records)
    with Ledger.open(tmp_path / "in-line.db") as ledger:
        limits = TimeLimits.from_meta(ledger.meta())  # what the reader is given: the ledger's own
        statuses = {s for (s,) in ledger.conn.execute("SELECT DISTINCT status FROM entries")}
        flagged = ledger.conn.execute("SELECT count(*) FROM entries WHERE reason LIKE '%time:%'").fetchone()[0]
    assert statuses == {"entry", "duplicate", "conflict", "contradiction", "rejected", "gap"} and flagged
    ingest(tmp_path / "read-ahead.db", through_the_pipe(records, limits))
    assert table_differences(tmp_path / "in-line.db", tmp_path / "read-ahead.db") == []


def test_a_part_from_other_time_limits_would_show_in_the_ledger(tmp_path):
    """The comparison above can fail: parts derived under other limits change the stored time flags."""
    records = every_status_and_more()
    ingest(tmp_path / "in-line.db", records)
    ingest(tmp_path / "other.db", through_the_pipe(records, TimeLimits(10**9, 10**9)))
    assert table_differences(tmp_path / "in-line.db", tmp_path / "other.db") == ["entries"]


def test_a_reader_error_reaches_the_writer_with_its_type_and_fields():
    err = pickle.loads(reader._portable(OffsetOutOfRangeError("ledger.access", 2, 41, "log starts at 50")))
    assert type(err) is OffsetOutOfRangeError
    assert (err.topic, err.partition, err.offset) == ("ledger.access", 2, 41)
    assert str(err).startswith("ledger.access[2] offset 41 is out of range on the broker: log starts at 50")


def test_an_error_that_cannot_be_pickled_still_reaches_the_writer_by_name():
    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a}/{b}")

    err = pickle.loads(reader._portable(Odd(1, 2)))
    assert type(err) is LedgerError
    assert str(err) == "the read-ahead process failed: Odd: 1/2"


class _BlockingPipe:
    """A pipe end whose sends wait until released: the writer is busy committing."""

    def __init__(self):
        self.sent, self.release = [], threading.Event()

    def send_bytes(self, payload):
        self.release.wait(10)
        self.sent.append(payload)

    def close(self):
        pass


def test_the_reader_queues_at_most_its_byte_bound_ahead():
    pipe = _BlockingPipe()
    sender = reader._Sender(pipe, limit=120)
    for _ in range(3):  # one in the blocked send, two queued: 120 bytes on their way, the bound
        sender.put(b"x" * 40)
    fourth = threading.Thread(target=sender.put, args=(b"y" * 40,))
    fourth.start()
    fourth.join(0.5)
    assert fourth.is_alive(), "a put beyond the bound must wait"
    pipe.release.set()
    fourth.join(5)
    assert not fourth.is_alive()
    sender.finish()
    assert pipe.sent == [b"x" * 40] * 3 + [b"y" * 40]


def test_a_payload_larger_than_the_bound_is_still_sent_alone():
    pipe = _BlockingPipe()
    pipe.release.set()
    sender = reader._Sender(pipe, limit=10)
    sender.put(b"z" * 1000)
    sender.finish()
    assert pipe.sent == [b"z" * 1000]


def test_read_ahead_is_chosen_on_two_cpus_and_says_why(monkeypatch):
    monkeypatch.setattr(readahead, "_cpus", lambda: 2)
    assert readahead.read_ahead_choice(Settings.load(env={}), CODEC) == (True, "a second process (auto: 2 CPUs)")
    monkeypatch.setattr(readahead, "_cpus", lambda: 1)
    use, why = readahead.read_ahead_choice(Settings.load(env={}), CODEC)
    assert not use and "one CPU" in why
    assert readahead.read_ahead_choice(Settings.load(env={}, read_ahead="process"), CODEC)[0]
    assert readahead.read_ahead_choice(Settings.load(env={"LEDGER_READ_AHEAD": "off"}), CODEC)[0] is False


def test_what_cannot_cross_to_another_process_turns_read_ahead_off_or_is_refused_by_name():
    in_memory = Codec(CODEC.all_versions())
    use, why = readahead.read_ahead_choice(Settings.load(env={}), in_memory)
    assert not use and "built in memory" in why
    with pytest.raises(ConfigError, match="read_ahead=process cannot be honoured: the ingest codec was built in memory"):
        readahead.read_ahead_choice(Settings.load(env={}, read_ahead="process"), in_memory)
    unpicklable = Settings.load(env={}, sasl_oauth_token_provider=lambda: "token")
    assert readahead.read_ahead_choice(unpicklable, CODEC)[0] is False
    with pytest.raises(ConfigError, match="the settings cannot be passed to another process"):
        readahead.read_ahead_choice(unpicklable.with_(read_ahead="process"), CODEC)


def test_an_unknown_read_ahead_mode_is_refused_by_name():
    with pytest.raises(ConfigError, match="read_ahead must be one of auto, process, off, got 'threads'"):
        Settings.load(env={"LEDGER_READ_AHEAD": "threads"})


def test_doctor_says_whether_consume_and_replay_read_ahead_and_why(monkeypatch, capsys):
    from ledger.cli import main

    monkeypatch.setenv("LEDGER_READ_AHEAD", "off")
    assert main(["doctor"]) == 0
    assert "read-ahead (consume, replay): off (LEDGER_READ_AHEAD=off / --read-ahead off)" in capsys.readouterr().out
    monkeypatch.setenv("LEDGER_READ_AHEAD", "auto")
    monkeypatch.setattr(readahead, "_cpus", lambda: 4)
    assert main(["doctor"]) == 0
    assert "read-ahead (consume, replay): a second process (auto: 4 CPUs)" in capsys.readouterr().out


def test_consume_and_replay_take_read_ahead_from_the_command_line():
    import argparse

    from ledger.cli import add_read_ahead, settings_from

    parser = argparse.ArgumentParser()
    add_read_ahead(parser)
    assert settings_from(parser.parse_args(["--read-ahead", "off"])).read_ahead == "off"
    with pytest.raises(SystemExit):
        parser.parse_args(["--read-ahead", "threads"])


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is a Linux call")
def test_auto_counts_the_cpus_this_process_may_use_not_the_machines():
    """A container's cpuset or `taskset -c 0` leaves one CPU, whatever os.cpu_count() says."""
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from ledger.config import Settings; from ledger.ingest.readahead import read_ahead_choice; "
            "print(read_ahead_choice(Settings.load(env={}))[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "one CPU" in out.stdout
