"""Findings over a ledger file: its events in recorded order, judged by the recorded policy in force.

    run = judge_ledger(ledger, as_of=None, now=None, draft=None)
    run.results      # Finding / Retraction in order; current(run.results) is what stands
    run.judged_at    # the instant time-based rules were judged at (as_of, else now)

The policy in force is the latest PolicyPublished recorded before an event
(``ledger policy publish``); a later one takes over from its recorded time,
with the consent histories and legal cases gathered so far (they are facts,
not policy). Events recorded before the first policy feed that state but
are not judged: no promise was stated yet. ``draft`` (``--policy FILE``)
judges the whole ledger by one unrecorded policy instead. No policy at all
is a PolicyError: an empty answer must never mean "nothing broken".
``as_of`` stops at recorded time T, so the answer is the ledger as it stood.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ledger.errors import PolicyError
from ledger.model import events as ev
from ledger.model.policy import Policy, policy_of
from ledger.model.times import parse_as_of, to_millis
from ledger.store.findings_reads import recorded_events, recorded_policies

from .evaluate import Evaluator
from .model import Finding, Retraction


@dataclass
class LedgerRun:
    results: list = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)  # in force, in order (the last judged the end)
    judged: Counter = field(default_factory=Counter)
    judged_at: datetime | None = None
    #: finding_id -> (actor_id, recipient_id | None, occurred_at) of the judged event, for --actor / --recipient
    about: dict[str, tuple] = field(default_factory=dict)


def event_of(json_text: str) -> dict:
    """A stored event's JSON form back as a normalized event (datetimes, every field)."""
    return ev.validate(json.loads(json_text))


def _about(event: dict) -> tuple:
    return event["actor"]["id"], (event.get("recipient") or {}).get("id"), event["occurred_at"]


def handover(old: Evaluator, policy: Policy) -> Evaluator:
    """A new evaluator for ``policy`` carrying ``old``'s facts (consents, notices, cases, open findings)."""
    new = Evaluator(policy)
    for name in ("consents", "notice_versions", "open_consent", "glass", "reviews", "cases", "judged"):
        setattr(new, name, getattr(old, name))
    return new


class LedgerJudge:
    """The batch judge as a stream: ``feed`` a ledger's entries in recorded order, then ``finish(at)``.

    ``first`` is the first policy the ledger recorded (its facts are gathered
    with it from the start, judging starts at its entry) or, with
    ``draft=True``, a draft that judges everything and ignores recorded ones.
    ``judge_ledger`` and the live service (live.py) both judge through it,
    so both give the same findings with the same ids.
    """

    def __init__(self, first: Policy, *, draft: bool = False, track_about: bool = True):
        self.evaluator = Evaluator(first)
        self.draft = draft
        self.judging = draft
        self.policies: list[Policy] = [first]
        self.track_about = track_about
        self.about: dict[str, tuple] = {}
        #: The last event fed (a normalized dict), for callers that look at what arrived.
        self.last_event: dict | None = None

    def clone(self) -> LedgerJudge:
        """An independent copy: feeding one never changes the other (see :meth:`Evaluator.clone`)."""
        new = LedgerJudge.__new__(LedgerJudge)
        new.evaluator = self.evaluator.clone()
        new.draft, new.judging, new.track_about = self.draft, self.judging, self.track_about
        new.policies = list(self.policies)
        new.about = dict(self.about)
        new.last_event = self.last_event
        return new

    def feed(self, text: str) -> list:
        """The findings and retractions one entry makes (none before the first policy's entry)."""
        event = self.last_event = event_of(text)
        if event["type"] == "PolicyPublished":
            if self.draft:
                return []
            if self.judging:
                policy = policy_of(event)
                self.evaluator = handover(self.evaluator, policy)
                self.policies.append(policy)
            else:  # the first recorded policy: the evaluator already has it; judging starts here
                self.evaluator.judged = Counter()
                self.judging = True
            return []
        out = self.evaluator.feed(event)
        if not self.judging:
            return []
        if self.track_about:
            for r in out:
                if isinstance(r, Finding):
                    self.about[r.finding_id] = _about(event)
        return out

    def finish(self, at: datetime) -> list:
        """The time-based findings at instant ``at`` (repeatable: it changes no fact)."""
        if not self.judging:
            return []
        out = self.evaluator.finish(at)
        if self.track_about:
            ev_ = self.evaluator
            earlier = {e["event_id"]: e for e in ev_.glass}
            earlier.update((k, c.disclosure) for k, c in ev_.cases.items() if c.disclosure is not None)
            for r in out:
                if isinstance(r, Finding) and r.event_ids[0] in earlier:
                    self.about[r.finding_id] = _about(earlier[r.event_ids[0]])
        return out


def first_policy(source, *, until_ms: int | None = None, upto_seq: int | None = None) -> Policy | None:
    """The first policy the ledger recorded (by ``until_ms``), or None."""
    recorded = recorded_policies(source, until_ms=until_ms, upto_seq=upto_seq)
    return policy_of(json.loads(recorded[0][0])) if recorded else None


NO_POLICY = ("no policy is recorded in this ledger (by the --as-of time); publish one with "
             "`ledger policy publish FILE` or judge a draft with --policy FILE")


def judge_ledger(source, *, as_of=None, now=None, draft: Policy | None = None) -> LedgerRun:
    """Every finding and retraction the ledger's events make, see the module docstring."""
    until = None if as_of is None else to_millis(parse_as_of(as_of))
    judged_at = parse_as_of(now) if now is not None else (
        parse_as_of(as_of) if as_of is not None else datetime.now(timezone.utc))
    run = LedgerRun(judged_at=judged_at)
    first = draft if draft is not None else first_policy(source, until_ms=until)
    if first is None:
        raise PolicyError(NO_POLICY, None, None)
    judge = LedgerJudge(first, draft=draft is not None)
    for text, *_ in recorded_events(source, until_ms=until):
        run.results.extend(judge.feed(text))
    run.results.extend(judge.finish(judged_at))
    run.policies = judge.policies
    run.about = judge.about
    run.judged = judge.evaluator.judged
    return run


__all__ = ["judge_ledger", "LedgerJudge", "LedgerRun", "event_of", "first_policy", "handover", "Retraction"]
