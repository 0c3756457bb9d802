"""A Kafka record as plain data: what the writer and replay hand to ingest.

Nothing below this module's users sees a kafka-python type; a record fetched
from any client (or built in a test) is turned into a :class:`Record` first.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The Kafka header that names a record's event type (the producer sets it, ingest checks it
#: against the schema). Its value is the type name in UTF-8: :func:`event_type_header`.
EVENT_TYPE_HEADER = "event_type"


def event_type_header(event_type: str) -> tuple[str, bytes]:
    """The ``(name, value)`` header a producer sends with an event of ``event_type``."""
    return EVENT_TYPE_HEADER, event_type.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: int  # ms since the epoch: the Kafka record timestamp ("recorded time")
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()  # in broker order; a value may be null

    @property
    def size(self) -> int:
        """Bytes the record carries (key, value, headers): what bounds a batch."""
        n = len(self.key or b"") + len(self.value or b"")
        for name, value in self.headers:  # a loop: a generator costs more than the sum (one header, usually)
            n += len(name) + len(value or b"")
        return n

    @classmethod
    def from_kafka(cls, msg) -> "Record":
        """Build from a kafka-python ``ConsumerRecord`` (duck-typed, no import)."""
        return cls(
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            timestamp=msg.timestamp,
            key=msg.key,
            value=msg.value,
            headers=tuple((name, value) for name, value in (msg.headers or ())),
        )
