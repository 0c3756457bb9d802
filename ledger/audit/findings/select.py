"""The filters of ``ledger findings`` (and ``GET /v1/findings``): one definition for both.

    kept = select(run, current(run.results), rules=["consent."], subject="cust-1")

A rule ending in ``.`` matches every rule below it; ``since`` (inclusive) and ``until``
(exclusive) are on the time the finding's event occurred; actor and recipient are the
event's, as ``judge_ledger`` noted them in ``run.about``.
"""

from __future__ import annotations

from datetime import datetime


def rule_matches(rule: str, wanted) -> bool:
    return any(rule == r or (r.endswith(".") and rule.startswith(r)) for r in wanted)


def select(run, findings: list, *, rules=None, subject: str | None = None, actor: str | None = None,
           recipient: str | None = None, since: datetime | None = None, until: datetime | None = None) -> list:
    """The findings that pass every filter given (None: no filter)."""
    out = []
    for f in findings:
        if rules and not rule_matches(f.rule, rules):
            continue
        if subject and subject not in f.subjects:
            continue
        about = run.about.get(f.finding_id) or (None, None, None)
        if actor and about[0] != actor:
            continue
        if recipient and about[1] != recipient:
            continue
        occurred = about[2]
        if occurred is not None and ((since and occurred < since) or (until and occurred >= until)):
            continue
        out.append(f)
    return out
