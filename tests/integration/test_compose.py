"""docker-compose.yml, checked without Docker: schema, KRaft, topic creation, ledger services.

The Compose Specification's JSON Schema is vendored at tests/data/compose/compose-spec.json
(tests/data/compose/SOURCE.md), so the schema test runs in every clone.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml (test extra)")

from ledger.config import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SPEC = ROOT / "tests" / "data" / "compose" / "compose-spec.json"  # vendored: tests/data/compose/SOURCE.md
LEDGER_SERVICES = ("topics", "writer", "findings", "ledger")
REQUIRED_ENV = ("LEDGER_BOOTSTRAP_SERVERS", "LEDGER_TOPIC_PREFIX", "LEDGER_DB")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def interpolate(value, env: dict[str, str] | None = None) -> str:
    """Compose's ``${NAME:-default}`` / ``${NAME}`` substitution, enough for this file."""
    env = env or {}

    def sub(match: re.Match) -> str:
        return env.get(match["name"]) or (match["default"] or "")

    return re.sub(r"\$\{(?P<name>\w+)(?::-(?P<default>[^}]*))?\}", sub, str(value))


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(v) for k, v in env.items()}


def kafka_env(compose: dict) -> dict[str, str]:
    return {k: str(v) for k, v in compose["services"]["kafka"]["environment"].items()}


def listeners(text: str) -> dict[str, str]:
    """``NAME://host:port,...`` as ``{NAME: "host:port"}``."""
    return dict(item.split("://", 1) for item in text.split(","))


