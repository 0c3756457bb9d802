"""The side-table rows of each entry (ledger/store/index.py): none missing or extra, each filed
under its bucket (``seq >> bucket_bits``), none left that belongs to no entry."""

from __future__ import annotations

from collections.abc import Callable

from ledger.store import Entry, IndexRow, Ledger, iter_side_rows
from ledger.store.index import SIDE_TABLE_NAMES, side_rows

from .report import UNKNOWN


class SideRowCheck:
    """Walks every side table in seq order, beside the pass over the entries."""

    def __init__(self, ledger: Ledger, bucket_bits: int, problem: Callable[..., None]):
        self.bucket_bits = bucket_bits
        self.problem = problem
        self.side = {t: _Peekable(iter_side_rows(ledger, t), bucket_bits) for t in SIDE_TABLE_NAMES}

    def check(self, e: Entry, event) -> None:
        """The entry's rows in each side table; ``UNKNOWN``: cannot be derived (already reported)."""
        expected = side_rows(e.seq, event) if isinstance(event, dict) else {}
        for table, rows in self.side.items():
            self.report_misfiled(table, rows.misfiled)
            self.report_orphans(table, rows.take_below(e.seq))
            found = [row.without_bucket() for row in rows.take_equal(e.seq)]
            if event is UNKNOWN:
                continue
            want = expected.get(table, [])
            if found != want:
                extra = sorted(set(found) - set(want))
                missing = sorted(set(want) - set(found))
                self.problem(f"{table} rows differ: extra {extra}, missing {missing}", e)

    def check_leftovers(self) -> None:
        """After the last entry: rows below no entry, and misfiled rows not yet reported."""
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

