"""`ledger keys generate` and `ledger verify-receipt`: signing keys, and checking a receipt offline.

Neither command opens the ledger or talks to Kafka. Key files are the signed-note strings of
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
                    "are never taken for the log's. Existing files are never overwritten.",
        epilog="examples:\n  ledger keys generate ledger.example.com/audit --out keys/\n"
               "  ledger keys generate witness.example.org/w1 --out witness-keys/ --cosigner\n",
    )
    p.add_argument("name", metavar="NAME", help="key name: a schema-less URL, no spaces or '+'")
    p.add_argument("--out", metavar="DIR", required=True, help="directory to write the two files in")
    p.add_argument("--cosigner", action="store_true", help="a witness key (vkey of signature type 04)")
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


def run_generate(args) -> int:
    from ..tlog.keyfile import write_key_pair

    key_path, vkey_path, signer = write_key_pair(args.name, args.out, cosigner=args.cosigner)
    kind = "witness (cosignature, type 04)" if args.cosigner else "log (Ed25519, type 01)"
    print(f"signer key:   {key_path}  (mode 0600, keep secret)")
    print(f"verifier key: {vkey_path}  ({kind})")
    print(signer.verifier().vkey)
    return 0


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
