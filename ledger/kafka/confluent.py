"""The Kafka seam on confluent-kafka (librdkafka): the fast client, ``pip install 'ledger[fast]'``.

Read ``ledger/kafka/__init__.py`` for the contract; this module adapts
librdkafka to it, with the same delivery and reading settings as the
kafka-python module. What differs from librdkafka's defaults, and why:

* ``partitioner=murmur2_random``: librdkafka's default (CRC32) puts most keys
  on another partition than kafka-python and the Java client do (1,508 of
  1,831 keys measured); murmur2 keeps per-subject order across clients.
* ``group.id`` is set although the consumer never joins a group: librdkafka
  requires one even for ``assign()``. Nothing is committed under it unless
  the caller named a group for lag monitoring; auto-commit and the offset
  store are off.
* ``auto.offset.reset=error``: an out-of-range position arrives as a consumer
  error, raised here as OffsetOutOfRangeError, never a silent jump.
* A position is librdkafka's application position once a record of that
  partition was returned; before that it is the offset assigned. ``BEGINNING``
  is resolved to the log start (the low watermark) at assign, so positions are
  always numbers.
* ``highwater`` is the cached watermark from the last fetch response
  (``get_watermark_offsets(cached=True)``), never a ListOffsets query: those
  answers are wrong on the local test broker (measured: 1,001 for a log of
  2,000), the fetch responses are right on every broker.
* Delivery callbacks only run inside ``poll``/``flush``: ``send`` polls every
  ``POLL_EVERY`` records and a waiting ``result()`` flushes (so ``linger.ms``,
  50 ms here, never delays a caller that waits for its ack).
* librdkafka's log goes to the ``ledger.kafka.confluent`` logger, not stderr;
  cluster-wide errors (broker down, authentication) are kept and named in
  the error a caller sees.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Iterable, Iterator, Mapping

from confluent_kafka import Consumer as _Consumer
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import Producer as _Producer
from confluent_kafka import TopicPartition as CTP
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from ledger.wire.record import Record

from ..config import Settings
from ..errors import BrokerError, ConfigError, OffsetOutOfRangeError
from . import BEGINNING, Acked, Partition
from .reading import confluent_fetch_limits
from .security import librdkafka_options

NAME = "confluent"
LOG = logging.getLogger("ledger.kafka.confluent")

# The same delivery contract as kafka_python.PRODUCER_CONFIG, in librdkafka's names.
PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "retries": 2**31 - 1,
    "max.in.flight.requests.per.connection": 1,
    "enable.idempotence": False,
    # 50 ms, not kafka-python's 5: here a record costs librdkafka and the broker CPU per request,
    # and at 5 ms the requests carry a few records each (measured, reference mix, broker on the same
    # 2 cores: broker CPU 7.3 -> 4.7 µs an event, SDK 21 -> 17 µs). Nothing waits for it: flush()
    # sends at once, and so does a waiting result() (it flushes).
    "linger.ms": 50,
    "batch.size": 256 * 1024,
    "message.timeout.ms": 120_000,  # kafka-python's delivery_timeout_ms
    "request.timeout.ms": 30_000,
    "partitioner": "murmur2_random",
}

CONSUMER_CONFIG: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "error",
    "isolation.level": "read_committed",
    "enable.partition.eof": False,
    "fetch.max.bytes": 64 * 1024 * 1024,
    "max.partition.fetch.bytes": 8 * 1024 * 1024,
}

# librdkafka needs a group id even for assign(); never joined, never committed to.
ASSIGN_ONLY_GROUP = "ledger-assign-only"
# Serve delivery callbacks this often from send(), so the local queue never fills.
POLL_EVERY = 1000


class _Errors:
    """Remembers the last cluster-wide error librdkafka reported (``error_cb``), to name it later."""

    def __init__(self):
        self.last: KafkaError | None = None

    def __call__(self, err: KafkaError) -> None:
        self.last = err
        LOG.debug("librdkafka error: %s", err.str())  # librdkafka logs it too, through LOG

    def detail(self) -> str:
        return f" (last client error: {self.last.str()})" if self.last is not None else ""


def _conf(settings: Settings, errors: _Errors, options: Mapping[str, Any]) -> dict[str, Any]:
    return {**librdkafka_options(settings), "client.id": "ledger", "logger": LOG, "error_cb": errors,
            **options}


def _construct(cls, conf: dict[str, Any]):
    try:
        return cls(conf)
    except (KafkaException, ValueError, TypeError) as err:
        raise ConfigError(f"confluent-kafka refused the settings: {err}") from err


def _text(err: Exception) -> str:
    inner = err.args[0] if isinstance(err, KafkaException) and err.args else err
    return inner.str() if isinstance(inner, KafkaError) else str(inner)


def _unreachable(settings: Settings, err: Exception, errors: _Errors) -> BrokerError:
    return BrokerError(f"cannot reach Kafka at {settings.bootstrap_servers}: {_text(err)}{errors.detail()} "
                       "(for development, `ledger broker` runs one on 127.0.0.1:9092)")


def _bootstrap(client, settings: Settings, errors: _Errors, timeout: float):
    """Block until the cluster answers a metadata request, as kafka-python's constructors do."""
    try:
        return client.list_topics(timeout=timeout)
    except KafkaException as err:
        raise _unreachable(settings, err, errors) from err


