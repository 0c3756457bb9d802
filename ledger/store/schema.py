"""The ledger file's tables, append-only triggers and connection pragmas.

``entries`` holds one row per Kafka record (or offset gap) with the evidence
columns (what Kafka held, and the hashes over it) and the decoded columns
(what the ledger made of it). Side tables index entries of status ``entry``
and ``contradiction`` for the auditors' queries; they are WITHOUT ROWID and keyed
``(bucket, key, occurred_at, seq)`` where ``bucket = seq >> bucket_bits``.
Keying by bucket first means a batch only writes pages of the newest bucket:
keyed by customer alone, each of a batch's ~100,000 customer references
dirtied its own page anywhere in the file, and SQLite wrote every dirty page
to the WAL and again at the checkpoint, so the ingest rate fell as the ledger
grew (bench/bench_index_layout.py). Within a bucket one key's rows are a
contiguous range in time order; a query probes each bucket (reads.side_rows).

Triggers refuse every UPDATE and DELETE, with one exception: ``ledger
reprocess`` may move an entry from ``rejected`` to a decoded status, filling
only the decoded columns and ``reason`` (a contradiction's), after logging the
move in ``reprocess_log``.
"""

from __future__ import annotations

import json
import sqlite3
from base64 import b64decode, b64encode

FORMAT_VERSION = "3"  # 2: side tables keyed by bucket first; 3: contradictions, earlier_copies, time-flag limits

#: Entries per side-table bucket, as a power of two: 8,192. A batch's side rows are sorted into the
#: newest bucket's B-trees, cheaper the smaller the bucket (simulated writer, 200k events: 13,188/s at
#: 16 bits, 15,877/s at 13, 15,618/s at 12), while a query probes every bucket (who_saw of one customer
#: over 1M entries, p50: 1.41 ms at 16, 1.57 ms at 13, 1.90 ms at 12; ~1.7 µs a bucket). BENCHMARKS.md,
#: session 8. A ledger records its own in meta ``bucket_bits``; tests make small buckets to cross many.
BUCKET_BITS = 13
MAX_BUCKET_BITS = 40

#: WAL pages (4 KiB) before a checkpoint copies them into the main file: ~40 MiB (PERFORMANCE-NOTES.md).
#: A writer's appends checkpoint on a thread of their own (store/wal.py), with the same bound.
WAL_CHECKPOINT_PAGES = 10_000

# Column order of an `entries` row as written by Ledger.append.
ENTRY_COLUMNS = (
    "seq", "topic", "partition", "offset", "kind", "gap_end", "timestamp", "key",
    "headers", "value", "fingerprint", "status", "reason", "event_id", "type",
    "occurred_at", "json", "leaf_hash", "chain_hash",
)
# Positions in an entries row, for the one writer that builds rows as mutable lists (ingest: a
# decoded row's status is set only after the whole batch is decoded and classified). Derived from
# ENTRY_COLUMNS so they cannot drift; plain ints, so the hot path indexes a list as fast as a literal
# (a NamedTuple or dataclass row would need a copy per row to mutate or to bind; see the report of issue 13).
_POSITION = {name: i for i, name in enumerate(ENTRY_COLUMNS)}
COL_SEQ, COL_TOPIC, COL_PARTITION, COL_OFFSET = (_POSITION[c] for c in ("seq", "topic", "partition", "offset"))
COL_TIMESTAMP, COL_STATUS, COL_REASON = (_POSITION[c] for c in ("timestamp", "status", "reason"))
COL_EVENT_ID, COL_OCCURRED_AT, COL_JSON = (_POSITION[c] for c in ("event_id", "occurred_at", "json"))


def gap_row(seq: int, topic: str, partition: int, first: int, end: int, leaf: bytes, chain: bytes) -> list:
    """The entries row (ENTRY_COLUMNS order) of a gap: offsets ``[first, end)`` missing on a partition."""
    row = dict.fromkeys(ENTRY_COLUMNS)
    row.update(seq=seq, topic=topic, partition=partition, offset=first, kind="gap", gap_end=end, status="gap",
               leaf_hash=leaf, chain_hash=chain)
    return list(row.values())


# What Kafka held and the hashes over it: never changed once written.
EVIDENCE_COLUMNS = (
    "seq", "topic", "partition", "offset", "kind", "gap_end", "timestamp", "key",
    "headers", "value", "fingerprint", "leaf_hash", "chain_hash",
)
# (table, key column); every side table has columns (bucket, key, seq, occurred_at, type).
SIDE_TABLES = (
    ("subjects", "subject_id"),
    ("actors", "actor_id"),
    ("recipients", "recipient_id"),
    ("categories", "category"),
)
APPEND_ONLY_TABLES = (
    "meta", "entries", "subjects", "actors", "recipients", "categories",
    "event_ids", "conflicts", "earlier_copies", "offsets", "reprocess_log",
)

