"""Topic names per event type, and their creation on the cluster.

    topic_for("LegalDisclosure", "ledger.")   # "ledger.disclosure"
    create_topics(Settings.load())            # idempotent; returns a TopicStatus per topic

Seven topics live under a prefix: five for events (see ``TOPIC_SUFFIX``; ``policy``
holds PolicyPublished), a dead-letter topic and ``findings`` (what the live
findings service publishes; the writer does not read it). Kafka is the system of record the ledger is replayed from,
so retention is infinite. Partition counts are never changed once a topic
exists: the record key (the smallest subject id) picks the partition, and a
new count would move keys and break per-subject ordering. A topic found with
another count is reported, not altered.

kafka is imported inside the functions that talk to the broker, so commands
that only need topic names start fast.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from ledger.errors import BrokerError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from ledger.config import Settings

TOPIC_SUFFIX = {
    "DataAccessed": "access",
    "DataShared": "sharing",
    "LegalDisclosure": "disclosure",
    "NotificationStatusChanged": "disclosure",
    "SubjectNotified": "disclosure",
    "ConsentChanged": "consent",
    "PolicyPublished": "policy",
}
DLQ_SUFFIX = "dlq"
#: Where the live findings service publishes Finding and Retraction records (not an event topic:
#: the writer does not read it).
FINDINGS_SUFFIX = "findings"

# Infinite retention by time and by size: the ledger must be replayable from Kafka.
# LogAppendTime: the broker, not the producer, sets each record's timestamp, which the ledger
# uses as recorded time (--as-of, the order of legal state changes). Apache Kafka applies it;
# tansu 0.6 stores the setting but keeps the producer's timestamp (RELIABILITY.md), so the
# ledger also flags implausible times itself (ledger.timecheck).
TOPIC_CONFIGS = {"retention.ms": "-1", "retention.bytes": "-1", "message.timestamp.type": "LogAppendTime"}


def topic_for(event_type: str, prefix: str) -> str:
    """The topic an event of ``event_type`` is produced to."""
    try:
        return prefix + TOPIC_SUFFIX[event_type]
    except KeyError:
        raise ValidationError(
            "type", f"unknown event type {event_type!r}; known: {', '.join(TOPIC_SUFFIX)}"
        ) from None


def event_topics(prefix: str) -> list[str]:
    """The event topics, in a stable order (access, sharing, disclosure, consent, policy)."""
    return [prefix + suffix for suffix in dict.fromkeys(TOPIC_SUFFIX.values())]


def dlq_topic(prefix: str) -> str:
    """The dead-letter topic for records the writer cannot decode."""
    return prefix + DLQ_SUFFIX


def findings_topic(prefix: str) -> str:
    """The topic the live findings service publishes to (ledger.audit.findings.live)."""
    return prefix + FINDINGS_SUFFIX


def all_topics(prefix: str) -> list[str]:
    """Every topic ``create_topics`` manages: the event topics, the DLQ, then findings."""
    return [*event_topics(prefix), dlq_topic(prefix), findings_topic(prefix)]


def replication_for(broker_count: int) -> tuple[int, dict[str, str]]:
    """Replication factor and extra topic configs for a cluster of ``broker_count`` brokers.

    Three replicas with two in sync survive one broker loss without refusing
    ``acks=all`` writes; smaller clusters get as many replicas as they have brokers.
    """
    if broker_count >= 3:
        return 3, {"min.insync.replicas": "2"}
    return max(1, broker_count), {}


@dataclass(frozen=True)
class TopicStatus:
    """What ``create_topics`` found or did for one topic."""

    name: str
    partitions: int  # the count the topic has now
    wanted: int  # the count that was asked for
    created: bool  # True when this call created it
    warnings: tuple[str, ...] = ()

    @property
    def partition_mismatch(self) -> bool:
        return self.partitions != self.wanted


@contextlib.contextmanager
def admin_client(settings: "Settings") -> Iterator:
    """A kafka-python ``KafkaAdminClient`` for ``settings``; kafka errors become BrokerError."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(client_id="ledger-admin", **settings.kafka_options())
    except KafkaError as err:
        raise BrokerError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {err} "
            "(for development, `ledger broker` runs one on 127.0.0.1:9092)"
        ) from err
    try:
        yield admin
    except KafkaError as err:
        raise BrokerError(f"Kafka at {settings.bootstrap_servers} refused a request: {err}") from err
    finally:
        admin.close()


