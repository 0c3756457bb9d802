"""`ledger keys generate`, `ledger verify-receipt` and `ledger verify-report`: keys, and checking offline.

None of these commands opens the ledger or talks to Kafka. Key files are the signed-note strings of
ledger/tlog/note.py, one per file (ledger/tlog/keyfile.py).
"""

from __future__ import annotations

import argparse
import json
import sys

_RAW = argparse.RawDescriptionHelpFormatter


def register(subparsers, common) -> None:
    keys = subparsers.add_parser(
        "keys", formatter_class=_RAW,
        help="make signing keys for checkpoints (log) or cosignatures (witness)",
        description="Key files in the signed-note format (c2sp.org/signed-note), Ed25519.",
        epilog="example:\n  ledger keys generate ledger.example.com/audit --out /etc/ledger/keys\n",
    )
    sub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser(
        "generate", formatter_class=_RAW,
        help="write NAME's signer key (.key, mode 0600) and verifier key (.vkey)",
        description="Generate an Ed25519 key named NAME and write two files in DIR, named after NAME with "
                    "every character other than letters, digits, '.', '-' and '_' replaced by '_': "
                    "<file>.key holds the signer key PRIVATE+KEY+<name>+<hex key id>+<base64(01 || seed)> "
                    "(mode 0600: keep it secret, off the ledger host's backups if you can) and <file>.vkey "
                    "the verifier key <name>+<hex key id>+<base64(type || public key)> to publish. A log key's "
                    "name is the log origin (LEDGER_LOG_ORIGIN). --cosigner makes a witness key: its vkey "
                    "carries type 04 (timestamped cosignature, c2sp.org/tlog-cosignature), so its signatures "
                    "are never taken for the log's. --report makes a report key (type 01, for "
                    "`ledger report --sign-key`): "
                    "its name must not be the log origin or a '/'-prefix of it, so it can never verify a "
                    "checkpoint. Existing files are never overwritten.",
        epilog="examples:\n  ledger keys generate ledger.example.com/audit --out keys/\n"
               "  ledger keys generate witness.example.org/w1 --out witness-keys/ --cosigner\n"
               "  ledger keys generate reports.example.com/2026 --out keys/ --report\n",
    )
    p.add_argument("name", metavar="NAME", help="key name: a schema-less URL, no spaces or '+'")
    p.add_argument("--out", metavar="DIR", required=True, help="directory to write the two files in")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--cosigner", action="store_true", help="a witness key (vkey of signature type 04)")
    kind.add_argument("--report", action="store_true",
                      help="a report key: signs ledger.report/v1 statements, never checkpoints")
    p.add_argument("--log-origin", metavar="ORIGIN",
                   help="with --report: the log origin the name must differ from (env LEDGER_LOG_ORIGIN)")
    p.set_defaults(func=run_generate)

    p = subparsers.add_parser(
        "verify-receipt", formatter_class=_RAW,
        help="check a receipt (c2sp.org/tlog-proof@v1) offline and print what the entry says",
        description="Check a receipt with no ledger file and no broker: the checkpoint's log signature "
                    "(a --vkey whose name is the checkpoint origin or a '/'-prefix of it), every cosignature "
                    "by a --witness-vkey and at least --min-witnesses of them, the entry's inclusion under "
                    "the checkpoint's root (leaf hash SHA-256(00 || extra)), and that the record decodes with "
                    "the schemas. Prints the entry's type, times, actor, subjects (the first 5; --json lists "
                    "all) and purpose and exits 0; otherwise names the check that failed and exits 1.",
        epilog="example:\n  ledger verify-receipt entry.tlog-proof --vkey ledger.example.com_audit.vkey \\\n"
               "      --witness-vkey w1.vkey --witness-vkey w2.vkey --min-witnesses 1\n",
    )
    p.add_argument("file", metavar="FILE", help="the receipt ('-' reads stdin)")
    p.add_argument("--vkey", metavar="VKEY", action="append", required=True,
                   help="the log's verifier key file (repeat during a key rotation)")
    p.add_argument("--witness-vkey", metavar="V", action="append", default=[],
                   help="a witness's verifier key file (type 04); repeatable")
    p.add_argument("--min-witnesses", metavar="K", type=int, default=0,
                   help="cosignatures by distinct known witnesses required (default 0)")
    p.add_argument("--json", action="store_true", help="print what the entry says as one JSON object")
    p.add_argument("--schemas", metavar="DIR", help="schema directory (env LEDGER_SCHEMAS_DIR, default schemas/)")
    p.set_defaults(func=run_verify_receipt)

    p = subparsers.add_parser(
        "verify-report", formatter_class=_RAW,
        help="check a report made with --proofs offline: receipts and lines, or signature and positions",
        description="Check a JSON report with proofs with no ledger file and no broker. An auditor's report: "
                    "every line's receipt verifies (log signature, cosignatures, inclusion, the record decodes) "
                    "and the line says what its record says (type, times, actor, subjects, purpose... every "
                    "field, the labels and own_action), no two lines prove one entry, and every event the "
                    "accounting lists is a proved line. A subject's report: the report signature (--report-vkey), "
                    "each checkpoint's signature and cosignatures, and every line's log position below its "
                    "checkpoint's size. Prints a summary and exits 0, or names each failing line and exits 1.",
        epilog="examples:\n  ledger verify-report proved.json --vkey ledger.example.com_audit.vkey\n"
               "  ledger verify-report signed.json --vkey ledger.example.com_audit.vkey \\\n"
               "      --report-vkey reports.example.com_2026.vkey --witness-vkey w1.vkey --min-witnesses 1\n"
               "  ledger verify-report signed.json --vkey LOG.vkey --report-vkey R.vkey --open proved-auditor.json\n",
    )
    p.add_argument("file", metavar="FILE", help="the report ('-' reads stdin)")
    p.add_argument("--vkey", metavar="VKEY", action="append", required=True,
                   help="the log's verifier key file (repeat during a key rotation)")
    p.add_argument("--report-vkey", metavar="V", action="append", default=[],
                   help="the report key's verifier key file (required for a subject report); repeatable")
    p.add_argument("--witness-vkey", metavar="V", action="append", default=[],
                   help="a witness's verifier key file (type 04); repeatable")
    p.add_argument("--min-witnesses", metavar="K", type=int, default=0,
                   help="cosignatures by distinct known witnesses required on every checkpoint (default 0)")
    p.add_argument("--open", metavar="RECEIPTS", action="append", default=[],
                   help="subject report: check the lines these receipts prove against their records (a receipt "
                        "file from `ledger prove`, or an auditor's report made with --proofs); repeatable")
    p.add_argument("--schemas", metavar="DIR", help="schema directory (env LEDGER_SCHEMAS_DIR, default schemas/)")
    p.set_defaults(func=run_verify_report)


