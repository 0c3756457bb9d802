"""A ledger with a recorded policy, signed checkpoints and the log's key files, for the HTTP and browser tests.

    workload, key, vkey = signed_ledger(tmp_path)     # tmp_path/ledger.db, tmp_path/keys/
    cli("prove", event_id, db=tmp_path / "ledger.db")  # the ledger CLI with LEDGER_LOG_ORIGIN=ORIGIN
    key, vkey = report_key(tmp_path)                   # a report key (--report) beside the log's
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from fill import fill_ledger
from httpkit import ROOT, hostile_events

from ledger.dev.simulate import simulate
from ledger.model.policy import load
from ledger.model.policy.published import published_fields

ORIGIN = "ledger.example.com/audit"
POLICY = ROOT / "examples" / "policy.toml"


def cli(*argv: str, db: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, LEDGER_LOG_ORIGIN=ORIGIN,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "ledger", *argv, *(["--db", str(db)] if db else [])],
                          capture_output=True, text=True,
                          timeout=300, env=env)


def signed_ledger(tmp: Path, *, events: int = 600, subjects: int = 25, seed: int = 11):
    """A ledger with a recorded policy, signed checkpoints of every partition and the log's key files."""
    workload = simulate(seed=seed, events=events, subjects=subjects)
    first = min(e["occurred_at"] for e in workload.events)
    policy_event = {"type": "PolicyPublished", "occurred_at": first - timedelta(days=1),
                    **published_fields(load(POLICY), POLICY.read_text(), {"id": "dpo-1", "type": "EMPLOYEE"})}
    fill_ledger(tmp / "ledger.db", [policy_event, *workload.events, *hostile_events()])
    done = cli("keys", "generate", ORIGIN, "--out", str(tmp / "keys"))
    assert done.returncode == 0, done.stderr
    key = tmp / "keys" / "ledger.example.com_audit.key"
    done = cli("checkpoint", "--key", str(key), "--no-publish", db=tmp / "ledger.db")
    assert done.returncode == 0, done.stderr
    return workload, key, key.with_suffix(".vkey")


REPORT_KEY_NAME = "reports.example.com/2026"


def report_key(tmp: Path) -> tuple[Path, Path]:
    """A report key (`ledger keys generate NAME --out tmp/keys --report`): its signer and verifier key files."""
    done = cli("keys", "generate", REPORT_KEY_NAME, "--out", str(tmp / "keys"), "--report")
    assert done.returncode == 0, done.stderr
    key = tmp / "keys" / "reports.example.com_2026.key"
    return key, key.with_suffix(".vkey")
