"""Topic names per event type, and their creation on the cluster.

    topic_for("LegalDisclosure", "ledger.")   # "ledger.disclosure"
    create_topics(Settings.load())            # idempotent; returns a TopicStatus per topic

Eight topics live under a prefix: five for events (see ``TOPIC_SUFFIX``; ``policy``
holds PolicyPublished), a dead-letter topic, ``findings`` (what the live
findings service publishes; the writer does not read it) and ``checkpoints``
(the log's signed checkpoints with their consistency proofs, key = origin; what
``ledger witness follow`` reads). Kafka is the system of record the ledger is replayed from,
so retention is infinite; the checkpoints topic is never compacted either
(``cleanup.policy=delete``): its key is the origin, and compaction would keep
only each origin's latest checkpoint, losing the proofs that chain them. Partition counts are never changed once a topic
exists: the record key (the smallest subject id) picks the partition, and a
new count would move keys and break per-subject ordering. A topic found with
another count is reported, not altered.

The cluster is reached through the seam's ``admin`` (imported inside the
functions that talk to the broker), so commands that only need topic names
start fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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
#: Where signed checkpoints are published with the consistency proof from the previous one
#: (docs/architecture.md "Checkpoints topic"); key = origin.
CHECKPOINTS_SUFFIX = "checkpoints"

# Infinite retention by time and by size: the ledger must be replayable from Kafka.
# LogAppendTime: the broker, not the producer, sets each record's timestamp, which the ledger
# uses as recorded time (--as-of, the order of legal state changes). Apache Kafka applies it;
# tansu 0.6 stores the setting but keeps the producer's timestamp (RELIABILITY.md), so the
# ledger also flags implausible times itself (ledger.timecheck).
TOPIC_CONFIGS = {"retention.ms": "-1", "retention.bytes": "-1", "message.timestamp.type": "LogAppendTime"}
# Keyed by origin, yet every record must stay: a compacted topic would drop the proofs between checkpoints.
CHECKPOINTS_TOPIC_CONFIGS = {**TOPIC_CONFIGS, "cleanup.policy": "delete"}


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


def checkpoints_topic(prefix: str) -> str:
    """The topic signed checkpoints are published to (ledger.ingest.checkpointing)."""
    return prefix + CHECKPOINTS_SUFFIX


def all_topics(prefix: str) -> list[str]:
    """Every topic ``create_topics`` manages: the event topics, the DLQ, findings, then checkpoints."""
    return [*event_topics(prefix), dlq_topic(prefix), findings_topic(prefix), checkpoints_topic(prefix)]


def configs_for(name: str, prefix: str) -> dict[str, str]:
    """The configuration a topic is created with."""
    return dict(CHECKPOINTS_TOPIC_CONFIGS if name == checkpoints_topic(prefix) else TOPIC_CONFIGS)


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


def _config_warnings(a, name: str) -> list[str]:
    """Warnings if an existing topic does not keep records forever or lets producers set recorded time."""
    try:
        configs = a.topic_config(name)
        value = configs["retention.ms"]
    except (BrokerError, KeyError):
        return [f"{name}: could not read retention.ms; make sure it is -1 (keep forever)"]
    warnings = []
    if value != "-1":
        warnings.append(
            f"{name}: retention.ms is {value}, not -1; Kafka deletes records the ledger may need "
            f"for replay (kafka-configs --alter --entity-type topics --entity-name {name} "
            f"--add-config retention.ms=-1)"
        )
    cleanup = configs.get("cleanup.policy")
    if cleanup is not None and "compact" in cleanup:
        warnings.append(
            f"{name}: cleanup.policy is {cleanup}; compaction deletes older records of a key, and the ledger "
            f"needs every one (kafka-configs --alter --entity-type topics --entity-name {name} "
            f"--add-config cleanup.policy=delete)"
        )
    stamp = configs.get("message.timestamp.type")
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
    from . import admin

    wanted = partitions or settings.partitions
    if wanted < 1:
        raise BrokerError(f"partitions must be at least 1, got {wanted}")
    names = all_topics(settings.topic_prefix)
    with admin(settings) as a:
        existing = a.topic_partitions(names)
        missing = [name for name in names if name not in existing]
        created: set[str] = set()
        if missing:
            replicas, extra = replication_for(a.broker_count())
            by_configs: dict[tuple, list[str]] = {}  # one request per distinct configuration
            for name in missing:
                by_configs.setdefault(tuple(sorted(configs_for(name, settings.topic_prefix).items())), []).append(name)
            for configs, alike in by_configs.items():
                # A topic a concurrent creator made first is not an error (not in ``created``).
                created |= a.create_topics(alike, wanted, replicas, {**dict(configs), **extra})
            if created:
                # Creation is acknowledged before every broker knows the topic.
                a.wait_for_topics(sorted(created))
            existing.update(a.topic_partitions(missing))

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
                warnings += _config_warnings(a, name)
            statuses.append(TopicStatus(name, count, wanted, name in created, tuple(warnings)))
        return statuses


def partition_count(settings: "Settings", topic: str) -> int | None:
    """Number of partitions of ``topic``, or None if it does not exist."""
    from . import admin

    with admin(settings) as a:
        return a.topic_partitions([topic]).get(topic)


def list_topics(settings: "Settings") -> dict[str, int]:
    """Partition count of every existing topic whose name starts with the prefix."""
    from . import admin

    with admin(settings) as a:
        return {name: count for name, count in sorted(a.topic_partitions().items())
                if name.startswith(settings.topic_prefix)}
