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

--follow runs the live findings service beside the writer: it reads the
ledger as it grows, judges with the same rules (the same findings, the same
finding_ids) and publishes each new finding to {prefix}findings (Avro,
key = finding_id), and a FindingRetracted when later evidence clears one.
Its position and published findings live in --state (default
<db>.findings-state), written after each publish: after a crash it resumes
without losing a finding, and may publish one again with the same id
(consumers de-duplicate on finding_id).

examples:
  ledger findings
  ledger findings --policy examples/policy.toml --format json
  ledger findings --as-of 2026-03-31T23:59:59Z --rule consent.marketing
  ledger findings --follow                       # the live service (python -m consumers.findings)
  ledger findings --follow --until-idle          # publish what the ledger holds now, then exit
  ledger findings --health --state /state/ledger.db.findings-state   # the compose healthcheck
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
    live = p.add_argument_group("live service (--follow)")
    live.add_argument("--follow", action="store_true", help="run the live findings service: publish findings "
                                                           "to {prefix}findings as the ledger grows")
    live.add_argument("--state", metavar="PATH", help="its state file (default <db>.findings-state)")
    live.add_argument("--until-idle", action="store_true", help="exit once everything recorded is published")
    live.add_argument("--tick", type=float, default=10.0, metavar="S",
                      help="judge time rules (deadlines) at least every S seconds (default 10)")
    live.add_argument("--poll-interval", type=float, default=0.5, metavar="S",
                      help="seconds between reads of the ledger (default 0.5)")
    live.add_argument("--idle-after", type=float, default=10.0, metavar="S",
                      help="a partition silent this long no longer holds back judging (default 10)")
    live.add_argument("--quiet", action="store_true", help="no progress lines")
    live.add_argument("--health", action="store_true",
                      help="check the service's --state instead (a container healthcheck): exit 0 when it "
                           "committed within --max-age, 1 when not")
    live.add_argument("--max-age", type=float, default=60.0, metavar="S",
                      help="--health: the longest time since the service's last commit (default 60; it "
                           "commits at least every --tick)")
    p.set_defaults(func=run)


#: Options that only the batch answer takes: refused with --follow rather than silently ignored.
BATCH_ONLY = ("as_of", "since", "until", "rule", "subject", "actor", "recipient")
LIVE_ONLY = ("state", "until_idle", "quiet")


def health(args) -> int:
    """``--health``: is the live service alive? Its state file's last commit (a heartbeat at least every
    --tick) is at most --max-age old. Says how far the judged instant trails and what waits."""
    from datetime import UTC, datetime

    from ledger.audit.findings.live import default_state_path
    from ledger.errors import LedgerError
    from ledger.model.times import parse_time
    from ledger.store.findings_state import read_meta

    from . import settings_from

    if not args.max_age > 0:
        print(f"ledger findings: error: --max-age must be a positive number of seconds, not {args.max_age}",
              file=sys.stderr)
        return 2
    path = args.state or default_state_path(settings_from(args).db)
    try:
        meta = read_meta(path)
    except LedgerError as err:
        print(f"unhealthy: {err}")
        return 1
    if not meta.get("committed_at"):
        print(f"unhealthy: {path} has no commit yet (waiting for a policy, or still judging the ledger at start)")
        return 1
    now = datetime.now(UTC)
    age = (now - parse_time(meta["committed_at"])).total_seconds()
    trails = (parse_time(meta["committed_at"]) - parse_time(meta["judged_at"])).total_seconds()
    words = (f"last commit {age:.0f} s ago; judged at {meta['judged_at']} ({trails:.0f} s behind that commit); "
             f"{meta.get('late_pending', '0')} late entries waiting")
    if age > args.max_age:
        print(f"unhealthy: {words}; more than --max-age {args.max_age:g} s")
        return 1
    print(f"healthy: {words}")
    return 0


def follow(args) -> int:
    from ledger.audit.findings.live import FindingsService
    from ledger.errors import LedgerError
    from ledger.model.policy import load

    from . import settings_from

    given = [f"--{name.replace('_', '-')}" for name in BATCH_ONLY if getattr(args, name)]
    if args.format != "table":
        given.append("--format")
    if given:
        print(f"ledger findings: error: {', '.join(given)} cannot be used with --follow (the service publishes "
              "every finding; filter on the topic's consumer side)", file=sys.stderr)
        return 2
    for name in ("tick", "poll_interval", "idle_after"):
        if not getattr(args, name) > 0:
            print(f"ledger findings: error: --{name.replace('_', '-')} must be a positive number of seconds, "
                  f"not {getattr(args, name)}", file=sys.stderr)
            return 2
    try:
        draft = load(args.policy) if args.policy else None
        service = FindingsService(settings_from(args), draft=draft, state_path=args.state, poll_s=args.poll_interval,
                                  tick_s=args.tick, idle_after_s=args.idle_after, quiet=args.quiet)
        stats = service.run(until_idle=args.until_idle)
    except LedgerError as err:
        print(f"ledger findings: error: {err}", file=sys.stderr)
        return 2
    print(f"published {stats.published:,} finding(s), retracted {stats.retracted:,}; {stats.standing:,} standing")
    return 0


def _selected(args, run, findings: list) -> list:
    from ledger.audit.findings.select import select
    from ledger.model.times import parse_time

    since = parse_time(args.since, option="--since") if args.since else None
    until = parse_time(args.until, option="--until") if args.until else None
    return select(run, findings, rules=args.rule, subject=args.subject, actor=args.actor,
                  recipient=args.recipient, since=since, until=until)


@quiet_broken_pipe
def run(args) -> int:
    if args.health:
        return health(args)
    if args.follow:
        return follow(args)
    given = [f"--{name.replace('_', '-')}" for name in LIVE_ONLY if getattr(args, name)]
    if given:
        print(f"ledger findings: error: {', '.join(given)} only with --follow", file=sys.stderr)
        return 2
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
