"""schemathesis over /openapi.json, for each scope: no 5xx, every response conforms to the schema.

Runs the schemathesis CLI against a real `ledger serve` (its coverage and
fuzzing phases); skipped, saying why, when schemathesis is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the http extra is needed for `ledger serve`")

from httpkit import start_server
from signed import ORIGIN, report_key, signed_ledger

ST = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
pytestmark = pytest.mark.skipif(not Path(ST).exists(), reason="schemathesis is not installed (it is in the test extra)")
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schema")
    # Checkpoints, the log's key and a recorded policy: the proof and findings routes answer with data too.
    workload, _, vkey = signed_ledger(tmp, events=400, subjects=20, seed=5)
    key, _ = report_key(tmp)  # and a report key: signed reports and /v1/report-vkey answer too
    server = start_server(tmp / "ledger.db", tmp, extra=("--log-vkey", str(vkey), "--log-origin", ORIGIN,
                                                         "--report-key", str(key)))
    server.subject = workload.a_rich_subject()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("scope", ["audit:read", "subject", "admin", None])
def test_every_operation_answers_within_its_schema(server, scope, tmp_path):
    """For this scope, schemathesis finds no 5xx and no response outside the documented schema."""
    headers = []
    if scope is not None:
        token = server.token(f"subject:{server.subject}" if scope == "subject" else scope)
        headers = ["-H", f"Authorization: Bearer {token}", "-H", "X-Justification: schemathesis run"]
    run = subprocess.run([ST, "run", server.url + "/openapi.json", *headers, "--checks", CHECKS,
                          "--max-examples", "15", "--no-color", "--seed", "7"],
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)
    short = "\n".join(line[:300] for line in run.stdout.splitlines())  # curl lines can be megabytes
    assert run.returncode == 0, short[-8000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failure" not in run.stdout  # warnings (mostly-404 ids) are not failures
