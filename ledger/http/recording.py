"""Every answered read is recorded in the ledger itself, as a DataAccessed, before it is answered.

    recorder = ReadRecorder(outbox_path, settings, source_service="ledger-api")
    recorder.record(principal, subjects, categories, route=..., query=..., justification=..., export=False)

The producer SDK in durable mode (an outbox) commits the event to a local
SQLite file before the call returns, and its relay delivers it to Kafka,
from where the writer appends it like any other access: a crash of the
server loses no record, and a request whose record cannot be committed is
refused (:class:`RecordingError`, a 503) rather than answered. Nothing here
needs FastAPI, so other readers (an export) can record their reads the same way.

The event: actor = the token's holder (an EMPLOYEE or AUTHORITY auditor, or
the SUBJECT itself); ``subject_ids`` = the customers whose data the answer
held, split into events of at most 1,000 sharing a ``correlation_id``;
``data_categories`` = the categories of the events returned plus
``user.account.identifiers`` (every answer carries customer ids);
``purpose`` = ``legal.obligation`` ("Compliance with a legal obligation",
from ledger.model.taxonomy) with legal basis LEGAL_OBLIGATION, for audits and for
a customer's own access request alike (GDPR Art. 15 is the operator's legal
obligation); ``justification`` = the auditor's ``X-Justification`` (reason
``audit_read``) or ``subject_access_request``; ``access_type`` QUERY, or
EXPORT for report downloads; the route, query and request id in
``attributes``. Never the token.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from ..config import Settings
from ..errors import LedgerError, StoreError
from . import timing
from .tokens import Principal

AUDIT_PURPOSE = "legal.obligation"
AUDIT_LEGAL_BASIS = "LEGAL_OBLIGATION"
ID_CATEGORY = "user.account.identifiers"
MAX_SUBJECTS_PER_EVENT = 1000
MAX_JUSTIFICATION = 1000
#: How long a record waits for the outbox when another process holds its write lock. Well under
#: the server's request timeout (10 s by default): a read whose record cannot be committed
#: promptly is refused with 503, not left hanging on the outbox's 30 s default.
RECORD_WAIT_SECONDS = 2.0


class RecordingError(StoreError):
    """A read could not be recorded, so it must not be answered (the API answers 503)."""

    retriable = True


class ReadRecorder:
    """Records reads through one durable AuditProducer (thread-safe: the outbox serialises writes)."""

    def __init__(self, outbox: str | Path, settings: Settings, *, source_service: str = "ledger-api",
                 write_timeout: float = RECORD_WAIT_SECONDS):
        from ledger.produce.producer import AuditProducer

        self.outbox = Path(outbox)
        self.source_service = source_service
        # Thread-safe without a lock of ours: encoding is pure and the outbox serialises its own writes.
        self._producer = AuditProducer(settings, durable=self.outbox, durable_write_timeout=write_timeout)

    def record(self, p: Principal, subjects: Iterable[str], categories: Iterable[str], *, route: str,
               query: str, request_id: str, justification: str | None, export: bool = False,
               channel: str = "api") -> list[str]:
        """Commit the DataAccessed event(s) for one answered read; returns their event ids.

        Raises RecordingError when the record cannot be committed: the caller must not answer then.
        """
        with timing.span("record"):  # Server-Timing, when the server was asked for it
            subject_ids = sorted(set(subjects))
            if not subject_ids:
                return []
            cats = sorted(set(categories) | {ID_CATEGORY})
            chunks = [subject_ids[i:i + MAX_SUBJECTS_PER_EVENT] for i in range(0, len(subject_ids), MAX_SUBJECTS_PER_EVENT)]
            correlation = str(uuid.uuid4()) if len(chunks) > 1 else None
            holder = p.holder
            if p.is_subject:
                why = {"reason_code": "subject_access_request", "ticket": None, "note": None}
            else:
                why = {"reason_code": "audit_read", "ticket": None, "note": justification}
            now = datetime.now(timezone.utc)
            ids = []
            try:
                for chunk in chunks:
                    delivery = self._producer.data_accessed(
                        occurred_at=now, source_service=self.source_service,
                        actor={"id": holder["id"], "type": holder["type"], "role": holder.get("role"),
                               "organization": holder.get("organization")},
                        subject_ids=chunk, correlation_id=correlation, trace_id=request_id,
                        attributes={"route": route, "query": query, "request_id": request_id,
                                    "token_scope": " ".join(sorted(p.scopes)), "subjects_total": str(len(subject_ids))},
                        data_categories=cats, purpose=AUDIT_PURPOSE, legal_basis=AUDIT_LEGAL_BASIS,
                        justification=why, access_type="EXPORT" if export else "QUERY", outcome="GRANTED",
                        channel=channel, record_count=len(chunk),
                    )
                    ids.append(delivery.event_id)
            except (LedgerError, OSError) as err:
                raise RecordingError("this read could not be recorded in the ledger, so it is not answered "
                                     f"({type(err).__name__}); try again later") from err
            return ids

    def pending(self) -> int:
        return self._producer._outbox.pending() if self._producer._outbox is not None else 0

    def deliver(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for Kafka to take the records; returns how many still wait in the outbox."""
        try:
            self._producer.flush(timeout)
        except LedgerError:
            pass
        return self.pending()

    def close(self, timeout: float = 5.0) -> None:
        try:
            self._producer.close(timeout)
        except LedgerError:
            pass  # undelivered rows stay in the outbox; `ledger outbox drain` or the next start sends them
