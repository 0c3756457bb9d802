"""Kafka records → decoded → deduplicated → chained → appended to the ledger.

    ingestor = Ingestor(ledger)               # ledger opened writable and locked
    prepared = ingestor.prepare(records)      # pure given the tips: decode, dedupe, chain
    send_copies(prepared.rejected)            # e.g. to the dead-letter topic, before...
    ingestor.commit(prepared)                 # ...one transaction, entries + offsets

Records of one partition must come in offset order. A record at or below a
partition's tip is already in the ledger and is skipped (exactly once across
restarts); a jump in offsets appends a gap entry first. Every record is kept:
one that cannot be decoded, or is misrouted (routing.py), is appended as
``rejected`` with its reason. A repeated ``event_id`` with the same content is
appended as ``duplicate`` (same topic-partition as the first occurrence) or
``conflict`` (another one), never indexed twice; with other content as
``contradiction`` (repeats.py), indexed under its own keys and marked. A
decoded record whose times are implausible against its own Kafka timestamp
keeps its status and carries the flag in ``reason`` (``time: ...``, see
:mod:`ledger.timecheck`, with the limits recorded in the ledger's meta),
after a contradiction's own reason when it has both (``...; time: ...``).
"""

from __future__ import annotations

import gc
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Sequence

from ledger.errors import StoreError
from ledger.model.timecheck import TimeLimits, time_flag
from ledger.store import AppendBatch, FirstSeen, Ledger, Move, StoredOccurrence, Tip, iter_rejected_records
from ledger.store.index import entry_columns, index_row
from ledger.store.schema import (
    COL_EVENT_ID,
    COL_JSON,
    COL_OFFSET,
    COL_PARTITION,
    COL_REASON,
    COL_SEQ,
    COL_STATUS,
    COL_TIMESTAMP,
    COL_TOPIC,
    gap_row,
)
from ledger.tlog.chain import gap_hash, link
from ledger.wire.record import Record

from .derive import (
    EVENT_ID,
    FINGERPRINT,
    HEADER_TYPE,
    HEADERS,
    INDEX_ROW,
    JSON,
    LEAF,
    OCCURRED_AT,
    PEEKED_ID,
    REASON,
    TIME_FLAG,
    TYPE,
    DerivedRecord,
    decode_value,
    derive,
)
from .repeats import FirstOccurrence, classify_repeat, join_reasons, recorded_earlier
from .routing import routing_problem

CHAIN_START_KEY = "chain_start"  # meta: "mid" when each chain starts at its first record (a replayed window)
STATUSES = ("entry", "duplicate", "conflict", "contradiction", "rejected", "gap")


@dataclass
class PreparedBatch:
    """A batch ready to commit: rows, counts, rejected records, and the tips after it."""

    rows: AppendBatch
    counts: dict[str, int]  # per status, plus "skipped" (already in the ledger)
    rejected: list[tuple[Record, str]]  # (record, reason), in input order
    tips: dict[tuple[str, int], Tip]
    base_seq: int  # first seq of this batch: commit refuses a batch prepared on stale state
    next_seq: int


@dataclass
class ReprocessResult:
    examined: int  # rejected entries looked at
    counts: dict[str, int]  # new status -> how many moved
    still_rejected: int


@dataclass
class IngestResult:
    counts: dict[str, int]
    rejected: list[tuple[Record, str]] = field(default_factory=list)


_gc_pauses = 0  # no_cyclic_gc blocks running now, on any thread
_gc_was_enabled = False  # whether the collector was on when the first of them began
_gc_lock = threading.Lock()