# -- producer ---------------------------------------------------------------------------------
class _Future:
    """One record's delivery; librdkafka calls it (``on_delivery``) from inside poll/flush."""

    __slots__ = ("_client", "_err", "_msg", "_done")

    def __init__(self, client):
        self._client = client
        self._done = False

    def __call__(self, err, msg) -> None:
        self._err, self._msg, self._done = err, msg, True

    def result(self, timeout: float | None = None) -> Acked:
        if not self._done:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._done:
                wait = 0.01 if deadline is None else min(0.01, deadline - time.monotonic())
                if wait <= 0:
                    raise BrokerError(f"not acknowledged within {timeout}s")
                # flush, not poll: it sends what linger.ms still holds back (a caller is waiting) and
                # serves the delivery callbacks; in short steps, as others may keep producing
                self._client.flush(wait)
        if self._err is not None:
            raise BrokerError(f"Kafka refused the record: {self._err.str()}")
        msg = self._msg
        return Acked(msg.topic(), msg.partition(), msg.offset())

    def done(self) -> bool:
        if not self._done:
            self._client.poll(0)
        return self._done


class ConfluentProducer:
    def __init__(self, client: _Producer, errors: _Errors, queue_wait: float):
        self._client = client
        self._errors = errors
        self._queue_wait = queue_wait  # how long send() may wait for room in a full local queue
        self._unpolled = 0

    def send(self, topic, *, key, value, headers=None):
        if key is None and value is None:  # kafka-python cannot send it: refused by both, alike
            raise BrokerError(f"could not send to {topic}: a record needs a key or a value")
        if headers:
            for _, v in headers:  # a loop: a generator here costs more than the rest of the checks
                if v is None:  # kafka-python cannot send it: refused by both, alike
                    raise BrokerError(f"could not send to {topic}: a header value must be bytes, not None")
        client = self._client
        future = _Future(client)
        try:
            try:
                client.produce(topic, value, key, on_delivery=future, headers=headers or None)
            except BufferError:  # the local queue is full: serve callbacks until there is room
                deadline = time.monotonic() + self._queue_wait
                while True:
                    client.poll(0.05)
                    try:
                        client.produce(topic, value, key, on_delivery=future, headers=headers or None)
                        break
                    except BufferError:
                        if time.monotonic() > deadline:
                            raise BrokerError(f"could not send to {topic}: the local queue stayed full for "
                                              f"{self._queue_wait:.0f}s{self._errors.detail()}") from None
        except (KafkaException, TypeError) as err:
            raise BrokerError(f"could not send to {topic}: {_text(err)}") from err
        self._unpolled += 1
        if self._unpolled >= POLL_EVERY:
            self._unpolled = 0
            client.poll(0)
        return future

    def flush(self, timeout: float | None = None) -> None:
        left = self._client.flush() if timeout is None else self._client.flush(timeout)
        if left:
            raise BrokerError(f"flush: {left} record(s) not acknowledged after {timeout}s{self._errors.detail()}")

    def close(self, timeout: float | None = None) -> None:
        client = self._client
        if client is None:
            return
        self._client = None
        left = client.flush() if timeout is None else client.flush(timeout) if timeout > 0 else len(client)
        if left:  # dropped: their futures fail (purge errors) instead of waiting forever
            client.purge()
            client.poll(0)
        client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_producer(settings: Settings, *, bootstrap_timeout: float, max_request_bytes: int | None):
    errors = _Errors()
    options = dict(PRODUCER_CONFIG)
    if max_request_bytes is not None:
        options["message.max.bytes"] = max_request_bytes
    client = _construct(_Producer, _conf(settings, errors, options))
    _bootstrap(client, settings, errors, bootstrap_timeout)
    return ConfluentProducer(client, errors, queue_wait=PRODUCER_CONFIG["message.timeout.ms"] / 1000)


