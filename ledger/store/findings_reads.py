"""Reads the promise checks need: the ledger's events in recorded order, and its recorded policies.

    for json_text, timestamp, topic, partition, offset in recorded_events(ledger, until_ms=None, after=None): ...
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
                    after: tuple[int, str, int, int] | None = None) -> Iterator[tuple]:
    """``(json, timestamp, topic, partition, offset)`` of each event, in recorded order.

    ``until_ms`` keeps those recorded at or before it; ``after`` (a position
    ``(timestamp, topic, partition, offset)``) those strictly after it.
    """
    sql = f"SELECT {_COLUMNS} FROM entries WHERE status = 'entry'"
    params: list = []
    if until_ms is not None:
        sql += " AND timestamp <= ?"
        params.append(until_ms)
    if after is not None:
        sql += " AND (timestamp, topic, partition, offset) > (?, ?, ?, ?)"
        params.extend(after)
    cur = getattr(source, "conn", source).execute(sql + " ORDER BY timestamp, topic, partition, offset", params)
    while rows := cur.fetchmany(_FETCH):
        yield from rows


def recorded_policies(source, *, until_ms: int | None = None, topic_suffix: str = "policy") -> list[tuple]:
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
    return conn.execute(sql + " ORDER BY timestamp, topic, partition, offset", params).fetchall()
