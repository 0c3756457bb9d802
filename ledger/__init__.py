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
    "AuditProducer": "ledger.produce.producer",
    "Delivery": "ledger.produce.producer",
    "Codec": "ledger.wire.codec",
    "Ledger": "ledger.store",
    "who_saw": "ledger.audit.query",
    "disclosures": "ledger.audit.query",
    "accesses": "ledger.audit.query",
    "obligations": "ledger.audit.obligations",
    "build_report": "ledger.audit.report",
    "verify_ledger": "ledger.audit.verify",
    "replay": "ledger.ingest.replay",
    "diff_ledgers": "ledger.audit.diff",
    "simulate": "ledger.dev.simulate",
}

__all__ = [  # noqa: PLE0604 - ruff cannot see that _LAZY's keys are str
    "Settings",
    *_LAZY,  # the lazily imported names
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
