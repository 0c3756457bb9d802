"""Batch evaluation rate of the promise checks on the simulated mix, and their memory, one process.

    python bench/bench_findings.py                       # 200,000 events, 10,000 customers, best of 3
    python bench/bench_findings.py --events 1000000 --repeat 1

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

from common import machine  # noqa: E402

from ledger.audit.findings import (
    Evaluator,
    Retraction,
    evaluate,  # noqa: E402
)
from ledger.dev.simulate import simulate  # noqa: E402
from ledger.model.policy import load  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

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
