"""A repeated event_id: byte- or content-identical copy, or a contradicting claim?

    status, reason = classify_repeat(first, json_text, topic, partition)

The first decoded occurrence of an event_id is the ``entry``. A later record
with the same event_id is compared with it by decoded content: both decoded
with the same codec, readable forms (index.entry_columns ``json``) compared.

* same content, same topic-partition: ``duplicate`` (no reason);
* same content, another topic-partition: ``conflict`` (no reason, a ``conflicts`` row);
* other content, anywhere: ``contradiction``, with the reason
  ``contradicts seq 12 (ledger.access[0]@3): type, subject_ids`` naming the
  entry and the top-level fields that differ (``type`` first, then by name),
  and a ``conflicts`` row. Contradictions are indexed in the side tables, so
  queries find them under their own subjects, actors and recipients.

A same-content repeat whose Kafka timestamp is earlier than the entry's gets
an ``earlier_copies`` row: the event counts as recorded from its earliest
copy (``--as-of``), whatever order the partitions were read in. Ingest,
reprocess and verify decide through these functions.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from ledger.model.timecheck import PREFIX as TIME_FLAG_PREFIX

REPEAT_STATUSES = ("duplicate", "conflict", "contradiction")
_REASON = re.compile(r"contradicts seq (\d+) \([^)]*\): ([a-z][a-z0-9_]*(?:, [a-z][a-z0-9_]*)*)")


class FirstOccurrence(NamedTuple):
    """The entry a repeat is compared with."""

    seq: int
    topic: str
    partition: int
    offset: int
    timestamp: int
    json: str  # readable form, decoded with the same codec as the repeat


def differing_fields(first_json: str, json_text: str) -> list[str]:
    """Top-level fields whose values differ between two readable forms: ``type`` first, then by name.

    A field present on one side only is compared as null on the other.
    """
    a, b = json.loads(first_json), json.loads(json_text)
    names = sorted((set(a) | set(b)) - {"event_id"}, key=lambda k: (k != "type", k))
    # A field one side lacks counts as null: a newer schema version adds fields with a default (null in
    # practice), and the list must not change when one is installed (verify re-derives it later).
    return [k for k in names if a.get(k) != b.get(k)]


def classify_repeat(first: FirstOccurrence, json_text: str, topic: str, partition: int) -> tuple[str, str | None]:
    """``(status, reason)`` of a repeat of ``first`` whose readable form is ``json_text``."""
    if json_text != first.json:
        fields = differing_fields(first.json, json_text)
        if fields:
            return "contradiction", (f"contradicts seq {first.seq} ({first.topic}[{first.partition}]@{first.offset}): "
                                     + ", ".join(fields))
    if (first.topic, first.partition) == (topic, partition):
        return "duplicate", None
    return "conflict", None


def join_reasons(*parts: str | None) -> str | None:
    """A decoded entry's ``reason``: a contradiction's, then a time flag's, joined by ``; `` (None: neither)."""
    return "; ".join(p for p in parts if p) or None


def split_reason(reason: str | None) -> tuple[str | None, str | None]:
    """A decoded entry's ``reason`` split into (contradiction part, time flag part); the inverse of join_reasons."""
    if not reason:
        return None, None
    if reason.startswith(TIME_FLAG_PREFIX):
        return None, reason
    head, sep, tail = reason.partition("; " + TIME_FLAG_PREFIX)
    return head, (TIME_FLAG_PREFIX + tail) if sep else None


def recorded_earlier(status: str, timestamp: int | None, first: FirstOccurrence) -> bool:
    """True when a same-content repeat was recorded before its entry (it gets an earlier_copies row)."""
    return (status in ("duplicate", "conflict") and timestamp is not None and first.timestamp is not None
            and timestamp < first.timestamp)


def contradicted_fields(reason: str | None) -> list[str]:
    """The differing fields named in a contradiction's reason (empty if it names none)."""
    found = _REASON.search(reason or "")
    return found.group(2).split(", ") if found else []
