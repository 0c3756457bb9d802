"""Shared set-up for the benchmark scripts: a broker, fresh topics, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.config import Settings  # noqa: E402


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


@contextmanager
def bench_settings(partitions: int = 6, db: str | None = None):
    """Settings on LEDGER_BENCH_BOOTSTRAP, or on a throw-away local broker; fresh topics."""
    from ledger.kafka.topics import create_topics

    bootstrap = os.environ.get("LEDGER_BENCH_BOOTSTRAP")
    broker = None
    if bootstrap is None:
        from ledger.dev.broker import LocalBroker

        broker = LocalBroker(port=0)
        broker.start()
        bootstrap = broker.bootstrap
    try:
        settings = Settings.load(env={}, bootstrap_servers=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
                                 partitions=partitions, db=db or "bench.db")
        create_topics(settings)
        yield settings
    finally:
        if broker is not None:
            broker.stop()


def median(values: list[float]) -> float:
    return statistics.median(values)