@contextmanager
def no_cyclic_gc():
    """Pause the cyclic garbage collector around bulk work that creates no cycles.

    A batch allocates hundreds of thousands of containers (rows, decoded
    events); with the collector on, its repeated scans cost about 40% of
    prepare's time (measured: 60 µs vs 36 µs per event).

    The collector's switch is process-wide and the writer pauses it on two
    threads at once (a prepare, and the commit of the batch before it), so
    pauses are counted: the collector comes back when the last one ends, and
    only if it was on when the first began. A plain save-and-restore let a
    commit that ended first switch it back on under the rest of a prepare,
    and a prepare that began first leave it on under a whole commit.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def default_codec():
    from ledger.wire.codec import default_codec as load

    return load()


class Ingestor:
    """Appends batches of records to one ledger; the only writer of that file."""

    def __init__(self, ledger: Ledger, *, codec=None, start_mid_chain: bool = False):
        """``start_mid_chain``: for a ledger of a time window (replay), each partition's chain
        starts at the first record seen instead of with a gap from offset 0 (recorded in meta
        as ``chain_start = mid``, so verify accepts it)."""
        if ledger.readonly:
            raise StoreError("ingest needs a ledger opened with readonly=False")
        ledger.lock_for_writing()
        self.ledger = ledger
        self.codec = codec if codec is not None else default_codec()
        self.tips: dict[tuple[str, int], Tip] = ledger.tips()  # as committed
        self.next_seq = ledger.next_seq()
        # Batches prepared but not yet committed (oldest first), so that the next batch can be
        # prepared while one commits on another thread; their first occurrences are not in the
        # file yet, so dedupe consults them before a separate read connection.
        self._in_flight: deque[PreparedBatch] = deque()
        self._pending_ids: dict[str, FirstSeen] = {}
        self._pending_rows: dict[str, list] = {}  # the same first occurrences' entries rows
        self._lock = threading.Lock()
        self.start_mid_chain = start_mid_chain or ledger.meta().get(CHAIN_START_KEY) == "mid"
        self.time_limits = TimeLimits.from_meta(ledger.meta())  # None: a ledger made before the flags
        if start_mid_chain and ledger.meta().get(CHAIN_START_KEY) != "mid":
            if self.next_seq != 1:
                raise StoreError("start_mid_chain is for a new ledger; this one already starts at offset 0")
            ledger.set_meta(CHAIN_START_KEY, "mid")

    def ingest(self, records: Sequence[Record]) -> IngestResult:
        """Prepare and commit in one go (when nothing must happen in between)."""
        prepared = self.prepare(records)
        self.commit(prepared)
        return IngestResult(prepared.counts, prepared.rejected)

    def commit(self, prepared: PreparedBatch) -> None:
        """Append the oldest prepared batch in one transaction and move the committed tips forward.

        May run on another thread than ``prepare`` (one committer at a time): the
        writer prepares batch N+1 while batch N commits, since SQLite releases
        the GIL while it writes.
        """
        with self._lock:
            if not self._in_flight or self._in_flight[0] is not prepared or prepared.base_seq != self.next_seq:
                raise StoreError(
                    f"batch prepared at seq {prepared.base_seq} is not the next to commit (ledger at "
                    f"{self.next_seq}); batches must be committed in the order they were prepared"
                )
        try:
            if prepared.next_seq != prepared.base_seq:
                with no_cyclic_gc():
                    self.ledger.append(prepared.rows)
        except BaseException:
            with self._lock:  # everything prepared after it was built on it: prepare again
                self._in_flight.clear()
                self._pending_ids.clear()
                self._pending_rows.clear()
            raise
        with self._lock:
            self._in_flight.popleft()
            for event_id, *_ in prepared.rows.event_ids:
                self._pending_ids.pop(event_id, None)
                self._pending_rows.pop(event_id, None)
            self.tips = prepared.tips
            self.next_seq = prepared.next_seq

    def prepare(self, records: Sequence[Record]) -> PreparedBatch:
        """Decode, chain and classify ``records`` against the current tips; writes nothing."""
        with no_cyclic_gc():
            return self._prepare(records)

    def _prepare(self, records: Sequence[Record]) -> PreparedBatch:
        with self._lock:
            last = self._in_flight[-1] if self._in_flight else None
            tips = dict(last.tips if last else self.tips)
            base_seq = seq = last.next_seq if last else self.next_seq
        counts = dict.fromkeys(STATUSES, 0)
        counts["skipped"] = 0
        entries: list[list] = []
        decoded: list[tuple[list, dict]] = []
        rejected: list[tuple[Record, str]] = []
        touched: set[tuple[str, int]] = set()
        codec, limits = self.codec, self.time_limits

        for rec in records:
            where = (rec.topic, rec.partition)
            tip = tips.get(where)
            if tip is None:
                expected, prev = (rec.offset if self.start_mid_chain else 0), None
            else:
                expected, prev = tip.offset + 1, tip.chain_hash
            if rec.offset < expected:
                counts["skipped"] += 1  # already in the ledger (a restart re-delivers)
                continue
            if rec.offset > expected:
                leaf = gap_hash(rec.topic, rec.partition, expected, rec.offset)
                prev = link(prev, leaf)
                entries.append(gap_row(seq, rec.topic, rec.partition, expected, rec.offset, leaf, prev))
                counts["gap"] += 1
                seq += 1
            # Derived ahead by the read-ahead process (readahead.py), or here: the same function either way.
            part = rec.derived if type(rec) is DerivedRecord else derive(rec, codec, limits)
            leaf = part[LEAF]
            chain = link(prev, leaf)
            tips[where] = Tip(rec.offset, chain, seq)
            touched.add(where)
            # An entries row in ENTRY_COLUMNS order, built in two halves: evidence, then what the value decoded to.
            row = [seq, rec.topic, rec.partition, rec.offset, "record", None, rec.timestamp, rec.key,
                   part[HEADERS], rec.value, part[FINGERPRINT]]
            reason = part[REASON]
            if reason is not None:
                row += ["rejected", reason, part[PEEKED_ID], part[HEADER_TYPE], None, None, leaf, chain]
                rejected.append((rec, reason))
                counts["rejected"] += 1
            else:
                row += [None, part[TIME_FLAG], part[EVENT_ID], part[TYPE], part[OCCURRED_AT], part[JSON], leaf, chain]
                decoded.append((row, part[INDEX_ROW]))
            entries.append(row)
            seq += 1

        rows = AppendBatch()
        self._classify(decoded, rows, counts)
        rows.entries = entries
        rows.offsets = [
            (t, p, tips[(t, p)].offset + 1, tips[(t, p)].seq, tips[(t, p)].chain_hash)
            for t, p in sorted(touched)
        ]
        if not self.ledger.bulk:
            rows.side_json()  # here, not on the commit thread (AppendBatch.side_json)
        prepared = PreparedBatch(rows, counts, rejected, tips, base_seq, seq)
        with self._lock:
            self._in_flight.append(prepared)
            for event_id, seq_, topic, partition in rows.event_ids:
                self._pending_ids[event_id] = FirstSeen(seq_, topic, partition)
                self._pending_rows[event_id] = entries[seq_ - base_seq]  # seqs are contiguous from base_seq
        return prepared

    def _classify(self, decoded: list[tuple[list, list]], rows: AppendBatch, counts: dict[str, int]) -> None:
        """Set each decoded row's status (first occurrence wins; repeats.py) and collect index rows.

        ``decoded``: (entries row, its index row with seq 0, from derive).
        """
        ids = {row[COL_EVENT_ID] for row, _ in decoded}
        with self._lock:  # pending first: a commit finishing meanwhile is then seen in the file
            first = {i: self._pending_ids[i] for i in ids if i in self._pending_ids}
            origin = {i: self._pending_rows[i] for i in first}  # event_id -> the first occurrence's row
        # A bulk load keeps first occurrences on the writing connection (Ledger.begin_bulk) and commits in line.
        lookup = self.ledger if self.ledger.bulk else self.ledger.reader()
        in_file = lookup.first_seen(ids - first.keys())
        first.update(in_file)
        # Every id found in the file repeats in this batch: its entry is decoded again with this codec.
        stored = lookup.first_details(seen.seq for seen in in_file.values()) if in_file else {}
        details = {event_id: first_occurrence(self.codec, seen, stored[seen.seq])
                   for event_id, seen in in_file.items()}
        for row, index in decoded:
            event_id = row[COL_EVENT_ID]
            seen = first.get(event_id)
            seq, topic, partition = row[COL_SEQ], row[COL_TOPIC], row[COL_PARTITION]
            if seen is None:
                row[COL_STATUS] = "entry"
                first[event_id] = FirstSeen(seq, topic, partition)
                origin[event_id] = row
                rows.event_ids.append((event_id, seq, topic, partition))
                rows.index.append([seq, *index[1:]])
                counts["entry"] += 1
                continue
            occurrence = details.get(event_id)
            if occurrence is None:
                occurrence = details[event_id] = occurrence_of_row(origin[event_id])
            status, reason = classify_repeat(occurrence, row[COL_JSON], topic, partition)
            row[COL_STATUS], row[COL_REASON] = status, join_reasons(reason, row[COL_REASON])
            if status != "duplicate":
                rows.conflicts.append((seq, event_id, seen.seq))
            if status == "contradiction":
                rows.index.append([seq, *index[1:]])
            elif recorded_earlier(status, row[COL_TIMESTAMP], occurrence):
                rows.earlier.append((seen.seq, seq, row[COL_TIMESTAMP]))
            counts[status] += 1


def occurrence_of_row(row: list) -> FirstOccurrence:
    """The first occurrence held in an entries row of this session (decoded with this codec)."""
    return FirstOccurrence(row[COL_SEQ], row[COL_TOPIC], row[COL_PARTITION], row[COL_OFFSET], row[COL_TIMESTAMP],
                           row[COL_JSON])


def first_occurrence(codec, seen: FirstSeen, stored: StoredOccurrence) -> FirstOccurrence:
    """The first occurrence as the file holds it, its readable form decoded again with ``codec``.

    Decoding again (rather than reading the stored JSON) compares both records
    through the same reader schema, whichever versions were installed when the
    entry was written.
    """
    value = stored.value
    event = decode_value(codec, value)[0] if isinstance(value, bytes) else None  # (verify: a tampered column)
    return FirstOccurrence(seen.seq, seen.topic, seen.partition, stored.offset, stored.timestamp,
                           stored.json if event is None else entry_columns(event)["json"])


class CommitPipeline:
    """Commits prepared batches on one background thread, in order, while the caller prepares the next.

        with CommitPipeline(ingestor) as pipeline:
            for records in batches:
                done = pipeline.submit(ingestor.prepare(records), tag)   # (batch, tag) committed, or None
            done = pipeline.wait()

    SQLite releases the GIL while it expands side rows, so a commit and the
    next prepare overlap on two cores. ``submit`` first waits for the previous
    commit (and raises its error), so at most one batch is ever committing and
    commits keep prepare order. Leaving the block waits for the last commit:
    never half-way. ``background=False`` commits in ``submit`` itself, as a
    bulk load must: it looks up event ids on the writing connection
    (Ledger.begin_bulk).
    """

    def __init__(self, ingestor: "Ingestor", *, background: bool = True):
        if background and ingestor.ledger.bulk:
            raise StoreError("a bulk load looks up event ids on the writing connection: commit in line "
                             "(background=False)")
        self.ingestor = ingestor
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-commit") if background else None
        self._pending = None

    def submit(self, prepared: PreparedBatch, tag=None):
        """Start committing ``prepared``; return ``(batch, tag)`` of the commit that just finished, if any."""
        if self._pool is None:
            self.ingestor.commit(prepared)
            return prepared, tag
        done = self.wait()
        self._pending = (self._pool.submit(self.ingestor.commit, prepared), prepared, tag)
        return done

    def wait(self):
        """Wait for the commit in progress; ``(batch, tag)`` once it is durable, None if there was none."""
        if self._pending is None:
            return None
        future, prepared, tag = self._pending
        self._pending = None
        future.result()
        return prepared, tag

    def between_commits(self, call):
        """Run ``call()`` on the commit thread after the commit in progress and before the next one.

        Returns a Future. For work that must not wait on a commit's write lock nor hold up
        prepare (the writer's own checkpoints): the next ``submit`` queues behind it.
        """
        if self._pool is None:
            from concurrent.futures import Future

            future = Future()
            try:
                future.set_result(call())
            except BaseException as err:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(err)
            return future
        return self._pool.submit(call)

    def __enter__(self) -> "CommitPipeline":
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def reprocess(ledger: Ledger, *, codec=None) -> ReprocessResult:
    """Retry every rejected entry with the schemas installed now; index those that decode.

    The chain is untouched: only the status and decoded columns change (the one
    move the triggers allow), each move logged in ``reprocess_log`` with the
    ledger's last seq, so verify can replay the dedupe decisions in this order.
    """
    with no_cyclic_gc():
        return _reprocess(ledger, codec)


def _reprocess(ledger: Ledger, codec) -> ReprocessResult:
    if ledger.readonly:
        raise StoreError("reprocess needs a ledger opened with readonly=False")
    ledger.lock_for_writing()
    codec = codec if codec is not None else default_codec()
    limits = TimeLimits.from_meta(ledger.meta())
    rejected = list(iter_rejected_records(ledger))
    after_seq = ledger.next_seq() - 1
    decoded = []
    for entry in rejected:
        event, _ = decode_value(codec, entry.value)
        if event is not None and routing_problem(entry.record(), event) is None:  # misrouted stays rejected
            decoded.append((event, entry, entry_columns(event)))
    rows = AppendBatch()
    first = ledger.first_seen({cols["event_id"] for *_, cols in decoded})
    stored = ledger.first_details(seen.seq for seen in first.values()) if first else {}
    occurrences = {event_id: first_occurrence(codec, seen, stored[seen.seq]) for event_id, seen in first.items()}
    counts = dict.fromkeys(("entry", "duplicate", "conflict", "contradiction"), 0)
    moves = []
    for event, entry, cols in decoded:
        event_id = cols["event_id"]
        seen = first.get(event_id)
        reason = None
        if seen is None:
            status = "entry"
            first[event_id] = FirstSeen(entry.seq, entry.topic, entry.partition)
            occurrences[event_id] = FirstOccurrence(entry.seq, entry.topic, entry.partition, entry.offset,
                                                    entry.timestamp, cols["json"])
            rows.event_ids.append((event_id, entry.seq, entry.topic, entry.partition))
            rows.index.append(index_row(entry.seq, event, cols["occurred_at"]))
        else:  # the same decision as ingest's (repeats.py)
            occurrence = occurrences[event_id]
            status, reason = classify_repeat(occurrence, cols["json"], entry.topic, entry.partition)
            if status != "duplicate":
                rows.conflicts.append((entry.seq, event_id, seen.seq))
            if status == "contradiction":
                rows.index.append(index_row(entry.seq, event, cols["occurred_at"]))
            elif recorded_earlier(status, entry.timestamp, occurrence):
                rows.earlier.append((seen.seq, entry.seq, entry.timestamp))
        counts[status] += 1
        moves.append(Move(seq=entry.seq, after_seq=after_seq, old_reason=entry.reason, new_status=status,
                          new_reason=join_reasons(reason, time_flag(cols["occurred_at"], entry.timestamp, limits)),
                          event_id=event_id, type=cols["type"], occurred_at=cols["occurred_at"], json=cols["json"]))
    if moves:
        ledger.mark_reprocessed(moves, rows)
    return ReprocessResult(len(rejected), counts, len(rejected) - len(moves))
