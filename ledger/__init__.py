"""ledger: an append-only, hash-chained audit and disclosure ledger fed by Kafka.

Start reading at docs/architecture.md; the public surface is ``__all__``.
"""

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

__all__ = [
    "Settings",
    "LedgerError",
    "ConfigError",
    "ValidationError",
    "SchemaError",
    "DecodeError",
    "BrokerError",
    "StoreError",
    "VerificationError",
]
