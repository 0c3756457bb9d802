"""The SQLite ledger file: schema, ``Ledger.open``, append, read, heads, export.

Start at :class:`Ledger` (ledger.py); the tables are described in schema.py; what the audit
stage reads goes through reads.py (the only SQL on the ledger's tables is in this package).

The names below are loaded on first use (PEP 562), so a command that needs one module of the
store (``ledger prove`` reads tiles and checkpoints) does not import the writer's machinery.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "reads": None,
    "Head": "heads", "read_heads": "heads",
    "READER_CACHE_KIB": "ledger", "AppendBatch": "ledger", "FirstSeen": "ledger", "Ledger": "ledger", "Tip": "ledger",
    "Move": "ledger", "StoredOccurrence": "ledger", "IndexRow": "read",
    "Entry": "read", "iter_entries": "read", "iter_rejected_records": "read", "iter_side_rows": "read",
    "ENTRY_COLUMNS": "schema", "EVIDENCE_COLUMNS": "schema", "SIDE_TABLES": "schema",
}

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


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = _HOMES[name]
    module = importlib.import_module(f"{__name__}.{home or name}")
    value = module if home is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
