"""`ledger broker`: a Kafka-compatible broker (tansu) on 127.0.0.1 for development."""

from __future__ import annotations

import argparse
import signal
import threading

from . import settings_from

EPILOG = """\
Runs in the foreground until Ctrl-C or SIGTERM, then stops everything it
started. Memory storage forgets everything when the broker stops. --durable
keeps topics, records and consumer offsets in a local moto S3 server, so the
broker survives crashes and is restarted automatically while this command
runs; the data lives as long as this command does.
Needs the broker extra: pip install 'ledger[broker]'.
--topic-prefix names the topics it creates; --bootstrap-servers is not used.

example:
  ledger broker
  ledger broker --port 19092 --durable --log broker.log
  LEDGER_BOOTSTRAP_SERVERS=127.0.0.1:19092 ledger topics list
"""


def register(subparsers, common) -> None:
    p = subparsers.add_parser("broker", parents=[common], help="run a local Kafka-compatible broker for development",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=9092, help="port on 127.0.0.1 (default 9092; 0 picks a free one)")
    p.add_argument("--durable", action="store_true", help="S3 storage on a local moto server instead of memory")
    p.add_argument("--s3-port", type=int, metavar="N", help="port for the moto S3 server (default: a free one)")
    p.add_argument("--no-topics", dest="topics", action="store_false", help="do not create the ledger's topics")
    p.add_argument("--log", metavar="PATH", help="broker log file (default: a temporary file)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ledger.dev.broker import LocalBroker

    broker = LocalBroker(port=args.port, storage="s3" if args.durable else "memory",
                         s3_port=args.s3_port, log_path=args.log)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        broker.start()
        storage = f"s3 on moto at 127.0.0.1:{broker.s3_port}" if args.durable else "memory"
        print(f"broker ready: {broker.bootstrap} (storage: {storage}; log: {broker.log_path})", flush=True)
        if args.topics:
            _create_topics(args, broker.bootstrap)
        print("Ctrl-C to stop", flush=True)
        return _supervise(broker, stop, restart=args.durable)
    finally:
        broker.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _create_topics(args, bootstrap: str) -> None:
    from ledger.kafka.topics import create_topics

    settings = settings_from(args).with_(bootstrap_servers=bootstrap)
    statuses = create_topics(settings)
    print("topics: " + ", ".join(f"{s.name} ({s.partitions})" for s in statuses), flush=True)
    for status in statuses:
        for warning in status.warnings:
            print(f"warning: {warning}", flush=True)


def _supervise(broker, stop: threading.Event, restart: bool) -> int:
    """Wait for a stop signal; restart a crashed durable broker, give up on a memory one."""
    while not stop.wait(0.5):
        code = broker.exit_code()
        if code is None:
            continue
        if not restart:
            print(f"broker exited with status {code}; memory storage is gone. Log:\n{broker.log_tail()}")
            return 1
        print(f"broker exited with status {code}; restarting on the same storage", flush=True)
        broker.restart()
    return 0
