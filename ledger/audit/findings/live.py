"""The live findings service: the ledger read as it grows, judged incrementally, findings published.

Start at :class:`FindingsService` (``ledger findings --follow``,
``consumers/findings.py``); the judging is :class:`LiveJudge`, which needs no Kafka.

* **The same judge as the batch command.** Entries are fed to a
  :class:`~ledger.audit.findings.recorded.LedgerJudge` in *recorded* order
  (recorded time, topic, partition, offset), so the findings, their ids and
  the policy in force are ``ledger findings``'s. What stands after a step is
  the batch answer over the entries fed, with time rules judged at the step's
  instant (``judged_at``): ``ledger findings --as-of <judged_at>``
  (tests/unit/test_findings_live.py).
* **Reading a growing file.** Each poll is one read snapshot of the records
  appended since the last one (by seq, so a poll costs what it reads; idle
  polls back off to 4x the interval). The writer appends in arrival order,
  not recorded order, so entries wait in ``pending`` until the *watermark*
  (watermark.py) has passed them: Kafka's end offset of each partition,
  compared with the ledger's stored next offset, tells a partition that is
  caught up (it holds nothing back but the instant Kafka was asked) from one
  still delivering (it holds the mark just below its latest record); without
  Kafka's answer a partition silent for ``idle_after_s`` (default 10 s) stops
  holding it. Kafka is asked at most every second, and only when a caught-up
  partition is what holds the mark.
* **Late entries rewind, they do not re-judge.** An entry that still arrives
  behind what was fed (a producer clock behind with CreateTime, a writer that
  was down longer than ``idle_after_s``) is judged in its place: the judge
  goes back to the latest *rewind point* before it (a copy of the judge kept
  every few thousand entries fed, spaced so that copying costs at most a
  tenth of the feeding; the last ``points`` are kept) and replays what was
  fed since, re-read by seq, with the late entries merged in. Only an entry
  older than every point makes the judge rebuild from the ledger's start
  (spaced at least ``rebuild_every_s`` and four times the last rebuild). A
  final step (``--until-idle``) always judges what is late.
* **The instant judged at.** A step is judged at the watermark it fed to
  (``judged_at``), so a state committed mid-stream is exactly ``ledger
  findings --as-of <judged_at>`` (until a late entry arrives; the state counts
  those in ``late_pending``). A final step is judged at the clock, or at the
  newest recorded time when the broker's clock is ahead of the service's, so
  nothing is left pending at exit.
* **Time rules** (overdue notices, break-glass reviews, delays without an
  end) are judged at the step's instant on every step that fed entries and at
  least every ``tick_s``, so a deadline that passes becomes a finding without
  any new entry.
* **What is published** is the difference between what stands and what was
  published: each new Finding, and a FindingRetracted for one that no longer
  stands (a consent recorded late but dated before the share, a review or
  notice recorded late, a newer policy's time-rule answer replacing the old).
* **At least once.** The state file (ledger/store/findings_state.py) keeps
  the position, the instant judged at and the published findings; it is
  written only after the producer's flush succeeded, and at least every
  ``tick_s`` as a heartbeat (``ledger findings --health``). On start the judge
  judges the ledger up to the watermark, or up to the state's ``judged_at``
  if later, and publishes the difference from the state: after a crash (kill -9 included)
  nothing is lost, and what was published but not yet committed is published
  again *with the same finding_id*: consumers de-duplicate on it.
"""

from __future__ import annotations

import heapq
import json
import signal
import sys
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ledger.errors import BrokerError, LedgerError, PolicyError
from ledger.model.policy import Policy
from ledger.model.times import from_millis, parse_time, time_text, to_millis
from ledger.store.findings_reads import (
    appended_after,
    jsons_by_seq,
    last_seq,
    partition_latest,
    recorded_events,
)
from ledger.store.reads import snapshot

from .model import Finding, Retraction
from .recorded import NO_POLICY, LedgerJudge, first_policy
from .watermark import NEVER, Watermark

#: What feeding one entry costs, about (parse, validate, judge): spaces the rewind points by their copy cost.
_FEED_S = 40e-6

#: Past every topic name: a position key ``(ms, _AFTER, 0, 0)`` sorts after every entry recorded at ``ms``.
_AFTER = "\U0010ffff"


