"""Bad records interleaved on every topic, then `ledger reprocess` once the missing schema is installed."""

from __future__ import annotations

import random
import re
import shutil

from faultcheck import Expected, check
from faultkit import REPO, catch_up, ledger_cli, record, scale
from traffic import EVENT_TYPE_OF_TOPIC, bad_values, emit_acknowledged, raw_producer, schemas_with_v2, wire_record

from ledger.dev.simulate import simulate
from ledger.wire.codec import Codec


def test_bad_records_everywhere_rejected_once_then_reprocessed_after_installing_the_schema(settings, tmp_path):
    """Every bad record is rejected and dead-lettered once per offset; records of an unknown schema version decode after reprocess."""
    events, bad_copies = scale(3_000, 30_000), scale(2, 10)
    writer_schemas = tmp_path / "writer-schemas"
    shutil.copytree(REPO / "schemas", writer_schemas)  # what the writer knows: v1 only
    v2_file = schemas_with_v2(REPO / "schemas", tmp_path / "producer-schemas")
    v1, v2 = Codec.load(REPO / "schemas"), Codec.load(tmp_path / "producer-schemas")
    workload = simulate(seed=71, events=events, subjects=scale(150, 1_500))
    rng = random.Random(3)

    # The plan: good records (some written with v2), repeats of earlier ones, and bad ones, interleaved.
    plan: list[tuple[str, str, bytes | None, bytes | None, str | None]] = []  # (what, topic, key, value, id)
    for event in workload.events:
        newer = event["type"] == "DataAccessed" and rng.random() < 0.2
        wire = wire_record(event, v2 if newer else v1, settings.topic_prefix)
        plan.append(("v2" if newer else "good", wire.topic, wire.key, wire.value, wire.event_id))
    for _ in range(events // 50):
        what, topic, key, value, event_id = rng.choice(plan[: len(workload.events)])
        plan.insert(rng.randrange(plan.index((what, topic, key, value, event_id)) + 1, len(plan) + 1),
                    (what, topic, key, value, event_id))
    by_type = {}
    for e in workload.events:
        by_type.setdefault(e["type"], e)
    for suffix, etype in EVENT_TYPE_OF_TOPIC.items():
        for _ in range(bad_copies):
            for _kind, value in bad_values(v1, {etype: by_type[etype]})[etype]:
                plan.insert(rng.randrange(len(plan) + 1), ("bad", settings.topic_prefix + suffix, b"bad-key", value, None))

    producer = raw_producer(settings)
    try:
        sent = [(what, event_id, producer.send(topic, key=key, value=value)) for what, topic, key, value, event_id in plan]
        producer.flush()
        landed = [(what, event_id, future.result(timeout=60)) for what, event_id, future in sent]
    finally:
        producer.close()
    good = {e for what, e, _ in landed if what == "good"}
    newer_ids = {e for what, e, _ in landed if what == "v2"}
    bad = {(m.topic, m.partition, m.offset) for what, _, m in landed if what == "bad"}
    newer_offsets = {(m.topic, m.partition, m.offset) for what, _, m in landed if what == "v2"}
    repeats = len(plan) - len(workload.events) - 4 * bad_copies * 6

    # The writer does not know v2 yet: those records are rejected (and dead-lettered) like the bad ones.
    catch_up(settings, schemas_dir=writer_schemas)
    before = check(settings, Expected(told=good, may_appear=newer_ids, bad=bad | newer_offsets),
                   codec=Codec.load(writer_schemas))
    before.assert_ok()

    # Install v2 where the writer looks, reprocess, and keep going with new traffic.
    shutil.copy(v2_file, writer_schemas / "DataAccessed" / "v2.avsc")
    done = ledger_cli(settings, "reprocess", schemas_dir=writer_schemas)
    assert done.returncode == 0, done.stderr
    moved = int(re.search(r"moved (\d+) entry", done.stdout).group(1))
    later = emit_acknowledged(settings, simulate(seed=72, events=scale(300, 3_000), subjects=50).events, codec=v2)
    catch_up(settings, schemas_dir=writer_schemas)

    outcome = check(settings, Expected(told=good | newer_ids | set(later), bad=bad, dlq_extra=newer_offsets),
                    codec=Codec.load(writer_schemas))
    record("bad records + reprocess", f"{len(bad)} bad records ({len(EVENT_TYPE_OF_TOPIC)} topics x 6 kinds x "
           f"{bad_copies}), {repeats} repeated ids, {len(newer_offsets)} records of an unknown schema", outcome,
           f"{moved} decoded by reprocess after installing v2")
    outcome.assert_ok()
    assert moved == len(newer_ids) and outcome.repeats >= repeats
