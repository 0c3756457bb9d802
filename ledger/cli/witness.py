"""`ledger witness serve|follow|evidence`: run a witness (c2sp.org/tlog-witness), read what it kept.

``serve`` is the HTTP binding of ledger/http/witness_app.py over ledger/tlog/witness.py; it needs
uvicorn (the ``http`` extra), imported inside the command only. ``evidence`` reads the witness's
state file. Neither opens a ledger or talks to Kafka. ``follow`` reads the checkpoints topic instead of
being called by the log (ledger/audit/witness_follow.py, ledger/tlog/follow.py).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from . import settings_from

_RAW = argparse.RawDescriptionHelpFormatter

SERVE_EPILOG = """\
Routes (submission and monitoring prefix: the root):
  POST /add-checkpoint                      body and answers exactly as c2sp.org/tlog-witness
  GET  /<hex SHA-256 of the origin>/checkpoint  latest cosigned checkpoint of that origin (monitors)
  GET  /healthz                             200 "ok"

A log key trusted with --log-vkey covers its own name and every origin below it
(<name>/...): this ledger's key, named after LEDGER_LOG_ORIGIN, covers every
partition's origin <log origin>/<topic>/<partition>. At most --max-origins-per-key
origins are accepted per log key. Requests above 64 KiB are answered 413.

examples:
  ledger keys generate witness.example.org/w1 --cosigner --out /etc/witness
  ledger witness serve --key /etc/witness/witness.example.org_w1.key \\
      --log-vkey ledger.example.com_audit.vkey --state /var/lib/witness/state.db --listen 0.0.0.0:8443 \\
      --certfile cert.pem --keyfile key.pem
