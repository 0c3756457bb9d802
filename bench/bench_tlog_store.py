"""What the Merkle tiles cost in the ledger file: the writer's CPU per leaf, verify's rebuild rate.

    python bench/bench_tlog_store.py                    # 1,000,000 leaves over 3 partitions, median of 3
    python bench/bench_tlog_store.py --leaves 200000 --repeat 1

Prints:

- the writer's added CPU per leaf: ``time.process_time`` around ``TreeWriter.add`` (grouping the
  batch's rows by partition, extending each tree, writing the full and partial tiles through
  SQLite) summed over writer-sized batches inside real transactions on a ledger-schema file,
  divided by the leaves. The COMMIT is not counted (it writes the pages the entries share);
- verify's rebuild: leaves per second of reading a partition's leaf hashes in offset order from
  ``entries`` and comparing the rebuilt tree with the stored tiles (``tiles.rebuild_problems``).
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

from ledger.store import tiles  # noqa: E402


def writer_cpu_per_leaf(leaves: int, batch: int, partitions: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "t.db"), isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        tiles.ensure_tables(conn)
        rows = [(i, f"ledger.access", i % partitions, i // partitions) + (None,) * 13
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
        gc.enable()
        conn.close()
        return spent / leaves * 1e6


def rebuild_rate(path: str) -> float:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    t0 = time.perf_counter()
    n = 0
    for topic, partition in tiles.tree_sizes(conn):
        leaves = tiles.partition_leaves(conn, topic, partition)
        assert tiles.rebuild_problems(conn, topic, partition, leaves) == []
        n += len(leaves)
    conn.close()
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ledger", help="a ledger file to measure verify's rebuild on")
    args = parser.parse_args(argv)
    cpu = [writer_cpu_per_leaf(args.leaves, args.batch, args.partitions) for _ in range(args.repeat)]
    print(f"writer: tree maintenance {statistics.median(cpu):.2f} µs CPU per leaf "
          f"(median of {args.repeat}; {args.leaves:,} leaves, batches of {args.batch:,}, "
          f"{args.partitions} partitions; goal <= 2 µs)")
    if args.ledger:
        rates = [rebuild_rate(args.ledger) for _ in range(args.repeat)]
        print(f"verify: tree rebuild {statistics.median(rates):,.0f} leaves/s (goal >= 500,000)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
