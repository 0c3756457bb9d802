"""The Kafka seam: the only package that imports a Kafka client.

    from ledger.kafka import BEGINNING, Partition, admin, event_partitions, open_consumer, open_producer

    with open_producer(settings) as producer:
        future = producer.send("ledger.access", key=b"cust-1", value=payload, headers=[("event_type", b"...")])
        producer.flush()
        future.result(timeout=30)                  # Acked(topic, partition, offset); BrokerError if refused

    consumer = open_consumer(settings)
    parts = event_partitions(consumer, settings.topic_prefix)
    consumer.assign({p: BEGINNING for p in parts})  # or {p: next_offset_from_the_ledger}
    while not consumer.caught_up(parts):
        for record in consumer.poll(max_records=10_000, timeout=0.5):   # ledger.record.Record
            ...
    consumer.close()

    with admin(settings) as a:
        a.topic_partitions()                       # {"ledger.access": 6, ...}

Two implementations stand behind it, chosen by ``Settings.kafka_client``
(``LEDGER_KAFKA_CLIENT`` / ``--kafka-client``): ``kafka_python.py`` (pure
Python, the baseline, installs everywhere) and ``confluent.py`` (librdkafka,
``pip install 'ledger[fast]'``, ~10x faster here). ``auto``, the default,
takes confluent-kafka when it is installed; :func:`choose` says which and why.

The contract, the same for both (docs/kafka-clients.md):

* Producer: ``acks=all``, retries, one request in flight per connection (so
  per-partition order survives retries), no idempotence (the ledger removes
  duplicates by event id), murmur2 key partitioning (the Java client's), so a
  key lands on the same partition whichever client sent it. ``send`` returns a
  :class:`SendFuture`; constructing blocks until the cluster answered once.
* Consumer: assigned partitions only, never a consumer group join, never an
  auto-commit, ``read_committed``, and no silent offset reset: a position the
  broker calls out of range raises :class:`~ledger.errors.OffsetOutOfRangeError`.
  ``poll`` returns :class:`~ledger.record.Record` s in offset order per
  partition. ``highwater`` is what the last fetch said (None before one): end
  offsets from ListOffsets are wrong on the local test broker
  (shared/BROKERS.md), so "caught up" compares positions with it.
* Every client error becomes :class:`~ledger.errors.BrokerError` (a setting
  a client cannot honour: :class:`~ledger.errors.ConfigError`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Protocol

from ledger.wire.record import Record

from ..config import Settings
from ..errors import BrokerError, ConfigError

__all__ = [
    "BEGINNING", "Acked", "Admin", "Choice", "Consumer", "Partition", "Producer", "SendFuture",
    "admin", "choose", "client_name", "event_partitions", "open_consumer", "open_producer",
]

#: Start position meaning "the first offset the log still holds" (resolved to a number at assign).
BEGINNING = -2

CLIENTS = ("confluent", "kafka-python")


class Partition(NamedTuple):
    """A topic partition; equal to (and hashed like) the clients' own ``(topic, partition)`` tuples."""

    topic: str
    partition: int


class Acked(NamedTuple):
    """Where an acknowledged record landed."""

    topic: str
    partition: int
    offset: int


class SendFuture(Protocol):
    """The outcome of one ``send``."""

    def result(self, timeout: float | None = None) -> Acked:
        """Wait for the broker's acknowledgement; BrokerError if it refused or the timeout passed."""

    def done(self) -> bool:
        """True once acknowledged or failed."""


class Producer(Protocol):
    def send(self, topic: str, *, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, bytes | None]] | None = None) -> SendFuture:
        """Queue one record; BrokerError at once if it cannot be queued: too large, neither key nor value,
        or a header value None (kafka-python cannot send those, so neither client does; reading them works)."""

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything sent so far is acknowledged or failed; BrokerError on timeout."""

    def close(self, timeout: float | None = None) -> None:
        """Flush for up to ``timeout`` seconds (None: until done, 0: drop what is unsent), then disconnect."""

    def __enter__(self) -> "Producer": ...
    def __exit__(self, *exc: object) -> None: ...


class Consumer(Protocol):
    def topics(self) -> set[str]:
        """Names of the topics on the cluster (never creates one)."""

    def partitions_for(self, topic: str) -> list[int] | None:
        """Partition numbers of ``topic``, sorted; None if it does not exist."""

    def assign(self, starts: Mapping[Partition, int]) -> None:
        """Read exactly these partitions from these offsets (``BEGINNING`` for the log start)."""

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Up to ``max_records`` records, waiting at most ``timeout`` s for the first; [] if none came."""

    def position(self, tp: Partition) -> int:
        """The next offset this consumer will return for ``tp``."""

    def highwater(self, tp: Partition) -> int | None:
        """The partition's end as the last fetch reported it; None before the first fetch."""

    def caught_up(self, partitions: Iterable[Partition]) -> bool:
        """True when every partition's position has reached its high watermark (known after a fetch)."""

    def lag(self, partitions: Iterable[Partition]) -> int | None:
        """Records between positions and high watermarks; None until every partition was fetched."""

    def pause(self, *partitions: Partition) -> None:
        """Stop fetching these partitions (their buffered records are not returned)."""

    def paused(self) -> set[Partition]: ...

    def estimate(self, partitions: Iterable[Partition]) -> int | None:
        """Records from log start to end offset, for progress bars only (wrong on some brokers); None if unknown."""

    def commit_for_monitoring(self, offsets: Mapping[Partition, int]) -> None:
        """Best effort, asynchronous: tell the broker the group's positions (a no-op without ``group_id``).

        Only so that standard tools can show lag; the ledger's own positions are authoritative.
        """

    def close(self) -> None: ...


