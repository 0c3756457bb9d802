"""The SQLite ledger file: schema, ``Ledger.open``, append, read, heads, export.

Start at :class:`Ledger` (ledger.py); the tables are described in schema.py; what the audit
stage reads goes through reads.py (the only SQL on the ledger's tables is in this package).
"""

from . import reads
from .heads import Head, read_heads
from .ledger import READER_CACHE_KIB, AppendBatch, FirstSeen, Ledger, Move, StoredOccurrence, Tip
from .read import Entry, IndexRow, iter_entries, iter_rejected_records, iter_side_rows
from .schema import ENTRY_COLUMNS, EVIDENCE_COLUMNS, SIDE_TABLES

__all__ = [
    "READER_CACHE_KIB",
    "Ledger",
    "AppendBatch",
    "Head",
    "read_heads",
    "Tip",
    "FirstSeen",
    "StoredOccurrence",
    "Move",
    "Entry",
    "IndexRow",
    "iter_entries",
    "iter_side_rows",
    "iter_rejected_records",
    "ENTRY_COLUMNS",
    "EVIDENCE_COLUMNS",
    "SIDE_TABLES",
    "reads",
]
