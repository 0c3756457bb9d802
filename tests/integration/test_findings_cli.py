"""`ledger policy publish` and `ledger findings` on the real broker: the policy is recorded as evidence.

A published policy lands on ``{prefix}policy`` keyed by its name, the writer
records it without side-table rows, and `ledger findings` then judges the
ledger by it with no --policy; a refused file is not sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from kafkautil import read_topics

from ledger.model.policy import load
from ledger.produce.producer import AuditProducer
from ledger.store import Ledger

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"


def ledger_cmd(settings, *argv: str) -> subprocess.CompletedProcess:
    conn = ["--bootstrap-servers", settings.bootstrap_servers, "--topic-prefix", settings.topic_prefix,
            "--db", str(settings.db)]
    return subprocess.run([sys.executable, "-m", "ledger", *argv, *conn], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))


def test_a_published_policy_is_recorded_and_judges_the_ledger(settings, tmp_path):
    """publish sends one PolicyPublished keyed by the policy name; after the writer, findings use it."""
    policy = load(EXAMPLE)
    done = ledger_cmd(settings, "policy", "publish", str(EXAMPLE), "--actor", "dpo-1")
    assert done.returncode == 0, done.stderr
    assert policy.sha256 in done.stdout
    records = read_topics(settings, [settings.topic_prefix + "policy"])
    assert [r.key for r in records] == [policy.name.encode()]
    with AuditProducer(settings) as producer:  # a support agent browsing payment cards for advertising
        producer.data_accessed(occurred_at=datetime.now(timezone.utc), source_service="crm", actor={"id": "emp-1012", "type": "EMPLOYEE",
                                                            "role": "support_agent"},
                               subject_ids=["cust-1"], data_categories=["user.financial.payment_card"],
                               purpose="marketing.advertising", access_type="VIEW", outcome="GRANTED")
        producer.flush()
    done = ledger_cmd(settings, "consume", "--until-idle", "--quiet")
    assert done.returncode == 0, done.stderr
    with Ledger.open(settings.db, readonly=True) as ledger:
        rows = ledger.conn.execute("SELECT COUNT(*) FROM actors WHERE type = 'PolicyPublished'").fetchone()
        assert rows == (0,)
    done = ledger_cmd(settings, "findings", "--format", "json")
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)
    assert found and {f["policy_sha256"] for f in found} == {policy.sha256}
    assert any(f["rule"] == "access.need_to_know" and f["subjects"] == ["cust-1"] for f in found)


def test_a_refused_policy_is_not_published(settings, tmp_path):
    """A bad file exits 2 with its line and sends nothing."""
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace("[policy]", "[policy]\nnonsense = 1", 1))
    done = ledger_cmd(settings, "policy", "publish", str(bad))
    assert done.returncode == 2 and f"{bad}:" in done.stderr and "Traceback" not in done.stderr
    assert read_topics(settings, [settings.topic_prefix + "policy"], timeout=3) == []