class Admin(Protocol):
    def topic_partitions(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """Partition count of each named (default: every) topic that exists; missing ones are left out."""

    def broker_count(self) -> int: ...

    def create_topics(self, names: Iterable[str], partitions: int, replication: int,
                      configs: Mapping[str, str]) -> set[str]:
        """Create the topics; returns those this call created (one that already exists is not an error)."""

    def wait_for_topics(self, names: Iterable[str], timeout: float = 10.0) -> None:
        """Until every topic is known to the cluster's metadata; BrokerError after ``timeout``."""

    def topic_config(self, name: str) -> dict[str, str]:
        """The topic's configuration (every key the broker reports); BrokerError if it cannot be read."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class Choice:
    """Which client the seam uses, and why (for ``ledger doctor`` and logs)."""

    name: str  # "confluent" | "kafka-python"
    why: str


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def choose(settings: Settings) -> Choice:
    """The client ``settings.kafka_client`` selects; ConfigError if it names one that is not installed."""
    wanted = settings.kafka_client
    if wanted == "kafka-python":
        return Choice("kafka-python", "kafka_client is kafka-python (LEDGER_KAFKA_CLIENT or --kafka-client)")
    if wanted == "confluent":
        if not _installed("confluent_kafka"):
            raise ConfigError("kafka_client is confluent but confluent-kafka is not installed: "
                              "pip install 'ledger[fast]', or set LEDGER_KAFKA_CLIENT=kafka-python")
        return Choice("confluent", "kafka_client is confluent (LEDGER_KAFKA_CLIENT or --kafka-client)")
    if wanted != "auto":
        raise ConfigError(f"kafka_client must be auto, confluent or kafka-python, got {wanted!r}")
    if _installed("confluent_kafka"):
        return Choice("confluent", f"auto: confluent-kafka {_version('confluent-kafka')} is installed, "
                                   "and it is the faster client")
    return Choice("kafka-python", "auto: confluent-kafka is not installed (pip install 'ledger[fast]' "
                                  "for the faster client)")


def client_name(settings: Settings) -> str:
    """``"confluent"`` or ``"kafka-python"``: the client the seam uses for ``settings``."""
    return choose(settings).name


def _impl(settings: Settings):
    if choose(settings).name == "confluent":
        from . import confluent

        return confluent
    from . import kafka_python

    return kafka_python


def open_producer(settings: Settings, *, bootstrap_timeout: float = 30.0,
                  max_request_bytes: int | None = None) -> Producer:
    """A producer with the ledger's delivery settings; blocks until the cluster answers (BrokerError after
    ``bootstrap_timeout`` s). ``max_request_bytes`` raises the request/message size limit (default 1 MiB)."""
    return _impl(settings).open_producer(settings, bootstrap_timeout=bootstrap_timeout,
                                         max_request_bytes=max_request_bytes)


def open_consumer(settings: Settings, *, max_poll_records: int = 10_000, group_id: str | None = None,
                  bootstrap_timeout: float = 30.0) -> Consumer:
    """An assign-only, read-committed consumer that never resets a position; see the module docstring.

    ``group_id`` only names the group :meth:`Consumer.commit_for_monitoring` reports to; the
    consumer never joins it.
    """
    return _impl(settings).open_consumer(settings, max_poll_records=max_poll_records, group_id=group_id,
                                         bootstrap_timeout=bootstrap_timeout)


def admin(settings: Settings, *, timeout: float = 30.0):
    """A context manager yielding an :class:`Admin`; client errors inside it become BrokerError."""
    return _impl(settings).admin(settings, timeout=timeout)


def event_partitions(consumer: Consumer, prefix: str, topics: Iterable[str] | None = None) -> list[Partition]:
    """Every partition of the given topics (default: the four event topics); a missing topic is an error."""
    from .topics import event_topics

    wanted = list(topics) if topics is not None else event_topics(prefix)
    existing = consumer.topics()
    missing = [t for t in wanted if t not in existing]
    if missing:
        raise BrokerError(f"topics missing: {', '.join(missing)}; create them with `ledger topics create`")
    return [Partition(topic, p) for topic in wanted for p in (consumer.partitions_for(topic) or ())]
