"""`ledger who-saw`, `disclosures`, `accesses`, `conflicts`, `obligations`: the auditors' questions.

Each command opens the ledger read-only, calls one function of
:mod:`ledger.query` or :mod:`ledger.obligations` and streams the rows out.
Nothing here imports Kafka.
"""

from __future__ import annotations

import argparse
import sys

from . import settings_from

TIMES = """\
Times are ISO-8601 with an offset (2026-03-01T00:00:00Z, 2026-03-01T01:00:00+01:00);
output is UTC. --since is inclusive and --until exclusive, on event time
(occurred_at). --as-of T answers as the ledger stood at recorded time T: only
entries whose Kafka timestamp is <= T count, the same in a live and a replayed ledger.
"""


def _parser(subparsers, common, name: str, help_text: str, epilog: str):
    return subparsers.add_parser(name, parents=[common], help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
                                 epilog=epilog + "\n" + TIMES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def _window(p, *, as_of: bool = True) -> None:
    p.add_argument("--since", metavar="T", help="only events at or after T (inclusive)")
    p.add_argument("--until", metavar="T", help="only events before T (exclusive)")
    if as_of:
        p.add_argument("--as-of", metavar="T", help="as the ledger stood at recorded time T")


def _format(p, choices=("table", "json", "csv")) -> None:
    p.add_argument("--format", choices=choices, default="table", help="output format (default table)")


def register(subparsers, common) -> None:
    p = _parser(subparsers, common, "who-saw", "every access, sharing and legal disclosure that touched a customer",
                "Newest first. json is one array of objects keyed by the schemas' field names\n"
                "plus type, labels (purpose and data-category labels) and recorded_at.\n\n"
                "example:\n  ledger who-saw cust-000042 --since 2026-01-01T00:00:00Z --format json\n"
                "  ledger who-saw cust-000042 --type LegalDisclosure --type DataShared\n")
    p.add_argument("subject", help="customer id")
    _window(p)
    p.add_argument("--type", action="append", dest="types", metavar="TYPE",
                   help="DataAccessed, DataShared or LegalDisclosure (repeatable; default all three)")
    p.add_argument("--actor", help="only what this actor id did")
    p.add_argument("--purpose", help="only this purpose code and its dotted children (e.g. marketing)")
    _format(p)
    p.set_defaults(func=run_who_saw)

    p = _parser(subparsers, common, "disclosures", "what went to whom: shares with third parties and legal disclosures",
                "Newest first, one row per disclosure with its number of customers;\n"
                "--summary gives one row per recipient (events, distinct customers, first, last).\n\n"
                "example:\n  ledger disclosures --kind REGULATOR --since 2026-01-01T00:00:00Z\n"
                "  ledger disclosures --recipient rcpt-adreach --summary\n")
    p.add_argument("--recipient", metavar="ID", help="only this recipient id")
    p.add_argument("--kind", metavar="KIND", help="only this recipient kind (PROCESSOR, REGULATOR, OTHER...)")
    p.add_argument("--type", action="append", dest="types", metavar="TYPE",
                   help="DataShared or LegalDisclosure (default both)")
    _window(p)
    p.add_argument("--summary", action="store_true", help="one row per recipient")
    _format(p)
    p.set_defaults(func=run_disclosures)

    p = _parser(subparsers, common, "accesses", "everything one employee or service did, denied and break-glass included",
                "The insider-investigation view, newest first.\n\n"
                "example:\n  ledger accesses --actor emp-1007 --since 2026-02-01T00:00:00Z\n")
    p.add_argument("--actor", required=True, help="actor id (employee id, service name...)")
    p.add_argument("--type", action="append", dest="types", metavar="TYPE", help="only these event types (repeatable)")
    _window(p)
    _format(p)
    p.set_defaults(func=run_accesses)

    p = _parser(subparsers, common, "conflicts", "records that reuse an event_id with other content",
                "One row per contradicting record: the event_id, the fields that differ, the\n"
                "entry (first occurrence) and the record that contradicts it (seq, type,\n"
                "topic[partition]@offset, recorded time). Byte- or content-identical repeats\n"
                "(duplicate, conflict) are not listed: they say the same thing.\n\n"
                "example:\n  ledger conflicts\n  ledger conflicts --as-of 2026-03-01T00:00:00Z --format json\n")
    p.add_argument("--as-of", metavar="T", help="as the ledger stood at recorded time T")
    _format(p)
    p.set_defaults(func=run_conflicts)

    p = _parser(subparsers, common, "obligations", "notices still owed to customers after legal disclosures",
                "One row per (disclosure, customer): due date, delay status, order reference\n"
                "and expiry. Overdue is judged at --as-of (default: now). Anomalies (a notice\n"
                "whose disclosure is not in the ledger, a status change from a service that is\n"
                "not an authority for the case, one dated before its disclosure...) change\n"
                "nothing and are listed on stderr, or under \"anomalies\" with --format json.\n\n"
                "example:\n  ledger obligations --overdue\n"
                "  ledger obligations --as-of 2026-03-01T00:00:00Z --format json\n")
    p.add_argument("--as-of", metavar="T", help="as the ledger stood at recorded time T, judged at T")
    p.add_argument("--overdue", action="store_true", help="only overdue notices")
    _format(p)
    p.set_defaults(func=run_obligations)


def open_ledger(args):
    from ..store import READER_CACHE_KIB, Ledger

    return Ledger.open(settings_from(args).db, readonly=True, cache_kib=READER_CACHE_KIB)


def quiet_broken_pipe(run):
    """A reader that stops early (``| head``) ends the command quietly, exit 0, like other Unix tools."""
    import functools
    import os

    @functools.wraps(run)
    def wrapper(args) -> int:
        try:
            code = run(args)
            sys.stdout.flush()
            return code
        except BrokenPipeError:
            # Python would complain again when flushing stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    return wrapper


@quiet_broken_pipe
def run_who_saw(args) -> int:
    from ledger.audit.query import who_saw
    from ledger.audit.report.columns import EVENT_CSV, WHO_SAW_TABLE
    from ledger.audit.report.tabular import write_rows

    with open_ledger(args) as ledger:
        rows = who_saw(ledger, args.subject, since=args.since, until=args.until, types=args.types,
                       actor=args.actor, purpose=args.purpose, as_of=args.as_of)
        write_rows(rows, args.format, EVENT_CSV if args.format == "csv" else WHO_SAW_TABLE, sys.stdout)
    return 0


@quiet_broken_pipe
def run_disclosures(args) -> int:
    from ledger.audit.query import disclosures, summarize_disclosures
    from ledger.audit.report.columns import DISCLOSURES_TABLE, EVENT_CSV, SUMMARY_COLUMNS
    from ledger.audit.report.tabular import write_rows

    with open_ledger(args) as ledger:
        rows = disclosures(ledger, recipient=args.recipient, kind=args.kind, since=args.since,
                           until=args.until, types=args.types, as_of=args.as_of)
        if args.summary:
            write_rows(summarize_disclosures(rows), args.format, SUMMARY_COLUMNS, sys.stdout)
        else:
            write_rows(rows, args.format, EVENT_CSV if args.format == "csv" else DISCLOSURES_TABLE, sys.stdout)
    return 0


@quiet_broken_pipe
def run_accesses(args) -> int:
    from ledger.audit.query import accesses
    from ledger.audit.report.columns import ACCESSES_TABLE, EVENT_CSV
    from ledger.audit.report.tabular import write_rows

    with open_ledger(args) as ledger:
        rows = accesses(ledger, args.actor, since=args.since, until=args.until, types=args.types, as_of=args.as_of)
        write_rows(rows, args.format, EVENT_CSV if args.format == "csv" else ACCESSES_TABLE, sys.stdout)
    return 0


@quiet_broken_pipe
def run_conflicts(args) -> int:
    from ledger.audit.query import contradictions
    from ledger.audit.report.columns import CONFLICT_COLUMNS
    from ledger.audit.report.tabular import write_rows

    with open_ledger(args) as ledger:
        write_rows(contradictions(ledger, as_of=args.as_of), args.format, CONFLICT_COLUMNS, sys.stdout)
    return 0


@quiet_broken_pipe
def run_obligations(args) -> int:
    import json

    from ledger.audit.obligations import judgement_time, obligations
    from ledger.audit.report.columns import OBLIGATION_COLUMNS
    from ledger.audit.report.inert import json_inert, terminal_text
    from ledger.audit.report.tabular import write_json_array, write_rows
    from ledger.model.times import iso

    with open_ledger(args) as ledger:
        notices, anomalies = obligations(ledger, as_of=args.as_of, overdue_only=args.overdue)
        judged = iso(judgement_time(args.as_of))
        out = sys.stdout
        if args.format == "json":
            # One object: the streamed notices array, then the anomalies.
            out.write(json.dumps({"judged_at": judged, "as_of": args.as_of, "time_zone": "UTC"})[:-1])
            out.write(', "notices": ')
            write_json_array(notices, out, lambda n: n.as_dict())
            out.write(', "anomalies": ' + json_inert(json.dumps(anomalies, ensure_ascii=False, sort_keys=True)) + "}\n")
            return 0
        if args.format == "table":
            out.write(f"Notices owed, judged at {judged} (UTC)"
                      + (f", ledger as recorded by {args.as_of}" if args.as_of else "") + "\n\n")
        write_rows(notices, args.format, OBLIGATION_COLUMNS, out)
        for a in anomalies:
            print(terminal_text(f"anomaly: {a['kind']}: {a['message']} (event {a['event_id']}, recorded "
                                f"{a['recorded_at']}; customers {', '.join(a['subject_ids'])})"), file=sys.stderr)
    return 0