_TABLES = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE entries (
    seq         INTEGER PRIMARY KEY,      -- append order
    topic       TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    offset      INTEGER NOT NULL,         -- a gap: first missing offset
    kind        TEXT    NOT NULL CHECK (kind IN ('record', 'gap')),
    gap_end     INTEGER,                  -- a gap: next present offset (exclusive end)
    timestamp   INTEGER,                  -- Kafka record timestamp, ms ("recorded time")
    key         BLOB,
    headers     TEXT,                     -- JSON [[name, base64 | null], ...]
    value       BLOB,
    fingerprint BLOB,                     -- writer schema fingerprint, 8 bytes LE
    status      TEXT    NOT NULL
                CHECK (status IN ('entry', 'duplicate', 'conflict', 'contradiction', 'rejected', 'gap')),
    reason      TEXT,                     -- why a record was rejected; what a contradiction contradicts
    event_id    TEXT,
    type        TEXT,
    occurred_at INTEGER,                  -- µs since the epoch, UTC
    json        TEXT,                     -- readable form: compact JSON, sorted keys
    leaf_hash   BLOB    NOT NULL,
    chain_hash  BLOB    NOT NULL,
    UNIQUE (topic, partition, offset)
);
"""

_SIDE_TABLE = """
CREATE TABLE {table} (
    bucket      INTEGER NOT NULL,         -- seq >> meta.bucket_bits
    {key}       TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    occurred_at INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    PRIMARY KEY (bucket, {key}, occurred_at, seq)
) WITHOUT ROWID;
"""

_OTHER_TABLES = """
CREATE TABLE event_ids (               -- first occurrence of each event_id (status entry)
    event_id  TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL,
    topic     TEXT    NOT NULL,
    partition INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE conflicts (               -- an event_id seen again: on another topic-partition (conflict),
    seq       INTEGER PRIMARY KEY,     -- or with other content anywhere (contradiction): that entry
    event_id  TEXT    NOT NULL,
    first_seq INTEGER NOT NULL         -- the entry that won
);
CREATE INDEX conflicts_by_first ON conflicts (first_seq);  -- "is this entry contradicted?" (queries)

CREATE TABLE earlier_copies (          -- a same-content repeat (duplicate, conflict) recorded before its entry
    entry_seq INTEGER NOT NULL,        -- the entry (status entry) of the event
    seq       INTEGER NOT NULL,        -- the repeat
    timestamp INTEGER NOT NULL,        -- the repeat's Kafka timestamp (ms), earlier than the entry's
    PRIMARY KEY (entry_seq, seq)
) WITHOUT ROWID;

CREATE TABLE offsets (                 -- the writer's position, one row per partition per batch
    topic       TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,      -- seq of the partition's last entry in that batch
    chain_hash  BLOB    NOT NULL,      -- chain hash of that entry
    written_at  INTEGER NOT NULL,      -- wall clock, ms
    PRIMARY KEY (topic, partition, next_offset)
) WITHOUT ROWID;

CREATE TABLE reprocess_log (           -- each rejected -> decoded move by `ledger reprocess`
    id             INTEGER PRIMARY KEY,
    seq            INTEGER NOT NULL UNIQUE,
    after_seq      INTEGER NOT NULL,   -- last seq in the ledger when decided (dedupe order)
    old_reason     TEXT,
    new_status     TEXT    NOT NULL,
    reprocessed_at INTEGER NOT NULL    -- wall clock, ms
);
"""

_NO_DELETE = """
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on {table} refused'); END;
"""
_NO_UPDATE = """
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on {table} refused'); END;
"""
# The one permitted UPDATE: rejected -> decoded, evidence unchanged, logged first.
_ENTRIES_UPDATE = """
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
WHEN NOT (
    OLD.status = 'rejected'
    AND NEW.status IN ('entry', 'duplicate', 'conflict', 'contradiction')
    AND {unchanged}
    AND EXISTS (SELECT 1 FROM reprocess_log
                WHERE reprocess_log.seq = OLD.seq AND reprocess_log.new_status = NEW.status)
)
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on entries refused'); END;
"""


def ddl() -> str:
    """The full schema: tables then triggers."""
    parts = [_TABLES]
    parts += [_SIDE_TABLE.format(table=t, key=k) for t, k in SIDE_TABLES]
    parts.append(_OTHER_TABLES)
    for table in APPEND_ONLY_TABLES:
        parts.append(_NO_DELETE.format(table=table))
        if table != "entries":
            parts.append(_NO_UPDATE.format(table=table))
    unchanged = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in EVIDENCE_COLUMNS)
    parts.append(_ENTRIES_UPDATE.format(unchanged=unchanged))
    return "\n".join(parts)


#: Where each side table's keys sit in an index row (index.index_row), and whether they are a list:
#: [seq, occurred_at, type, actor_id, recipient_id | null, [subject_ids], [categories]].
SIDE_KEYS = {"subjects": (5, True), "actors": (3, False), "recipients": (4, False), "categories": (6, True)}


def derive_side_rows_sql(table: str, source: str, bucket_bits: int, *, own_rows: bool = False) -> str:
    """One INSERT that expands the JSON index rows ``e`` of ``source`` into ``table``'s rows.

    ``source`` binds ``e`` to a JSON array of index rows: ``json_each(?) AS e``
    for one batch; with ``own_rows`` each row is ``[seq, occurred_at, type,
    keys]``, only the table's own keys (AppendBatch.side_json: each statement
    parsing the whole index rows cost 2.5 µs an event of JSON it did not use,
    simulated mix: side rows 30 -> 24 µs an event). The whole expansion (parse, sort, B-tree inserts) runs in
    one statement inside SQLite, which releases Python's GIL meanwhile, so the
    writer prepares its next batch on the other core. The CTE parses each
    index row once (a field read per output row would re-parse a 300-subject
    row 300 times). In key order, each B-tree page is visited once per batch.
    OR IGNORE drops a repeated id within one event (the only row that can
    collide, since seq is in the key); validation refuses those anyway, and
    it costs a fraction of a DISTINCT (measured: 32 vs 45 µs per event).
    """
    at, many = SIDE_KEYS[table]
    path = "$[3]" if own_rows else f"$[{at}]"
    key_column = dict(SIDE_TABLES)[table]
    key, joined = ("k.value", "r, json_each(r.keys) AS k") if many else ("r.keys", "r")
    return (
        f"WITH r AS MATERIALIZED (SELECT e.value ->> '$[0]' AS seq, e.value ->> '$[1]' AS occurred_at, "
        f"e.value ->> '$[2]' AS type, e.value {'->' if many else '->>'} '{path}' AS keys FROM {source}) "
        f"INSERT OR IGNORE INTO {table} (bucket, {key_column}, seq, occurred_at, type) "
        f"SELECT r.seq >> {int(bucket_bits)}, {key}, r.seq, r.occurred_at, r.type FROM {joined} "
        f"WHERE {key} IS NOT NULL ORDER BY 1, 2, 4, 3"
    )


def apply_pragmas(conn: sqlite3.Connection, *, readonly: bool) -> None:
    """Connection settings measured to matter for the ingest rate (PERFORMANCE-NOTES.md)."""
    conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: side-table index pages stay hot
    conn.execute("PRAGMA temp_store = FILE")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
    conn.execute("PRAGMA busy_timeout = 10000")


def create(conn: sqlite3.Connection, meta: dict[str, str]) -> None:
    """Create every table and trigger and write ``meta``, all in one transaction."""
    rows = [("format_version", FORMAT_VERSION), *sorted(meta.items())]
    inserts = "".join(f"INSERT INTO meta (key, value) VALUES ({_literal(k)}, {_literal(v)});" for k, v in rows)
    from .tiles import DDL as tlog_ddl  # the Merkle tiles and checkpoints (store/tiles.py)

    conn.executescript("BEGIN IMMEDIATE;" + ddl() + tlog_ddl + inserts + "COMMIT;")


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


_HEADERS_SEEN: dict = {}  # most records carry the same few header sets


def headers_to_json(headers) -> str:
    """The ``headers`` column: JSON ``[[name, base64 | null], ...]`` in broker order."""
    if not headers:
        return "[]"
    try:
        return _HEADERS_SEEN[headers]
    except (KeyError, TypeError):  # TypeError: a list, not a hashable tuple
        pass
    text = _headers_json(headers)
    if len(_HEADERS_SEEN) > 4096:
        _HEADERS_SEEN.clear()
    if isinstance(headers, tuple):
        _HEADERS_SEEN[headers] = text
    return text


def _headers_json(headers) -> str:
    return json.dumps(
        [[name, None if value is None else b64encode(value).decode("ascii")] for name, value in headers],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def headers_from_json(text: str | None) -> tuple[tuple[str, bytes | None], ...]:
    """Inverse of :func:`headers_to_json`."""
    if not text:
        return ()
    return tuple((name, None if value is None else b64decode(value)) for name, value in json.loads(text))
