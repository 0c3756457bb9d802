"""What the Merkle tiles cost in the ledger file: the writer's CPU per leaf, verify's rebuild rate.

    python bench/bench_tlog_store.py                    # 1,000,000 leaves over 3 partitions, median of 3
    python bench/bench_tlog_store.py --leaves 200000 --repeat 1

Prints:

- the writer's added CPU per leaf: ``time.process_time`` around ``TreeWriter.add`` (grouping the
  batch's rows by partition, extending each tree, writing the full and partial tiles through
  SQLite) summed over writer-sized batches inside real transactions on a ledger-schema file,
  divided by the leaves. The COMMIT is not counted (it writes the pages the entries share);
- verify's rebuild: leaves per second of reading each partition's leaf hashes in offset order from
  ``entries`` into a ``tiles.TileChecker`` (the tree rebuilt and compared tile by tile, as verify does).
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from hashlib import sha256
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.store import tiles


def writer_cpu_per_leaf(leaves: int, batch: int, partitions: int) -> tuple[float, float]:
    """(writer µs CPU per leaf, verify's rebuild in leaves/s) on a file of ``leaves`` leaves."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "t.db"), isolation_level=None)
        conn.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY, topic TEXT, partition INTEGER, "
                     "offset INTEGER, leaf_hash BLOB, UNIQUE (topic, partition, offset))")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        tiles.ensure_tables(conn)
        rows = [(i, "ledger.access", i % partitions, i // partitions) + (None,) * 13
                + (sha256(i.to_bytes(8, "big")).digest(), None) for i in range(leaves)]
        writer = tiles.TreeWriter()
        spent = 0.0
        gc.disable()
        for i in range(0, leaves, batch):
            conn.execute("BEGIN IMMEDIATE")
            t0 = time.process_time()
            writer.add(conn, rows[i:i + batch])
            spent += time.process_time() - t0
            conn.execute("COMMIT")
        conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?)", [(r[0], r[1], r[2], r[3], r[17]) for r in rows])
        gc.enable()
        rate = rebuild_rate(conn)
        conn.close()
        FIGURES.append(proofs_and_checkpoints(os.path.join(tmp, "t.db"), tmp))
        return spent / leaves * 1e6, rate


FIGURES: list[tuple[float, ...]] = []  # per run: proof p99 ms, same cleared, checkpoint first / again ms, CPU p99


def proofs_and_checkpoints(path: str, tmp: str) -> tuple[float, float, float, float]:
    """(proof p99 ms, fresh reader each time; the same with the shared expansions cleared; checkpoint-all ms
    first; again)."""
    import random

    from ledger.store.checkpoints import issue_checkpoints
    from ledger.tlog.merkle import reader as merkle_reader
    from ledger.tlog.note import generate_signer

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sizes = tiles.tree_sizes(conn)
    rng = random.Random(1)
    times, cleared, cpu = [], [], []
    for i in range(2000):
        (topic, partition), size = rng.choice(sorted(sizes.items()))
        index = rng.randrange(size)
        if i % 2:
            merkle_reader._EXPANSIONS.clear()  # as a new process would start: no tile expanded yet
        c0, t0 = time.process_time(), time.perf_counter()
        tiles.reader(conn, topic, partition).inclusion_proof(index, size)  # a fresh reader each time
        (cleared if i % 2 else times).append(time.perf_counter() - t0)
        if not i % 2:
            cpu.append(time.process_time() - c0)
    conn.close()
    times.sort()
    cleared.sort()
    cpu.sort()
    signer = generate_signer("bench.example/audit")
    key = os.path.join(tmp, "bench.key")
    t0 = time.perf_counter()
    issue_checkpoints(path, signer, key, "bench.example/audit")
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    issue_checkpoints(path, signer, key, "bench.example/audit")  # with the state file: consistency checked
    again = time.perf_counter() - t0
    from ledger.store.checkpoints import publication_steps

    t0 = time.perf_counter()
    steps = publication_steps(path, "bench.example/audit", {})  # the records the checkpoints topic gets
    print(f"publication_steps (the checkpoints topic's records, {len(steps)} origins, before Kafka): "
          f"{(time.perf_counter() - t0) * 1e3:.1f} ms")
    p99 = int(len(times) * 0.99)
    return times[p99] * 1e3, cleared[p99] * 1e3, first * 1e3, again * 1e3, cpu[p99] * 1e3


def rebuild_rate(conn: sqlite3.Connection) -> float:
    """What verify does per partition: stream the leaves in offset order into a TileChecker."""
    t0 = time.perf_counter()
    n = 0
    for topic, partition in tiles.tree_sizes(conn):
        checker = tiles.TileChecker(conn, topic, partition)
        cursor = conn.execute("SELECT leaf_hash FROM entries WHERE topic = ? AND partition = ? "
                              "ORDER BY offset", (topic, partition))
        while rows := cursor.fetchmany(4096):  # verify buffers its leaves the same way (add_tree_leaf)
            checker.add([leaf for (leaf,) in rows])
        assert checker.finish() == []
        n += checker.tree.size
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    runs = [writer_cpu_per_leaf(args.leaves, args.batch, args.partitions) for _ in range(args.repeat)]
    cpu = [c for c, _ in runs]
    print(f"writer: tree maintenance {statistics.median(cpu):.2f} µs CPU per leaf "
          f"(median of {args.repeat}; {args.leaves:,} leaves, batches of {args.batch:,}, "
          f"{args.partitions} partitions; goal <= 2 µs)")
    p99, cleared, first, again, cpu = (statistics.median(f[i] for f in FIGURES) for i in range(5))
    print(f"prove: inclusion proof p99 {p99:.3f} ms from the SQLite tiles, a fresh reader each time (median of "
          f"{args.repeat} runs' p99; per run {', '.join(f'{f[0]:.3f}' for f in FIGURES)}; goal < 1 ms); "
          f"CPU p99 {cpu:.3f} ms; wall p99 {cleared:.3f} ms with no tile expanded before (a new process)")
    print(f"checkpoint: all {args.partitions} partitions of {args.leaves:,} leaves {first:.1f} ms first, "
          f"{again:.1f} ms with a consistency check against the signer's state (goal < 50 ms)")
    print(f"verify: tree rebuild from the leaves, compared tile by tile, "
          f"{statistics.median([r for _, r in runs]):,.0f} leaves/s (goal >= 500,000)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
