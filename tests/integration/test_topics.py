"""Topic names per event type, and idempotent creation that never changes a partition count."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ledger.cli import main
from ledger.errors import ValidationError
from ledger.kafka import admin
from ledger.kafka.topics import (
    TOPIC_SUFFIX,
    all_topics,
    checkpoints_topic,
    create_topics,
    dlq_topic,
    event_topics,
    list_topics,
    partition_count,
    replication_for,
    topic_for,
)


def fresh(settings):
    """The same cluster under a prefix no test has used yet (nothing created)."""
    return settings.with_(topic_prefix=f"f{uuid4().hex[:10]}.")


def test_each_event_type_goes_to_its_topic():
    """The three disclosure-related types share one topic so their order per subject holds."""
    assert {t: topic_for(t, "ledger.") for t in TOPIC_SUFFIX} == {
        "DataAccessed": "ledger.access",
        "DataShared": "ledger.sharing",
        "LegalDisclosure": "ledger.disclosure",
        "NotificationStatusChanged": "ledger.disclosure",
        "SubjectNotified": "ledger.disclosure",
        "ConsentChanged": "ledger.consent",
        "PolicyPublished": "ledger.policy",
    }


def test_unknown_event_type_is_refused_naming_the_type_field():
    """An unknown type raises ValidationError on field 'type' listing the known ones."""
    with pytest.raises(ValidationError) as info:
        topic_for("DataDeleted", "ledger.")
    assert info.value.field == "type"
    assert "DataAccessed" in info.value.reason


def test_topic_lists_follow_the_prefix():
    """Five event topics (policy: issue 15), the DLQ, findings and checkpoints (issue 14), all under the prefix."""
    assert event_topics("p.") == ["p.access", "p.sharing", "p.disclosure", "p.consent", "p.policy"]
    assert dlq_topic("p.") == "p.dlq" and checkpoints_topic("p.") == "p.checkpoints"
    assert all_topics("p.") == [*event_topics("p."), "p.dlq", "p.findings", "p.checkpoints"]


@pytest.mark.parametrize("brokers, expected", [
    (1, (1, {})),
    (2, (2, {})),
    (3, (3, {"min.insync.replicas": "2"})),
    (7, (3, {"min.insync.replicas": "2"})),
])
def test_replication_is_three_with_two_in_sync_on_multi_broker_clusters(brokers, expected):
    """RF 3 / min.insync.replicas 2 from three brokers up; smaller clusters replicate to every broker."""
    assert replication_for(brokers) == expected


def test_creating_twice_is_idempotent(settings):
    """A second create finds every topic, creates nothing and warns about nothing."""
    target = fresh(settings)
    first = create_topics(target, partitions=2)
    second = create_topics(target, partitions=2)
    assert [(s.name, s.created, s.partitions) for s in first] == [(n, True, 2) for n in all_topics(target.topic_prefix)]
    assert [(s.name, s.created, s.partitions, s.warnings) for s in second] == [
        (n, False, 2, ()) for n in all_topics(target.topic_prefix)
    ]
    assert all(partition_count(target, name) == 2 for name in all_topics(target.topic_prefix))


def test_partition_count_defaults_to_the_setting(settings):
    """Without an explicit count, Settings.partitions is used."""
    target = fresh(settings).with_(partitions=4)
    assert {s.partitions for s in create_topics(target)} == {4}


def test_created_topics_keep_records_forever(settings):
    """Every created topic has retention.ms=-1: Kafka is the system of record for replay."""
    names = all_topics(settings.topic_prefix)
    with admin(settings) as a:
        topics = {n: a.topic_config(n) for n in names}
    if not all("retention.ms" in topics[n] for n in names):
        pytest.skip("this broker does not report retention.ms")
    assert {n: topics[n]["retention.ms"] for n in names} == {n: "-1" for n in names}


def test_the_checkpoints_topic_is_never_compacted(settings):
    """Keyed by origin, yet every record must stay: created with cleanup.policy=delete and retention.ms=-1."""
    target = fresh(settings)
    create_topics(target)
    with admin(target) as a:
        configs = a.topic_config(checkpoints_topic(target.topic_prefix))
    if "cleanup.policy" not in configs:
        pytest.skip("this broker does not report cleanup.policy")
    assert (configs["cleanup.policy"], configs.get("retention.ms")) == ("delete", "-1")


def test_created_topics_ask_the_broker_to_set_recorded_time(settings):
    """Every created topic has message.timestamp.type=LogAppendTime: recorded time is the broker's, not a claim."""
    target = fresh(settings)
    create_topics(target)
    names = all_topics(target.topic_prefix)
    with admin(target) as a:
        topics = {n: a.topic_config(n) for n in names}
    if not all("message.timestamp.type" in topics[n] for n in names):
        pytest.skip("this broker does not report message.timestamp.type")
    assert {n: topics[n]["message.timestamp.type"] for n in names} == {n: "LogAppendTime" for n in names}