# -- consumer ---------------------------------------------------------------------------------
class ConfluentConsumer:
    def __init__(self, client: _Consumer, settings: Settings, errors: _Errors, max_poll_records: int,
                 group_id: str | None, timeout: float):
        self._client = client
        self._settings = settings
        self._errors = errors
        self._max = max_poll_records
        self._group_id = group_id
        self._timeout = timeout
        self._starts: dict[Partition, int] = {}
        self._paused: set[Partition] = set()

    def _metadata(self):
        try:
            return self._client.list_topics(timeout=self._timeout)
        except KafkaException as err:
            raise BrokerError(f"cannot list the topics: {_text(err)}{self._errors.detail()}") from err

    def topics(self) -> set[str]:
        return {name for name, t in self._metadata().topics.items() if t.error is None}

    def partitions_for(self, topic: str) -> list[int] | None:
        found = self._metadata().topics.get(topic)
        return None if found is None or found.error is not None else sorted(found.partitions)

    def assign(self, starts: Mapping[Partition, int]) -> None:
        resolved: dict[Partition, int] = {}
        try:
            for tp, offset in starts.items():
                tp = Partition(*tp)
                if offset == BEGINNING:  # the low watermark is right on every broker (the high one is not)
                    offset = self._client.get_watermark_offsets(CTP(*tp), timeout=self._timeout, cached=False)[0]
                resolved[tp] = offset
            self._client.assign([CTP(tp.topic, tp.partition, offset) for tp, offset in resolved.items()])
        except KafkaException as err:
            raise BrokerError(f"cannot assign {len(starts)} partition(s): {_text(err)}{self._errors.detail()}") \
                from err
        self._starts = resolved
        self._paused = set()

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        client = self._client
        n = min(max_records, self._max)
        try:
            messages = client.consume(n, 0)
            if not messages:  # wait for the first record only, then take what is already fetched
                messages = client.consume(1, timeout)
                if messages and n > 1:
                    messages += client.consume(n - 1, 0)
        except KafkaException as err:
            raise BrokerError(f"fetch failed: {_text(err)}{self._errors.detail()}") from err
        records: list[Record] = []
        append = records.append
        for m in messages:
            if m.error() is not None:
                self._fetch_error(m)  # raises, or returns for what librdkafka retries itself
                continue
            headers = m.headers()
            append(Record(m.topic(), m.partition(), m.offset(), m.timestamp()[1], m.key(), m.value(),
                          tuple(headers) if headers else ()))
        return records

    @staticmethod
    def _fetch_error(m) -> None:
        err = m.error()
        code = err.code()
        if code == KafkaError._PARTITION_EOF:
            return
        if code in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE):
            offset = m.offset()
            raise OffsetOutOfRangeError(m.topic() or "?", m.partition() if m.partition() is not None else -1,
                                        offset if offset is not None and offset >= 0 else None,
                                        f"confluent-kafka: {err.str()}")
        if err.retriable():  # librdkafka retries on its own, as kafka-python does
            LOG.warning("fetch: %s[%s]: %s (retrying)", m.topic(), m.partition(), err.str())
            return
        raise BrokerError(f"fetch failed: {m.topic()}[{m.partition()}]: {err.str()}")

    def _positions(self, partitions: list[Partition]) -> list[int]:
        try:
            found = self._client.position([CTP(*tp) for tp in partitions])
        except KafkaException as err:
            raise BrokerError(f"cannot read positions: {_text(err)}") from err
        # Before a record of a partition was returned, librdkafka says -1001: the assigned offset holds.
        return [tp.offset if tp.offset >= 0 else self._starts[p] for tp, p in zip(found, partitions)]

    def position(self, tp: Partition) -> int:
        return self._positions([Partition(*tp)])[0]

    def highwater(self, tp: Partition) -> int | None:
        high = self._client.get_watermark_offsets(CTP(*tp), cached=True)[1]
        return high if high >= 0 else None

    def caught_up(self, partitions: Iterable[Partition]) -> bool:
        partitions = [Partition(*tp) for tp in partitions]
        for tp, position in zip(partitions, self._positions(partitions)):
            highwater = self.highwater(tp)
            if highwater is None or position < highwater:
                return False
        return True

    def lag(self, partitions: Iterable[Partition]) -> int | None:
        partitions = [Partition(*tp) for tp in partitions]
        lag = 0
        for tp, position in zip(partitions, self._positions(partitions)):
            highwater = self.highwater(tp)
            if highwater is None:
                return None
            lag += max(0, highwater - position)
        return lag

    def pause(self, *partitions: Partition) -> None:
        try:
            self._client.pause([CTP(*tp) for tp in partitions])
        except KafkaException as err:
            raise BrokerError(f"cannot pause: {_text(err)}") from err
        self._paused.update(Partition(*tp) for tp in partitions)

    def paused(self) -> set[Partition]:
        return set(self._paused)

    def estimate(self, partitions: Iterable[Partition]) -> int | None:
        try:
            total = 0
            for tp in partitions:
                low, high = self._client.get_watermark_offsets(CTP(*tp), timeout=self._timeout, cached=False)
                total += max(0, high - low)
            return total
        except Exception:  # a hint only; nothing relies on it
            return None

    def commit_for_monitoring(self, offsets: Mapping[Partition, int]) -> None:
        if self._group_id is None or not offsets:
            return
        try:
            self._client.commit(offsets=[CTP(tp[0], tp[1], o) for tp, o in offsets.items()], asynchronous=True)
        except KafkaException:
            pass  # for lag monitoring only

    def close(self) -> None:
        self._client.close()


