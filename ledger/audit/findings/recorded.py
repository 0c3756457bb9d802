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


def judge_ledger(source, *, as_of=None, now=None, draft: Policy | None = None) -> LedgerRun:
    """Every finding and retraction the ledger's events make, see the module docstring."""
    until = None if as_of is None else to_millis(parse_as_of(as_of))
    judged_at = parse_as_of(now) if now is not None else (
        parse_as_of(as_of) if as_of is not None else datetime.now(timezone.utc))
    run = LedgerRun(judged_at=judged_at)
    recorded = [] if draft is not None else recorded_policies(source, until_ms=until)
    if draft is None and not recorded:
        raise PolicyError("no policy is recorded in this ledger (by the --as-of time); publish one with "
                          "`ledger policy publish FILE` or judge a draft with --policy FILE", None, None)
    pending = [((ts, topic, part, off), policy_of(json.loads(text))) for text, ts, topic, part, off in recorded]
    evaluator = Evaluator(draft if draft is not None else pending[0][1])
    judging = draft is not None
    run.policies.append(evaluator.policy)
    for text, ts, topic, part, off in recorded_events(source, until_ms=until):
        where = (ts, topic, part, off)
        if pending and where >= pending[0][0]:
            _, policy = pending.pop(0)
            if judging:
                evaluator = handover(evaluator, policy)
                run.policies.append(policy)
            else:  # the first recorded policy: the evaluator already has it; judging starts here
                evaluator.judged = Counter()
                judging = True
            continue
        event = event_of(text)
        if event["type"] == "PolicyPublished":
            continue
        out = evaluator.feed(event)
        if judging:
            for r in out:
                run.results.append(r)
                if isinstance(r, Finding):
                    run.about[r.finding_id] = _about(event)
    if judging:
        earlier = {e["event_id"]: e for e in evaluator.glass}
        earlier.update((k, c.disclosure) for k, c in evaluator.cases.items() if c.disclosure is not None)
        for r in evaluator.finish(judged_at):
            run.results.append(r)
            if isinstance(r, Finding) and r.event_ids[0] in earlier:
                run.about[r.finding_id] = _about(earlier[r.event_ids[0]])
    run.judged = evaluator.judged
    return run


__all__ = ["judge_ledger", "LedgerRun", "event_of", "handover", "Retraction"]
