"""The pass over a ledger's entries: what verify re-derives from each record, and in what order.

:func:`verify_ledger` reads one snapshot; :class:`_Verifier` walks the entries in append order,
handing each to the chain, tree and side-row checks (their own modules) and checking the decoded
columns and the statuses here; the whole-table counts come last, then the offsets rows and heads.
"""

from __future__ import annotations

from ledger.errors import StoreError
from ledger.ingest.derive import decode_value, header_type, peek_event_id
from ledger.ingest.pipeline import CHAIN_START_KEY, default_codec, first_occurrence, no_cyclic_gc
from ledger.ingest.repeats import classify_repeat, recorded_earlier, split_reason
from ledger.ingest.routing import PREFIX as ROUTING_PREFIX
from ledger.ingest.routing import routing_problem
from ledger.model.timecheck import TimeLimits, time_flag
from ledger.store import Entry, Head, Ledger, iter_entries, reads
from ledger.store.index import entry_columns
from ledger.store.schema import BUCKET_BITS

from .chain import ChainCheck
from .positions import check_heads, check_offsets
from .report import UNKNOWN, Problem, VerifyReport, hex_or_repr, plain_row, shorten
from .side_rows import SideRowCheck
from .trees import TreeCheck

_LOOKUP_CHUNK = 2000


class _Verifier:
    def __init__(self, ledger: Ledger, codec, max_problems: int):
        self.ledger = ledger
        self.codec = codec
        self.max_problems = max_problems
        self.report = VerifyReport()
        self.decoded_fingerprints: dict[bytes, int] = {}  # writer schema -> first seq that decoded
        self.reprocessed = reads.reprocess_log(ledger)
        self.pending: list[tuple[Entry, str, str]] = []  # decoded entries (and event_id, json) awaiting a lookup
        self.entry_count = 0
        self.contradiction_count = 0
        self.conflict_count = 0  # entries that need a conflicts row: conflict and contradiction
        self.earlier = reads.earlier_copies(ledger)  # a few rows: repeats recorded before their entry
        self.waiting_reprocess = 0
        self.chain = ChainCheck(self.problem, mid_chain=ledger.meta().get(CHAIN_START_KEY) == "mid")
        self.trees = TreeCheck(ledger, self.problem)
        try:
            bucket_bits = ledger.bucket_bits
        except StoreError as err:
            self.problem(str(err))
            bucket_bits = BUCKET_BITS  # the default: every row then shows where it should be
        self.side_rows = SideRowCheck(ledger, bucket_bits, self.problem)
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
            self.trees.add(entry)
            try:
                if self.chain.check(entry) and entry.kind == "record":
                    event = self.check_decoded(entry)
                else:
                    event = None if entry.kind == "gap" else UNKNOWN
            except Exception as err:  # a tampered column of the wrong type must not stop verify
                self.problem(f"unreadable entry: {type(err).__name__}: {err}", entry)
                event = UNKNOWN
            if event is UNKNOWN and entry.status == "entry":
                self.entry_count += 1  # already reported; keep the table counts from repeating it
            self.side_rows.check(entry, event)
            if len(self.pending) >= _LOOKUP_CHUNK:
                self.check_statuses()
        self.check_statuses()
        self.side_rows.check_leftovers()
        self.check_tables()
        check_offsets(self.ledger, self.chain.last_entry, self.problem)
        self.trees.finish()
        if self.waiting_reprocess:
            self.report.notes.append(
                f"{self.waiting_reprocess} rejected entr{'y' if self.waiting_reprocess == 1 else 'ies'} "
                "decode with the schemas installed now; run `ledger reprocess` to index them")
        return self.report

    def check_decoded(self, e: Entry) -> dict | None:
        """Compare the decoded columns with a fresh decode; returns the event if it is indexable."""
        value = e.value
        expected_fp = None if value is None else self.codec.fingerprint(value)
        if e.fingerprint != expected_fp:
            self.problem(f"fingerprint column {hex_or_repr(e.fingerprint)} but the value carries "
                         f"{hex_or_repr(expected_fp)}", e)
        event, reason = decode_value(self.codec, value)
        misrouted = None if event is None else routing_problem(e.record(), event)
        if event is None or misrouted or e.status == "rejected":
            if e.status != "rejected":
                why = f"the record is misrouted: {misrouted}" if misrouted else f"the value does not decode: {reason}"
                self.problem(f"status {e.status!r} but {why}", e)
                return UNKNOWN
            if (e.event_id, e.type) != (peek_event_id(value), header_type(e.record())):
                self.problem(f"rejected entry's event_id/type {e.event_id}/{e.type} do not match the record", e)
            if e.json is not None or e.occurred_at is not None:
                self.problem("a rejected entry has decoded columns (json, occurred_at)", e)
            stored_routing = (e.reason or "").startswith(ROUTING_PREFIX)
            if misrouted and e.reason != misrouted and (stored_routing or self.decoded_fingerprints.get(expected_fp)):
                # (a decode failure in the reason is right if the schema was unknown at ingest)
                self.problem(f"rejection reason {shorten(e.reason)} but the record re-derives as "
                             f"{shorten(misrouted)}", e)
            elif stored_routing and not misrouted:
                self.problem(f"rejected as {shorten(e.reason)} but the record "
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
                self.problem(f"{column} differs from the raw value: stored {shorten(stored[column])}, "
                             f"decoded {shorten(cols[column])}", e)
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
                self.problem(f"reason {shorten(e.reason)} differs from the re-derived {shorten(reason)}", e)
            if e.status in ("conflict", "contradiction"):
                self.conflict_count += 1
                row = conflicts.get(e.seq)
                if row != (event_id, winner.seq):
                    self.problem(f"conflicts row {plain_row(row)} does not match {(event_id, winner.seq)}", e)
            if e.status == "contradiction":
                self.contradiction_count += 1
            copy = self.earlier.pop(e.seq, None)
            if recorded_earlier(e.status, e.timestamp, occurrence):
                if copy != (winner.seq, e.timestamp):
                    self.problem(f"recorded before its entry (seq {winner.seq}) but the earlier_copies row is "
                                 f"{plain_row(copy)}, expected {(winner.seq, e.timestamp)}", e)
            elif copy is not None:
                self.problem(f"earlier_copies row {plain_row(copy)} but this entry is no same-content copy recorded "
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


def verify_ledger(ledger: Ledger, *, codec=None, expected_heads: list[Head] | None = None,
                  max_problems: int = 1000) -> VerifyReport:
    """Check the whole ledger (what is checked: ledger/audit/verify/__init__.py); never raises for a finding."""
    codec = codec if codec is not None else default_codec()
    # Tampered text may not be UTF-8: read it anyway (and report it) rather than stop.
    with reads.lenient_text(ledger), ledger.snapshot(), no_cyclic_gc():  # one state, even while the writer appends
        verifier = _Verifier(ledger, codec, max_problems)
        report = verifier.run()
        if expected_heads:
            check_heads(ledger, expected_heads, verifier.problem)
    return report
