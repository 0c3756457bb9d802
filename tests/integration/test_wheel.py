"""A built wheel, installed outside the checkout, works with no LEDGER_SCHEMAS_DIR (issue 13, item 7).

The wheel is built from this checkout (``pip wheel --no-deps``) and unpacked
into a folder outside it (``pip install --no-deps --target``); the commands run
from an empty directory with that folder first on ``PYTHONPATH``, so they can
only find the schemas the wheel itself carries. The dependencies come from the
test environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.dev.simulate import simulate
from ledger.model import events as model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel's contents in a folder of their own (built once for the module)."""
    where = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "-w", str(where / "dist"), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next((where / "dist").glob("ledger-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(where / "site"), str(wheel)], check=True, capture_output=True, timeout=300)
    return where / "site"


def run(installed: Path, cwd: Path, *args, settings=None, stdin=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["PYTHONPATH"] = str(installed)
    if settings is not None:
        env.update(LEDGER_BOOTSTRAP_SERVERS=settings.bootstrap_servers, LEDGER_TOPIC_PREFIX=settings.topic_prefix,
                   LEDGER_DB=str(cwd / "ledger.db"))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, input=stdin, capture_output=True,
                          text=True, timeout=300)


def test_the_wheel_carries_the_schemas(installed, tmp_path):
    """The installed package is the wheel's (not the checkout's) and finds its own six schemas."""
    out = run(installed, tmp_path, "-c", "import ledger, ledger.model.events as e; "
                                         "print(ledger.__file__); print(e.schemas_dir())")
    assert out.returncode == 0, out.stderr
    package, schemas = out.stdout.split()
    assert package.startswith(str(installed)) and schemas.startswith(str(installed))
    assert sorted(p.name for p in Path(schemas).iterdir() if p.is_dir()) == sorted(model.EVENT_TYPES)
    check = run(installed, tmp_path, "-m", "ledger", "schemas", "check")
    assert check.returncode == 0, check.stderr


def test_the_wheel_carries_the_findings_schemas(installed, tmp_path):
    """The live findings service's Finding and FindingRetracted schemas come with the wheel, apart from the
    event schemas, and encode from it."""
    out = run(installed, tmp_path, "-c", "from ledger.wire.findings_codec import FINDINGS_SCHEMAS, FindingsCodec; "
                                         "c = FindingsCodec.load(); print(FINDINGS_SCHEMAS); "
                                         "print(*sorted(c.versions))")
    assert out.returncode == 0, out.stderr
    where, *types = out.stdout.split()
    assert where.startswith(str(installed)) and types == ["Finding", "FindingRetracted"]


def test_emit_consume_and_who_saw_from_the_wheel(installed, tmp_path, settings):
    """`ledger emit`, `ledger consume --until-idle` and `ledger who-saw` run from the wheel alone."""
    workload = simulate(seed=5, events=40, subjects=5).events
    lines = "".join(json.dumps(model.to_json(e)) + "\n" for e in workload)
    emitted = run(installed, tmp_path, "-m", "ledger", "emit", "-", settings=settings, stdin=lines)
    assert emitted.returncode == 0 and "sent 40, rejected 0" in emitted.stderr + emitted.stdout, emitted.stderr
    consumed = run(installed, tmp_path, "-m", "ledger", "consume", "--until-idle", settings=settings)
    assert consumed.returncode == 0, consumed.stderr
    subject = workload[0]["subject_ids"][0]
    seen = run(installed, tmp_path, "-m", "ledger", "who-saw", subject, "--format", "json", settings=settings)
    assert seen.returncode == 0, seen.stderr
    expected = {e["event_id"] for e in workload if subject in e["subject_ids"]
                and e["type"] in ("DataAccessed", "DataShared", "LegalDisclosure")}
    assert expected and expected <= {row["event_id"] for row in json.loads(seen.stdout)}
