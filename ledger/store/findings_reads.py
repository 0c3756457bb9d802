"""Reads the promise checks need: the ledger's events in recorded order, and its recorded policies.

    for json_text, timestamp, topic, partition, offset, seq in recorded_events(ledger, until_ms=None, after=None): ...
    policies = recorded_policies(ledger, until_ms=None)     # [(json_text, timestamp, topic, partition, offset)]

Only entries of status ``entry`` (one per event_id) are events. The order is
recorded time (the Kafka timestamp, ms), then topic, partition, offset: the
order ``ledger.audit.findings.recorded_order_key`` defines, so every reader
of the same file sees the same sequence whatever the partition layout.
SQLite sorts on disk (temp_store = FILE), so memory does not grow with the file.
"""

from __future__ import annotations

from typing import Iterator

_FETCH = 2000
_COLUMNS = "json, timestamp, topic, partition, offset"


def recorded_events(source, *, until_ms: int | None = None,
                    after: tuple[int, str, int, int] | None = None, upto_seq: int | None = None) -> Iterator[tuple]:
    """``(json, timestamp, topic, partition, offset, seq)`` of each event, in recorded order.

    ``until_ms`` keeps those recorded at or before it; ``after`` (a position
    ``(timestamp, topic, partition, offset)``) those strictly after it; ``upto_seq``
    those appended by that seq (the live service's tests reveal a ledger step by step).
    """
    sql = f"SELECT {_COLUMNS}, seq FROM entries WHERE status = 'entry'"
    params: list = []
    if until_ms is not None:
        sql += " AND timestamp <= ?"
        params.append(until_ms)
    if after is not None:
        sql += " AND (timestamp, topic, partition, offset) > (?, ?, ?, ?)"
        params.extend(after)
    if upto_seq is not None:
        sql += " AND seq <= ?"
        params.append(upto_seq)
    cur = getattr(source, "conn", source).execute(sql + " ORDER BY timestamp, topic, partition, offset", params)
    while rows := cur.fetchmany(_FETCH):
        yield from rows


def recorded_policies(source, *, until_ms: int | None = None, topic_suffix: str = "policy",
                      upto_seq: int | None = None) -> list[tuple]:
    """The PolicyPublished entries, in recorded order (few: one per published version).

    Read through the (topic, partition, offset) index of the policy topics only
    (their names from the offsets table), never a scan of the entries: every
    obligations read and report asks this.
    """
    conn = getattr(source, "conn", source)
    topics = [t for (t,) in conn.execute("SELECT DISTINCT topic FROM offsets") if t.endswith(topic_suffix)]
    if not topics:
        return []
    sql = (f"SELECT {_COLUMNS} FROM entries WHERE topic IN ({', '.join('?' * len(topics))}) "
           "AND status = 'entry' AND type = 'PolicyPublished'")
    params: list = list(topics)
    if until_ms is not None:
        sql += " AND timestamp <= ?"
        params.append(until_ms)
    if upto_seq is not None:
        sql += " AND seq <= ?"
        params.append(upto_seq)
    return conn.execute(sql + " ORDER BY timestamp, topic, partition, offset", params).fetchall()


def appended_after(source, after_seq: int, *, limit: int, upto_seq: int | None = None) -> list[tuple]:
    """``(seq, status, timestamp, topic, partition, offset, json)`` of the records appended after
    ``after_seq`` (gaps left out), in append order, at most ``limit``: what the live service reads per poll.

    By the primary key, so a poll costs what it reads, not the size of the file. ``json`` is None
    unless the status is ``entry`` (only those are events). ``upto_seq`` stops there (tests grow a
    ledger by revealing it).
    """
    sql = ("SELECT seq, status, timestamp, topic, partition, offset, CASE WHEN status = 'entry' THEN json END "
           "FROM entries WHERE seq > ? AND kind = 'record'")
    params: list = [after_seq]
    if upto_seq is not None:
        sql += " AND seq <= ?"
        params.append(upto_seq)
    return getattr(source, "conn", source).execute(sql + " ORDER BY seq LIMIT ?", [*params, limit]).fetchall()


def last_seq(source) -> int:
    """The seq of the last entry appended (0 for an empty ledger)."""
    return getattr(source, "conn", source).execute("SELECT max(seq) FROM entries").fetchone()[0] or 0


def partition_latest(source, *, upto_seq: int | None = None) -> list[tuple[tuple[str, int], int, int]]:
    """``((topic, partition), latest recorded time ms, next offset)`` per partition holding records, the
    next offset being one past its highest record (one scan, at start)."""
    sql = "SELECT topic, partition, max(timestamp), max(offset) + 1 FROM entries WHERE kind = 'record'"
    params: list = []
    if upto_seq is not None:
        sql += " AND seq <= ?"
        params.append(upto_seq)
    rows = getattr(source, "conn", source).execute(sql + " GROUP BY topic, partition", params).fetchall()
    return [((topic, part), ms, next_offset) for topic, part, ms, next_offset in rows]


def jsons_by_seq(source, seqs) -> dict[int, str]:
    """``{seq: json}`` of the given entries, by primary key (the live judge re-reads what it replays)."""
    conn = getattr(source, "conn", source)
    seqs = list(seqs)
    out: dict[int, str] = {}
    for i in range(0, len(seqs), 500):
        chunk = seqs[i:i + 500]
        out.update(conn.execute(f"SELECT seq, json FROM entries WHERE seq IN ({', '.join('?' * len(chunk))})",
                                chunk).fetchall())
    return out
