"""The writer killed with SIGKILL at random moments, many times, while it ingests."""

from __future__ import annotations

import random
import time

from faultcheck import Expected, check
from faultkit import WriterProcess, catch_up, record, scale
from traffic import emit_acknowledged, send_bad

from ledger.dev.simulate import simulate
from ledger.wire.codec import default_codec


def test_writer_sigkilled_at_random_moments_loses_and_repeats_nothing(settings):
    """Every acknowledged event is one entry and every bad record one rejection after many writer SIGKILLs."""
    events, kills_wanted = scale(20_000, 150_000), scale(8, 40)
    workload = simulate(seed=21, events=events, subjects=scale(400, 3_000))
    repeats = random.Random(2).sample(workload.events, events // 100)  # the same event_id sent twice
    told = emit_acknowledged(settings, workload.events[: events // 2] + repeats)
    bad = send_bad(settings, default_codec(), workload.events)
    told += emit_acknowledged(settings, workload.events[events // 2:])

    rng = random.Random(7)
    writer = WriterProcess(settings, until_idle=True, batch_size=1000)
    kills = 0
    try:
        while kills < kills_wanted:
            writer.start()
            time.sleep(rng.uniform(0.3, 1.5))
            if not writer.alive():  # caught up before this kill
                assert writer.wait() == 0, writer.stderr()
                break
            writer.kill()
            kills += 1
    finally:
        writer.close()
    catch_up(settings)

    outcome = check(settings, Expected(told=set(told), bad=bad))
    record("writer SIGKILL", f"{kills} writer SIGKILLs", outcome)
    outcome.assert_ok()
    assert outcome.repeats >= len(repeats)
