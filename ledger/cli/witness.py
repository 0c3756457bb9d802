"""`ledger witness ...`: run a witness (c2sp.org/tlog-witness) of a ledger's checkpoints.

`follow` reads the checkpoints topic (ledger/audit/witness_follow.py, ledger/tlog/follow.py);
other subcommands (``serve``, the HTTP binding) sit beside it in this group.
"""

from __future__ import annotations

import argparse
import signal
import sys

from . import settings_from

_RAW = argparse.RawDescriptionHelpFormatter


def register(subparsers, common) -> None:
    group = subparsers.add_parser(
        "witness", formatter_class=_RAW,
        help="witness a log's checkpoints: cosign only those consistent with what it saw before",
        description="A witness (c2sp.org/tlog-witness) keeps the latest checkpoint it cosigned per origin in "
                    "its own SQLite state file and never cosigns one inconsistent with it.",
    )
    sub = group.add_subparsers(dest="witness_command", metavar="SUBCOMMAND", required=True)
    register_follow(sub, common)


def register_follow(sub, common) -> None:
    p = sub.add_parser(
        "follow", parents=[common], formatter_class=_RAW,
        help="witness every checkpoint published to the checkpoints topic",
        description="Read <prefix>checkpoints (records published by `ledger checkpoint` and `ledger consume "
                    "--checkpoint-every`: key = origin, value = an add-checkpoint body) and hand each to a "
                    "local witness. Prints one line per record: cosigned, repeat (that tree was cosigned "
                    "already), skipped (older than what was cosigned and never seen here), refused (with the "
                    "reason: malformed, unknown origin, bad signature, no proof from the witness's size) or "
                    "ALARM (a fork: the log signed two views of one origin; also on stderr, and kept in the "
                    "state file's evidence). A new state file starts at each partition's first record and "
                    "trusts the first checkpoint it sees of an origin; afterwards it resumes where it stopped. "
                    "Exits 0 when nothing was refused, 1 if a record was refused, 2 on an alarm.",
        epilog="example:\n  ledger witness follow --key witness-keys/witness.example.org_w1.key \\\n"
               "      --log-vkey ledger.example.com_audit.vkey --state witness.db --until-idle\n",
    )
    p.add_argument("--key", metavar="COSIGNER_KEY", required=True,
                   help="the witness's signer key file (made with `ledger keys generate --cosigner`, mode 0600)")
    p.add_argument("--log-vkey", metavar="VKEY", action="append", required=True,
                   help="a log's verifier key file; repeat for several logs or during a key rotation")
    p.add_argument("--state", metavar="PATH", required=True, help="the witness's SQLite state file")
    p.add_argument("--from-beginning", action="store_true",
                   help="read every partition from its first record, not from where this state file stopped")
    p.add_argument("--until-idle", action="store_true", help="exit once every partition is read to its end")
    p.add_argument("--cosigned-out", metavar="DIR",
                   help="write each origin's latest cosigned checkpoint to DIR/<origin>.checkpoint")
    p.add_argument("--max-origins-per-key", metavar="N", type=int, default=None,
                   help="origins one log key may use (default 4096; a log has one per topic-partition)")
    p.set_defaults(func=run_follow)


def run_follow(args) -> int:
    from ..audit.witness_follow import follow
    from ..errors import ConfigError
    from ..tlog.follow import Follower, FollowState
    from ..tlog.keyfile import load_signer, load_verifier
    from ..tlog.witness import DEFAULT_MAX_ORIGINS_PER_KEY, Witness

    limit = DEFAULT_MAX_ORIGINS_PER_KEY if args.max_origins_per_key is None else args.max_origins_per_key
    if limit < 1:
        raise ConfigError(f"--max-origins-per-key must be at least 1, got {limit}")
    settings = settings_from(args)
    cosigner = load_signer(args.key, cosigner=True)
    logs = [load_verifier(path) for path in args.log_vkey]
    witness = Witness([cosigner], logs, args.state, max_origins_per_key=limit)
    state = FollowState(args.state)
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))

    def show(record, outcome) -> None:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        what = f"{outcome.origin} size {outcome.size}" if outcome.origin else "-"
        word = "ALARM" if outcome.kind == "alarm" else outcome.kind
        print(f"{word}  {what}  {where}  {outcome.reason}", flush=True)
        if outcome.kind == "alarm":
            print(f"ledger witness follow: ALARM: {what} at {where}: {outcome.reason}", file=sys.stderr, flush=True)

    try:
        stats = follow(settings, Follower(witness, state), from_beginning=args.from_beginning,
                       until_idle=args.until_idle, on_outcome=show, stopping=lambda: bool(stop),
                       cosigned_out=args.cosigned_out)
    finally:
        state.close()
        witness.close()
    summary = ", ".join(f"{kind} {n}" for kind, n in sorted(stats.counts.items())) or "no records"
    print(f"followed the checkpoints topic: {summary}")
    if stats.alarms:
        print(f"ledger witness follow: {stats.alarms} alarm(s): the log signed inconsistent checkpoints; the "
              f"refused ones are kept as evidence in {args.state}", file=sys.stderr)
        return 2
    return 1 if stats.refused else 0