def test_compose_file_satisfies_the_compose_specification(compose):
    """docker-compose.yml validates against the Compose Specification JSON Schema."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is needed (test extra)")
    jsonschema.validate(compose, json.loads(SPEC.read_text()))


def test_kafka_is_a_pinned_apache_kafka_image(compose):
    """Kafka runs from apache/kafka with a fixed version, never a moving tag."""
    image = compose["services"]["kafka"]["image"]
    name, _, tag = image.partition(":")
    assert name == "apache/kafka"
    assert tag and tag != "latest"


def test_kafka_runs_in_kraft_mode_without_zookeeper(compose):
    """One node is broker and controller, votes for itself, and nothing mentions ZooKeeper."""
    env = kafka_env(compose)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node = env["KAFKA_NODE_ID"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert any(v.startswith(f"{node}@") for v in voters)
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in listeners(env["KAFKA_LISTENERS"])
    assert controller not in listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners(env["KAFKA_LISTENERS"])) <= set(protocols)
    assert env["CLUSTER_ID"]
    assert not any("ZOOKEEPER" in key for key in env)


def test_kafka_does_not_create_topics_on_its_own(compose):
    """Auto-creation is off so only `ledger topics create` decides partitions and retention."""
    assert kafka_env(compose)["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_kafka_stamps_records_with_its_own_append_time(compose):
    """The broker, not a producer, sets the record timestamp the ledger uses as recorded time (issue 12)."""
    assert kafka_env(compose)["KAFKA_LOG_MESSAGE_TIMESTAMP_TYPE"] == "LogAppendTime"


def test_kafka_has_a_healthcheck_and_a_data_volume(compose):
    """Kafka reports health (the other services wait for it) and keeps its log in a named volume."""
    kafka = compose["services"]["kafka"]
    assert kafka["healthcheck"]["test"]
    log_dir = kafka_env(compose)["KAFKA_LOG_DIRS"]
    assert any(v.split(":")[0] in compose["volumes"] and v.split(":")[1] == log_dir for v in kafka["volumes"])


def test_ledger_services_reach_kafka_on_its_advertised_internal_listener(compose):
    """LEDGER_BOOTSTRAP_SERVERS of every ledger service is an address Kafka advertises."""
    advertised = set(listeners(kafka_env(compose)["KAFKA_ADVERTISED_LISTENERS"]).values())
    for name in LEDGER_SERVICES:
        assert service_env(compose["services"][name])["LEDGER_BOOTSTRAP_SERVERS"] in advertised, name


def test_topics_are_created_once_after_kafka_is_healthy(compose):
    """A one-shot `ledger topics create` from the ledger image runs when Kafka is healthy."""
    topics = compose["services"]["topics"]
    assert topics["command"] == ["topics", "create"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics.get("restart", "no") == "no"
    assert topics["image"] == compose["services"]["writer"]["image"]


def test_writer_runs_like_a_production_service(compose):
    """The writer restarts, keeps the ledger in a volume, has a healthcheck and starts after the topics exist."""
    writer = compose["services"]["writer"]
    assert writer["command"] == ["consume"]
    assert writer["restart"] in ("always", "unless-stopped")
    db_dir = os.path.dirname(service_env(writer)["LEDGER_DB"])
    assert any(v.split(":")[0] in compose["volumes"] and v.split(":")[1] == db_dir for v in writer["volumes"])
    assert writer["healthcheck"]["test"]
    assert writer["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_the_findings_service_follows_the_ledger_read_only_with_its_state_apart(compose):
    """The findings service runs `findings --follow`, restarts, reads the ledger volume read-only, keeps its
    state file on a volume of its own and starts once the writer is healthy."""
    findings = compose["services"]["findings"]
    command = findings["command"]
    assert command[:2] == ["findings", "--follow"] and command[command.index("--state") + 1].startswith("/state/")
    assert findings["restart"] in ("always", "unless-stopped") and findings["image"] == compose["services"]["writer"]["image"]
    assert "ledger-data:/data:ro" in findings["volumes"]
    assert any(v.split(":")[0] in compose["volumes"] and v.split(":")[1] == "/state" for v in findings["volumes"])
    assert findings["depends_on"]["writer"]["condition"] == "service_healthy"


def test_the_findings_service_is_healthy_while_it_commits_its_own_state(compose):
    """Its healthcheck is `ledger findings --health` on the very state file the service writes."""
    findings = compose["services"]["findings"]
    test, command = findings["healthcheck"]["test"], findings["command"]
    assert test[:4] == ["CMD", "ledger", "findings", "--health"]
    assert test[test.index("--state") + 1] == command[command.index("--state") + 1]
    assert float(test[test.index("--max-age") + 1]) > 10  # longer than the service's heartbeat (--tick)


def test_ledger_services_set_the_ledger_environment_variables(compose):
    """Every ledger service sets the variables the ledger reads, each one a known setting."""
    known = {f"LEDGER_{name.upper()}" for name in Settings.__dataclass_fields__} | {"LEDGER_SCHEMAS_DIR"}
    for name in LEDGER_SERVICES:
        env = service_env(compose["services"][name])
        assert set(REQUIRED_ENV) <= set(env), name
        assert {k for k in env if k.startswith("LEDGER_")} <= known, name
        settings = Settings.load(env=env)
        assert settings.topic_prefix == "ledger." and settings.partitions == 6


def test_the_image_runs_the_ledger_command_and_ships_the_healthcheck(compose):
    """The Dockerfile the services build has `ledger` as entrypoint and contains the writer healthcheck script."""
    build = compose["services"]["writer"]["build"]
    dockerfile = (ROOT / build["context"] / build["dockerfile"]).read_text()
    assert 'ENTRYPOINT ["ledger"]' in dockerfile
    script = compose["services"]["writer"]["healthcheck"]["test"][2]
    assert script.startswith("/app/") and (ROOT / script.removeprefix("/app/")).is_file()


def test_writer_healthcheck_passes_only_while_the_writer_lock_is_held(tmp_path):
    """docker/healthcheck.py exits 1 with no writer and 0 while someone holds an exclusive flock on the ledger file."""
    db = tmp_path / "ledger.db"
    check = [sys.executable, str(ROOT / "docker" / "healthcheck.py"), str(db)]
    assert subprocess.run(check, capture_output=True).returncode == 1
    db.write_bytes(b"")  # the writer lock is on the ledger file itself since issue 12
    fd = os.open(db, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert subprocess.run(check, capture_output=True).returncode == 0
    finally:
        os.close(fd)
    assert subprocess.run(check, capture_output=True).returncode == 1
