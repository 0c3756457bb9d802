"""Every error the ledger raises derives from :class:`LedgerError`.

    LedgerError
    ├── ConfigError            a setting is unknown or malformed
    │   └── PolicyError            a policy file is malformed (names the line)
    ├── ValidationError        an event breaks the contract (names the field)
    ├── SchemaError            the schemas/ directory is inconsistent
    │   └── IncompatibleSchemaError   a version cannot read an earlier one
    ├── DecodeError            bytes are not a readable event (keeps the raw bytes)
    ├── BrokerError            Kafka could not be reached or refused a request
    ├── StoreError             the ledger file cannot be opened or written
    │   ├── LedgerLockedError      another writer owns the ledger
    │   ├── LedgerDivergedError    Kafka no longer holds what the ledger recorded
    │   │   └── OffsetOutOfRangeError  Kafka says a position lies outside the log
    │   └── OutboxRelayError       the durable outbox's relay stopped (events wait in the file)
    ├── VerificationError      the ledger failed verification (lists the problems)
    └── TlogError              trees, proofs, notes, receipts (subtree in ledger/tlog/errors.py)

Driver errors (sqlite3, kafka) are wrapped with ``raise ... from err`` so the
cause stays visible.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error raised by this package."""

    #: True when the same call may succeed if tried again later.
    retriable: bool = False


class ConfigError(LedgerError):
    """A setting is unknown or has an unusable value."""


class PolicyError(ConfigError):
    """A policy file is refused; ``line`` (1-based, or None) and ``reason`` say where and why."""

    def __init__(self, reason: str, line: int | None = None, path: str | None = None):
        self.reason, self.line, self.path = reason, line, path
        where = f"{path or 'policy'}:{line}" if line is not None else (path or "policy")
        super().__init__(f"{where}: {reason}")


class ValidationError(LedgerError, ValueError):
    """An event does not satisfy the contract; ``field`` and ``reason`` say why."""

    def __init__(self, field: str, reason: str, event_type: str | None = None):
        self.field = field
        self.reason = reason
        self.event_type = event_type
        where = f"{event_type}." if event_type else ""
        super().__init__(f"{where}{field}: {reason}")


class SchemaError(LedgerError):
    """The schema files are missing, malformed or inconsistent."""


class IncompatibleSchemaError(SchemaError):
    """A schema version cannot read data written by an earlier version."""

    def __init__(self, event_type: str, reader: str, writer: str, field: str, reason: str):
        self.event_type, self.reader, self.writer = event_type, reader, writer
        self.field, self.reason = field, reason
        super().__init__(
            f"{event_type}: {reader} cannot read data written by {writer}: {field}: {reason}"
        )


class DecodeError(LedgerError):
    """Bytes could not be decoded into a valid event; ``raw`` keeps them."""

    def __init__(self, reason: str, raw: bytes | None = None):
        self.reason = reason
        self.raw = raw
        super().__init__(reason)


class BrokerError(LedgerError):
    """Kafka could not be reached or refused a request."""

    retriable = True


class StoreError(LedgerError):
    """The ledger file cannot be opened, read or written."""


class LedgerLockedError(StoreError):
    """Another process holds the writer lock on this ledger."""


class LedgerDivergedError(StoreError):
    """The broker's log no longer matches what the ledger recorded."""


class OffsetOutOfRangeError(LedgerDivergedError):
    """Kafka answered that a position lies outside the log; ``topic``, ``partition``, ``offset`` say which.

    Positions come from the ledger and are never reset silently, so this means
    the topic was truncated, recreated or lost data.
    """

    def __init__(self, topic: str, partition: int, offset: int | None, detail: str = ""):
        self.topic, self.partition, self.offset, self.detail = topic, partition, offset, detail
        where = f"{topic}[{partition}]" + (f" offset {offset}" if offset is not None else "")
        super().__init__(
            f"{where} is out of range on the broker{': ' + detail if detail else ''}; the topic was "
            "truncated or recreated, or the broker lost data (positions are never reset silently)"
        )

    def __reduce__(self):  # pickled with its own arguments (the read-ahead process sends it to the writer)
        return type(self), (self.topic, self.partition, self.offset, self.detail)


class ReadAheadError(LedgerError):
    """The read-ahead process (ledger/ingest/readahead.py) ended without reporting an error."""


class OutboxRelayError(StoreError):
    """The durable-mode relay thread stopped; ``emit``, ``flush`` and ``close`` raise this from then on."""


class VerificationError(LedgerError):
    """The ledger failed verification; ``problems`` lists each finding."""

    def __init__(self, problems: list):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) found; first: {problems[0]}")
