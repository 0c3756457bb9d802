"""Verify a ledger file from its raw evidence: hashes, offsets, decoded columns, indexes.

    with Ledger.open("ledger.db") as ledger:
        report = verify_ledger(ledger, expected_heads=read_heads("heads.txt"))  # ledger.store.read_heads
    report.raise_if_bad()        # VerificationError listing each Problem

What is re-derived and compared, entry by entry in append order:

* every leaf hash (from topic, partition, offset, timestamp, key, headers,
  value) and every chain link; offsets contiguous per partition except for
  explicit gap entries; ``seq`` without holes;
* the fingerprint, event_id, type, occurred_at and JSON form (by decoding the
  raw value again), the time flag in ``reason`` (ledger.timecheck, with the
  limits in meta; every flagged record is listed in ``VerifyReport.flagged``)
  and the status: rejected iff it does not decode or is
  misrouted (routing.py; the routing reason re-derived too), first occurrence
  of an event_id ``entry``, a same-content repeat ``duplicate`` on the same
  topic-partition and ``conflict`` on another, a repeat with other content
  ``contradiction`` with its reason (repeats.py; checked against
  ``event_ids``, ``conflicts`` and ``earlier_copies``, in the order ingest and
  reprocess decided them);
* the side-table rows of each entry (index.side_rows), none missing or extra,
  each filed under its bucket (``seq >> bucket_bits``);
* the ``offsets`` rows (each names a real record and its chain hash; the last
  one per partition is the partition's last entry) and ``reprocess_log``;
* optionally, that heads written down earlier (``ledger head``) still lie on
  the chains.

Preconditions: the codec knows every schema version that ingest used (schema
files are never deleted). A rejected entry that decodes now is a notice
(``ledger reprocess`` will index it) unless an earlier entry with the same
writer schema decoded, which means it should not have been rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.errors import StoreError, VerificationError
from ledger.ingest.pipeline import (
    CHAIN_START_KEY,
    decode_value,
    default_codec,
    first_occurrence,
    header_type,
    no_cyclic_gc,
    peek_event_id,
)
from ledger.ingest.repeats import classify_repeat, recorded_earlier, split_reason
from ledger.ingest.routing import PREFIX as ROUTING_PREFIX
from ledger.ingest.routing import routing_problem
from ledger.model.timecheck import TimeLimits, time_flag
from ledger.store import Entry, Head, IndexRow, Ledger, iter_entries, iter_side_rows, reads
from ledger.store.index import SIDE_TABLE_NAMES, entry_columns, side_rows
from ledger.store.schema import BUCKET_BITS
from ledger.store import tiles
from ledger.tlog.chain import gap_hash, leaf_hash, link

_LOOKUP_CHUNK = 2000
_UNKNOWN = object()  # an entry whose decoded form cannot be derived (a problem already reported)


@dataclass(frozen=True)
class Problem:
    """One finding, naming the entry it concerns (when there is one)."""

    what: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    event_id: str | None = None
    seq: int | None = None

    def __str__(self) -> str:
        if self.topic is None:
            return self.what
        event = f" event_id {self.event_id}" if self.event_id else ""
        return f"{self.topic}[{self.partition}]@{self.offset} (seq {self.seq}{event}): {self.what}"


@dataclass
class VerifyReport:
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem_count: int = 0
    flagged: list[Problem] = field(default_factory=list)  # records with implausible times (not problems)
    flagged_count: int = 0
    contradictions: int = 0  # entries of status contradiction (`ledger conflicts` lists them)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def raise_if_bad(self) -> None:
        if not self.ok:
            raise VerificationError(self.problems)


class _Verifier:
    def __init__(self, ledger: Ledger, codec, max_problems: int):
        self.ledger = ledger
        self.codec = codec
        self.max_problems = max_problems
        self.report = VerifyReport()
        self.chains: dict[tuple[str, int], tuple[bytes | None, int, str]] = {}  # prev hash, next offset, kind
        self.last_entry: dict[tuple[str, int], Entry] = {}
        self.decoded_fingerprints: dict[bytes, int] = {}  # writer schema -> first seq that decoded
        self.reprocessed = reads.reprocess_log(ledger)
        self.pending: list[tuple[Entry, str]] = []  # decoded entries whose status awaits a lookup
        self.mid_chain = ledger.meta().get(CHAIN_START_KEY) == "mid"  # a replayed window
        self.entry_count = 0
        self.contradiction_count = 0
        self.conflict_count = 0  # entries that need a conflicts row: conflict and contradiction
        self.earlier = reads.earlier_copies(ledger)  # a few rows: repeats recorded before their entry
        self.waiting_reprocess = 0
        self.has_tiles = tiles.has_tables(self.ledger)
        self.trees: dict[tuple[str, int], tiles.TileChecker] = {}  # each partition's rebuilt tree
        self.tree_leaves: dict[tuple[str, int], list] = {}  # leaves not yet given to it
        try:
            self.bucket_bits = ledger.bucket_bits
        except StoreError as err:
            self.problem(str(err))
            self.bucket_bits = BUCKET_BITS  # the default: every row then shows where it should be
        self.side = {t: _Peekable(iter_side_rows(ledger, t), self.bucket_bits) for t in SIDE_TABLE_NAMES}
        try:
            self.time_limits = TimeLimits.from_meta(ledger.meta())
        except StoreError as err:
            self.problem(str(err))
            self.time_limits = TimeLimits()

    def problem(self, what: str, entry: Entry | None = None) -> None:
        self.report.problem_count += 1
        if len(self.report.problems) < self.max_problems:
            if entry is None:
                self.report.problems.append(Problem(what))
            else:
                self.report.problems.append(Problem(what, entry.topic, entry.partition, entry.offset,
                                                    entry.event_id, entry.seq))

    # -- the pass over entries ---------------------------------------------------------------
    def run(self) -> VerifyReport:
        expected_seq = 1
        for entry in iter_entries(self.ledger):
            if entry.seq != expected_seq:
                self.problem(f"seq {expected_seq}..{entry.seq - 1} missing (entries deleted?)", entry)
            expected_seq = entry.seq + 1
            self.report.checked += 1
            self.add_tree_leaf(entry)
            try:
                if self.check_chain(entry) and entry.kind == "record":
                    event = self.check_decoded(entry)
                else:
                    event = None if entry.kind == "gap" else _UNKNOWN
            except Exception as err:  # a tampered column of the wrong type must not stop verify
                self.problem(f"unreadable entry: {type(err).__name__}: {err}", entry)
                event = _UNKNOWN
            if event is _UNKNOWN and entry.status == "entry":
                self.entry_count += 1  # already reported; keep the table counts from repeating it
            self.check_side_rows(entry, event)
            if len(self.pending) >= _LOOKUP_CHUNK:
                self.check_statuses()
        self.check_statuses()
        self.check_leftover_side_rows()
        self.check_tables()
        self.check_offsets()
        self.check_trees()
        if self.waiting_reprocess:
            self.report.notes.append(
                f"{self.waiting_reprocess} rejected entr{'y' if self.waiting_reprocess == 1 else 'ies'} "
                "decode with the schemas installed now; run `ledger reprocess` to index them")
        return self.report

    def check_chain(self, e: Entry) -> bool:
        """Offsets, leaf and link; False when the record's columns are unusable (reported)."""
        where = (e.topic, e.partition)
        first = (None, e.offset if self.mid_chain else 0, "record")
        prev, expected, last_kind = self.chains.get(where, first)
        self.last_entry[where] = e
        if e.offset != expected:
            if e.offset > expected:
                self.problem(f"offsets {expected}..{e.offset - 1} are missing and no gap entry covers them", e)
            else:
                self.problem(f"offset out of order: expected {expected} after the previous entry", e)
        if e.kind == "gap":
            leaf = gap_hash(e.topic, e.partition, e.offset, e.gap_end)
            if e.status != "gap":
                self.problem(f"a gap entry has status {e.status!r}", e)
            if last_kind == "gap" and where in self.chains:
                self.problem("two gap entries in a row", e)
            following = e.gap_end
        elif e.kind == "record":
            following = e.offset + 1
            self.chains[where] = (e.chain_hash, following, e.kind)
            for column in ("key", "value", "fingerprint"):
                if not isinstance(getattr(e, column), (bytes, type(None))):
                    self.problem(f"the {column} column holds {type(getattr(e, column)).__name__}, not bytes", e)
                    return False
            leaf = leaf_hash(e.record())
        else:
            raise ValueError(f"unknown kind {e.kind!r}")
        if leaf != e.leaf_hash:
            self.problem(f"leaf hash differs: stored {_hex(e.leaf_hash)}, recomputed {leaf.hex()} "
                         "(the record's topic, offset, timestamp, key, headers or value changed)", e)
        # Link the *stored* leaf and continue from the stored chain hash, so that a
        # changed record is reported once (leaf) and a changed link where it breaks.
        chain = link(prev, e.leaf_hash)
        if chain != e.chain_hash:
            self.problem(f"chain hash differs: stored {_hex(e.chain_hash)}, recomputed {chain.hex()}", e)
        self.chains[where] = (e.chain_hash, following, e.kind)
        return True

    def add_tree_leaf(self, e: Entry) -> None:
        """Feed the stored leaf hash to its partition's rebuilt Merkle tree (compared in check_trees)."""
        if not self.has_tiles:
            return
        where = (e.topic, e.partition)
        buffer = self.tree_leaves.get(where)
        if buffer is None:
            buffer = self.tree_leaves[where] = []
            self.trees[where] = tiles.TileChecker(self.ledger, *where)
        buffer.append(e.leaf_hash)
        if len(buffer) >= 4096:  # extend in batches: a call per leaf would cost a third of the rate
            self.trees[where].add(buffer)
            buffer.clear()

    def check_trees(self) -> None:
        """Each partition's stored Merkle tiles are exactly the tree of its leaves (store/tiles.py)."""
        if not self.has_tiles:
            self.problem("the file has no Merkle tiles (tlog_tiles); rebuild it with `ledger replay --into NEW.db`")
            return
        for (topic, partition), checker in sorted(self.trees.items()):
            checker.add(self.tree_leaves[(topic, partition)])
            for what in checker.finish():
                self.problem(f"Merkle tree of {topic}[{partition}]: {what}")
        for topic, partition in sorted(set(tiles.tree_sizes(self.ledger)) - set(self.trees)):
            self.problem(f"Merkle tree of {topic}[{partition}]: tiles are stored for a partition with no entries")

    def check_decoded(self, e: Entry) -> dict | None:
        """Compare the decoded columns with a fresh decode; returns the event if it is indexable."""
        value = e.value
        expected_fp = None if value is None else self.codec.fingerprint(value)
        if e.fingerprint != expected_fp:
            self.problem(f"fingerprint column {_hex(e.fingerprint)} but the value carries {_hex(expected_fp)}", e)
        event, reason = decode_value(self.codec, value)
        misrouted = None if event is None else routing_problem(e.record(), event)
        if event is None or misrouted or e.status == "rejected":
            if e.status != "rejected":
                why = f"the record is misrouted: {misrouted}" if misrouted else f"the value does not decode: {reason}"
                self.problem(f"status {e.status!r} but {why}", e)
                return _UNKNOWN
            if (e.event_id, e.type) != (peek_event_id(value), header_type(e.record())):
                self.problem(f"rejected entry's event_id/type {e.event_id}/{e.type} do not match the record", e)
            if e.json is not None or e.occurred_at is not None:
                self.problem("a rejected entry has decoded columns (json, occurred_at)", e)
            stored_routing = (e.reason or "").startswith(ROUTING_PREFIX)
            if misrouted and e.reason != misrouted and (stored_routing or self.decoded_fingerprints.get(expected_fp)):
                # (a decode failure in the reason is right if the schema was unknown at ingest)
                self.problem(f"rejection reason {_short(e.reason)} but the record re-derives as {_short(misrouted)}", e)
            elif stored_routing and not misrouted:
                self.problem(f"rejected as {_short(e.reason)} but the record "
                             + ("does not decode" if event is None else "is routed as its schema demands"), e)
            elif event is not None and not misrouted:
                first = self.decoded_fingerprints.get(expected_fp)
                if first is not None:
                    self.problem(f"status 'rejected' but the value decodes, and its schema already decoded "
                                 f"seq {first}: run `ledger reprocess` if the rules changed, else tampered", e)
                else:
                    self.waiting_reprocess += 1
            return None
        if e.status not in ("entry", "duplicate", "conflict", "contradiction"):
            self.problem(f"status {e.status!r} is not one a decoded record can have", e)
            return None
        if e.seq not in self.reprocessed:  # decoded at ingest time: its schema was known then
            self.decoded_fingerprints.setdefault(expected_fp, e.seq)
        repeat_reason, _ = split_reason(e.reason)
        if repeat_reason is not None and e.status != "contradiction":  # a contradiction's reason: check_statuses
            self.problem(f"a decoded entry carries a rejection reason {e.reason!r}", e)
        cols = entry_columns(event)  # the writer's own form: one right answer whatever is installed
        fresh = cols["json"]  # repeats are compared by this form, as ingest compared them
        self.check_time_flag(e, cols["occurred_at"])
        stored = {"event_id": e.event_id, "type": e.type, "occurred_at": e.occurred_at, "json": e.json}
        for column in ("event_id", "type", "occurred_at", "json"):
            if stored[column] != cols[column]:
                self.problem(f"{column} differs from the raw value: stored {_short(stored[column])}, "
                             f"decoded {_short(cols[column])}", e)
        self.pending.append((e, cols["event_id"], fresh))
        return event if e.status in ("entry", "contradiction") else None

    def check_time_flag(self, e: Entry, occurred_at: int) -> None:
        """``reason`` of a decoded entry is exactly the time flag its own times give (or NULL)."""
        flag = time_flag(occurred_at, e.timestamp, self.time_limits)
        if split_reason(e.reason)[1] != flag:
            expected = "none" if flag is None else repr(flag)
            self.problem(f"reason is {e.reason!r} but the record's times give {expected}", e)
        if flag is not None:
            self.report.flagged_count += 1
            if len(self.report.flagged) < self.max_problems:
                self.report.flagged.append(Problem(flag, e.topic, e.partition, e.offset, e.event_id, e.seq))

    def check_side_rows(self, e: Entry, event) -> None:
        """The entry's rows in each side table; ``_UNKNOWN``: cannot be derived (already reported)."""
        expected = side_rows(e.seq, event) if isinstance(event, dict) else {}
        for table, rows in self.side.items():
            self.report_misfiled(table, rows.misfiled)
            self.report_orphans(table, rows.take_below(e.seq))
            found = [row.without_bucket() for row in rows.take_equal(e.seq)]
            if event is _UNKNOWN:
                continue
            want = expected.get(table, [])
            if found != want:
                extra = sorted(set(found) - set(want))
                missing = sorted(set(want) - set(found))
                self.problem(f"{table} rows differ: extra {extra}, missing {missing}", e)

    def check_leftover_side_rows(self) -> None:
        for table, rows in self.side.items():
            self.report_orphans(table, rows.take_below(None))
            self.report_misfiled(table, rows.misfiled)

    def report_orphans(self, table: str, orphans: list[IndexRow]) -> None:
        for orphan in orphans:
            self.problem(f"{table} row {orphan.without_bucket()!r} belongs to no entry (seq {orphan.seq} missing)")

    def report_misfiled(self, table: str, misfiled: list[IndexRow]) -> None:
        """Rows under the wrong bucket: queries probing the right bucket would not find them."""
        for row in misfiled:
            expected = row.seq >> self.bucket_bits if type(row.seq) is int else "none: seq is not an integer"
            self.problem(f"{table} row {row.without_bucket()!r} is filed under bucket {row.bucket!r}, "
                         f"expected {expected} (seq >> {self.bucket_bits})")
        misfiled.clear()

    # -- statuses (batched lookups into event_ids and conflicts) ------------------------------
    def decision_key(self, seq: int) -> tuple:
        """When ingest or reprocess decided an entry's status: the dedupe order."""
        if seq in self.reprocessed:
            move = self.reprocessed[seq]
            return (move.after_seq, 1, move.id)
        return (seq, 0, 0)

    def check_statuses(self) -> None:
        pending, self.pending = self.pending, []
        if not pending:
            return
        ids = sorted({event_id for _, event_id, _ in pending})
        first = self.ledger.first_seen(ids)
        conflicts = reads.conflict_rows(
            self.ledger, (e.seq for e, _, _ in pending if e.status in ("conflict", "contradiction")))
        # The entries repeats are compared with, decoded again with this codec (as ingest does).
        winners = {first[event_id] for e, event_id, _ in pending if e.status != "entry" and event_id in first}
        stored = self.ledger.first_details(w.seq for w in winners) if winners else {}
        occurrences = {w: first_occurrence(self.codec, w, stored[w.seq]) for w in winners if w.seq in stored}
        for e, event_id, text in pending:
            winner = first.get(event_id)
            logged = self.reprocessed.get(e.seq)
            if logged is not None and logged.new_status != e.status:
                self.problem(f"reprocess_log says {logged.new_status!r}, entry says {e.status!r}", e)
            if e.status == "entry":
                self.entry_count += 1
                if winner != (e.seq, e.topic, e.partition):
                    self.problem(f"event_ids row for this event is {winner}, expected {(e.seq, e.topic, e.partition)}", e)
                continue
            if winner is None or winner not in occurrences:
                self.problem(f"status {e.status!r} but no first occurrence of {event_id} in event_ids", e)
                continue
            if not self.decision_key(winner.seq) < self.decision_key(e.seq):
                self.problem(f"status {e.status!r} but the recorded first occurrence (seq {winner.seq}) "
                             "comes later: this entry should have status 'entry'", e)
            occurrence = occurrences[winner]
            status, reason = classify_repeat(occurrence, text, e.topic, e.partition)
            if e.status != status:
                self.problem(f"status {e.status!r} but the first occurrence (seq {winner.seq}) is on "
                             f"{winner.topic}[{winner.partition}] and " + ("differs: " + reason if reason else "has the same content")
                             + f": expected {status!r}", e)
            elif split_reason(e.reason)[0] != reason:
                self.problem(f"reason {_short(e.reason)} differs from the re-derived {_short(reason)}", e)
            if e.status in ("conflict", "contradiction"):
                self.conflict_count += 1
                row = conflicts.get(e.seq)
                if row != (event_id, winner.seq):
                    self.problem(f"conflicts row {_plain(row)} does not match {(event_id, winner.seq)}", e)
            if e.status == "contradiction":
                self.contradiction_count += 1
            copy = self.earlier.pop(e.seq, None)
            if recorded_earlier(e.status, e.timestamp, occurrence):
                if copy != (winner.seq, e.timestamp):
                    self.problem(f"recorded before its entry (seq {winner.seq}) but the earlier_copies row is "
                                 f"{_plain(copy)}, expected {(winner.seq, e.timestamp)}", e)
            elif copy is not None:
                self.problem(f"earlier_copies row {_plain(copy)} but this entry is no same-content copy recorded "
                             "before its entry", e)

    # -- whole-table checks ------------------------------------------------------------------------
    def check_tables(self) -> None:
        count = reads.table_count(self.ledger, "event_ids")
        if count != self.entry_count:
            self.problem(f"event_ids has {count} rows for {self.entry_count} entries of status 'entry'")
        count = reads.table_count(self.ledger, "conflicts")
        if count != self.conflict_count:
            self.problem(f"conflicts has {count} rows for {self.conflict_count} entries of status 'conflict' "
                         "or 'contradiction'")
        for seq, copy in sorted(self.earlier.items()):  # rows no checked entry claimed
            self.problem(f"earlier_copies row (entry_seq {copy.entry_seq}, seq {seq}) belongs to no decoded repeat")
        self.report.contradictions = self.contradiction_count
        for row in reads.reprocess_mismatches(self.ledger):
            self.problem(f"reprocess_log row for seq {row.seq} (after_seq {row.after_seq}) does not match its entry")

    def check_offsets(self) -> None:
        positions: dict[tuple[str, int], tuple[int, int]] = {}
        for topic, partition, next_offset, last_seq, chain in reads.offsets_rows(self.ledger):  # OffsetsRow
            where = (topic, partition)
            entry = self.ledger.entry_at(topic, partition, next_offset - 1)
            label = f"offsets row {topic}[{partition}] next_offset {next_offset}"
            if entry is None or entry["kind"] != "record":
                self.problem(f"{label} points to no record at offset {next_offset - 1}")
            elif (entry["seq"], entry["chain_hash"]) != (last_seq, chain):
                self.problem(f"{label} says seq {last_seq} chain {_hex(chain)}, the entry has seq "
                             f"{entry['seq']} chain {_hex(entry['chain_hash'])}")
            if where in positions and last_seq <= positions[where][1]:
                self.problem(f"{label} goes backwards (seq {last_seq} after {positions[where][1]})")
            positions[where] = (next_offset, last_seq)
        for where, last in sorted(self.last_entry.items()):
            stored = positions.pop(where, None)
            if stored is None:
                self.problem(f"{where[0]}[{where[1]}] has entries but no offsets row", last)
            elif stored[0] != last.offset + 1 or last.kind != "record":
                self.problem(f"the stored position {stored[0]} does not follow the partition's last entry "
                             f"(offset {last.offset}, {last.kind})", last)
        for (topic, partition), (next_offset, _) in sorted(positions.items()):
            self.problem(f"offsets rows for {topic}[{partition}] (next {next_offset}) but no entries")

    def check_heads(self, heads: list[Head]) -> None:
        for head in heads:
            entry = self.ledger.entry_at(head.topic, head.partition, head.offset)
            label = f"head written down earlier {head.line()}"
            if entry is None:
                self.problem(f"{label}: the ledger has no entry at that offset (truncated?)")
            elif entry["chain_hash"] != head.chain_hash:
                self.problem(f"{label}: the chain hash there is now {_hex(entry['chain_hash'])}")


