"""How rows go into the ledger file: multi-row inserts and side rows expanded inside SQLite."""

from __future__ import annotations

import sqlite3
from functools import cache
from typing import Sequence

from . import schema

#: Where the derive statements read index rows from: one batch bound as JSON, or the bulk staging table.
BATCH_SOURCE = "json_each(?) AS e"
STAGED_SOURCE = "temp.bulk_index AS b, json_each(b.rows) AS e"


def insert_many(conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Insert ``rows`` with as few statements as SQLite's variable limit allows (multi-row VALUES).

    The writer commits on a background thread while the main thread prepares
    the next batch in Python. Every return from SQLite to Python then waits
    for the GIL, and ``executemany`` returns once per row: the commit thread
    starved (measured, reference mix: writer 11.5k/s with executemany,
    14.1k/s like this). One statement per ~1,700 entries returns a handful of times.
    """
    if not rows:
        return
    width = len(columns)
    # Full chunks repeat one SQL text, which stays in sqlite3's statement cache (no re-parse).
    per = max(1, min(conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), 32766) // width)
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    one = "(" + ", ".join("?" * width) + ")"
    for i in range(0, len(rows), per):
        chunk = rows[i : i + per]
        conn.execute(head + ", ".join([one] * len(chunk)), [value for row in chunk for value in row])


@cache
def derive_statements(source: str, bucket_bits: int) -> tuple[str, ...]:
    """One side-row INSERT per side table (schema.derive_side_rows_sql) for ``source``."""
    return tuple(schema.derive_side_rows_sql(table, source, bucket_bits) for table, _ in schema.SIDE_TABLES)


@cache
def own_rows_statements(bucket_bits: int) -> dict[str, str]:
    """Per side table, its INSERT from one batch of its own rows (AppendBatch.side_json)."""
    return {table: schema.derive_side_rows_sql(table, BATCH_SOURCE, bucket_bits, own_rows=True)
            for table, _ in schema.SIDE_TABLES}
