"""Per promise (rule): kept, broken, not judgeable, with counts: the table `make demo` and reports print.

    rows = promise_rows(run)            # run from judge_ledger
    print("\\n".join(promise_table(rows)))
"""

from __future__ import annotations

from ledger.model.policy.model import RULES

from .evaluate import current, tally


def promise_rows(run) -> list[dict]:
    """One row per rule judged or broken: rule, what it checks, judged, kept, broken, not_judgeable."""
    counts = tally(run.judged, current(run.results))
    rows = []
    for rule, c in counts.items():
        checks = RULES.get(rule, (None, "consent for this purpose" if rule.startswith("consent.") else ""))[1]
        rows.append({"rule": rule, "checks": checks, **c})
    return rows


def promise_table(rows: list[dict]) -> list[str]:
    """The rows as aligned text lines (a header, one line per rule)."""
    lines = [f"{'rule':<28} {'judged':>7} {'kept':>7} {'broken':>7} {'not judgeable':>13}"]
    for r in rows:
        lines.append(f"{r['rule']:<28} {r['judged']:>7,} {r['kept']:>7,} {r['broken']:>7,} {r['not_judgeable']:>13,}")
    return lines