class _Peekable:
    """Side rows (:class:`~ledger.store.IndexRow`) in seq order, handed out below / at a seq.

    A row under the wrong bucket arrives out of seq order: it is set aside in
    ``misfiled`` as soon as it is seen, so it cannot hold up the rows behind it.
    """

    def __init__(self, rows, bucket_bits: int):
        self.rows = rows
        self.bucket_bits = bucket_bits
        self.misfiled: list[IndexRow] = []
        self.head = self._next()

    def _next(self):
        for row in self.rows:
            if type(row.seq) is int and row.bucket == row.seq >> self.bucket_bits:
                return row
            self.misfiled.append(row)
        return None

    def take_below(self, seq: int | None) -> list:
        out = []
        while self.head is not None and (seq is None or self.head.seq < seq):
            out.append(self.head)
            self.head = self._next()
        return out

    def take_equal(self, seq: int) -> list:
        out = []
        while self.head is not None and self.head.seq == seq:
            out.append(self.head)
            self.head = self._next()
        return out


def _hex(value) -> str:
    return value.hex() if isinstance(value, bytes) else repr(value)


def _plain(row: tuple | None) -> str:
    """A stored row as its values, e.g. ``(1, 0)`` (the findings name rows this way, not by their type)."""
    return "None" if row is None else repr(tuple(row))


def _short(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def verify_ledger(ledger: Ledger, *, codec=None, expected_heads: list[Head] | None = None,
                  max_problems: int = 1000) -> VerifyReport:
    """Check the whole ledger (see the module docstring); never raises for a finding."""
    codec = codec if codec is not None else default_codec()
    # Tampered text may not be UTF-8: read it anyway (and report it) rather than stop.
    with reads.lenient_text(ledger), ledger.snapshot(), no_cyclic_gc():  # one state, even while the writer appends
        verifier = _Verifier(ledger, codec, max_problems)
        report = verifier.run()
        if expected_heads:
            verifier.check_heads(expected_heads)
    return report
