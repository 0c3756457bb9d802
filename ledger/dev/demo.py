"""`make demo`: the main job end to end on the embedded default.

Starts a local Kafka-compatible broker (memory storage), creates the topics,
publishes the example policy (examples/policy.toml), emits a realistic simulated
workload through the producer SDK, runs the
ledger writer until it has caught up, verifies the ledger, and answers the
auditor's questions: which promises were kept and broken in the month, and for one
customer: who saw their data, and why; then signs checkpoints with a key made in
demo-out/keys/, proves one of that customer's events and verifies the receipt offline. Leaves the
ledger file and an HTML report in ``demo-out/``.

The simulated month ends shortly before the run (:func:`recent_window`): the records are written
today, and a record of something that happened more than 30 days before it was recorded is flagged
late by ``ledger verify`` (ledger.model.timecheck), which a demo of a live ledger should not show.
Given the seed the workload is the same on every run but for the dates it is anchored to.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger.config import Settings
from ledger.errors import LedgerError
from ledger.kafka import choose
from ledger.kafka.topics import create_topics
from ledger.model.policy import load, published_fields
from ledger.produce.producer import AuditProducer

from .broker import LocalBroker
from .simulate import simulate

OUT = Path("demo-out")
POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"


DEMO_DAYS = 28  # the simulated month: it ends the day before the run, inside the 30-day lateness limit


def recent_window(now: datetime, days: int = DEMO_DAYS) -> datetime:
    """The start of a ``days``-day history ending at the midnight UTC before today's (``now``'s day).

    Every simulated event then lies between ``days + 1`` days and one day before ``now``, so with
    ``days`` below 29 none is recorded more than 30 days late, whenever in the day the demo runs.
    """
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days + 1)


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show(cli, args: list[str], lines: int = 25) -> int:
    """Run a CLI command in-process and print the head of what it wrote."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli(args)
    text = out.getvalue().splitlines()
    print("\n".join(text[:lines]))
    if len(text) > lines:
        print(f"... {len(text) - lines:,} more lines: ledger {' '.join(args)}")
    return code


def main(events: int = 20_000, subjects: int = 500, seed: int = 7, now: datetime | None = None) -> int:
    from ledger.cli import main as cli
    from ledger.ingest.writer import LedgerWriter

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    db = OUT / "ledger.db"
    with LocalBroker(port=0) as broker:
        settings = Settings.load(env={}, bootstrap_servers=broker.bootstrap, db=str(db),
                                 kafka_client=os.environ.get("LEDGER_KAFKA_CLIENT"))
        choice = choose(settings)
        step(f"local broker at {broker.bootstrap}; Kafka client: {choice.name} ({choice.why}); creating topics")
        for status in create_topics(settings):
            print(f"  {status.name}: {status.partitions} partitions")

        start = recent_window(now or datetime.now(UTC))
        end = start + timedelta(days=DEMO_DAYS)
        step(f"emitting {events:,} simulated events (seed {seed}, {subjects} customers, "
             f"{start:%Y-%m-%d} to {end - timedelta(days=1):%Y-%m-%d})")
        workload = simulate(seed=seed, events=events, subjects=subjects, start=start, days=DEMO_DAYS)
        started = time.monotonic()
        with AuditProducer(settings) as producer:
            # The company's policy first, so it is in force for the whole month (ledger policy publish).
            policy_text = POLICY.read_text(encoding="utf-8")
            producer.policy_published(occurred_at=min(e["occurred_at"] for e in workload.events),
                                      **published_fields(load(POLICY), policy_text,
                                                         {"id": "dpo-1", "type": "EMPLOYEE", "role": None}))
            for event in workload.events:
                producer.emit(event)
            producer.flush()
        print(f"  sent in {time.monotonic() - started:.1f}s")

        step(f"writing the ledger {db}")
        stats = LedgerWriter(settings, group_id=None).run(until_idle=True, install_signals=False)
        print(f"  {stats.records:,} records at {stats.rate:,.0f}/s: "
              + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.by_status.items()) if v))

    common = ["--db", str(db)]
    step("verifying every hash, offset and index row")
    if cli(["verify", *common]) != 0:
        return 1
    step("chain heads (what an auditor writes down)")
    cli(["head", *common])

    subject = workload.a_rich_subject()
    step(f"who saw {subject}'s data, and why (newest first)")
    show(cli, ["who-saw", subject, *common])

    month_end = max(e["occurred_at"] for e in workload.events)
    step(f"promises kept and broken in the simulated month (examples/policy.toml, judged at {month_end:%Y-%m-%d})")
    from ledger.audit.findings.promises import promise_rows, promise_table
    from ledger.audit.findings.recorded import judge_ledger
    from ledger.store import Ledger

    with Ledger.open(db, readonly=True) as ledger:
        run = judge_ledger(ledger, now=month_end)
    print("\n".join("  " + line for line in promise_table(promise_rows(run))))
    print(f"  every finding, with its evidence: ledger findings --db {db}")

    step("legal-disclosure notices owed to customers and overdue today")
    show(cli, ["obligations", "--overdue", *common], lines=12)

    if prove_step(cli, db, subject) != 0:
        return 1

    report = OUT / f"report-{subject}.html"
    show(cli, ["report", subject, "--format", "html", "--audience", "subject", "--output", str(report), *common])
    step("done")
    print(f"  ledger:  {db}")
    print(f"  report:  {report.resolve()}  (what {subject} may see; --audience auditor shows everything)")
    serve_hint(db, subject)
    return 0