def _partition_counts(admin, names: list[str]) -> dict[str, int]:
    """Partition count of each name that exists; missing topics are left out."""
    from kafka.errors import UnknownTopicOrPartitionError, for_code

    counts = {}
    for topic in admin.describe_topics(names):
        error = for_code(topic["error_code"])
        if error is UnknownTopicOrPartitionError:
            continue
        if topic["error_code"]:
            raise BrokerError(f"cannot describe topic {topic['name']}: {error.__name__}")
        counts[topic["name"]] = len(topic["partitions"])
    return counts


def _config_warnings(admin, name: str) -> list[str]:
    """Warnings if an existing topic does not keep records forever or lets producers set recorded time."""
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    try:
        # config_filter='all': the default filter returns nothing on some brokers (tansu).
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all"
        )
        configs = described["topic"][name]
        value = configs["retention.ms"]["value"]
    except (KafkaError, KeyError, TypeError):
        return [f"{name}: could not read retention.ms; make sure it is -1 (keep forever)"]
    warnings = []
    if value != "-1":
        warnings.append(
            f"{name}: retention.ms is {value}, not -1; Kafka deletes records the ledger may need "
            f"for replay (kafka-configs --alter --entity-type topics --entity-name {name} "
            f"--add-config retention.ms=-1)"
        )
    stamp = (configs.get("message.timestamp.type") or {}).get("value")
    if stamp is not None and stamp != "LogAppendTime":
        warnings.append(
            f"{name}: message.timestamp.type is {stamp}, so producers set the recorded time the ledger "
            f"relies on (kafka-configs --alter --entity-type topics --entity-name {name} "
            f"--add-config message.timestamp.type=LogAppendTime)"
        )
    return warnings


def create_topics(settings: "Settings", partitions: int | None = None) -> list[TopicStatus]:
    """Create the ledger's topics under ``settings.topic_prefix`` if they do not exist.

    Idempotent. Existing topics are never modified: a different partition
    count, a finite retention or a timestamp type other than LogAppendTime
    is reported in ``TopicStatus.warnings``.
    Raises BrokerError when the cluster cannot be reached or refuses a creation.
    """
    from kafka.errors import TopicAlreadyExistsError, for_code

    wanted = partitions or settings.partitions
    if wanted < 1:
        raise BrokerError(f"partitions must be at least 1, got {wanted}")
    names = all_topics(settings.topic_prefix)
    with admin_client(settings) as admin:
        existing = _partition_counts(admin, names)
        missing = [name for name in names if name not in existing]
        created: set[str] = set()
        if missing:
            brokers = len(admin.describe_cluster()["brokers"])
            replicas, extra = replication_for(brokers)
            request = {
                name: {"num_partitions": wanted, "replication_factor": replicas,
                       "configs": {**TOPIC_CONFIGS, **extra}}
                for name in missing
            }
            response = admin.create_topics(request, raise_errors=False)
            for result in response["topics"]:
                error = for_code(result["error_code"])
                if result["error_code"] == 0:
                    created.add(result["name"])
                elif error is not TopicAlreadyExistsError:  # a concurrent creator is fine
                    raise BrokerError(
                        f"cannot create topic {result['name']}: {error.__name__}: "
                        f"{result.get('error_message') or ''}".rstrip(": ")
                    )
            if created:
                # Creation is acknowledged before every broker knows the topic.
                admin.wait_for_topics(sorted(created))
            existing.update(_partition_counts(admin, missing))

        statuses = []
        for name in names:
            count = existing.get(name)
            if count is None:
                raise BrokerError(f"topic {name} was not created and does not exist")
            warnings = []
            if count != wanted:
                warnings.append(
                    f"{name} has {count} partitions, not {wanted}; left unchanged "
                    f"(changing it would move keys between partitions)"
                )
            if name not in created:
                warnings += _config_warnings(admin, name)
            statuses.append(TopicStatus(name, count, wanted, name in created, tuple(warnings)))
        return statuses


def partition_count(settings: "Settings", topic: str) -> int | None:
    """Number of partitions of ``topic``, or None if it does not exist."""
    with admin_client(settings) as admin:
        return _partition_counts(admin, [topic]).get(topic)


def list_topics(settings: "Settings") -> dict[str, int]:
    """Partition count of every existing topic whose name starts with the prefix."""
    with admin_client(settings) as admin:
        names = [n for n in admin.list_topics() if n.startswith(settings.topic_prefix)]
        return dict(sorted(_partition_counts(admin, names).items())) if names else {}