def run_generate(args) -> int:
    from ..tlog.keyfile import write_key_pair

    if args.report:
        _check_report_key_name(args)
    key_path, vkey_path, signer = write_key_pair(args.name, args.out, cosigner=args.cosigner)
    kind = ("witness (cosignature, type 04)" if args.cosigner else
            "report (Ed25519, type 01; signs ledger.report/v1 statements)" if args.report else "log (Ed25519, type 01)")
    print(f"signer key:   {key_path}  (mode 0600, keep secret)")
    print(f"verifier key: {vkey_path}  ({kind})")
    print(signer.verifier().vkey)
    return 0


def _check_report_key_name(args) -> None:
    from ..config import Settings, _check_log_origin
    from ..errors import ValidationError
    from ..tlog.checkpoint import key_covers

    if args.log_origin:
        _check_log_origin(args.log_origin)
    origin = args.log_origin or Settings.load().log_origin
    if key_covers(args.name, origin):
        raise ValidationError("NAME", f"{args.name!r} is the log origin {origin!r} or a '/'-prefix of it: a report "
                              "key with that name would also verify checkpoints; choose a name of its own, e.g. "
                              "reports.example.com/2026")


def _read(path: str) -> bytes:
    from ..tlog.errors import ReceiptError

    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise ReceiptError("format", f"cannot read {path}: {err.strerror or err}") from err


SHOWN_SUBJECTS = 5


