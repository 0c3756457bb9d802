"""`ledger emit`: send events given as JSON lines."""

from __future__ import annotations

import argparse
import json
import sys

from . import settings_from

EPILOG = """\
Each line is one event: the schema's fields by name plus "type". A line
without "event_id" gets one derived from its content, so re-running a
corrected file records nothing twice.

example:
  ledger emit events.jsonl
  echo '{"type": "ConsentChanged", ...}' | ledger emit --all-or-nothing
"""


def register(subparsers, common) -> None:
    p = subparsers.add_parser("emit", parents=[common], help="send events given as JSON lines",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", default="-", help="JSON-lines file (default: stdin)")
    p.add_argument("--all-or-nothing", action="store_true", help="send nothing unless every line is valid")
    p.add_argument("--durable", metavar="OUTBOX", help="go through a local outbox file (durable mode)")
    p.set_defaults(func=run)


def read_lines(args) -> list[str]:
    if args.file == "-":
        return sys.stdin.read().splitlines()
    with open(args.file, encoding="utf-8") as fh:
        return fh.read().splitlines()


def parse(lines: list[str]):
    """Split lines into ``(line_number, event)`` valid ones and ``(line_number, error_text)`` rejected ones."""
    from ..errors import ValidationError
    from ..events import derive_event_id, validate

    valid, rejected = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            rejected.append((number, f"not JSON: {err}"))
            continue
        if not isinstance(obj, dict):
            rejected.append((number, "not a JSON object"))
            continue
        try:
            if obj.get("event_id") is None:
                obj = {**obj, "event_id": derive_event_id(obj)}
            valid.append((number, validate(obj)))
        except ValidationError as err:
            rejected.append((number, str(err)))
    return valid, rejected


def run(args) -> int:
    from ..producer import AuditProducer

    valid, rejected = parse(read_lines(args))
    for number, reason in rejected:
        print(f"line {number}: {reason}", file=sys.stderr)
    if rejected and args.all_or_nothing:
        print(f"sent 0, rejected {len(rejected)} (--all-or-nothing: nothing sent)")
        return 1
    sent = 0
    if valid:
        with AuditProducer(settings_from(args), durable=args.durable) as producer:
            deliveries = [producer.emit(event) for _, event in valid]
            producer.flush()
            for delivery in deliveries:
                delivery.result()
                sent += 1
    print(f"sent {sent}, rejected {len(rejected)}")
    return 1 if rejected else 0
