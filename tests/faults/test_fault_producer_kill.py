"""Producers in durable mode killed with SIGKILL right after their calls returned; outboxes drained afterwards."""

from __future__ import annotations

import random
import re

from faultcheck import Expected, check
from faultkit import ProducerProcess, catch_up, ledger_cli, record, scale

from ledger.dev.simulate import simulate


def test_durable_producers_sigkilled_then_drained_lose_and_repeat_nothing(settings, tmp_path):
    """Everything a SIGKILLed durable producer was told arrives once, in order per key, after `ledger outbox drain`."""
    rounds, per_round, events = scale(2, 8), 2, scale(4_000, 8_000)
    rng = random.Random(13)
    told: set[str] = set()
    attempted: set[str] = set()
    orders: list[list[str]] = []
    drained = 0
    seed = 600
    for _ in range(rounds):
        procs = []
        for _ in range(per_round):  # concurrent producers, each with its own outbox
            seed += 1
            outbox = tmp_path / f"outbox-{seed}.db"
            procs.append((ProducerProcess(settings, outbox, seed=seed, events=events, subjects=60), outbox))
            attempted |= {e["event_id"] for e in simulate(seed=seed, events=events, subjects=60).events}
        for proc, outbox in procs:
            said = proc.read_until_killed(after_seconds=rng.uniform(1.0, 3.0))
            told |= set(said)
            orders.append(said)
            if not outbox.exists():  # killed before it opened its outbox: it was told nothing
                assert not said
                continue
            done = ledger_cli(settings, "outbox", "drain", str(outbox))
            assert done.returncode == 0, done.stderr
            drained += int(re.search(r"delivered (\d+)", done.stdout).group(1))
    catch_up(settings)

    outcome = check(settings, Expected(told=told, may_appear=attempted - told, emit_orders=orders))
    kills = rounds * per_round
    record("producer SIGKILL (durable) + drain", f"{kills} producer SIGKILLs", outcome,
           f"{drained} events delivered by drain; per-key order kept")
    outcome.assert_ok()
    assert len(told) > 0 and all(orders)
