"""Publishing signed checkpoints to the ``<prefix>checkpoints`` topic, and the writer's own checkpoints.

    steps = publish_checkpoints(settings)       # what `ledger checkpoint` does after storing
    Checkpointer(settings, key_path, Every.parse("60s"))   # what `ledger consume --checkpoint-every` runs

One record per checkpoint: key = the origin (UTF-8), so one origin's records keep their order on
one partition; value = the tlog-witness add-checkpoint body (docs/architecture.md "Checkpoints
topic")::

    old <size of the previous stored checkpoint of the origin, 0 for the first>
    <consistency proof lines, base64, from that size to this one>
    <empty line>
    <the signed checkpoint note, with any cosignatures>

so a witness following the topic (``ledger witness follow``) feeds each value to
``Witness.add_checkpoint`` unchanged. Publishing is at least once: what is published is derived
from the checkpoints stored in the ledger (store.checkpoints.publication_steps), and
``<ledger>.published.json`` beside the ledger file records, per origin, the largest size the
broker acknowledged. A failed publish leaves the marker where it was, and the next call sends
the same records again, in the same order (the same checkpoints and proofs; a stored checkpoint
may have gained cosignatures meanwhile); a follower recognises a repeat.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ledger.config import Settings
from ledger.errors import BrokerError, ConfigError, StoreError
from ledger.kafka import open_producer
from ledger.kafka.topics import checkpoints_topic
from ledger.store.checkpoints import Issued, PublicationStep, issue_checkpoints, publication_steps
from ledger.tlog.witness import add_checkpoint_body


class PublishError(BrokerError):
    """Checkpoints are stored but the broker did not acknowledge their records (retrying can help)."""

    retriable = True


def published_path(ledger_path: str | os.PathLike) -> Path:
    """The publication marker, beside the ledger file."""
    return Path(f"{ledger_path}.published.json")


@contextmanager
def _locked(marker: Path):
    fd = os.open(marker.with_name(marker.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load_published(marker: Path) -> dict[str, int]:
    """``{origin: largest acknowledged size}`` (empty when nothing was published)."""
    if not marker.exists():
        return {}
    try:
        raw = json.loads(marker.read_text(encoding="utf-8"))
        return {str(origin): int(size) for origin, size in raw.items()}
    except (OSError, ValueError, AttributeError, TypeError) as err:
        raise StoreError(f"the publication marker {marker} is unreadable ({err}); delete it to publish every "
                         "stored checkpoint again (repeats are harmless)") from err


def _record_published(marker: Path, acked: dict[str, int]) -> None:
    """Raise the marker to ``acked`` (never lower it: a concurrent publisher may be ahead)."""
    with _locked(marker):
        state = load_published(marker)
        for origin, size in acked.items():
            state[origin] = max(size, state.get(origin, 0))
        tmp = marker.with_name(marker.name + ".tmp")
        tmp.write_text(json.dumps(dict(sorted(state.items())), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, marker)


def checkpoint_record(step: PublicationStep) -> tuple[bytes, bytes]:
    """(key, value) of the checkpoints topic's record for one step."""
    return step.origin.encode("utf-8"), add_checkpoint_body(step.old_size, step.proof, step.note)


STEPS_PER_CALL = 1000  # per origin: bounds one publishing pass after a long broker outage


def publish_checkpoints(settings: Settings, producer=None, *, timeout: float = 30.0,
                        all_pending: bool = True) -> list[PublicationStep]:
    """Publish every stored checkpoint of this log not yet acknowledged; returns what was sent.

    Raises :class:`PublishError` naming the origin and size that failed; what was acknowledged
    before the failure stays marked (each origin's acknowledged prefix is not sent again).
    ``all_pending=False`` sends at most ``STEPS_PER_CALL`` per origin (the writer's rounds: the
    rest goes with the next round).
    """
    sent: list[PublicationStep] = []
    while True:
        steps = _publish_pass(settings, producer, timeout)
        sent += steps
        per_origin: dict[str, int] = {}
        for step in steps:
            per_origin[step.origin] = per_origin.get(step.origin, 0) + 1
        if not all_pending or max(per_origin.values(), default=0) < STEPS_PER_CALL:
            return sent


def _publish_pass(settings: Settings, producer, timeout: float) -> list[PublicationStep]:
    marker = published_path(settings.db)
    steps = publication_steps(settings.db, settings.log_origin, load_published(marker),
                              limit_per_origin=STEPS_PER_CALL)
    if not steps:
        return []
    topic = checkpoints_topic(settings.topic_prefix)
    own = producer is None
    sent: list[tuple[PublicationStep, object]] = []
    acked: dict[str, int] = {}
    failed: dict[str, str] = {}
    try:
        if own:
            producer = open_producer(settings, bootstrap_timeout=timeout)
        for step in steps:
            key, value = checkpoint_record(step)
            sent.append((step, producer.send(topic, key=key, value=value)))
        producer.flush(timeout)
        for step, future in sent:
            if step.origin in failed:
                continue  # a later step of a failed origin must not be marked past the gap
            try:
                future.result(timeout)
            except BrokerError as err:
                failed[step.origin] = f"size {step.size}: {err}"
                continue
            acked[step.origin] = step.size
    except BrokerError as err:
        for step in steps:
            if step.origin not in acked:
                failed.setdefault(step.origin, f"size {step.size}: {err}")
    finally:
        if own and producer is not None:
            producer.close(timeout=0 if failed else 10)
    if acked:
        _record_published(marker, acked)
    if failed:
        first = next(iter(failed.items()))
        raise PublishError(f"could not publish {len(failed)} origin(s)' checkpoints to {topic} (first: {first[0]} "
                           f"{first[1]}); they are stored in the ledger and will be sent again by the next "
                           "`ledger checkpoint` (or --no-publish to skip)")
    return steps


