"""AuditProducer: record what a service did with customer data, one call per event.

    from ledger import AuditProducer

    with AuditProducer() as audit:
        audit.data_accessed(
            occurred_at=datetime.now(UTC), source_service="support-desk",
            actor={"id": "emp-17", "type": "EMPLOYEE", "role": "support_agent"},
            subject_ids=["cust-000042"], data_categories=["user.contact.email"],
            purpose="essential.service.support", access_type="VIEW", outcome="GRANTED",
            justification={"reason_code": "TICKET", "ticket": "SUP-1234"},
        )

Every call validates first and raises :class:`ValidationError` naming the field;
nothing invalid reaches Kafka. Delivery is at-least-once (``acks=all``, retries,
one request in flight per connection so per-key order holds); the ledger removes
duplicates by ``event_id``, so correctness never rests on producer idempotence.

``durable=PATH`` turns on the transactional-outbox mode (see ``outbox.py``):
the call returns only once the event is committed to a local SQLite file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from ledger.config import Settings
from ledger.errors import BrokerError, LedgerError, ValidationError
from ledger.kafka import open_producer
from ledger.kafka.topics import topic_for
from ledger.model.events import event_key
from ledger.wire.codec import Codec, default_codec
from ledger.wire.record import event_type_header

#: The largest produce request the client sends (the seam's producers' default request limit). The broker's default ``message.max.bytes`` is 1048588, the ledger keeps values
#: up to ``codec.MAX_RECORD_BYTES`` (1 MiB): a record that fits this limit fits all three.
MAX_REQUEST_BYTES = 1_048_576
# What a record batch of one record adds to key, value and headers: the v2 batch header (61 bytes)
# plus the record's attributes, varint lengths and deltas (at most 5 bytes each), and per header two
# varint lengths. Conservative: a record this estimate admits is never refused by the client.
_BATCH_OVERHEAD = 61 + 6 * 5
_HEADER_OVERHEAD = 2 * 5

@dataclass(frozen=True)
class Delivered:
    """Where an event landed in Kafka."""

    event_id: str
    topic: str
    partition: int | None  # None (with offset): relayed by another process sharing the durable outbox
    offset: int | None


class Delivery:
    """The outcome of one emitted event; ``result()`` waits for the broker's ack."""

    __slots__ = ("_future", "event_id", "topic")

    def __init__(self, event_id: str, topic: str, future: Any):
        # A seam SendFuture (direct mode) or the outbox's concurrent.futures.Future (durable mode):
        # both have result(timeout) and done().
        self.event_id = event_id
        self.topic = topic
        self._future = future

    def result(self, timeout: float | None = None) -> Delivered:
        try:
            meta = self._future.result(timeout)  # an Acked (seam) or the outbox's Acked
        except LedgerError as err:
            if not isinstance(err, BrokerError) or self.event_id in str(err):
                raise  # the outbox's own reasons (relay stopped, row quarantined) say it best
            raise BrokerError(f"event {self.event_id} was not acknowledged by Kafka: {err}") from err
        except Exception as err:  # a timeout of the outbox's future
            raise BrokerError(f"event {self.event_id} was not acknowledged by Kafka: {err}") from err
        return Delivered(self.event_id, meta.topic, meta.partition, meta.offset)

    def done(self) -> bool:
        return self._future.done()


