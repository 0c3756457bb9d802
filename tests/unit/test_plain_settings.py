"""plain_settings: Settings for a test that never reaches Kafka, run once, with no broker behind it."""

from __future__ import annotations

import socket
from pathlib import Path


def test_plain_settings_run_once_with_a_fresh_prefix_and_file(plain_settings, tmp_path, request):
    """No client parameter, no broker marker, its own topic prefix and a ledger file in tmp_path."""
    assert "[" not in request.node.name
    assert request.node.get_closest_marker("broker") is None
    assert Path(plain_settings.db) == tmp_path / "ledger.db"
    assert plain_settings.topic_prefix.startswith("t") and plain_settings.topic_prefix.endswith(".")


def test_plain_settings_point_where_no_broker_listens(plain_settings):
    """A test that reaches for Kafka after all is refused at once instead of passing by accident."""
    host, port = plain_settings.bootstrap_servers.rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(2)
        assert probe.connect_ex((host, int(port))) != 0