# --- the writer's own checkpoints -----------------------------------------------------------------

_EVERY = re.compile(r"^([1-9][0-9]*)(s|m|h)?$")


@dataclass(frozen=True)
class Every:
    """When the writer checkpoints: every ``seconds`` of wall clock or every ``entries`` new entries."""

    seconds: float | None = None
    entries: int | None = None

    @classmethod
    def parse(cls, text: str) -> Every:
        """``60s`` / ``5m`` / ``1h``: a period; a bare number such as ``10000``: a count of entries."""
        match = _EVERY.match(text.strip())
        if not match:
            raise ConfigError(f"--checkpoint-every {text!r}: give a period such as 60s, 5m or 1h, or a number "
                              "of entries such as 10000")
        number, unit = int(match.group(1)), match.group(2)
        if unit is None:
            return cls(entries=number)
        return cls(seconds=float(number * {"s": 1, "m": 60, "h": 3600}[unit]))


class Checkpointer:
    """Signs and publishes checkpoints for the writer after committed batches, when one is due.

    The writer calls :meth:`after_commit` once per committed batch (an O(1) check) and
    :meth:`finish` when it stops. A due round runs on the writer's commit thread between two
    commits (``schedule``, CommitPipeline.between_commits): there it never waits for a commit's
    write lock, and the writer goes on fetching and preparing meanwhile; a round due while one
    is running is folded into the next. Signing goes through store.checkpoints.issue_checkpoints
    — the same fork protection as ``ledger checkpoint`` — and reads a committed snapshot of the
    file through its own connection. A failed publish is reported on stderr and retried at the
    next checkpoint (the checkpoints stay stored); a fork stops the writer (raised by the next
    :meth:`after_commit` or by :meth:`finish`).
    """

    def __init__(self, settings: Settings, key_path: str | os.PathLike, every: Every, *, publish: bool = True,
                 out_dir: str | os.PathLike | None = None, clock=time.monotonic, log=sys.stderr):
        from ledger.tlog.keyfile import load_signer

        self.settings, self.key_path, self.every, self.publish = settings, key_path, every, publish
        self.out_dir = out_dir
        self.signer = load_signer(key_path)  # a bad key fails at start, not at the first checkpoint
        self.clock, self.log = clock, log
        self._entries = 0
        self._last = clock()
        self._producer = None
        self._running = None  # the Future of the round in progress
        self.rounds = 0  # checkpoint rounds run (for tests and progress)
        self.publish_failures = 0
        self.round_ms: list[tuple[float, float]] = []  # (sign + store, publish) wall ms per round, for bench/

    def after_commit(self, entries: int, schedule=None) -> None:
        """Count a committed batch; start a round when due (``schedule(call) -> Future``; None: run it here)."""
        self._entries += entries
        if self._running is not None:
            if not self._running.done():
                return  # the round in progress signs what is committed by then; the rest waits for the next
            running, self._running = self._running, None
            running.result()  # a ForkError stops the writer here
        if self._entries and self._due():
            self._entries, self._last = 0, self.clock()
            if schedule is None:
                self.checkpoint()
            else:
                self._running = schedule(self.checkpoint)

    def finish(self) -> None:
        """Wait for a round in progress, then a last one if anything was committed since; close the producer."""
        try:
            if self._running is not None:
                running, self._running = self._running, None
                running.result()
            if self._entries:
                self._entries = 0
                self.checkpoint()
        finally:
            self.close()

    def close(self) -> None:
        """Close the publishing producer (idempotent; the writer calls it however it stops)."""
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None

    def _due(self) -> bool:
        if self.every.entries is not None:
            return self._entries >= self.every.entries
        return self.clock() - self._last >= (self.every.seconds or 0)

    def checkpoint(self) -> list[Issued]:
        """Sign, store (and write files), then publish; ForkError propagates (the writer stops)."""
        from ledger.store.checkpoints import write_checkpoint_files

        started = time.perf_counter()
        issued = issue_checkpoints(self.settings.db, self.signer, self.key_path, self.settings.log_origin)
        if self.out_dir is not None:
            write_checkpoint_files(self.out_dir, issued)
        self.rounds += 1
        signed = time.perf_counter()
        self._publish()
        self.round_ms.append(((signed - started) * 1e3, (time.perf_counter() - signed) * 1e3))
        return issued

    def _publish(self) -> None:
        if self.publish:
            try:
                if self._producer is None:
                    self._producer = open_producer(self.settings)
                publish_checkpoints(self.settings, self._producer, all_pending=False)
            except BrokerError as err:
                self.publish_failures += 1
                if self._producer is not None:
                    self._producer.close(timeout=0)
                    self._producer = None
                print(f"ledger consume: checkpoint publish failed, retried at the next checkpoint: {err}",
                      file=self.log, flush=True)