@dataclass(frozen=True)
class WireRecord:
    """An event as it goes on the wire."""

    event_id: str
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def wire_size(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    """An upper bound on the bytes one record takes in a produce request."""
    return (_BATCH_OVERHEAD + len(key) + len(value)
            + sum(_HEADER_OVERHEAD + len(name.encode()) + len(v) for name, v in headers))


class _Route(NamedTuple):
    """Where events of one type go: computed once per (prefix, type), not per event."""

    topic: str
    headers: list[tuple[str, bytes]]  # shared by every send of the type: never changed (both clients copy it)
    overhead: int  # wire_size of an empty key and value with these headers


@functools.cache
def _route(event_type: str, prefix: str) -> _Route:
    headers = [event_type_header(event_type)]
    return _Route(topic_for(event_type, prefix), headers, wire_size(b"", b"", headers))


def encoded(event: Mapping, codec: Codec, prefix: str) -> tuple[str, _Route, bytes, bytes]:
    """``(event_id, route, key, value)`` of a validated, encoded event; ValidationError if invalid or too
    large to send. What :func:`wire_record` and ``AuditProducer.emit`` share."""
    normalized = codec.validate(event)
    etype = normalized["type"]
    route = _route(etype, prefix)
    key = event_key(normalized)
    value = codec.encode(normalized)
    size = route.overhead + len(key) + len(value)
    if size > MAX_REQUEST_BYTES or len(value) > codec.max_record_bytes:
        # Checked before anything is sent: the client would refuse it (max_request_size), the broker
        # too (message.max.bytes), and the ledger keeps values above 1 MiB only as rejected.
        raise ValidationError("(event)", f"too large: {size:,} bytes on the wire, the limit is "
                              f"{MAX_REQUEST_BYTES:,} (one Kafka request); shorten free text or split the event",
                              etype)
    return normalized["event_id"], route, key, value


def wire_record(event: Mapping, codec: Codec, prefix: str) -> WireRecord:
    """Validate an event and encode it for Kafka; ValidationError if invalid or too large to send."""
    event_id, route, key, value = encoded(event, codec, prefix)
    return WireRecord(event_id=event_id, topic=route.topic, key=key, value=value, headers=list(route.headers))


class AuditProducer:
    """Validates, encodes and sends audit events; see the module docstring."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        durable: str | Path | None = None,
        durable_write_timeout: float | None = None,
        codec: Codec | None = None,
        **overrides: Any,
    ):
        self.settings = settings if settings is not None else Settings.load(**overrides)
        self.codec = codec or default_codec()
        self._client = None  # created on first send: constructing never blocks on a missing broker
        self._outbox = None
        if durable is not None:
            from .outbox import Outbox

            wait = {} if durable_write_timeout is None else {"write_timeout": durable_write_timeout}
            self._outbox = Outbox(durable, self.settings, **wait)

    # -- one method per event type -------------------------------------------------
    def data_accessed(self, **fields: Any) -> Delivery:
        return self.emit({"type": "DataAccessed", **fields})

    def data_shared(self, **fields: Any) -> Delivery:
        return self.emit({"type": "DataShared", **fields})

    def legal_disclosure(self, **fields: Any) -> Delivery:
        return self.emit({"type": "LegalDisclosure", **fields})

    def notification_status_changed(self, **fields: Any) -> Delivery:
        return self.emit({"type": "NotificationStatusChanged", **fields})

    def subject_notified(self, **fields: Any) -> Delivery:
        return self.emit({"type": "SubjectNotified", **fields})

    def consent_changed(self, **fields: Any) -> Delivery:
        return self.emit({"type": "ConsentChanged", **fields})

    def policy_published(self, **fields: Any) -> Delivery:
        """A PolicyPublished (no subject_ids; keyed by ``policy_name``); ``ledger policy publish`` builds one."""
        return self.emit({"type": "PolicyPublished", **fields})

    # -- generic --------------------------------------------------------------------
    def emit(self, event: Mapping[str, Any]) -> Delivery:
        """Validate and send one event (a mapping with ``"type"``); raises before sending if invalid."""
        event_id, route, key, value = encoded(event, self.codec, self.settings.topic_prefix)
        topic = route.topic
        if self._outbox is not None:
            wire = WireRecord(event_id=event_id, topic=topic, key=key, value=value, headers=list(route.headers))
            return Delivery(event_id, topic, self._outbox.put(wire))
        try:
            # route.headers is one list per type, shared: neither client keeps or changes it
            future = (self._client or self._kafka()).send(topic, value=value, key=key, headers=route.headers)
        except BrokerError as err:
            raise BrokerError(f"could not send event {event_id} to {topic}: {err}") from err
        return Delivery(event_id, topic, future)

    def accessing(self, **fields: Any):
        """Record a DataAccessed event around a block or function; see ``ledger.access``."""
        from .access import AccessRecorder

        return AccessRecorder(self, fields)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every event emitted so far is acknowledged (durable: relayed)."""
        if self._outbox is not None:
            self._outbox.flush(timeout)
        elif self._client is not None:
            self._client.flush(timeout)  # BrokerError from the seam on a timeout

    def close(self, timeout: float | None = None) -> None:
        try:
            self.flush(timeout)
        finally:
            if self._outbox is not None:
                self._outbox.close()
            if self._client is not None:
                self._client.close(timeout=0 if timeout is None else timeout)
                self._client = None

    def __enter__(self) -> "AuditProducer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _kafka(self):
        if self._client is None:
            self._client = open_producer(self.settings)
        return self._client
