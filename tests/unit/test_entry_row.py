"""The named positions of an entries row (store.schema COL_*) and the gap row builder match ENTRY_COLUMNS.

Ingest builds entries rows as mutable lists (their status is set after the
batch is classified) and indexes them by these names instead of magic numbers.
"""

from __future__ import annotations

from ledger.store import schema


def test_each_named_position_holds_its_column():
    """COL_<NAME> is the position of <name> in ENTRY_COLUMNS, for every name defined."""
    names = [n for n in dir(schema) if n.startswith("COL_")]
    assert len(names) == 10
    for name in names:
        assert schema.ENTRY_COLUMNS[getattr(schema, name)] == name[4:].lower()


def test_a_gap_row_fills_only_the_gap_columns():
    """gap_row puts each value under its column and leaves every other column empty."""
    row = schema.gap_row(7, "ledger.access", 2, 10, 15, b"l" * 32, b"c" * 32)
    assert len(row) == len(schema.ENTRY_COLUMNS)
    assert {k: v for k, v in zip(schema.ENTRY_COLUMNS, row) if v is not None} == {
        "seq": 7, "topic": "ledger.access", "partition": 2, "offset": 10, "kind": "gap", "gap_end": 15,
        "status": "gap", "leaf_hash": b"l" * 32, "chain_hash": b"c" * 32}
