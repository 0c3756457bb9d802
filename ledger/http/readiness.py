"""/readyz's Kafka part: how far behind the broker the ledger's writer is, fetched briefly and cached.

    lag = KafkaLag(settings)                 # when `ledger serve` was given Kafka settings
    kafka_lag_report(lag, ledger)            # a JSON-able dict; never raises, never waits long

The probe (ledger.kafka.lag.end_offsets: high watermark minus the ledger's next offset, per
event partition) runs in a thread of its own with a short timeout. Any answer, the failures
too, is kept for ``ttl`` seconds: a load balancer polling /readyz every second costs the broker
one probe per ``ttl``. Once it is older, a request gets it at once (its ``checked_at`` tells its
age) and starts a new probe in the background; only the first request of the process waits for
a probe, at most ``timeout`` + 0.5 s, and then answers "no answer", so a dead or slow broker
never holds up /readyz.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

NOT_CONFIGURED = {"configured": False, "status": "not_configured",
                  "message": "no Kafka settings were given to `ledger serve` (--bootstrap-servers or "
                             "LEDGER_BOOTSTRAP_SERVERS), so the writer's lag is not measured"}


def _now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class KafkaLag:
    """One probe at a time, its answer cached for ``ttl`` seconds."""

    def __init__(self, settings, *, timeout: float = 2.0, ttl: float = 5.0):
        self.settings, self.timeout, self.ttl = settings, timeout, ttl
        self._lock = threading.Lock()
        self._answer: dict | None = None
        self._answered_at = 0.0
        self._running: threading.Event | None = None

    def report(self, positions: dict) -> dict:
        with self._lock:
            answer = self._answer
            if answer is not None and time.monotonic() - self._answered_at < self.ttl:
                return answer
            done = self._running
            if done is None:
                done = self._running = threading.Event()
                threading.Thread(target=self._probe, args=(dict(positions), done), daemon=True,
                                 name="readyz-kafka-lag").start()
            if answer is not None:
                # The last answer (its checked_at says how old) while the probe refreshes it: a
                # broker that is down makes no /readyz wait, only the very first one.
                return answer
        if not done.wait(self.timeout + 0.5):
            return {"configured": True, "status": "unreachable", "checked_at": _now_text(),
                    "message": f"the broker ({self.settings.bootstrap_servers}) did not answer within "
                               f"{self.timeout:g} s"}
        with self._lock:
            return self._answer

    def _probe(self, positions: dict, done: threading.Event) -> None:
        from ledger.errors import LedgerError
        from ledger.kafka.lag import end_offsets

        try:
            ends = end_offsets(self.settings, positions, timeout=self.timeout)
            parts = []
            for p, end in sorted(ends.items()):
                nxt = positions.get((p.topic, p.partition), 0)
                parts.append({"topic": p.topic, "partition": p.partition, "next_offset": nxt, "end_offset": end,
                              "behind": end - nxt})
            ahead = [f"{x['topic']}[{x['partition']}]" for x in parts if x["behind"] < 0]
            answer = {"configured": True, "status": "ok", "checked_at": _now_text(),
                      "records_behind": sum(max(0, x["behind"]) for x in parts), "partitions": parts}
            if ahead:
                # The ledger holds offsets the broker does not: the topic was recreated or the broker lost data.
                answer.update(status="ledger_ahead_of_broker", message="the ledger has read past the broker's end "
                              f"offset on {', '.join(ahead)}: was the topic recreated or its data lost?")
        except (LedgerError, OSError) as err:
            answer = {"configured": True, "status": "unreachable", "checked_at": _now_text(),
                      "message": f"cannot read the end offsets from {self.settings.bootstrap_servers}: {err}"}
        except Exception as err:  # a client bug must not break readiness; say what it was
            answer = {"configured": True, "status": "error", "checked_at": _now_text(),
                      "message": f"the lag probe failed: {type(err).__name__}"}
        with self._lock:
            self._answer, self._answered_at, self._running = answer, time.monotonic(), None
        done.set()


def kafka_lag_report(lag: KafkaLag | None, ledger) -> dict:
    """The ``kafka`` member of /readyz."""
    if lag is None:
        return NOT_CONFIGURED
    return lag.report(ledger.positions())