@dataclass
class Withdrawn:
    """One published finding that no longer stands, with the evidence that cleared it."""

    finding: Finding
    sentence: str
    cleared_by: tuple[str, ...]


@dataclass
class Step:
    """What one poll decided: publish ``findings`` and ``withdrawn``, then :meth:`LiveJudge.accept` it."""

    judged_at: datetime
    findings: list[Finding] = field(default_factory=list)
    withdrawn: list[Withdrawn] = field(default_factory=list)
    fed: int = 0
    read: int = 0
    rebuilt: bool = False
    more: bool = False  # the read limit was hit: poll again at once
    final: bool = False  # everything recorded by judged_at was judged (--until-idle's last step)
    timed: bool = False  # the time rules were judged at judged_at (else the step changed nothing)
    waiting: bool = False  # no policy recorded yet (and no draft)
    pending: int = 0
    late: int = 0  # entries that arrived behind the position, judged at the next rebuild
    position: tuple | None = None

    @property
    def empty(self) -> bool:
        return not self.findings and not self.withdrawn


def finding_of(data: dict) -> Finding:
    """A Finding back from its JSON form (the state file keeps them so)."""
    return Finding(data["finding_id"], data["rule"], data["kind"], data["severity"], data["sentence"],
                   tuple(data["subjects"]), tuple(data["event_ids"]), data["policy_sha256"], data["policy_version"])


def _facts(event: dict) -> tuple:
    """What the retraction attribution needs of an event fed: id, type, subjects, case, policy."""
    return (event["event_id"], event["type"], frozenset(event.get("subject_ids") or ()),
            event.get("disclosure_event_id"))


@dataclass
class _Point:
    """A rewind point: the judge as it stood after feeding up to ``position`` (an independent copy)."""

    position: tuple
    judge: LedgerJudge
    event_open: dict
    retracted: dict
    replayed: int  # how many entries were fed before it (an index into the replay log)