def prove_step(cli, db: Path, subject: str) -> int:
    """Sign a checkpoint with a key made here, prove one of ``subject``'s events, verify the receipt offline."""

    keys = db.parent / "keys"
    origin = Settings.load(env={}).log_origin
    step(f"signing checkpoints of every partition's Merkle tree (key {origin}, in {keys})")
    with contextlib.redirect_stdout(io.StringIO()):
        cli(["keys", "generate", origin, "--out", str(keys)])
    key = keys / f"{origin.replace('/', '_')}.key"
    # The demo's broker is stopped by now: store and write the checkpoints, publish nothing.
    if show(cli, ["checkpoint", "--db", str(db), "--key", str(key), "--no-publish"], lines=4) != 0:
        return 1
    from ledger.audit.query import who_saw
    from ledger.store import Ledger

    with Ledger.open(db) as ledger:
        event_id = next((row["event_id"] for row in who_saw(ledger, subject)), None)
    if event_id is None:
        return 0
    receipt = db.parent / f"{event_id}.tlog-proof"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(["prove", event_id, "--db", str(db)])
    if code != 0:
        return 1
    receipt.write_text(out.getvalue())
    step(f"a receipt for one of {subject}'s events ({receipt}), checked offline: no ledger, no broker")
    return cli(["verify-receipt", str(receipt), "--vkey", str(key.with_suffix(".vkey"))])


def serve_hint(db: Path, subject: str) -> None:
    """The commands that open the console, and a customer token for the portal (needs the http extra)."""
    try:
        from ledger.http.tokens import issue_token, write_keypair
    except ImportError:
        return
    key = OUT / "api.key"
    try:
        if not key.exists():
            write_keypair(key)
        customer = issue_token(key, scope=f"subject:{subject}", ttl="1h")
    except LedgerError:
        return
    print(f"  console: ledger serve --db {db} --listen 127.0.0.1:8080 --token-key {key}.pub")
    print("           then open http://127.0.0.1:8080/login and paste an auditor token:")
    print(f"           ledger tokens issue --key {key} --scope audit:read --holder you --ttl 1h")
    print(f"  portal:  the same page, with {subject}'s token (valid 1 hour):")
    print(f"           {customer}")


if __name__ == "__main__":
    sys.exit(main())
