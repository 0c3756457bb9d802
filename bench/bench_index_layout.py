"""Side-index layouts under sustained load: keyed by customer first, or by a seq bucket first.

    python bench/bench_index_layout.py [--events 1000000] [--customers 10000 1000000]

Not the ledger's code: a model of its subject index, to decide a design. Each
batch of 10,000 events commits 14 rows an event (the simulated mix's 13.8
customer references), sorted, through a staging table, in one transaction,
with the ledger's pragmas. Two layouts:

* ``flat``: primary key ``(customer, occurred_at, seq)``, the ledger's up to format 1.
  A batch touches one leaf page per distinct customer wherever it sits, and
  SQLite writes each touched page to the WAL and again at the checkpoint.
* ``bucketed``: primary key ``(seq >> 16, customer, occurred_at, seq)``, the
  ledger's since format 2. A batch only touches pages of the newest bucket
  (65,536 entries); a query then probes each bucket.

Prints events/s per 200,000 events, so the decline with size shows.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time

from common import machine

BATCH = 10_000
REFS_PER_EVENT = 14
LAYOUTS = {
    "flat": ("PRIMARY KEY (k, o, seq)", "k, seq, o, type", "k, o, seq"),
    "bucketed": ("PRIMARY KEY (b, k, o, seq)", "seq >> 16, k, seq, o, type", "seq >> 16, k, o, seq"),
}


def run(layout: str, customers: int, events: int, path: str) -> float:
    key, select, order = LAYOUTS[layout]
    bucket_column = "b INTEGER NOT NULL, " if layout == "bucketed" else ""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -262144", "wal_autocheckpoint = 10000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(f"CREATE TABLE s ({bucket_column}k TEXT NOT NULL, seq INTEGER NOT NULL, o INTEGER NOT NULL, "
                 f"type TEXT NOT NULL, {key}) WITHOUT ROWID")
    conn.execute("CREATE TEMP TABLE staged (k TEXT, seq INTEGER, o INTEGER, type TEXT)")
    rng = random.Random(1)
    started = window = time.perf_counter()
    for first in range(0, events, BATCH):
        rows = {(f"cust-{rng.randrange(customers):07d}", seq, 1_700_000_000_000_000 + seq * 1000, "DataAccessed")
                for seq in range(first, first + BATCH) for _ in range(REFS_PER_EVENT)}
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO staged VALUES (?, ?, ?, ?)", rows)
        conn.execute(f"INSERT INTO s SELECT {select} FROM staged ORDER BY {order}")
        conn.execute("DELETE FROM staged")
        conn.execute("COMMIT")
        done = first + BATCH
        if done % 200_000 == 0:
            now = time.perf_counter()
            print(f"  {layout:>8}, {customers:>9,} customers: {done:>9,} events, "
                  f"{200_000 / (now - window):,.0f} events/s in this window", flush=True)
            window = now
    conn.close()
    return events / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 1_000_000])
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for customers in args.customers:
        for layout in LAYOUTS:
            with tempfile.TemporaryDirectory() as tmp:
                rate = run(layout, customers, args.events, os.path.join(tmp, "index.db"))
            print(f"{layout}, {customers:,} customers: {args.events:,} events at {rate:,.0f} events/s overall")


if __name__ == "__main__":
    main()