class LiveJudge:
    """Incremental findings over a growing ledger; see the module docstring.

    ``published`` is what the topic says stands (the service loads it from the
    state file); :meth:`step` returns the difference, :meth:`accept` records it
    once published. ``end_offsets`` (optional) answers Kafka's end offset per
    partition for a ``{(topic, partition): offset to fetch from}``; without it
    partitions are judged idle by silence only (the watermark module).
    ``resume_at`` is the instant the state file was last judged at: the first
    step feeds at least that far, so a restart does not withdraw what it published.
    """

    def __init__(self, draft: Policy | None = None, *, idle_after_s: float = 10.0, tick_s: float = 10.0,
                 rebuild_every_s: float = 5.0, read_limit: int = 20_000, clock=time.monotonic,
                 end_offsets=None, ends_every_s: float = 1.0, allowance_ms: int = 1000,
                 resume_at: datetime | None = None, point_min: int = 2_000, point_max: int = 20_000,
                 points: int = 6):
        self.draft = draft
        self.tick_s = tick_s
        self.rebuild_every_s = rebuild_every_s
        self.read_limit = read_limit
        self.clock = clock
        self.end_offsets = end_offsets
        self.ends_every_s = ends_every_s
        self.resume_at = resume_at
        self.point_min, self.point_max, self.keep_points = point_min, point_max, points
        self.mark = Watermark(idle_after_s=idle_after_s, allowance_ms=allowance_ms, clock=clock)
        self.published: dict[str, Finding] = {}
        self.judge: LedgerJudge | None = None
        self.cursor_seq = 0
        self.position: tuple | None = None
        self.fed_to: int | None = None  # the watermark (ms) everything was fed to: judged_at of a non-final step
        self.pending: list[tuple] = []  # heap of (position, seq, json text)
        #: The next offset of each partition as far as this judge has *read* the ledger (not the writer's
        #: stored offset, which may be ahead of a read cut short by read_limit): "caught up" compares it.
        self.stored: dict[tuple[str, int], int] = {}
        self.event_open: dict[str, Finding] = {}
        self.time_open: dict[str, Finding] = {}
        self.retracted: dict[str, Retraction] = {}
        self.late: list[tuple] = []  # (position, seq, json) of entries that arrived behind the position
        self.points: list[_Point] = []
        self.replay: list[tuple] = []  # (position, seq) of every entry fed after the oldest point, in order
        self.replay_base = 0  # how many entries were fed before replay[0]
        self.rebuilds = 0
        self.rewinds = 0
        self.broker_error: str | None = None
        self._last_rebuild = -1e18
        self._rebuild_took = 0.0
        self._last_rewind = -1e18
        self._rewind_took = 0.0
        self._fed_total = 0
        self._next_point = point_min  # the entry count (fed since the last rebuild) for the next rewind point
        self._last_time_judged = -1e18
        self._timed_to: int | None = None
        self._ends_asked = -1e18

    # -- one poll ----------------------------------------------------------------------
    def step(self, ledger, now: datetime, *, final: bool = False, upto_seq: int | None = None) -> Step:
        """Read what was appended, feed what the watermark allows, judge the time rules; the difference."""
        out = Step(judged_at=now, final=final)
        now_ms = to_millis(now)
        self._ask_ends(now_ms)
        fed_facts: list[tuple] | None = []
        with snapshot(ledger):
            if self.judge is None:
                if not self._start(ledger, now_ms, final, upto_seq, out):
                    return out
                fed_facts = None  # every published finding may be cleared: no attribution
            else:
                self._read(ledger, upto_seq, out)
                bound = self._bound(now_ms, final)
                if self.late and self._rewind_due(final):
                    fed_facts = [_facts(json.loads(text)) for _, _, text in self.late]
                    self._catch_up_late(ledger, bound, out)
                self._feed_pending(bound, out, fed_facts)
                self.fed_to = bound if self.fed_to is None else max(self.fed_to, bound)
        wall = self.clock()
        out.judged_at = self._instant(now, final)
        at_ms = to_millis(out.judged_at)
        # Time rules at the step's instant whenever it fed or rewound (what stands is always one instant's
        # answer), and on a moved instant at least every tick_s; an unchanged one is not judged again.
        if self.fed_to is not None and self.fed_to > NEVER and (
                out.fed or out.rebuilt or final or self.late or self._timed_to is None
                or (at_ms != self._timed_to and wall - self._last_time_judged >= self.tick_s)):
            self.time_open = {f.finding_id: f for f in self.judge.finish(out.judged_at)}
            self._last_time_judged, self._timed_to = wall, at_ms
            out.timed = True
        self._difference(out, fed_facts)
        out.pending, out.late, out.position = len(self.pending), len(self.late), self.position
        return out

    def accept(self, step: Step) -> None:
        """``step`` is published: it is now what the topic says."""
        for w in step.withdrawn:
            self.published.pop(w.finding.finding_id, None)
        for f in step.findings:
            self.published[f.finding_id] = f

    @property
    def standing(self) -> dict[str, Finding]:
        return {**self.event_open, **self.time_open}

    def _instant(self, now: datetime, final: bool) -> datetime:
        """What the step judged at: the watermark it fed to; a final step ``now`` (everything recorded by it)."""
        if final or self.fed_to is None or self.fed_to <= NEVER:
            return now
        return from_millis(self.fed_to)

    def final_instant(self, now: datetime) -> datetime:
        """The instant a final step (``--until-idle``) judges at: ``now``, or the newest entry's recorded
        time when the broker's clock is ahead of this one, so no entry is left unjudged at exit."""
        newest = self.mark.newest
        return now if newest is None or newest <= to_millis(now) else from_millis(newest)

    # -- where Kafka stands ----------------------------------------------------------------
    def _ask_ends(self, now_ms: int) -> None:
        """Kafka's end offsets, asked only when one could move the watermark: a partition the ledger
        caught up with (or none known yet), at most every ends_every_s."""
        if self.end_offsets is None:
            return
        wall = self.clock()
        if wall - self._ends_asked < (self.ends_every_s if self.broker_error is None else 10 * self.ends_every_s):
            return
        known = self.mark.partitions
        if known and not self.mark.held_by_caught_up and any(p.end is not None for p in known.values()):
            return  # a partition still delivering what Kafka had holds the mark: a newer end would not move it
        self._ends_asked = wall
        fetch_from = {tp: max(self.stored.get(tp, 0), p.end or 0) for tp, p in known.items()}
        try:
            ends = self.end_offsets(fetch_from)
        except BrokerError as err:
            self.broker_error = str(err)
            self.mark.forget_ends()
            return
        self.broker_error = None
        self.mark.ends(ends, now_ms)


    def _bound(self, now_ms: int, final: bool) -> int:
        if final:
            return now_ms
        return self.mark.bound(now_ms, self.stored)

    # -- reading -----------------------------------------------------------------------
    def _start(self, ledger, now_ms: int, final: bool, upto_seq, out: Step) -> bool:
        """The first step: judge the ledger up to the watermark, or as far as the state was judged
        (False while no policy is recorded)."""
        if self.draft is None and first_policy(ledger, upto_seq=upto_seq) is None:
            out.waiting = True
            return False
        seq = last_seq(ledger)
        self.cursor_seq = seq if upto_seq is None else min(seq, upto_seq)
        latest = partition_latest(ledger, upto_seq=self.cursor_seq)
        self.mark.start([(tp, ms) for tp, ms, _ in latest])
        self.stored = {tp: next_offset for tp, _, next_offset in latest}
        bound = self._bound(now_ms, final)
        if self.resume_at is not None:  # what the state holds was judged that far: do not withdraw it
            bound = max(bound, to_millis(self.resume_at))
        self._rebuild(ledger, bound, self.cursor_seq, out)
        self.fed_to = bound
        return True

    def _read(self, ledger, upto_seq, out: Step) -> None:
        rows = appended_after(ledger, self.cursor_seq, limit=self.read_limit, upto_seq=upto_seq)
        wall = self.clock()
        position = self.position
        saw, pending, late, stored = self.mark.saw, self.pending, self.late, self.stored
        for seq, _status, ms, topic, part, offset, text in rows:
            saw(topic, part, ms, wall)
            if stored.get((topic, part), 0) <= offset:
                stored[(topic, part)] = offset + 1
            if text is None:
                continue
            key = (ms, topic, part, offset)
            if position is not None and key < position:
                late.append((key, seq, text))
            else:
                heapq.heappush(pending, (key, seq, text))
        if rows:
            self.cursor_seq = rows[-1][0]
        out.read, out.more = len(rows), len(rows) == self.read_limit

    # -- feeding -----------------------------------------------------------------------
    def _feed(self, text: str, key: tuple, seq: int, out: Step) -> None:
        for r in self.judge.feed(text):
            if isinstance(r, Retraction):
                if self.event_open.pop(r.finding_id, None) is not None:
                    self.retracted[r.finding_id] = r
            else:
                self.event_open[r.finding_id] = r
                self.retracted.pop(r.finding_id, None)
        self.position = key
        self.replay.append((key, seq))
        self._fed_total += 1
        out.fed += 1
        if self._fed_total >= self._next_point:
            self._point()

    def _feed_pending(self, bound: int, out: Step, fed_facts: list | None) -> None:
        pending = self.pending
        while pending and pending[0][0][0] <= bound:
            key, seq, text = heapq.heappop(pending)
            self._feed(text, key, seq, out)
            if fed_facts is not None:
                fed_facts.append(_facts(self.judge.last_event))

    def _rewind_due(self, final: bool) -> bool:
        """Late entries are judged at once when a rewind point covers them; a rewind (or a rebuild, when
        none does) waits four times its last duration, so a stream of late entries costs a bounded share."""
        if final:
            return True
        wall = self.clock()
        oldest = min(key for key, _, _ in self.late)
        if self.points and self.points[0].position < oldest:
            return wall - self._last_rewind >= 4 * self._rewind_took
        return wall - self._last_rebuild >= max(self.rebuild_every_s, 4 * self._rebuild_took)

    def _catch_up_late(self, ledger, bound: int, out: Step) -> None:
        """Judge the late entries in their place: from the latest rewind point before the oldest of them
        (replaying what was fed since, read again by seq), else afresh from the ledger's start."""
        oldest = min(key for key, _, _ in self.late)
        i = bisect_right([p.position for p in self.points], oldest) - 1
        if i < 0 or not self.points[i].position < oldest:
            self._rebuild(ledger, max(bound, self.position[0]), self.cursor_seq, out)
            return
        started = self.clock()
        point = self.points[i]
        del self.points[i + 1:]
        again = self.replay[point.replayed - self.replay_base:]
        del self.replay[point.replayed - self.replay_base:]
        self._fed_total = point.replayed
        self._next_point = point.replayed + self.point_min
        self.judge = point.judge.clone()
        self.event_open, self.retracted = dict(point.event_open), dict(point.retracted)
        self.position = point.position
        texts = jsons_by_seq(ledger, [seq for _, seq in again])
        for key, seq, text in heapq.merge(((k, s, texts[s]) for k, s in again), sorted(self.late)):
            self._feed(text, key, seq, out)
        self.late = []
        self.rewinds += 1
        out.rebuilt = True
        self._last_rewind = self.clock()
        self._rewind_took = self._last_rewind - started

    def _point(self) -> None:
        """Keep a rewind point here, the next one so many entries later that copying the judge (its cost
        grows with customers and cases) stays within a tenth of the feeding (at least point_min apart,
        at most point_max); the oldest beyond ``points`` is dropped with what only it could replay."""
        started = self.clock()
        self.points.append(_Point(self.position, self.judge.clone(), dict(self.event_open), dict(self.retracted),
                                  self._fed_total))
        took = self.clock() - started
        spacing = min(max(int(10 * took / _FEED_S), self.point_min), self.point_max)
        self._next_point = self._fed_total + spacing
        if len(self.points) > self.keep_points:
            del self.points[0]
            del self.replay[:self.points[0].replayed - self.replay_base]
            self.replay_base = self.points[0].replayed

    def _rebuild(self, ledger, bound: int, upto_seq: int, out: Step) -> None:
        """Judge afresh every entry recorded by ``bound`` (and by the position already fed), in recorded order."""
        started = self.clock()
        if self.position is not None:
            bound = max(bound, self.position[0])
        first = self.draft if self.draft is not None else first_policy(ledger, upto_seq=upto_seq)
        if first is None:  # the policy entry is there (checked at start) unless the ledger was replaced
            raise PolicyError(NO_POLICY, None, None)
        self.judge = LedgerJudge(first, draft=self.draft is not None, track_about=False)
        self.event_open, self.retracted = {}, {}
        self.points, self.replay, self.replay_base, self._fed_total = [], [], 0, 0
        self.position = (NEVER, "", 0, 0)
        self._point()  # the judge before any entry: whatever arrives late later, some point is before it
        for text, ms, topic, part, offset, seq in recorded_events(ledger, until_ms=bound, upto_seq=upto_seq):
            self._feed(text, (ms, topic, part, offset), seq, out)
        self.pending = [((ms, topic, part, offset), seq, text) for text, ms, topic, part, offset, seq
                        in recorded_events(ledger, after=(bound, _AFTER, 0, 0), upto_seq=upto_seq)]
        heapq.heapify(self.pending)
        self.late = []
        if self.position[0] == NEVER:
            self.position = (bound, _AFTER, 0, 0)
        self.rebuilds += 1
        out.rebuilt = True
        self._last_rebuild = self.clock()
        self._rebuild_took = self._last_rebuild - started

    # -- what to publish -----------------------------------------------------------------
    def _difference(self, out: Step, fed_facts: list | None) -> None:
        standing = self.standing
        out.findings = [f for fid, f in standing.items() if fid not in self.published]
        policy_ids = [] if fed_facts is None else [e[0] for e in fed_facts if e[1] == "PolicyPublished"]
        index = None
        for fid, f in self.published.items():
            if fid in standing:
                continue
            r = self.retracted.get(fid)
            if r is not None:
                out.withdrawn.append(Withdrawn(f, r.sentence, tuple(r.event_ids)))
                continue
            if fed_facts is None:
                cleared = ()
            else:
                if index is None:
                    index = _evidence_index(fed_facts)
                hits = set(index.get(("case", f.event_ids[0]), ()))
                for subject in f.subjects:
                    hits.update(index.get(("subject", subject), ()))
                cleared = tuple(fed_facts[i][0] for i in sorted(hits)) or tuple(policy_ids)
            why = "a newer policy judges it" if cleared and set(cleared) <= set(policy_ids) else \
                "cleared by evidence recorded later"
            out.withdrawn.append(Withdrawn(f, f"{f.sentence} (withdrawn: {why})", cleared))