"""


def register(subparsers, common) -> None:
    witness = subparsers.add_parser(
        "witness", formatter_class=_RAW,
        help="run a witness that cosigns logs' checkpoints (c2sp.org/tlog-witness)",
        description="A witness cosigns a log's checkpoint only if it is consistent with the last one it "
                    "cosigned for that origin, and keeps what it refused as evidence.",
        epilog="example:\n  ledger witness serve --key w1.key --log-vkey log.vkey --state w.db "
               "--listen 127.0.0.1:8380\n",
    )
    sub = witness.add_subparsers(dest="witness_command", metavar="SUBCOMMAND", required=True)
    register_serve(sub)
    register_follow(sub, common)
    register_evidence(sub)


def register_serve(sub) -> None:
    p = sub.add_parser(
        "serve", formatter_class=_RAW, epilog=SERVE_EPILOG,
        help="serve add-checkpoint over HTTP, and the latest cosigned checkpoints for monitors",
        description="Serve the witness protocol over HTTP. --key is a witness key (its .vkey beside it has "
                    "signature type 04, made by `ledger keys generate NAME --cosigner`); a log's key is "
                    "refused. The latest cosigned checkpoint of every origin and the evidence of refused, "
                    "validly signed checkpoints are kept in the SQLite file --state.",
    )
    p.add_argument("--key", metavar="WITNESS_KEY", action="append", required=True,
                   help="the witness's signer key file (mode 0600); repeat to cosign with two keys while "
                        "rotating")
    p.add_argument("--log-vkey", metavar="VKEY", action="append", required=True,
                   help="verifier key file of a log to witness (type 01); repeatable")
    p.add_argument("--state", metavar="PATH", required=True, help="the witness's own SQLite state file")
    p.add_argument("--listen", metavar="HOST:PORT", required=True, help="address to listen on")
    p.add_argument("--certfile", metavar="PEM", help="TLS certificate (with --keyfile)")
    p.add_argument("--keyfile", metavar="PEM", help="TLS private key (with --certfile)")
    p.add_argument("--max-origins-per-key", metavar="N", type=int, default=None,
                   help="origins accepted per log key (default 4096)")
    p.set_defaults(func=run_serve)


def register_evidence(sub) -> None:
    p = sub.add_parser(
        "evidence", formatter_class=_RAW,
        help="print the refused, validly signed checkpoints the witness kept (JSON lines)",
        description="Print one JSON object per refused checkpoint that carried a valid log signature: "
                    "the origin, the status and reason, the checkpoint and proof as submitted, what the "
                    "witness had cosigned then, when it was first and last seen and how often. A "
                    "'same size, different root' or 'inconsistent' entry signed by the log is proof that "
                    "the log showed two histories.",
        epilog="example:\n  ledger witness evidence --state /var/lib/witness/state.db\n",
    )
    p.add_argument("--state", metavar="PATH", required=True, help="the witness's state file")
    p.set_defaults(func=run_evidence)


def parse_listen(value: str) -> tuple[str, int]:
    from ..errors import ConfigError

    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen {value!r}: write HOST:PORT, e.g. 127.0.0.1:8380")
    return host.strip("[]") or "127.0.0.1", int(port)


def load_log_verifiers(paths):
    from ..errors import ConfigError
    from ..tlog.keyfile import load_verifier
    from ..tlog.note import ED25519

    verifiers = []
    for path in paths:
        verifier = load_verifier(path)
        if verifier.sig_type != ED25519:
            raise ConfigError(f"--log-vkey {path}: signature type {verifier.sig_type:02x} is a witness's "
                              "cosignature key; give the log's verifier key (type 01)")
        verifiers.append(verifier)
    return verifiers


def run_serve(args) -> int:
    from ..errors import ConfigError
    from ..tlog.keyfile import load_cosigner
    from ..tlog.witness import DEFAULT_MAX_ORIGINS_PER_KEY, Witness

    if bool(args.certfile) != bool(args.keyfile):
        raise ConfigError("--certfile and --keyfile go together")
    host, port = parse_listen(args.listen)
    limit = DEFAULT_MAX_ORIGINS_PER_KEY if args.max_origins_per_key is None else args.max_origins_per_key
    if limit < 1:
        raise ConfigError("--max-origins-per-key: give at least 1")
    cosigners = [load_cosigner(path) for path in args.key]
    logs = load_log_verifiers(args.log_vkey)
    shared = {c.verifier().public_key for c in cosigners} & {v.public_key for v in logs}
    if shared:
        raise ConfigError("a --key and a --log-vkey are the same Ed25519 key: a witness must not cosign "
                          "with the log's own key material; make a witness key with --cosigner")
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigError("`ledger witness serve` needs uvicorn (the 'http' extra): "
                          "pip install 'ledger[http]'") from None
    from ..http.witness_app import serve

    witness = Witness(cosigners, logs, args.state, max_origins_per_key=limit)
    scheme = "https" if args.certfile else "http"
    for cosigner in cosigners:
        print(f"witness {cosigner.verifier().vkey}", file=sys.stderr)
    print(f"witnessing origins of: {', '.join(v.name for v in logs)}; state {args.state}; "
          f"listening on {scheme}://{host}:{port}", file=sys.stderr, flush=True)
    return serve(witness, host, port, certfile=args.certfile, keyfile=args.keyfile)


def run_evidence(args) -> int:
    from pathlib import Path

    from ..errors import ConfigError
    from ..tlog.witness import read_evidence

    if not Path(args.state).exists():
        raise ConfigError(f"no witness state file at {args.state}")
    for row in read_evidence(args.state):
        print(json.dumps(row, sort_keys=True))
    return 0


# --- `ledger checkpoint --witness`: the options and the step after signing --------------------------

def add_witness_options(p) -> None:
    """The options of `ledger checkpoint` that ask witnesses to cosign."""
    g = p.add_argument_group(
        "witnesses (c2sp.org/tlog-witness)",
        "After signing, every checkpoint goes to every --witness with the consistency proof from the size "
        "this key signed before (a 409 is answered with a proof from the size the witness reports). Each "
        "returned cosignature is checked with the --witness-vkey keys and appended to the checkpoint stored "
        "in the ledger and written to --out, so `ledger prove` receipts carry it. A witness that is down or "
        "answers outside the protocol is named with the reason; the checkpoint is stored and written anyway, "
        "and the command exits 1 if a checkpoint has fewer than --min-witnesses cosignatures, or if a witness "
        "holds a larger or inconsistent tree of an origin (ALARM). Run it again to fill in missing "
        "cosignatures: a checkpoint cosigned by every --witness-vkey key already is not resent.")
    g.add_argument("--witness", metavar="URL", action="append", default=[],
                   help="a witness's submission prefix (POST URL/add-checkpoint); repeatable")
    g.add_argument("--witness-vkey", metavar="V", action="append", default=[],
                   help="verifier key file of a witness (type 04); cosignatures by other keys are ignored")
    g.add_argument("--min-witnesses", metavar="K", type=int, default=None,
                   help="exit 1 unless every checkpoint carries cosignatures by K distinct witness keys "
                        "(default 1 with --witness)")
    g.add_argument("--witness-timeout", metavar="SECONDS", type=float, default=10.0,
                   help="time a witness has to answer (default 10)")


def open_witnesses(args) -> list:
    """WitnessClients for the --witness options, checked before anything is signed; [] without them."""
    from ..errors import ConfigError
    from ..tlog.keyfile import load_verifier
    from ..tlog.note import COSIGNATURE_V1
    from ..tlog.witness_client import WitnessClient

    if not args.witness:
        if args.witness_vkey or args.min_witnesses:
            raise ConfigError("--witness-vkey and --min-witnesses need at least one --witness URL")
        return []
    if not args.witness_vkey:
        raise ConfigError("--witness needs the witnesses' verifier keys (--witness-vkey FILE, type 04) to check "
                          "their cosignatures")
    verifiers = []
    for path in args.witness_vkey:
        verifier = load_verifier(path)
        if verifier.sig_type != COSIGNATURE_V1:
            raise ConfigError(f"--witness-vkey {path}: signature type {verifier.sig_type:02x} is a log key; a "
                              "witness's verifier key has type 04 (`ledger keys generate NAME --cosigner`)")
        verifiers.append(verifier)
    keys = len({(v.name, v.key_id) for v in verifiers})
    if args.min_witnesses is None:
        args.min_witnesses = 1
    if not 0 <= args.min_witnesses <= keys:
        raise ConfigError(f"--min-witnesses {args.min_witnesses}: give 0 to {keys} (the number of distinct "
                          "--witness-vkey keys)")
    if not 0 < args.witness_timeout <= 300:
        raise ConfigError("--witness-timeout: give seconds from more than 0 to 300")
    clients = []
    for url in args.witness:
        try:
            clients.append(WitnessClient(url, verifiers, timeout=args.witness_timeout))
        except ValueError as err:
            raise ConfigError(f"--witness: {err}") from None
    return clients


def cosign_and_report(settings, issued, clients, min_witnesses: int):
    """Cosign ``issued`` with ``clients``; print who cosigned and who failed. (issued, shortfall message)."""
    from ..store.witnessing import cosign_with_witnesses

    if not clients:
        return issued, None
    try:
        witnessed = cosign_with_witnesses(settings.db, issued, settings.log_origin, clients)
    finally:
        for client in clients:
            client.close()
    failures: dict[tuple[bool, str], list[str]] = {}  # one line per witness and reason, naming the origins
    for outcome in witnessed.outcomes:
        if outcome.error is not None:
            failures.setdefault((outcome.alarm, str(outcome.error)), []).append(outcome.origin)
    for (alarm, reason), origins in failures.items():
        which = origins[0] if len(origins) == 1 else f"{len(origins)} origins: {', '.join(origins[:3])}" + (
            " ..." if len(origins) > 3 else "")
        print(f"ledger checkpoint: {'ALARM: ' if alarm else ''}{reason} [{which}]", file=sys.stderr)
    verifiers = clients[0].verifiers
    short, alarms = [], sorted({o.origin for o in witnessed.outcomes if o.alarm})
    for item in witnessed.issued:
        names = witnessed.cosigners(item.origin, verifiers)
        note = " (already cosigned, not resent)" if item.origin in witnessed.skipped else ""
        print(f"{item.origin}  cosigned by {', '.join(names) or 'no witness'}{note}")
        if len(names) < min_witnesses:
            short.append(f"{item.origin} ({len(names)})")
    problems = []
    if short:
        problems.append(f"{len(short)} checkpoint(s) have fewer than {min_witnesses} witness cosignature(s): "
                        f"{', '.join(short[:5])}{' ...' if len(short) > 5 else ''}; they are stored and written "
                        "without them; run `ledger checkpoint` again once the witnesses answer")
    if alarms:
        problems.append(f"a witness contradicts the log for {', '.join(alarms[:5])}: see the ALARM lines above")
    return witnessed.issued, "; ".join(problems) or None


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
    from ..tlog.keyfile import load_cosigner, load_verifier
    from ..tlog.witness import DEFAULT_MAX_ORIGINS_PER_KEY, Witness

    limit = DEFAULT_MAX_ORIGINS_PER_KEY if args.max_origins_per_key is None else args.max_origins_per_key
    if limit < 1:
        raise ConfigError(f"--max-origins-per-key must be at least 1, got {limit}")
    settings = settings_from(args)
    cosigner = load_cosigner(args.key)
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
