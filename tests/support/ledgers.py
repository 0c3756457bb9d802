"""The sample ledger of every status, and the two things tests do to a file: verify it, tamper with it.

``sample_records`` are the twelve entries tests/data/tamper/README.md numbers (seq 1..12);
``tamper`` runs SQL the way someone with file access would (triggers dropped first).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from builders import CODEC, make_event, make_record, open_writer

from ledger.audit.verify import verify_ledger
from ledger.store import Ledger


def sample_records() -> list:
    """Twelve entries covering every status: seq 1..12 as listed in tests/data/tamper/README.md."""
    e1, e2, e3 = make_event(1), make_event(2), make_event(3)
    reused = make_event(6, "LegalDisclosure", event_id=e2["event_id"])  # another event under e2's id
    return [
        make_record(e1, offset=0),                               # seq 1 entry
        make_record(e2, offset=1),                               # seq 2 entry
        make_record(e1, offset=2),                               # seq 3 duplicate of seq 1
        make_record(e2, partition=1, offset=0),                  # seq 4 conflict with seq 2
        make_record(b"junk", partition=1, offset=1),             # seq 5 rejected
        make_record(e3, partition=1, offset=5),                  # seq 6 gap 2..4, seq 7 entry
        make_record(make_event(4, "DataShared"), "ledger.sharing", 0, 0),       # seq 8 entry
        make_record(make_event(5, "LegalDisclosure"), "ledger.disclosure", 0, 0),  # seq 9 entry
        make_record(reused, "ledger.disclosure", 0, 1),          # seq 10 contradiction of seq 2
        make_record(make_event(7), "ledger.consent", 0, 0),      # seq 11 rejected: misrouted
        make_record(e3, partition=1, offset=6, timestamp=1_772_323_200_000),  # seq 12 duplicate of seq 7,
    ]                                                            # recorded before it (earlier_copies)


def sample_ledger(path: Path) -> Path:
    ledger, ingestor = open_writer(path)
    ingestor.ingest(sample_records())
    ledger.close()
    return path


def verify_file(path: Path, **kwargs):
    with Ledger.open(path) as ledger:
        return verify_ledger(ledger, codec=kwargs.pop("codec", CODEC), **kwargs)


def tamper(path: Path, statements: list[str]) -> None:
    """Run SQL on the file the way an attacker with file access would: triggers dropped first."""
    conn = sqlite3.connect(path, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    for sql in statements:
        conn.execute(sql)
    conn.close()


CLOCK_COLUMNS = {"written_at"}  # wall-clock times: different in any two runs
CLOCK_META = ("created_at",)


def table_differences(a: Path, b: Path) -> list[str]:
    """The tables whose rows differ between two ledger files (every column but the clock's), by name."""
    conn = sqlite3.connect(a)
    try:
        conn.execute("ATTACH ? AS other", (str(b),))
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        differ = []
        for name in names:
            cols = ", ".join(f'"{c[1]}"' for c in conn.execute(f'PRAGMA table_info("{name}")')
                             if c[1] not in CLOCK_COLUMNS)
            where = f" WHERE key NOT IN ({', '.join(repr(k) for k in CLOCK_META)})" if name == "meta" else ""
            for left, right in (("main", "other"), ("other", "main")):
                sql = (f'SELECT count(*) FROM (SELECT {cols} FROM {left}."{name}"{where} '
                       f'EXCEPT SELECT {cols} FROM {right}."{name}"{where})')
                if conn.execute(sql).fetchone()[0]:
                    differ.append(name)
                    break
        return differ
    finally:
        conn.close()


def contents(path: Path) -> dict[str, list]:
    """A ledger's tables as facts that do not depend on batch boundaries or on how partitions interleaved.

    Two readers of the same topics may group records into other batches and
    deliver partitions in another interleaving, so seq numbers and the
    per-batch offsets rows may differ while every fact recorded is the same:
    here each seq is replaced by the position it names (topic, partition,
    offset, kind), also in a reason's text, side rows drop their seq bucket, and offsets keep each
    partition's last row. Everything else is compared as stored, wall-clock
    columns aside. (Cross-partition dedupe can depend on the interleaving:
    compare workloads whose repeats share a partition with their first.)
    """
    conn = sqlite3.connect(path)
    try:
        where = {seq: (t, p, o, k) for seq, t, p, o, k in
                 conn.execute("SELECT seq, topic, partition, offset, kind FROM entries")}
        columns = [c[1] for c in conn.execute("PRAGMA table_info(entries)") if c[1] != "seq"]
        reason = columns.index("reason")

        def placed(row):  # a reason names the first occurrence by seq ("contradicts seq 125 (...)")
            text = row[reason]
            if text is None or "seq " not in text:
                return row
            text = re.sub(r"\bseq (\d+)", lambda m: f"seq {where[int(m.group(1))]}", text)
            return row[:reason] + (text,) + row[reason + 1:]

        view = {"entries": sorted((placed(row) for row in conn.execute(f"SELECT {', '.join(columns)} FROM entries")),
                                  key=lambda row: (row[0], row[1], row[2], row[3]))}
        for table, key in (("subjects", "subject_id"), ("actors", "actor_id"), ("recipients", "recipient_id"),
                           ("categories", "category")):
            view[table] = sorted((k, where[s], at, t) for k, s, at, t in
                                 conn.execute(f"SELECT {key}, seq, occurred_at, type FROM {table}"))
        view["event_ids"] = sorted((e, where[s], t, p) for e, s, t, p in conn.execute("SELECT * FROM event_ids"))
        view["conflicts"] = sorted((where[s], e, where[f]) for s, e, f in conn.execute("SELECT * FROM conflicts"))
        view["earlier_copies"] = sorted((where[e], where[s], ts) for e, s, ts in
                                        conn.execute("SELECT * FROM earlier_copies"))
        view["offsets"] = sorted((t, p, n, where[s], h) for t, p, n, s, h in conn.execute(
            "SELECT topic, partition, max(next_offset), last_seq, chain_hash FROM offsets GROUP BY topic, partition"))
        view["tlog_tiles"] = sorted(conn.execute("SELECT * FROM tlog_tiles"))
        view["checkpoints"] = sorted(conn.execute("SELECT origin, size, root, note FROM checkpoints"))
        view["reprocess_log"] = sorted((where[s], where.get(a), r, n) for _, s, a, r, n, _ in
                                       conn.execute("SELECT * FROM reprocess_log"))
        view["meta"] = sorted(conn.execute(f"SELECT * FROM meta WHERE key NOT IN ({', '.join('?' * len(CLOCK_META))})",
                                           CLOCK_META))
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == set(view), f"contents() does not know the tables {sorted(tables - set(view))}"
        return view
    finally:
        conn.close()


def differing(a: Path, b: Path) -> list[str]:
    """The tables whose :func:`contents` differ between two ledger files: each name with its first difference."""
    left, right = contents(a), contents(b)
    found = []
    for name in left:
        if left[name] != right[name]:
            only_left = [row for row in left[name] if row not in right[name]][:1]
            only_right = [row for row in right[name] if row not in left[name]][:1]
            found.append(f"{name}: {len(left[name])} vs {len(right[name])} rows, e.g. {only_left} vs {only_right}")
    return found