def test_what_the_broker_does_with_a_producer_timestamp_on_a_log_append_time_topic(settings):
    """Measured, not assumed: a record produced with a 2020 timestamp on a LogAppendTime topic.

    Apache Kafka replaces it with the broker's append time; tansu 0.6 keeps the
    producer's (RELIABILITY.md). Either way the ledger flags a record whose
    occurred_at is far from it (ledger.timecheck), so this test pins only
    that the broker answers one of the two ways.
    """
    import time

    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    target = fresh(settings)
    create_topics(target, partitions=1)
    topic = topic_for("DataAccessed", target.topic_prefix)
    old = 1_577_836_800_000  # 2020-01-01T00:00:00Z
    before = int(time.time() * 1000)
    producer = KafkaProducer(**target.kafka_options(), acks="all")
    try:
        producer.send(topic, b"x", timestamp_ms=old).get(10)
    finally:
        producer.close()
    consumer = KafkaConsumer(**target.kafka_options(), enable_auto_commit=False, consumer_timeout_ms=5000)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        (record,) = [next(consumer)]
    finally:
        consumer.close()
    kept_producer_time = record.timestamp == old
    assert kept_producer_time or record.timestamp >= before - 60_000


def test_an_existing_topic_with_another_partition_count_is_reported_and_left_alone(settings):
    """A pre-existing topic keeps its partition count; create_topics warns and creates the others."""
    target = fresh(settings)
    access = topic_for("DataAccessed", target.topic_prefix)
    with admin(target) as a:
        a.create_topics([access], 1, 1, {"retention.ms": "-1"})
    statuses = {s.name: s for s in create_topics(target, partitions=3)}
    assert statuses[access].created is False
    assert statuses[access].partition_mismatch
    assert any("1 partitions, not 3" in w for w in statuses[access].warnings)
    assert partition_count(target, access) == 1
    assert all(s.created and s.partitions == 3 for name, s in statuses.items() if name != access)


def test_an_existing_topic_with_finite_retention_is_reported_and_left_alone(settings):
    """A pre-existing topic that deletes old records gets a warning naming its retention.ms."""
    target = fresh(settings)
    dlq = dlq_topic(target.topic_prefix)
    with admin(target) as a:
        a.create_topics([dlq], 3, 1, {"retention.ms": "86400000"})
    statuses = {s.name: s for s in create_topics(target, partitions=3)}
    assert not statuses[dlq].partition_mismatch
    assert any("retention.ms is 86400000" in w for w in statuses[dlq].warnings)


def test_a_missing_topic_has_no_partition_count(settings):
    """partition_count returns None for a topic that does not exist (and does not create it)."""
    missing = settings.topic_prefix + "nothing-here"
    assert partition_count(settings, missing) is None
    assert missing not in list_topics(settings)


def test_list_shows_only_topics_under_the_prefix(settings):
    """list_topics maps each topic under the prefix to its partition count."""
    assert list_topics(settings) == {name: 3 for name in sorted(all_topics(settings.topic_prefix))}


def test_topics_commands_create_then_list(settings, capsys):
    """`ledger topics create` reports created then exists; `list` shows counts and missing topics."""
    target = fresh(settings)
    args = ["--bootstrap-servers", target.bootstrap_servers, "--topic-prefix", target.topic_prefix]
    assert main(["topics", "list", *args]) == 0
    assert capsys.readouterr().out.count("missing") == 8
    assert main(["topics", "create", "--partitions", "2", *args]) == 0
    assert capsys.readouterr().out.count("created") == 8
    assert main(["topics", "create", "--partitions", "5", *args]) == 0
    out, err = capsys.readouterr()
    assert out.count("exists") == 8
    assert err.count("warning:") == 8 and "not 5; left unchanged" in err
    assert main(["topics", "list", *args]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert sorted(line.split() for line in listed) == sorted([n, "2"] for n in all_topics(target.topic_prefix))
