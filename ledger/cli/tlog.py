"""`ledger checkpoint` and `ledger prove`: signed checkpoints of the trees, receipts under them.

The work is in ledger/store/checkpoints.py; these commands parse options and print.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import settings_from
from .witness import add_witness_options

_RAW = argparse.RawDescriptionHelpFormatter


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "checkpoint", parents=[common], formatter_class=_RAW,
        help="sign a checkpoint (c2sp.org/tlog-checkpoint) of every topic-partition's tree",
        description="For every topic-partition, sign a checkpoint of its committed Merkle tree with origin "
                    "<LEDGER_LOG_ORIGIN>/<topic>/<partition>, only if it is consistent with what this key "
                    "signed before (recorded in <key>.signed.json beside the key). Stores them in the ledger, "
                    "writes one file per origin to --out (replaced atomically), then publishes every stored "
                    "checkpoint not yet acknowledged to the <prefix>checkpoints topic with the consistency "
                    "proof from the previous one (a failed publish exits 1; the checkpoints stay stored and "
                    "the next run sends them). Safe beside a running writer: reads a committed snapshot and "
                    "inserts the checkpoints in a short transaction of its own.",
        epilog="example:\n  ledger checkpoint --key keys/ledger.example.com_audit.key --out checkpoints/\n",
    )
    p.add_argument("--key", metavar="FILE", required=True, help="the log's signer key file (mode 0600)")
    p.add_argument("--out", metavar="DIR", help="directory for the checkpoint files (default checkpoints/ "
                                                "beside the ledger file)")
    p.add_argument("--log-origin", metavar="ORIGIN", help="log origin (env LEDGER_LOG_ORIGIN)")
    add_witness_options(p)
    p.add_argument("--no-publish", action="store_true", help="do not publish to the checkpoints topic (no broker)")
    p.set_defaults(func=run_checkpoint)

    p = subparsers.add_parser(
        "prove", parents=[common], formatter_class=_RAW,
        help="print an event's receipt (c2sp.org/tlog-proof@v1), or a consistency proof",
        description="Print exactly one receipt on stdout: the entry's leaf data (extra), its index in its "
                    "partition's tree, the inclusion proof and the latest stored checkpoint with its "
                    "cosignatures. Check it anywhere with `ledger verify-receipt`. With --consistency, print "
                    "the consistency proof from OLD_CHECKPOINT_FILE to the latest checkpoint of its origin.",
        epilog="examples:\n  ledger prove 0b0c...-event-id > entry.tlog-proof\n"
               "  ledger prove --consistency checkpoints/old.checkpoint\n",
    )
    p.add_argument("event_id", metavar="EVENT_ID", nargs="?", help="the event to prove")
    p.add_argument("--consistency", metavar="OLD_CHECKPOINT_FILE", help="prove the latest extends this checkpoint")
    p.add_argument("--log-origin", metavar="ORIGIN", help="log origin (env LEDGER_LOG_ORIGIN)")
    p.set_defaults(func=run_prove)


def _settings(args):
    settings = settings_from(args)
    if args.log_origin:
        from ..config import _check_log_origin

        _check_log_origin(args.log_origin)
        settings = settings.with_(log_origin=args.log_origin)
    return settings


def run_checkpoint(args) -> int:
    from ..store.checkpoints import issue_checkpoints, write_checkpoint_files
    from ..tlog.keyfile import load_signer
    from .witness import cosign_and_report, open_witnesses

    settings = _settings(args)
    signer = load_signer(args.key)
    witnesses = open_witnesses(args)  # checked before anything is signed
    issued = issue_checkpoints(settings.db, signer, args.key, settings.log_origin)
    issued, shortfall = cosign_and_report(settings, issued, witnesses, args.min_witnesses)
    out = Path(args.out) if args.out else Path(settings.db).resolve().parent / "checkpoints"
    write_checkpoint_files(out, issued)
    for item in issued:
        change = f"new (from {item.previous_size})" if item.new else "unchanged"
        print(f"{item.origin}  size {item.size}  {change}")
    print(f"{len(issued)} checkpoint(s) signed by {signer.name}; files in {out}")
    rc = 0 if args.no_publish else publish(settings)
    if shortfall:
        print(f"ledger checkpoint: error: {shortfall}", file=sys.stderr)
        return 1
    return rc


def publish(settings, timeout: float = 30.0) -> int:
    """Publish what is stored and not yet acknowledged; a failure is one line on stderr and exit 1."""
    from ..ingest.checkpointing import PublishError, publish_checkpoints
    from ..kafka.topics import checkpoints_topic

    try:
        steps = publish_checkpoints(settings, timeout=timeout)
    except PublishError as err:
        print(f"ledger checkpoint: error: {err}", file=sys.stderr)
        return 1
    print(f"{len(steps)} checkpoint record(s) published to {checkpoints_topic(settings.topic_prefix)}")
    return 0


def run_prove(args) -> int:
    from ..errors import ConfigError
    from ..store.checkpoints import prove_consistency, prove_event
    from ..tlog.note import b64

    settings = _settings(args)
    if args.consistency:
        try:
            old = Path(args.consistency).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read the checkpoint file {args.consistency}: {err}") from err
        origin, old_size, size, proof = prove_consistency(settings.db, old, settings.log_origin)
        sys.stdout.write(f"{origin}\n{old_size}\n{size}\n" + "".join(b64(h) + "\n" for h in proof))
        return 0
    if not args.event_id:
        raise ConfigError("give EVENT_ID, or --consistency OLD_CHECKPOINT_FILE")
    sys.stdout.write(prove_event(settings.db, args.event_id, settings.log_origin))
    return 0
