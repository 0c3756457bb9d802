"""`ledger schemas check` and `ledger schemas list`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ledger.cli import build_parser, main
from ledger.model import events
from ledger.wire.codec import default_codec

SCHEMAS = Path(events.__file__).resolve().parent.parent.parent / "schemas"


def test_check_passes_on_the_real_schemas(capsys):
    """`schemas check` prints each event with its versions and fingerprints, then "ok", and exits 0."""
    assert main(["schemas", "check"]) == 0
    out = capsys.readouterr().out
    for event_type in events.EVENT_TYPES:
        assert event_type in out
        assert default_codec().newest(event_type).fingerprint.hex() in out
    assert out.rstrip().endswith("ok")


def test_check_fails_naming_event_versions_and_field(tmp_path, capsys):
    """An incompatible version makes `schemas check --dir` exit 1 naming the event, versions and field."""
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    schema = json.loads((root / "ConsentChanged" / "v1.avsc").read_text())
    schema["fields"].append({"name": "source_ip", "type": "string", "doc": "no default"})
    (root / "ConsentChanged" / "v2.avsc").write_text(json.dumps(schema))
    assert main(["schemas", "check", "--dir", str(root)]) == 1
    out = capsys.readouterr().out
    assert "ConsentChanged: v2 cannot read data written by v1: source_ip:" in out
    assert "ok" not in out.split()


def test_check_reports_a_malformed_file_cleanly(tmp_path, capsys):
    """A schema file that is not JSON gives one error line naming the file and exit status 1."""
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    (root / "DataShared" / "v2.avsc").write_text("{")
    assert main(["schemas", "check", "--dir", str(root)]) == 1
    assert "DataShared/v2.avsc" in capsys.readouterr().err


def test_list_shows_versions_and_files(capsys):
    """`schemas list` prints every event type with its versions, fingerprints and paths."""
    assert main(["schemas", "list"]) == 0
    out = capsys.readouterr().out
    assert all(t in out for t in events.EVENT_TYPES)
    assert "v1" in out and "DataAccessed/v1.avsc" in out


@pytest.mark.parametrize("command", ["check", "list"])
def test_help_has_an_example(command, capsys):
    """Each schemas subcommand's help ends with a runnable example."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["schemas", command, "--help"])
    assert f"example: ledger schemas {command}" in capsys.readouterr().out
