"""Would a second process for prepare's stateless part reach issue 17's figures? A measured prototype.

    python bench/profile_ingest_processes.py [--events 100000] [--mix both|reference|simulated]
                                             [--repeats 3] [--chunk 1000]

The split (from ledger/ingest/pipeline.py ``Ingestor._prepare``):

* stateless, a function of the record alone (plus the ledger's fixed time
  limits and the installed schemas): the leaf hash (``leaf_hash(rec)`` covers
  the record's bytes only, never its status), ``decode_value`` (decode and
  validation rules), ``routing_problem``, ``headers_to_json``, the value's
  schema fingerprint, ``entry_columns`` (the readable JSON), ``time_flag``,
  ``peek_event_id`` / ``header_type`` for a rejected record, and ``index_row``
  but for its seq;
* stateful: skip-or-gap against the partition's tip, seq numbers, the chain
  link (``link(prev, leaf)``, one SHA-256), dedupe and repeat classification
  (``_classify``: first occurrences pending and in the file, a repeat's first
  occurrence decoded again), the offsets rows, and the commit.

(a) today: ``Ingestor.prepare`` + ``commit`` serially on one thread, into a fresh ledger
(live: also the writer's ``CommitPipeline``, prepare N+1 on one thread while N commits on another).
(b) one worker process (fork) computes the stateless part per record in chunks
of ``--chunk`` records and sends the records with their parts through a pipe
(pickle protocol 5) as a worker that fetched from Kafka itself would; the
committing process runs the product's own ``Ingestor.prepare`` and ``commit``
unchanged, with the stateless functions in ``ledger.ingest.pipeline``'s
namespace swapped for look-ups of the worker's answers (``_Precomputed``), so
the stateful code measured is the product's, not a copy. A repeat whose first
occurrence is in the file still decodes it again in the committer, as today.

Both are run interleaved, live (the writer's commit) and bulk (replay's, with
``finish_bulk``), and (b)'s ledger is compared with (a)'s table by table, row
by row. Records are encoded before any clock starts; the fetch (4.3 / 3.7 µs
CPU an event, profile_ingest.py --fetch) is in neither: in (b) it would move
to the worker.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pickle
import queue
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import machine, selected_mixes
from profile_ingest import BATCH, encoded_records, pipelined_wall

import ledger.ingest.pipeline as pipeline
from ledger.ingest.pipeline import Ingestor, no_cyclic_gc
from ledger.store import Ledger
from ledger.wire.codec import default_codec
from ledger.wire.record import Record

STATELESS = ("leaf_hash", "decode_value", "routing_problem", "headers_to_json", "entry_columns", "time_flag",
             "index_row", "peek_event_id", "header_type")
AHEAD = 32  # chunks the worker may run ahead (3 commit batches of 10,000 at --chunk 1000)
_real = {name: getattr(pipeline, name) for name in STATELESS}


def stateless_part(rec: Record, codec, limits) -> tuple:
    """Everything prepare derives from ``rec`` alone, through the product's own functions.

    A decoded record: (leaf, headers_json, fingerprint, None, columns, time_flag, index_row[1:]);
    a rejected one: (leaf, headers_json, fingerprint, reason, peek_event_id, header_type).
    """
    leaf = _real["leaf_hash"](rec)
    value = rec.value
    event, reason = _real["decode_value"](codec, value)
    if event is not None and (reason := _real["routing_problem"](rec, event)) is not None:
        event = None
    headers = _real["headers_to_json"](rec.headers)
    fp = None if value is None else codec.fingerprint(value)
    if event is None:
        return (leaf, headers, fp, reason, _real["peek_event_id"](value), _real["header_type"](rec))
    cols = _real["entry_columns"](event)
    return (leaf, headers, fp, None, cols, _real["time_flag"](cols["occurred_at"], rec.timestamp, limits),
            _real["index_row"](0, event, cols["occurred_at"])[1:])


def worker(records: list[Record], chunk: int, limits, conn) -> None:
    """The second process: stateless parts of every chunk, sent with the records; then its CPU seconds.

    A sender thread writes to the pipe (which releases the GIL) from a bounded queue, so the worker
    runs up to ``AHEAD`` chunks ahead of the committer instead of blocking on each send.
    """
    codec = default_codec()
    pickling = 0.0
    outbox: queue.Queue = queue.Queue(maxsize=AHEAD)

    def sender():
        while (payload := outbox.get()) is not None:
            conn.send_bytes(payload)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    with no_cyclic_gc():
        for i in range(0, len(records), chunk):
            recs = records[i:i + chunk]  # stands in for a fetch: the worker reads Kafka itself
            parts = [stateless_part(rec, codec, limits) for rec in recs]
            t0 = time.process_time()
            payload = pickle.dumps(([(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, r.headers)
                                     for r in recs], parts), protocol=5)
            pickling += time.process_time() - t0
            outbox.put(payload)
    outbox.put(None)
    thread.join()
    conn.send_bytes(pickle.dumps((time.process_time(), pickling)))
    conn.close()


class _Precomputed:
    """Swaps the stateless functions in pipeline's namespace for look-ups of the worker's parts.

    ``leaf_hash(rec)`` is the first of them ``_prepare`` calls for a record, so it selects the
    record's part; a part is a tuple and stands in for the decoded event (events are dicts), so
    ``_classify``'s ``index_row`` and a first occurrence decoded again (a real dict) each take
    the right path. Also the codec: ``fingerprint`` answered, the rest delegated.
    """

    def __init__(self, codec):
        self.codec, self.parts, self.current, self.value = codec, {}, None, None

    def fingerprint(self, value):
        return self.current[2] if value is self.value else self.codec.fingerprint(value)

    def __getattr__(self, name):
        return getattr(self.codec, name)

    def leaf_hash(self, rec):
        self.current, self.value = self.parts[id(rec)], rec.value
        return self.current[0]

    def decode_value(self, codec, value):
        if value is self.value and self.current is not None:
            part = self.current
            return (part, None) if part[3] is None else (None, part[3])
        return _real["decode_value"](codec, value)

    def routing_problem(self, rec, event):
        return None if type(event) is tuple else _real["routing_problem"](rec, event)

    def headers_to_json(self, headers):
        return self.current[1]

    def entry_columns(self, event):
        return event[4] if type(event) is tuple else _real["entry_columns"](event)

    def time_flag(self, occurred_at, timestamp, limits):
        return self.current[5]

    def index_row(self, seq, event, occurred_at):
        return [seq, *event[6]] if type(event) is tuple else _real["index_row"](seq, event, occurred_at)

    def peek_event_id(self, value):
        return self.current[4]

    def header_type(self, rec):
        return self.current[5]

    def install(self):
        for name in STATELESS:
            setattr(pipeline, name, getattr(self, name))

    def uninstall(self):
        for name, fn in _real.items():
            setattr(pipeline, name, fn)


def run_serial(records, path: Path, *, bulk: bool) -> dict:
    """(a): today's prepare + commit on this thread; CPU and wall µs an event."""
    ledger = Ledger.open(path, readonly=False, create=True)
    try:
        ingestor = Ingestor(ledger)
        if bulk:
            ledger.begin_bulk()
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(records), BATCH):
            ingestor.commit(ingestor.prepare(records[i:i + BATCH]))
        finish = time.process_time()
        if bulk:
            ledger.finish_bulk()
        cpu_end = time.process_time()
        wall = time.perf_counter() - wall
    finally:
        ledger.close()
    n = len(records)
    return {"wall": wall / n * 1e6, "cpu": (finish - cpu) / n * 1e6, "finish": (cpu_end - finish) / n * 1e6}


