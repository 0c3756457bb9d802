"""Batch evaluation rate of the promise checks on the simulated mix, and their memory, one process;
with ``--live``, the live findings service beside the writer.

    python bench/bench_findings.py                       # 200,000 events, 10,000 customers, best of 3
    python bench/bench_findings.py --events 1000000 --repeat 1
    python bench/bench_findings.py --live --events 200000 --repeat 3 [--kafka-client confluent]

``--live``: the policy and the events are produced once to a local broker (the
policy recorded into a template ledger first, as deployed; ``--policy-in-backlog``
leaves it in the backlog, which the writer's fetches deliver last); each
round then runs the real writer (``LedgerWriter.run(until_idle=True)``) into a
fresh ledger alone, and again with the live service (``python -m
consumers.findings``, a separate process, started before the writer) reading
the same file as it grows, alternating so both see the same machine load.
Reported: the writer's events/s alone and beside the service (medians, and
their ratio: goal a cost <= 10%), and when the service had judged and
published everything, as seconds after the writer finished and as its own
rate over the whole run (keeping up = it finishes a bounded time after the
writer, whatever the number of events; part of that time is the 10 s it waits
before treating a silent partition as idle, ``--idle-after``).

The events are simulated first (not timed) and held in a list; the timed part
is ``evaluate(policy, events, as_of)`` with examples/policy.toml, consumed to
the end, retractions included. Memory: the evaluator's own state is measured
with tracemalloc as the growth over the event list, at half and at the full
stream, so a state that grew with events would show as a doubling; consent
and case state grow with customers and cases only. Goal: >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import machine

from ledger.audit.findings import (
    Evaluator,
    Retraction,
    evaluate,
)
from ledger.dev.simulate import simulate
from ledger.model.policy import load

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "policy.toml"


def timed(policy, events, as_of, pause_gc: bool) -> tuple[float, Counter]:
    """Seconds to evaluate everything. With ``pause_gc`` the cyclic collector is off, as ingest runs:
    the bench holds every event in one list, which each full collection would walk again."""
    gc.collect()
    if pause_gc:
        gc.disable()
    try:
        started = time.perf_counter()
        kinds = Counter("retraction" if isinstance(r, Retraction) else r.kind
                        for r in evaluate(policy, events, as_of))
        return time.perf_counter() - started, kinds
    finally:
        gc.enable()


def state_bytes(policy, events, as_of) -> tuple[int, int]:
    """Bytes the evaluator holds after half of the events and after all of them (findings not kept)."""
    tracemalloc.start()
    evaluator = Evaluator(policy)
    base = tracemalloc.get_traced_memory()[0]
    half = len(events) // 2
    sizes = []
    for i, event in enumerate(events, start=1):
        evaluator.feed(event)
        if i in (half, len(events)):
            sizes.append(tracemalloc.get_traced_memory()[0] - base)
    evaluator.finish(as_of)
    tracemalloc.stop()
    return sizes[0], sizes[1]


def live(args) -> None:
    """The writer alone vs beside the live findings service; see the module docstring."""
    import json
    import os
    import resource
    import sqlite3
    import subprocess
    import tempfile
    from statistics import median

    from bench_ingest import produce
    from common import bench_settings, describe_client

    from ledger.ingest.writer import LedgerWriter
    from ledger.kafka import open_producer
    from ledger.model import events as ev
    from ledger.model.policy import published_fields
    from ledger.produce.producer import wire_record
    from ledger.store import Ledger
    from ledger.wire.codec import default_codec

    root = Path(__file__).resolve().parent.parent
    text = EXAMPLE.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp, bench_settings(kafka_client=args.kafka_client) as settings:
        print(describe_client(settings))
        policy = ev.validate({"type": "PolicyPublished", "occurred_at": "2026-01-01T00:00:00Z",
                              **published_fields(load(EXAMPLE), text, {"id": "dpo-1", "type": "EMPLOYEE",
                                                                       "role": None})})
        with open_producer(settings) as producer:
            w = wire_record(policy, default_codec(), settings.topic_prefix)
            producer.send(w.topic, key=w.key, value=w.value, headers=w.headers)
            producer.flush()
        template = None
        if not args.policy_in_backlog:
            # As deployed: the policy was recorded before the backlog arrives. Each round's ledgers start
            # as a copy of one holding only the policy (the writer's fetches bring a backlog's policy
            # partition last, and nothing can be judged before the policy is recorded).
            template = os.path.join(tmp, "policy.db")
            LedgerWriter(settings.with_(db=template), group_id=None, progress=False).run(
                until_idle=True, install_signals=False)
        produce(settings, args.events)

        def fresh(name: str) -> str:
            db = os.path.join(tmp, name)
            if template is not None:
                with sqlite3.connect(template) as src, sqlite3.connect(db) as dst:
                    src.backup(dst)
            return db

        alone, beside, after, rates, cpu_ratio = [], [], [], [], []
        for run in range(args.repeat):
            db = fresh(f"alone{run}.db")
            writer = LedgerWriter(settings.with_(db=db), group_id=None, progress=False)
            started = time.perf_counter()
            n = writer.run(until_idle=True, install_signals=False).records
            alone.append(n / (time.perf_counter() - started))

            db = fresh(f"beside{run}.db")
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            profile = ["-m", "cProfile", "-o", os.path.join(args.profile_service, f"service{run + 1}.prof")] \
                if args.profile_service else []
            service = subprocess.Popen(
                [sys.executable, *profile, "-m", "consumers.findings", "--db", db, "--bootstrap-servers",
                 settings.bootstrap_servers, "--topic-prefix", settings.topic_prefix, "--kafka-client",
                 args.kafka_client, "--quiet", "--poll-interval", "0.2"], cwd=root,
                env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.DEVNULL)
            try:
                writer = LedgerWriter(settings.with_(db=db), group_id=None, progress=False)
                started, cpu = time.perf_counter(), time.process_time()
                n = writer.run(until_idle=True, install_signals=False).records
                wrote, writer_cpu = time.perf_counter() - started, time.process_time() - cpu
                beside.append(n / wrote)
                at_end = {}
                if os.path.exists(f"{db}.findings-state"):
                    with sqlite3.connect(f"{db}.findings-state") as conn:
                        at_end = dict(conn.execute("SELECT key, value FROM meta"))
                with Ledger.open(db, readonly=True) as ledger:
                    last = ledger.conn.execute(
                        "SELECT timestamp, topic, partition, offset FROM entries WHERE status = 'entry' "
                        "ORDER BY timestamp DESC, topic DESC, partition DESC, offset DESC LIMIT 1").fetchone()
                state = f"{db}.findings-state"
                while True:  # until the service has judged the last entry and committed what it published
                    if os.path.exists(state):
                        with sqlite3.connect(state) as conn:
                            meta = dict(conn.execute("SELECT key, value FROM meta"))
                        if meta.get("position") and tuple(json.loads(meta["position"])) >= tuple(last) \
                                and meta.get("late_pending") == "0":  # late entries judged too
                            break
                    if service.poll() is not None:
                        raise SystemExit(f"the findings service exited with {service.returncode}")
                    time.sleep(0.05)
                done = time.perf_counter() - started
                with sqlite3.connect(state) as conn:
                    published = conn.execute("SELECT count(*) FROM published").fetchone()[0]
            finally:
                service.terminate()
                service.wait(timeout=60)
            from ledger.audit.findings import current
            from ledger.audit.findings.recorded import judge_ledger

            with sqlite3.connect(state) as conn:
                live_ids = {fid for (fid,) in conn.execute("SELECT finding_id FROM published")}
                meta = dict(conn.execute("SELECT key, value FROM meta"))
                at = meta["judged_at"]
            with Ledger.open(db, readonly=True) as ledger:
                batch_ids = {f.finding_id for f in current(judge_ledger(ledger, as_of=at).results)}
            if live_ids != batch_ids:
                with Ledger.open(db, readonly=True) as ledger:
                    missing = [f for f in current(judge_ledger(ledger, as_of=at).results)
                               if f.finding_id not in live_ids]
                print(Counter(f.rule for f in missing), missing[:2], file=sys.stderr)
                raise SystemExit(f"round {run + 1}: the live answer differs from `ledger findings --as-of {at}`: "
                                 f"{len(live_ids - batch_ids)} extra, {len(batch_ids - live_ids)} missing")
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            service_cpu = (used.ru_utime + used.ru_stime) - (children.ru_utime + children.ru_stime)
            cpu_ratio.append(service_cpu / writer_cpu)
            after.append(done - wrote)
            rates.append(n / done)
            print(f"round {run + 1}: writer alone {alone[-1]:,.0f}/s, beside the service {beside[-1]:,.0f}/s; "
                  f"service done {after[-1]:.1f}s after the writer ({rates[-1]:,.0f} events/s over the run), "
                  f"{published:,} findings standing (= the batch answer); CPU: writer {writer_cpu:.1f}s, service {service_cpu:.1f}s; "
                  f"service rebuilds {meta.get('rebuilds', '?')} (1 = the start), rewinds {meta.get('rewinds', '?')}; "
                  f"load average {os.getloadavg()[0]:.1f}; when the writer finished the service had judged "
                  f"{at_end.get('fed', '0')} entries, {at_end.get('pending', '?')} waited for the watermark")
        cost = 1 - median(beside) / median(alone)
        print(f"writer alone, median of {args.repeat}: {median(alone):,.0f} events/s; beside the live service: "
              f"{median(beside):,.0f} events/s; cost {cost:.1%} (goal <= 10%)")
        print(f"live service: done a median {median(after):.1f}s after the writer; {median(rates):,.0f} events/s "
              f"from the writer's start to its last publish; its CPU time a median {median(cpu_ratio):.2f} of the "
              "writer's (whole run, start-up included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--live", action="store_true", help="the live service beside the writer (a local broker)")
    parser.add_argument("--kafka-client", choices=("auto", "confluent", "kafka-python"), default="auto")
    parser.add_argument("--policy-in-backlog", action="store_true",
                        help="--live: the policy arrives with the events instead of being recorded first")
    parser.add_argument("--profile-service", metavar="DIR", help="--live: run the service under cProfile, "
                                                                 "one DIR/serviceN.prof a round")
    args = parser.parse_args()
    if args.live:
        print(machine())
        live(args)
        return

    print(machine())
    policy = load(EXAMPLE)
    w = simulate(seed=args.seed, events=args.events, subjects=args.subjects)
    as_of = max(e["occurred_at"] for e in w.events) + timedelta(days=1)
    subjects = sum(len(e["subject_ids"]) for e in w.events) / len(w.events)
    print(f"{len(w.events):,} simulated events, {args.subjects:,} customers, {subjects:.1f} subject ids an event")
    best, kinds = min(timed(policy, w.events, as_of, pause_gc=True) for _ in range(args.repeat))
    print(f"evaluate: {len(w.events) / best:,.0f} events/s ({best:.2f}s, best of {args.repeat}, cyclic GC paused; "
          "goal >= 50,000/s)")
    with_gc, _ = min(timed(policy, w.events, as_of, pause_gc=False) for _ in range(args.repeat))
    print(f"evaluate with the cyclic GC on: {len(w.events) / with_gc:,.0f} events/s ({with_gc:.2f}s)")
    print("output: " + ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items())))
    half, full = state_bytes(policy, w.events, as_of)
    print(f"evaluator state: {half / 2**20:.1f} MiB after {len(w.events) // 2:,} events, "
          f"{full / 2**20:.1f} MiB after {len(w.events):,} (consent histories, open consent findings, "
          "break-glass sessions, legal cases)")


if __name__ == "__main__":
    main()
