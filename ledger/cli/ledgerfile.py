"""`ledger head`, `verify`, `export`, `reprocess`: commands on the ledger file itself.

None of them talks to Kafka. ``head`` and ``verify`` open the file read-only
and may run while the writer appends; ``reprocess`` takes the writer lock.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import settings_from

_RAW = argparse.RawDescriptionHelpFormatter
FLAGGED_SHOWN = 10  # flagged records verify prints as examples


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "head", parents=[common], formatter_class=_RAW,
        help="print each partition's latest offset and chain hash (write them down)",
        description="Print one line per topic-partition, sorted: topic, partition, offset of the latest "
                    "entry and its chain hash (hex). Written down (or published), these let `ledger verify "
                    "--from-head` prove later that the ledger only grew.",
        epilog="example:\n  ledger head > heads-2026-03-01.txt\n  ledger head --json\n",
    )
    p.add_argument("--json", action="store_true", help='print {"heads": [{topic, partition, offset, chain_hash}]}')
    p.set_defaults(func=run_head)

    p = subparsers.add_parser(
        "verify", parents=[common], formatter_class=_RAW,
        help="recompute every hash and re-derive every decoded column and index row",
        description="Recompute every leaf and chain hash, check that offsets are accounted for, and "
                    "re-derive the JSON form, statuses and side-table rows from the raw bytes. Prints the "
                    "number of entries checked; on failure lists each bad entry (topic[partition]@offset, "
                    "seq, event_id) and what differs, and exits with status 1. Records kept as entries whose "
                    "times are implausible (a Kafka timestamp before 1970 or after 9999, an occurred_at far "
                    "from it) are counted and a few listed as 'flagged'; they do not fail verify.",
        epilog="example:\n  ledger verify\n  ledger verify --from-head heads-2026-03-01.txt\n",
    )
    p.add_argument("--from-head", metavar="FILE",
                   help="also check that the ledger still extends heads written down earlier "
                        "(output of `ledger head`, text or --json)")
    p.add_argument("--max-problems", type=int, default=100, metavar="N",
                   help="list at most N problems (all are counted; default 100)")
    p.add_argument("--schemas", metavar="DIR", help="schema directory (env LEDGER_SCHEMAS_DIR, default schemas/)")
    p.set_defaults(func=run_verify)

    p = subparsers.add_parser(
        "export", parents=[common], formatter_class=_RAW,
        help="write a consistent copy of the ledger file (SQLite backup API)",
        description="Copy the ledger to FILE through SQLite's online backup API: a consistent snapshot "
                    "even while the writer appends. FILE must not exist.",
        epilog="example:\n  ledger export /backup/ledger-2026-03-01.db\n",
    )
    p.add_argument("file", metavar="FILE", help="where to write the copy")
    flat = p.add_argument_group("--flat: a denormalized copy for sqlite-utils / Datasette (itself recorded as a read)")
    flat.add_argument("--flat", action="store_true",
                      help="one table per event type, subjects, labels, views and full-text search, read-only; "
                           "recorded as an EXPORT read of every customer in it")
    flat.add_argument("--audience", choices=("auditor", "subject"), default="auditor",
                      help="subject: leave out delayed legal disclosures, staff ids, notes and attributes")
    flat.add_argument("--as-of", metavar="T", help="as the ledger stood at recorded time T")
    flat.add_argument("--holder", metavar="ID", help="who exports (required with --flat): the recorded actor")
    flat.add_argument("--holder-type", choices=("EMPLOYEE", "AUTHORITY"), default="EMPLOYEE")
    flat.add_argument("--role", help="the holder's role (default auditor)")
    flat.add_argument("--organization", help="the holder's organisation")
    flat.add_argument("--justification", metavar="TEXT", help="why (required with --flat; recorded)")
    flat.add_argument("--outbox", metavar="PATH", help="outbox for the recorded read (default LEDGER.reads-outbox.db)")
    p.epilog += "  ledger export --flat flat.db --holder emp-1007 --justification 'audit AUD-7'\n"
    p.set_defaults(func=run_export)

    p = subparsers.add_parser(
        "reprocess", parents=[common], formatter_class=_RAW,
        help="retry rejected entries with the schemas installed now",
        description="Decode every rejected entry again with the schemas installed now and index those that "
                    "decode (status entry, duplicate, conflict or contradiction; a misrouted record stays rejected). The chain and the raw evidence are not "
                    "touched; each move is logged in reprocess_log. Needs the writer lock: stop `ledger "
                    "consume` first.",
        epilog="example:\n  ledger reprocess --schemas schemas/\n",
    )
    p.add_argument("--schemas", metavar="DIR", help="schema directory (env LEDGER_SCHEMAS_DIR, default schemas/)")
    p.set_defaults(func=run_reprocess)


def _codec(args):
    from ledger.wire.codec import Codec

    return Codec.load(args.schemas)


def run_head(args) -> int:
    from ..store import Ledger

    with Ledger.open(settings_from(args).db) as ledger:
        heads = ledger.heads()
    if args.json:
        doc = {"heads": [{"topic": h.topic, "partition": h.partition, "offset": h.offset,
                          "chain_hash": h.chain_hash.hex()} for h in heads]}
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        for head in heads:
            print(head.line())
    return 0


def run_verify(args) -> int:
    from pathlib import Path

    from ledger.audit.verify import verify_ledger

    from ..store import Ledger, read_heads

    heads = read_heads(Path(args.from_head)) if args.from_head else None
    codec = _codec(args)
    with Ledger.open(settings_from(args).db) as ledger:
        report = verify_ledger(ledger, codec=codec, expected_heads=heads, max_problems=args.max_problems)
    for note in report.notes:
        print(f"note: {note}")
    if report.flagged_count:
        # Not problems: records kept as entries whose times are implausible (ledger/model/timecheck.py). A
        # back-filled history flags thousands, so a few examples (VerifyReport.flagged has more).
        shown = report.flagged[:FLAGGED_SHOWN]
        print(f"flagged: {report.flagged_count} record(s) with implausible times (kept as entries), e.g.:")
        for flagged in shown:
            print(f"  {flagged}")
        if report.flagged_count > len(shown):
            print(f"  ... and {report.flagged_count - len(shown)} more (the auditor's report lists a customer's)")
    if report.contradictions:
        n = report.contradictions
        print(f"contradictions: {n} record{'' if n == 1 else 's'} reuse{'s' if n == 1 else ''} an event_id with "
              "other content (list them with `ledger conflicts`)")
    if report.ok:
        extra = f"; extends the {len(heads)} head(s) in {args.from_head}" if heads else ""
        print(f"ok: {report.checked} entries checked{extra}")
        return 0
    for problem in report.problems:
        print(f"BAD {problem}")
    hidden = report.problem_count - len(report.problems)
    if hidden > 0:
        print(f"... and {hidden} more problem(s) (raise --max-problems to list them)")
    print(f"verify failed: {report.problem_count} problem(s) in {report.checked} entries", file=sys.stderr)
    return 1


def run_export(args) -> int:
    from ..store import Ledger

    if args.flat:
        return run_export_flat(args)
    with Ledger.open(settings_from(args).db) as ledger:
        count = ledger.export(args.file)
    print(f"exported {count} entries to {args.file}")
    return 0


def run_reprocess(args) -> int:
    from ledger.ingest.pipeline import reprocess

    from ..store import Ledger

    codec = _codec(args)
    with Ledger.open(settings_from(args).db, readonly=False) as ledger:
        result = reprocess(ledger, codec=codec)
    moved = ", ".join(f"{n} {status}" for status, n in result.counts.items() if n) or "none"
    print(f"reprocessed {result.examined} rejected entries: moved {moved}; "
          f"{result.still_rejected} still rejected")
    return 0


def run_export_flat(args) -> int:
    from ledger.audit.flat_export import export_flat

    from ..errors import ConfigError
    from ..http.recording import ReadRecorder
    from ..http.tokens import Principal, make_holder
    from ..store import Ledger

    if not args.holder or not (args.justification or "").strip():
        raise ConfigError("--flat needs --holder ID and --justification TEXT: the export is recorded as a read")
    settings = settings_from(args)
    holder = make_holder("audit:read", args.holder, args.holder_type, args.role, args.organization)
    principal = Principal(jti=f"cli-{args.holder}", scopes=frozenset({"audit:read"}), holder=holder, expires_at=0)
    recorder = ReadRecorder(args.outbox or f"{settings.db}.reads-outbox.db", settings, source_service="ledger-export")
    try:
        with Ledger.open(settings.db) as ledger:
            counts = export_flat(ledger, args.file, audience=args.audience, as_of=args.as_of, recorder=recorder,
                                 principal=principal, justification=args.justification.strip())
        waiting = recorder.deliver(timeout=5)
    finally:
        recorder.close(timeout=0)
    print(f"exported {', '.join(f'{n} {t}' for t, n in counts.items())} to {args.file} (read-only)")
    if waiting:
        print(f"note: the record of this export waits in {recorder.outbox} until Kafka answers "
              "(`ledger outbox drain` sends it)", file=sys.stderr)
    return 0