def run_processes(records, path: Path, *, bulk: bool, chunk: int, drained: bool = False) -> dict:
    """(b): the stateless part in a worker process; the committer the rest through the product's code.

    ``drained``: the committer first waits for every chunk (untimed), so its CPU is measured with the
    worker finished: what the stateful part costs when the two processes do not compete for the CPUs.
    """
    ledger = Ledger.open(path, readonly=False, create=True)
    limits = Ingestor(ledger).time_limits
    ledger.close()  # the worker forks with no open connection
    receive, send = multiprocessing.Pipe(duplex=False)
    proc = multiprocessing.get_context("fork").Process(target=worker, args=(records, chunk, limits, send))
    ledger = Ledger.open(path, readonly=False)
    pre = _Precomputed(default_codec())
    pre.install()
    unpickling = 0.0
    waited = 0.0
    try:
        ingestor = Ingestor(ledger, codec=pre)
        if bulk:
            ledger.begin_bulk()
        proc.start()
        send.close()
        inbox = None
        if drained:
            inbox = [receive.recv_bytes() for _ in range(0, len(records), chunk)]
            inbox.reverse()
        wall, cpu = time.perf_counter(), time.process_time()
        got = 0
        with no_cyclic_gc():
            while got < len(records):
                batch = []
                while len(batch) < BATCH and got < len(records):
                    t0 = time.perf_counter()
                    payload = receive.recv_bytes() if inbox is None else inbox.pop()
                    t1 = time.process_time()
                    rows, parts = pickle.loads(payload)
                    recs = [Record(*row) for row in rows]
                    for rec, part in zip(recs, parts):
                        pre.parts[id(rec)] = part
                    unpickling += time.process_time() - t1
                    waited += t1 - t0  # (wall waiting for the worker, roughly)
                    batch += recs
                    got += len(recs)
                ingestor.commit(ingestor.prepare(batch))
                pre.parts.clear()
                pre.current = pre.value = None
        finish = time.process_time()
        if bulk:
            ledger.finish_bulk()
        cpu_end = time.process_time()
        wall = time.perf_counter() - wall
        worker_cpu, worker_pickling = pickle.loads(receive.recv_bytes())
        proc.join()
    finally:
        pre.uninstall()
        ledger.close()
        if proc.is_alive():
            proc.terminate()
    n = len(records)
    return {"wall": wall / n * 1e6, "cpu": (finish - cpu) / n * 1e6, "finish": (cpu_end - finish) / n * 1e6,
            "unpickle": unpickling / n * 1e6, "worker": worker_cpu / n * 1e6, "pickle": worker_pickling / n * 1e6}