def _evidence_index(fed_facts: list) -> dict:
    """Positions in ``fed_facts`` by the case they belong to and by each customer they name (not for a
    PolicyPublished): what could have cleared a finding, found without a scan per finding."""
    index: dict[tuple, list[int]] = {}
    for i, (_, kind, subjects, case) in enumerate(fed_facts):
        if case is not None:
            index.setdefault(("case", case), []).append(i)
        if kind != "PolicyPublished":
            for subject in subjects:
                index.setdefault(("subject", subject), []).append(i)
    return index


def finding_message(f: Finding, judged_at: datetime) -> dict:
    return {**f.as_json(), "judged_at": judged_at}


def retraction_message(w: Withdrawn, judged_at: datetime) -> dict:
    return {"finding_id": w.finding.finding_id, "rule": w.finding.rule, "sentence": w.sentence,
            "cleared_by": list(w.cleared_by), "policy_sha256": w.finding.policy_sha256, "judged_at": judged_at}


def default_state_path(db: str | Path) -> Path:
    """Beside the ledger, never inside it: ``ledger.db`` → ``ledger.db.findings-state``."""
    return Path(f"{db}.findings-state")


@dataclass
class ServiceStats:
    fed: int = 0
    published: int = 0
    retracted: int = 0
    rebuilds: int = 0
    steps: int = 0
    judged_at: datetime | None = None
    standing: int = 0


