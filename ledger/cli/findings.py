"""`ledger findings`: every event that breaks a promise of the policy in force, with its evidence.

Exit status: 0 nothing broken, 1 something broken, 2 an error (a refused or
missing policy included: a malformed policy never yields "no findings").
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import sys

from .query import open_ledger, quiet_broken_pipe

EPILOG = """\
The policy in force is the one the ledger recorded (`ledger policy publish`);
--policy FILE judges a draft without recording it. Time-based rules (overdue
notices, break-glass reviews, delays) are judged at --as-of, else now; the
instant is printed with the answer. --as-of T gives the findings as the
ledger stood at recorded time T.

examples:
  ledger findings
  ledger findings --policy examples/policy.toml --format json
  ledger findings --as-of 2026-03-31T23:59:59Z --rule consent.marketing
"""

FIELDS = ("finding_id", "rule", "kind", "severity", "sentence", "subjects", "event_ids", "policy_sha256",
          "policy_version")


def register(subparsers, common) -> None:
    p = subparsers.add_parser("findings", parents=[common], help="events that break the policy's promises",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", metavar="FILE", help="judge by this draft policy instead of the recorded one")
    p.add_argument("--as-of", metavar="T", help="the ledger as it stood at recorded time T; rules judged at T")
    p.add_argument("--since", metavar="T", help="only findings about events that occurred at or after T")
    p.add_argument("--until", metavar="T", help="only findings about events that occurred before T")
    p.add_argument("--rule", action="append", metavar="ID", help="only this rule (repeatable; a prefix "
                                                                 "such as consent. matches its rules)")
    p.add_argument("--subject", metavar="ID", help="only findings naming this customer")
    p.add_argument("--actor", metavar="ID", help="only findings about events by this actor")
    p.add_argument("--recipient", metavar="ID", help="only findings about shares or disclosures to this recipient")
    p.add_argument("--format", choices=("table", "json", "csv", "html"), default="table")
    p.set_defaults(func=run)


def _selected(args, run, findings: list) -> list:
    from ledger.audit.findings.select import select
    from ledger.model.times import parse_time

    since = parse_time(args.since, option="--since") if args.since else None
    until = parse_time(args.until, option="--until") if args.until else None
    return select(run, findings, rules=args.rule, subject=args.subject, actor=args.actor,
                  recipient=args.recipient, since=since, until=until)


@quiet_broken_pipe
def run(args) -> int:
    from ledger.audit.findings import current
    from ledger.audit.findings.recorded import judge_ledger
    from ledger.errors import LedgerError
    from ledger.model.events import time_text
    from ledger.model.policy import load

    try:
        draft = load(args.policy) if args.policy else None
        ledger = open_ledger(args)
        try:
            result = judge_ledger(ledger, as_of=args.as_of, draft=draft)
        finally:
            ledger.close()
        findings = _selected(args, result, current(result.results))
    except LedgerError as err:
        print(f"ledger findings: error: {err}", file=sys.stderr)
        return 2
    policy = result.policies[-1]
    judged_at = time_text(result.judged_at)
    rows = [f.as_json() for f in findings]
    if args.format == "json":
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=2)
        print()
    elif args.format == "csv":
        from ledger.audit.report.inert import csv_cell

        w = csv.writer(sys.stdout, lineterminator="\r\n")  # CRLF: a bare CR in a cell is then quoted
        w.writerow(FIELDS)
        for r in rows:
            w.writerow([csv_cell(" ".join(r[k]) if isinstance(r[k], list) else str(r[k])) for k in FIELDS])
    elif args.format == "html":
        print("<!doctype html><meta charset=utf-8><title>Findings</title><table><tr>"
              + "".join(f"<th>{k}</th>" for k in FIELDS) + "</tr>")
        for r in rows:
            print("<tr>" + "".join(f"<td>{html.escape(' '.join(r[k]) if isinstance(r[k], list) else str(r[k]))}"
                                   "</td>" for k in FIELDS) + "</tr>")
        print("</table>")
    else:
        for r in rows:
            print(f"{r['kind']:<13} {r['severity']:<8} {r['rule']:<26} {r['sentence']}  [{r['finding_id']}]")
    broken = sum(1 for f in findings if f.kind == "broken")
    summary = (f"{broken} broken, {len(findings) - broken} not judgeable; policy {policy.name!r} version "
               f"{policy.version} sha256 {policy.sha256}; time rules judged at {judged_at}")
    print(summary, file=sys.stderr if args.format != "table" else sys.stdout)
    return 1 if broken else 0
