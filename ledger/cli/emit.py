"""`ledger emit`: send events given as JSON lines.

Output contract: one ``line N: field: reason`` line on stderr per line that is
not sent, and a final ``sent N, rejected M`` on stdout. Every line is read,
decoded, validated, encoded and size-checked before anything is sent, so a
bad line (not UTF-8, not JSON, nested too deep, invalid, too large for one
Kafka request) never stops the others.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import settings_from

EPILOG = """\
Each line is one event: the schema's fields by name plus "type". A line
without "event_id" gets one derived from its content, so re-running a
corrected file records nothing twice. Each line that is not sent gets one
"line N: field: reason" line on stderr; the last line is "sent N, rejected M".
An event must encode to at most 1 MiB on the wire (one Kafka request).

example:
  ledger emit events.jsonl
  echo '{"type": "ConsentChanged", ...}' | ledger emit --all-or-nothing
"""

_BOM = b"\xef\xbb\xbf"


def register(subparsers, common) -> None:
    p = subparsers.add_parser("emit", parents=[common], help="send events given as JSON lines",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", default="-", help="JSON-lines file (default: stdin)")
    p.add_argument("--all-or-nothing", action="store_true", help="send nothing unless every line is valid")
    p.add_argument("--durable", metavar="OUTBOX", help="go through a local outbox file (durable mode)")
    p.set_defaults(func=run)


def read_lines(args) -> list[bytes]:
    """The input's lines as bytes: each is decoded on its own, so one bad byte costs one line.

    Split on LF only (CRLF tolerated): ``str.splitlines`` would also split inside a JSON string
    holding U+2028 or U+0085, which JSON allows unescaped.
    """
    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        from ..errors import ValidationError

        try:
            with open(args.file, "rb") as fh:
                data = fh.read()
        except OSError as err:
            raise ValidationError("file", f"cannot read {args.file}: {err.strerror}") from None
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    return [line[:-1] if line.endswith(b"\r") else line for line in data.split(b"\n")]


def _text(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Rejected(f"not UTF-8: byte 0x{line[err.start]:02x} at column {err.start + 1} ({err.reason})") from None


class _Rejected(Exception):
    """One input line cannot be sent; the message is the text after ``line N: ``."""


def _event(text: str) -> dict:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise _Rejected(f"not JSON: {err}") from None
    except RecursionError:
        raise _Rejected("not JSON the ledger reads: nested too deeply") from None
    if not isinstance(obj, dict):
        raise _Rejected("not a JSON object")
    return obj


def parse(lines: list[bytes | str], *, codec=None, prefix: str = "ledger."):
    """Split lines into ``(line_number, event)`` valid ones and ``(line_number, error_text)`` rejected ones.

    Valid means it would be sent as it is: validated, encoded, and small enough for one request.
    """
    from ledger.model.events import derive_event_id
    from ledger.produce.producer import wire_record
    from ledger.wire.codec import default_codec

    from ..errors import ValidationError

    codec = codec or default_codec()
    valid, rejected = [], []
    for number, line in enumerate(lines, start=1):
        try:
            text = _text(line) if isinstance(line, bytes) else line
            if not text.strip():
                continue
            obj = _event(text)
            if obj.get("event_id") is None:
                obj = {**obj, "event_id": derive_event_id(obj)}
            event = codec.validate(obj)
            wire_record(event, codec, prefix)  # encodes and checks the size; the producer does it again
            valid.append((number, event))
        except _Rejected as err:
            rejected.append((number, str(err)))
        except ValidationError as err:
            rejected.append((number, str(err)))
        except RecursionError:
            rejected.append((number, "nested too deeply"))
    return valid, rejected


def run(args) -> int:
    from ledger.produce.producer import AuditProducer

    from ..errors import BrokerError

    settings = settings_from(args)
    valid, rejected = parse(read_lines(args), prefix=settings.topic_prefix)
    for number, reason in rejected:
        print(f"line {number}: {reason}", file=sys.stderr)
    if rejected and args.all_or_nothing:
        print(f"sent 0, rejected {len(rejected)} (--all-or-nothing: nothing sent)")
        return 1
    sent, failed = 0, 0
    if valid:
        try:
            with AuditProducer(settings, durable=args.durable) as producer:
                deliveries = [(number, producer.emit(event)) for number, event in valid]
                producer.flush()
                for number, delivery in deliveries:
                    try:
                        delivery.result()
                        sent += 1
                    except BrokerError as err:
                        failed += 1
                        print(f"line {number}: (delivery): {err}", file=sys.stderr)
        except BrokerError as err:
            # The summary line is part of the contract even when Kafka goes away mid-file.
            print(f"ledger emit: error: {err}", file=sys.stderr)
            print(f"sent {sent}, rejected {len(rejected)}, not sent {len(valid) - sent}")
            return 1
    print(f"sent {sent}, rejected {len(rejected) + failed}")
    return 1 if rejected or failed else 0