class FindingsService:
    """``ledger findings --follow``: LiveJudge steps published to ``{prefix}findings``, state committed after."""

    def __init__(self, settings, *, draft: Policy | None = None, state_path: str | Path | None = None,
                 poll_s: float = 0.5, tick_s: float = 10.0, idle_after_s: float = 10.0,
                 rebuild_every_s: float = 5.0, quiet: bool = False, clock=None, kafka_ends: bool = True):
        from ledger.kafka.topics import findings_topic

        self.settings = settings
        self.db = Path(settings.db)
        self.state_path = Path(state_path) if state_path else default_state_path(self.db)
        self.topic = findings_topic(settings.topic_prefix)
        self.draft = draft
        self.poll_s = poll_s
        self.quiet = quiet
        self.now = clock or (lambda: datetime.now(UTC))
        self.judge = LiveJudge(draft, idle_after_s=idle_after_s, tick_s=tick_s, rebuild_every_s=rebuild_every_s,
                               end_offsets=self._end_offsets if kafka_ends else None)
        self.stats = ServiceStats()
        self._stopping = False
        self._committed = -1e18

    def _end_offsets(self, fetch_from: dict) -> dict:
        """Kafka's end offset of every event partition (the watermark's "caught up"), read from
        ``fetch_from`` on so that no old records are fetched again."""
        from ledger.config import MIN_BATCH_BYTES
        from ledger.kafka.lag import end_offsets

        # The smallest fetch the seam allows: a partition the ledger has not seen is fetched from offset 0,
        # and what the fetch brings back is only thrown away.
        return end_offsets(self.settings.with_(batch_max_bytes=MIN_BATCH_BYTES), fetch_from, timeout=2.0)

    def stop(self, *_: object) -> None:
        """Finish the step in hand (publish, commit) and return (signal-safe)."""
        self._stopping = True

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"findings: {text}", file=sys.stderr, flush=True)

    def _identity(self) -> dict[str, str]:
        return {"ledger": str(self.db.resolve()), "topic": self.topic,
                "policy": "recorded" if self.draft is None else f"draft {self.draft.sha256}"}

    def run(self, *, until_idle: bool = False, install_signals: bool = True) -> ServiceStats:
        from ledger.kafka import open_producer
        from ledger.store import Ledger
        from ledger.store.findings_state import FindingsState
        from ledger.wire.findings_codec import FindingsCodec

        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        if self.state_path.resolve() == self.db.resolve():
            raise LedgerError(f"--state {self.state_path} is the ledger itself; the state lives beside it")
        codec = FindingsCodec.load()
        while not self.db.exists():  # the writer creates it
            if until_idle or self._stopping:
                raise LedgerError(f"no ledger at {self.db} (has the writer run? `ledger consume`)")
            time.sleep(self.poll_s)
        state = FindingsState.open(self.state_path, self._identity())
        try:
            self.judge.published = {fid: finding_of(f) for fid, f in state.published().items()}
            resume = state.get("judged_at")
            self.judge.resume_at = parse_time(resume) if resume else None
            ledger = Ledger.open(self.db, readonly=True)
            try:
                with open_producer(self.settings) as producer:
                    self._loop(ledger, producer, codec, state, until_idle)
            finally:
                ledger.close()
        finally:
            state.close()
        return self.stats

    def _loop(self, ledger, producer, codec, state, until_idle: bool) -> None:
        said_waiting = False
        said_broker = None
        quiet_polls = 0
        while True:
            final = until_idle and quiet_polls >= 1
            now = self.now()
            step = self.judge.step(ledger, self.judge.final_instant(now) if final else now, final=final)
            if step.waiting:
                if until_idle:
                    raise PolicyError(NO_POLICY, None, None)
                if not said_waiting:
                    self._say("no policy recorded yet; waiting for a PolicyPublished (`ledger policy publish`)")
                    said_waiting = True
                if self._stopping:
                    return
                time.sleep(self.poll_s)
                continue
            self._publish(step, producer, codec, state)
            if final or self._stopping:
                self._say(self._summary())
                return
            if step.more:
                continue
            quiet_polls = quiet_polls + 1 if (not step.read and not step.rebuilt) else 0
            if self.judge.broker_error and self.judge.broker_error != said_broker:
                said_broker = self.judge.broker_error
                self._say(f"no end offsets from Kafka ({said_broker}); partitions silent {self.judge.mark.idle_after_s:g} s "
                          "count as caught up until it answers")
            if not until_idle:
                # Idle: back off up to 4x the poll interval (at most 2 s more), so a quiet ledger costs little.
                time.sleep(min(self.poll_s * 2 ** min(quiet_polls, 2), self.poll_s + 2.0))

    def _publish(self, step: Step, producer, codec, state) -> None:
        at = step.judged_at
        records = [(f.finding_id, codec.encode("Finding", finding_message(f, at)), b"Finding") for f in step.findings]
        records += [(w.finding.finding_id, codec.encode("FindingRetracted", retraction_message(w, at)),
                     b"FindingRetracted") for w in step.withdrawn]
        while records:
            try:
                for key, value, kind in records:
                    producer.send(self.topic, key=key.encode("ascii"), value=value, headers=[("message_type", kind)])
                producer.flush(30.0)
                break
            except BrokerError as err:  # nothing is committed: send the same records again (same ids)
                if self._stopping:
                    raise
                self._say(f"publishing failed ({err}); retrying")
                time.sleep(max(self.poll_s, 1.0))
        wall = time.monotonic()
        if not step.timed:
            if wall - self._committed < self.judge.tick_s or self.stats.judged_at is None:
                return  # an idle poll changed nothing: no write (and no fsync)
            # A heartbeat every tick_s (what --health checks): the last instant judged, committed again.
            state.commit(position=state.get("position") or "", judged_at=time_text(self.stats.judged_at),
                         added={}, removed=[], late=step.late, committed_at=time_text(datetime.now(UTC)))
            self._committed = wall
            return
        position = "" if step.position is None else json.dumps(list(step.position))
        state.commit(position=position, judged_at=time_text(at),
                     added={f.finding_id: f.as_json() for f in step.findings},
                     removed=[w.finding.finding_id for w in step.withdrawn], late=step.late,
                     committed_at=time_text(datetime.now(UTC)),
                     counters={"rebuilds": self.judge.rebuilds, "rewinds": self.judge.rewinds,
                               "fed": self.stats.fed + step.fed, "pending": step.pending})
        self._committed = wall
        self.judge.accept(step)
        s = self.stats
        s.fed += step.fed
        s.published += len(step.findings)
        s.retracted += len(step.withdrawn)
        s.rebuilds = self.judge.rebuilds
        s.steps += 1
        s.judged_at = at
        s.standing = len(self.judge.published)
        if not step.empty:
            self._say(f"{len(step.findings)} published, {len(step.withdrawn)} retracted; {s.standing} standing; "
                      f"judged at {time_text(at)}")

    def _summary(self) -> str:
        s = self.stats
        return (f"{s.fed} entries judged, {s.published} findings published, {s.retracted} retracted, "
                f"{s.standing} standing, {s.rebuilds} rebuild(s), {self.judge.rewinds} rewind(s); judged at "
                f"{time_text(s.judged_at) if s.judged_at else '-'}; state {self.state_path}")


__all__ = [
    "FindingsService",
    "LiveJudge",
    "ServiceStats",
    "Step",
    "Withdrawn",
    "default_state_path",
    "finding_message",
    "finding_of",
    "retraction_message",
]
