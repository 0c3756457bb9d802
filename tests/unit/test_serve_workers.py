"""`ledger serve --workers N`: what each worker process builds from the parent's configuration (in-process).

The parent checks the configuration once and hands it, with one cursor
secret, to uvicorn's worker processes through the environment; each worker
builds the same application, so a page cursor one worker made is read by
any other. The options are refused by name when out of range.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi", reason="the http extra is needed for `ledger serve`")

from fill import fill_ledger

from ledger.cli import main
from ledger.config import Settings
from ledger.dev.simulate import simulate
from ledger.errors import ConfigError
from ledger.http.server import WORKER_ENV, ServeConfig, worker_app
from ledger.http.tokens import write_keypair


@pytest.fixture
def config(tmp_path) -> ServeConfig:
    db = fill_ledger(tmp_path / "ledger.db", simulate(seed=4, events=40, subjects=4).events).path
    _, public = write_keypair(tmp_path / "api.key")
    settings = Settings.load(env={}, bootstrap_servers="127.0.0.1:1", db=str(db), topic_prefix="w.",
                             sasl_mechanism="PLAIN")
    return ServeConfig(settings=settings, host="127.0.0.1", port=8080, token_key=str(public),
                       outbox=str(tmp_path / "outbox.db"), workers=2, threads=4, server_timing=True)


def test_the_configuration_survives_its_trip_to_the_workers(config):
    """Every field, the settings and their security keys included, comes back equal from its JSON."""
    assert ServeConfig.from_json(config.to_json()) == config


def test_workers_share_the_cursor_secret_and_the_outbox(config, monkeypatch):
    """Two workers built from one handed configuration read each other's cursors and record into one outbox."""
    monkeypatch.setenv(WORKER_ENV, json.dumps({"config": config.to_json(), "cursor_secret": "5a" * 32}))
    apps = [worker_app(), worker_app()]
    try:
        first, second = (app.state.ledger_http for app in apps)
        cursor = first.signer.make(b"token|route|query", {"t": 1, "e": "x", "a": "2026-01-01T00:00:00Z"})
        assert second.signer.read(b"token|route|query", cursor)["e"] == "x"
        assert first.recorder.outbox == second.recorder.outbox == config.outbox_path()
        assert (first.threads, first.server_timing) == (4, True)
        assert [stop.__self__ for app in apps for stop in app.state.ledger_http.on_shutdown] == \
               [first.recorder, second.recorder]  # each worker closes its recorder when it stops
    finally:
        for app in apps:
            app.state.ledger_http.recorder.close(timeout=0)


def test_a_worker_without_the_parents_configuration_refuses_to_start(monkeypatch):
    monkeypatch.delenv(WORKER_ENV, raising=False)
    with pytest.raises(ConfigError, match="started by `ledger serve --workers N`"):
        worker_app()


@pytest.mark.parametrize("option, value, message", [
    ("--workers", "0", "--workers: give a number of processes from 1 to 16"),
    ("--workers", "17", "--workers: give a number of processes from 1 to 16"),
    ("--threads", "0", "--threads: give a number of threads from 1 to 64"),
])
def test_out_of_range_process_and_thread_counts_are_refused_by_name(tmp_path, capsys, option, value, message):
    _, public = write_keypair(tmp_path / "api.key")
    code = main(["serve", "--db", str(tmp_path / "none.db"), "--token-key", str(public), option, value])
    assert code == 1
    assert message in capsys.readouterr().err