def first_few(values: list[str], limit: int = SHOWN_SUBJECTS) -> str:
    """``a, b, c`` or, past ``limit``, the first ``limit`` and ``... and N more (--json lists all)``.

    A bulk job's entry names hundreds of customers; the receipt's JSON form keeps every one.
    """
    shown = ", ".join(values[:limit])
    hidden = len(values) - limit
    return shown if hidden <= 0 else f"{shown} ... and {hidden:,} more (--json lists all)"


def run_verify_receipt(args) -> int:
    from ..tlog.keyfile import load_verifier
    from ..tlog.receipt import verify_receipt

    logs = [load_verifier(p) for p in args.vkey]
    witnesses = [load_verifier(p) for p in args.witness_vkey]
    codec = None
    if args.schemas:
        from ledger.wire.codec import Codec

        codec = Codec.load(args.schemas)
    facts = verify_receipt(_read(args.file), logs, witnesses, args.min_witnesses, codec=codec)
    summary = facts.summary()
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True, default=str))
        return 0
    actor = summary["actor"] or {}
    detail = ", ".join(str(actor[k]) for k in ("type", "role", "organization") if actor.get(k))
    log = summary["log"]
    print(f"ok: receipt verified: entry {log['index']} of {log['origin']} (tree size {log['tree_size']})")
    rows = [
        ("type", summary["type"]),
        ("event_id", summary["event_id"]),
        ("occurred_at", summary["occurred_at"]),
        ("recorded_at", summary["recorded_at"]),
        ("actor", f"{actor.get('id')} ({detail})" if detail else actor.get("id")),
        ("subjects", first_few(summary["subject_ids"] or [])),
        ("purpose", summary["purpose"] or "-"),
        ("record", f"{log['topic']}[{log['partition']}]@{log['offset']}"),
        ("witnesses", ", ".join(summary["witnesses"]) or "none checked"),
    ]
    for name, value in rows:
        print(f"  {name:<12} {value}")
    return 0


def run_verify_report(args) -> int:
    from ..tlog.errors import FormatError
    from ..tlog.keyfile import load_verifier
    from ..tlog.report_check import verify_report

    logs = [load_verifier(p) for p in args.vkey]
    reports = [load_verifier(p) for p in args.report_vkey]
    witnesses = [load_verifier(p) for p in args.witness_vkey]
    codec = None
    if args.schemas:
        from ledger.wire.codec import Codec

        codec = Codec.load(args.schemas)
    data = _read(args.file)
    try:
        check = verify_report(data, logs, reports, witnesses, args.min_witnesses, codec=codec)
    except FormatError as err:
        print(f"FAILED: {args.file}: {err}")
        return 1
    if args.open:
        if check.audience != "subject":
            print(f"FAILED: --open checks a subject report's lines; {args.file} is an {check.audience}'s report")
            return 1
        opened = _open_lines(data, args, logs, witnesses, codec)
        if opened is None:
            return 1
        problems, notes, count = opened
        check.problems += problems
        check.notes += notes
        check.notes.append(f"{count} line(s) opened against receipts: each equals what the customer may see of "
                           "its record")
    for note in check.notes:
        print(f"note: {note}")
    if check.ok:
        print(f"ok: {check.summary()}")
        return 0
    for problem in check.problems:
        print(f"FAILED: {problem}")
    print(f"{len(check.problems)} problem(s); {check.summary()}")
    return 1


def _open_lines(data: bytes, args, logs, witnesses, codec):
    """(problems, lines opened) of ``--open``, or None after printing why a receipts file is unusable."""
    from ledger.audit.report.opened import open_lines, receipts_in

    from ..tlog.errors import FormatError
    from ..tlog.jcs import loads_strict

    receipts: list[str] = []
    for path in args.open:
        raw = _read(path)
        try:
            held = loads_strict(raw, path) if raw.lstrip()[:1] == b"{" else raw.decode("utf-8")
        except (FormatError, UnicodeDecodeError) as err:
            print(f"FAILED: {path}: {err}")
            return None
        receipts += receipts_in(held)
    return open_lines(loads_strict(data), receipts, logs, witnesses, args.min_witnesses, codec=codec)
