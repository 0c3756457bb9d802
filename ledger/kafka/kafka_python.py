"""The Kafka seam on kafka-python: the project's baseline client (pure Python, installs everywhere).

The options are the ones the ledger used before the seam existed (producer.py
``PRODUCER_CONFIG``, kafka_read.py ``new_consumer``, topics.py ``admin_client``),
plus ``isolation_level=read_committed``. Read ``ledger/kafka/__init__.py`` for
the contract; this module only adapts kafka-python to it.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, Mapping

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.errors import (
    KafkaConfigurationError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)
from kafka.errors import (
    OffsetOutOfRangeError as KafkaOffsetOutOfRange,
)

from ledger.wire.record import Record

from ..config import Settings
from ..errors import BrokerError, ConfigError, OffsetOutOfRangeError
from . import BEGINNING, Acked, Partition
from .reading import caught_up, fetch_limits, lag
from .security import kafka_python_options

NAME = "kafka-python"

# The ledger's delivery settings (the same as producer.PRODUCER_CONFIG, which the callers still use).
PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "retries": 2**31 - 1,
    # One request in flight keeps per-partition order through retries without
    # relying on idempotence, which brokers can get wrong after a crash.
    "max_in_flight_requests_per_connection": 1,
    "enable_idempotence": False,
    "linger_ms": 5,
    "batch_size": 256 * 1024,
    "delivery_timeout_ms": 120_000,
    "request_timeout_ms": 30_000,
}

CONSUMER_CONFIG: dict[str, Any] = {
    "enable_auto_commit": False,
    # Never "latest", never a silent reset: positions come from the ledger.
    "auto_offset_reset": "none",
    "isolation_level": "read_committed",
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 8 * 1024 * 1024,
}


def _unreachable(settings: Settings, err: Exception) -> BrokerError:
    return BrokerError(f"cannot reach Kafka at {settings.bootstrap_servers}: {err} "
                       "(for development, `ledger broker` runs one on 127.0.0.1:9092)")


def _construct(cls, settings: Settings, options: dict[str, Any]):
    try:
        return cls(**kafka_python_options(settings), **options)
    except KafkaConfigurationError as err:
        raise ConfigError(f"kafka-python refused the settings: {err}") from err
    except KafkaError as err:
        raise _unreachable(settings, err) from err


# -- producer ---------------------------------------------------------------------------------
class _Future:
    """kafka-python's FutureRecordMetadata behind the seam's ``result()`` / ``done()``."""

    __slots__ = ("_future",)

    def __init__(self, future):
        self._future = future

    def result(self, timeout: float | None = None) -> Acked:
        try:
            meta = self._future.get(timeout)
        except KafkaTimeoutError as err:
            raise BrokerError(f"not acknowledged within {timeout}s: {err}") from err
        except KafkaError as err:
            raise BrokerError(f"Kafka refused the record: {err}") from err
        return Acked(meta.topic, meta.partition, meta.offset)

    def done(self) -> bool:
        return self._future.is_done


class KafkaPythonProducer:
    def __init__(self, client: KafkaProducer):
        self._client = client

    def send(self, topic, *, key, value, headers=None):
        if key is None and value is None:
            raise BrokerError(f"could not send to {topic}: a record needs a key or a value")
        if headers:
            for _, v in headers:  # a loop: a generator here costs more than the rest of the checks
                if v is None:  # kafka-python cannot send it: refused by both, alike
                    raise BrokerError(f"could not send to {topic}: a header value must be bytes, not None")
        try:
            return _Future(self._client.send(topic, value=value, key=key, headers=headers or None))
        except (KafkaError, TypeError, ValueError) as err:
            raise BrokerError(f"could not send to {topic}: {err}") from err

    def flush(self, timeout: float | None = None) -> None:
        try:
            self._client.flush(timeout)
        except KafkaError as err:
            raise BrokerError(f"flush failed: {err}") from err

    def close(self, timeout: float | None = None) -> None:
        self._client.close(timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_producer(settings: Settings, *, bootstrap_timeout: float, max_request_bytes: int | None):
    options = {**PRODUCER_CONFIG, "bootstrap_timeout_ms": int(bootstrap_timeout * 1000)}
    if max_request_bytes is not None:
        options["max_request_size"] = max_request_bytes
    return KafkaPythonProducer(_construct(KafkaProducer, settings, options))


# -- consumer ---------------------------------------------------------------------------------
class KafkaPythonConsumer:
    def __init__(self, client: KafkaConsumer, max_poll_records: int, group_id: str | None):
        self._client = client
        self._max = max_poll_records
        self._group_id = group_id

    def topics(self) -> set[str]:
        try:
            return set(self._client.topics())
        except KafkaError as err:
            raise BrokerError(f"cannot list the topics: {err}") from err

    def partitions_for(self, topic: str) -> list[int] | None:
        try:
            found = self._client.partitions_for_topic(topic)
        except KafkaError as err:
            raise BrokerError(f"cannot list the partitions of {topic}: {err}") from err
        return sorted(found) if found else None  # kafka-python says set() for some unknown topics

    def assign(self, starts: Mapping[Partition, int]) -> None:
        tps = {TopicPartition(*tp): offset for tp, offset in starts.items()}
        try:
            self._client.assign(list(tps))
            for tp, offset in tps.items():
                if offset == BEGINNING:
                    self._client.seek_to_beginning(tp)
                else:
                    self._client.seek(tp, offset)
        except KafkaError as err:
            raise BrokerError(f"cannot assign {len(tps)} partition(s): {err}") from err

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        try:
            fetched = self._client.poll(timeout_ms=int(timeout * 1000), max_records=min(max_records, self._max))
        except KafkaOffsetOutOfRange as err:
            # kafka-python raises it with {TopicPartition: fetch_offset} as its argument.
            where = err.args[0] if err.args and isinstance(err.args[0], dict) and err.args[0] else {}
            (tp, offset), = list(where.items())[:1] or [(TopicPartition("?", -1), None)]
            raise OffsetOutOfRangeError(tp.topic, tp.partition, offset, "kafka-python: OffsetOutOfRangeError") from err
        except KafkaError as err:
            raise BrokerError(f"fetch failed: {err}") from err
        records: list[Record] = []
        from_kafka = Record.from_kafka
        for messages in fetched.values():
            records.extend(from_kafka(m) for m in messages)
        return records

    def position(self, tp: Partition) -> int:
        try:
            return self._client.position(TopicPartition(*tp))
        except KafkaError as err:
            raise BrokerError(f"cannot find the position of {tp.topic}[{tp.partition}]: {err}") from err

    def highwater(self, tp: Partition) -> int | None:
        return self._client.highwater(TopicPartition(*tp))

    def caught_up(self, partitions: Iterable[Partition]) -> bool:
        return caught_up(self, partitions)

    def lag(self, partitions: Iterable[Partition]) -> int | None:
        return lag(self, partitions)

    def pause(self, *partitions: Partition) -> None:
        self._client.pause(*(TopicPartition(*tp) for tp in partitions))

    def paused(self) -> set[Partition]:
        return {Partition(tp.topic, tp.partition) for tp in self._client.paused()}

    def estimate(self, partitions: Iterable[Partition]) -> int | None:
        tps = [TopicPartition(*tp) for tp in partitions]
        try:
            begin = self._client.beginning_offsets(tps)
            end = self._client.end_offsets(tps)
            return sum(max(0, end[tp] - begin[tp]) for tp in tps)
        except Exception:  # a hint only; nothing relies on it
            return None

    def commit_for_monitoring(self, offsets: Mapping[Partition, int]) -> None:
        if self._group_id is None or not offsets:
            return
        try:
            self._client.commit_async(offsets={TopicPartition(*tp): OffsetAndMetadata(o, "", -1)
                                               for tp, o in offsets.items()})
        except KafkaError:
            pass  # for lag monitoring only

    def close(self) -> None:
        self._client.close(autocommit=False)


def open_consumer(settings: Settings, *, max_poll_records: int, group_id: str | None, bootstrap_timeout: float):
    options = {**CONSUMER_CONFIG, **fetch_limits(settings.batch_max_bytes), "group_id": group_id,
               "max_poll_records": max_poll_records, "bootstrap_timeout_ms": int(bootstrap_timeout * 1000)}
    return KafkaPythonConsumer(_construct(KafkaConsumer, settings, options), max_poll_records, group_id)


# -- admin ------------------------------------------------------------------------------------
class KafkaPythonAdmin:
    def __init__(self, client: KafkaAdminClient):
        self._client = client

    def topic_partitions(self, names: Iterable[str] | None = None) -> dict[str, int]:
        names = list(self._client.list_topics()) if names is None else list(names)
        if not names:
            return {}
        counts = {}
        for topic in self._client.describe_topics(names):
            error = for_code(topic["error_code"])
            if error is UnknownTopicOrPartitionError:
                continue
            if topic["error_code"]:
                raise BrokerError(f"cannot describe topic {topic['name']}: {error.__name__}")
            counts[topic["name"]] = len(topic["partitions"])
        return dict(sorted(counts.items()))

    def broker_count(self) -> int:
        return len(self._client.describe_cluster()["brokers"])

    def create_topics(self, names, partitions, replication, configs) -> set[str]:
        request = {name: {"num_partitions": partitions, "replication_factor": replication,
                          "configs": dict(configs)} for name in names}
        created = set()
        response = self._client.create_topics(request, raise_errors=False)
        for result in response["topics"]:
            error = for_code(result["error_code"])
            if result["error_code"] == 0:
                created.add(result["name"])
            elif error is not TopicAlreadyExistsError:  # a concurrent creator is fine
                raise BrokerError(f"cannot create topic {result['name']}: {error.__name__}: "
                                  f"{result.get('error_message') or ''}".rstrip(": "))
        return created

    def wait_for_topics(self, names, timeout: float = 10.0) -> None:
        names = sorted(names)
        if names:
            self._client.wait_for_topics(names, timeout_ms=int(timeout * 1000))

    def topic_config(self, name: str) -> dict[str, str]:
        from kafka.admin import ConfigResource, ConfigResourceType

        # config_filter='all': the default filter returns nothing on some brokers (tansu).
        described = self._client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)],
                                                  config_filter="all")
        try:
            return {key: entry["value"] for key, entry in described["topic"][name].items()}
        except (KeyError, TypeError, AttributeError) as err:
            raise BrokerError(f"cannot read the configuration of topic {name}: {err}") from err

    def close(self) -> None:
        self._client.close()


@contextlib.contextmanager
def admin(settings: Settings, *, timeout: float) -> Iterator[KafkaPythonAdmin]:
    client = _construct(KafkaAdminClient, settings, {
        "client_id": "ledger-admin", "bootstrap_timeout_ms": int(timeout * 1000),
        "request_timeout_ms": int(min(timeout, 30.0) * 1000)})
    try:
        yield KafkaPythonAdmin(client)
    except KafkaError as err:
        raise BrokerError(f"Kafka at {settings.bootstrap_servers} refused a request: {err}") from err
    finally:
        client.close()