CLOCK_COLUMNS = {"written_at"}  # wall-clock times, different in any two runs
CLOCK_META = ("created_at",)


def table_differences(a: Path, b: Path) -> list[str]:
    """Tables whose rows differ between the two ledger files (every row, every column but the clock's)."""
    con = sqlite3.connect(a)
    con.execute("ATTACH ? AS other", (str(b),))
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    differ = []
    for name in names:
        cols = ", ".join(f'"{c[1]}"' for c in con.execute(f'PRAGMA table_info("{name}")')
                         if c[1] not in CLOCK_COLUMNS)
        where = f" WHERE key NOT IN ({', '.join(repr(k) for k in CLOCK_META)})" if name == "meta" else ""
        q = f'SELECT COUNT(*) FROM (SELECT {cols} FROM main."{name}"{where} EXCEPT SELECT {cols} FROM other."{name}"{where})'
        r = f'SELECT COUNT(*) FROM (SELECT {cols} FROM other."{name}"{where} EXCEPT SELECT {cols} FROM main."{name}"{where})'
        if con.execute(q).fetchone()[0] or con.execute(r).fetchone()[0]:
            differ.append(name)
    con.close()
    return differ or ["none"]


def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--mix", choices=("both", "reference", "simulated"), default="both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=1_000)
    args = parser.parse_args()
    print(f"machine: {machine()}; load {loadavg()}", flush=True)
    for mix in selected_mixes(args.mix):
        records = encoded_records(mix, args.events)
        results: dict[str, list[dict]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(args.repeats):
                for bulk in (False, True):
                    mode = "bulk" if bulk else "live"
                    a_path, b_path = Path(tmp, f"a-{mode}-{rep}.db"), Path(tmp, f"b-{mode}-{rep}.db")
                    a = run_serial(records, a_path, bulk=bulk)
                    b = run_processes(records, b_path, bulk=bulk, chunk=args.chunk)
                    diff = table_differences(a_path, b_path)
                    os.remove(b_path)
                    b0 = run_processes(records, b_path, bulk=bulk, chunk=args.chunk, drained=True)
                    diff0 = table_differences(a_path, b_path)
                    results.setdefault(f"b0 {mode}", []).append(b0)
                    if not bulk:  # the writer's own path: prepare N+1 on this thread while N commits on another
                        a["pipelined"] = pipelined_wall(records, Path(tmp))
                        os.remove(Path(tmp, "pipelined.db"))
                    results.setdefault(f"a {mode}", []).append(a)
                    results.setdefault(f"b {mode}", []).append(b)
                    piped = f" (pipelined {a['pipelined']:.1f})" if not bulk else ""
                    print(f"  {mix} rep {rep} {mode}: (a) wall {a['wall']:.1f}{piped} cpu {a['cpu']:.1f}+{a['finish']:.1f}; "
                          f"(b) wall {b['wall']:.1f} committer cpu {b['cpu']:.1f}+{b['finish']:.1f} (unpickle "
                          f"{b['unpickle']:.1f}), worker cpu {b['worker']:.1f} (pickle {b['pickle']:.1f}); "
                          f"tables differing: {', '.join(diff)}; (b) worker done first: committer cpu {b0['cpu']:.1f}+"
                          f"{b0['finish']:.1f}, tables differing: {', '.join(diff0)}; load {loadavg()}", flush=True)
                    os.remove(a_path)
                    os.remove(b_path)
        print(f"{mix}, {args.events:,} events, medians of {args.repeats} (µs an event):")
        for mode in ("live", "bulk"):
            a = {k: statistics.median(r[k] for r in results[f"a {mode}"]) for k in results[f"a {mode}"][0]}
            b = {k: statistics.median(r[k] for r in results[f"b {mode}"]) for k in results[f"b {mode}"][0]}
            b0 = {k: statistics.median(r[k] for r in results[f"b0 {mode}"]) for k in results[f"b0 {mode}"][0]}
            piped = f" (writer's CommitPipeline {a['pipelined']:.1f}, b/that {b['wall'] / a['pipelined']:.2f})" \
                if mode == "live" else ""
            print(f"  {mode}: (a) wall {a['wall']:.1f}{piped}, cpu {a['cpu']:.1f} + finish {a['finish']:.1f} | (b) wall "
                  f"{b['wall']:.1f}, committer cpu {b['cpu']:.1f} + finish {b['finish']:.1f} (of it unpickle "
                  f"{b['unpickle']:.1f}), worker cpu {b['worker']:.1f} (of it pickle {b['pickle']:.1f}) | "
                  f"wall ratio b/a {b['wall'] / a['wall']:.2f}, committer cpu ratio "
                  f"{(b['cpu'] + b['finish']) / (a['cpu'] + a['finish']):.2f}; "
                  f"{1e6 / a['wall']:,.0f} -> {1e6 / b['wall']:,.0f} events/s | worker done first: committer cpu "
                  f"{b0['cpu']:.1f} + finish {b0['finish']:.1f}, wall {b0['wall']:.1f}", flush=True)


if __name__ == "__main__":
    main()
