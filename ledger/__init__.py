"""ledger: an append-only, hash-chained audit and disclosure ledger fed by Kafka.

    from ledger import AuditProducer, Ledger, who_saw

Start reading at docs/architecture.md; the public surface is ``__all__``.
Names are imported on first use, so that read-only commands never pay for
the Kafka client or the Avro codec.
"""

from __future__ import annotations

import importlib

from .config import Settings
from .errors import (
    BrokerError,
    ConfigError,
    DecodeError,
    LedgerError,
    SchemaError,
    StoreError,
    ValidationError,
    VerificationError,
)

_LAZY = {
    "AuditProducer": "ledger.producer",
    "Delivery": "ledger.producer",
    "Codec": "ledger.codec",
    "Ledger": "ledger.store",
    "who_saw": "ledger.query",
    "disclosures": "ledger.query",
    "accesses": "ledger.query",
    "obligations": "ledger.obligations",
    "build_report": "ledger.report",
    "verify_ledger": "ledger.verify",
    "replay": "ledger.replay",
    "diff_ledgers": "ledger.diff",
    "simulate": "ledger.simulate",
}

__all__ = [
    "Settings",
    *_LAZY,
    "LedgerError",
    "ConfigError",
    "ValidationError",
    "SchemaError",
    "DecodeError",
    "BrokerError",
    "StoreError",
    "VerificationError",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