def open_consumer(settings: Settings, *, max_poll_records: int, group_id: str | None, bootstrap_timeout: float):
    errors = _Errors()
    options = {**CONSUMER_CONFIG, **confluent_fetch_limits(settings.batch_max_bytes, max_poll_records),
               "group.id": group_id or ASSIGN_ONLY_GROUP}
    client = _construct(_Consumer, _conf(settings, errors, options))
    try:
        _bootstrap(client, settings, errors, bootstrap_timeout)
    except BrokerError:
        client.close()
        raise
    return ConfluentConsumer(client, settings, errors, max_poll_records, group_id, bootstrap_timeout)


# -- admin ------------------------------------------------------------------------------------
class ConfluentAdmin:
    def __init__(self, client: AdminClient, errors: _Errors, timeout: float):
        self._client = client
        self._errors = errors
        self._timeout = timeout

    def _metadata(self):
        return self._client.list_topics(timeout=self._timeout)

    def topic_partitions(self, names: Iterable[str] | None = None) -> dict[str, int]:
        topics = self._metadata().topics
        wanted = list(topics) if names is None else list(names)
        counts = {}
        for name in wanted:
            topic = topics.get(name)
            if topic is None or (topic.error is not None and topic.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
                continue
            if topic.error is not None:
                raise BrokerError(f"cannot describe topic {name}: {topic.error.str()}")
            counts[name] = len(topic.partitions)
        return dict(sorted(counts.items()))

    def broker_count(self) -> int:
        return len(self._metadata().brokers)

    def create_topics(self, names, partitions, replication, configs) -> set[str]:
        new = [NewTopic(name, num_partitions=partitions, replication_factor=replication, config=dict(configs))
               for name in names]
        if not new:
            return set()
        created = set()
        for name, future in self._client.create_topics(new, request_timeout=self._timeout).items():
            try:
                future.result()
                created.add(name)
            except KafkaException as err:
                if err.args and isinstance(err.args[0], KafkaError) \
                        and err.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue  # a concurrent creator is fine
                raise BrokerError(f"cannot create topic {name}: {_text(err)}") from err
        return created

    def wait_for_topics(self, names, timeout: float = 10.0) -> None:
        names = sorted(names)
        deadline = time.monotonic() + timeout
        while names:
            topics = self._metadata().topics
            names = [n for n in names if n not in topics or topics[n].error is not None
                     or any(p.leader < 0 for p in topics[n].partitions.values())]
            if not names:
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"topics not ready after {timeout}s: {', '.join(names)}")
            time.sleep(0.1)

    def topic_config(self, name: str) -> dict[str, str]:
        resource = ConfigResource(ResourceType.TOPIC, name)
        try:
            entries = self._client.describe_configs([resource], request_timeout=self._timeout)[resource].result()
        except KafkaException as err:
            raise BrokerError(f"cannot read the configuration of topic {name}: {_text(err)}") from err
        return {key: entry.value for key, entry in entries.items()}

    def close(self) -> None:
        pass  # AdminClient has no close; its threads end when it is collected


@contextlib.contextmanager
def admin(settings: Settings, *, timeout: float) -> Iterator[ConfluentAdmin]:
    errors = _Errors()
    client = _construct(AdminClient, _conf(settings, errors, {"client.id": "ledger-admin"}))
    _bootstrap(client, settings, errors, timeout)
    try:
        yield ConfluentAdmin(client, errors, timeout)
    except KafkaException as err:
        raise BrokerError(f"Kafka at {settings.bootstrap_servers} refused a request: {_text(err)}"
                          f"{errors.detail()}") from err
