"""A one-command run imports only that command's module, and gets the same parser for it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ledger import cli


def registered() -> dict[str, str]:
    """Every top-level command and the module whose ``register`` adds it."""
    import argparse
    import importlib

    out = {}
    for name in cli.COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers(dest="command")
        importlib.import_module(f"ledger.cli.{name}").register(sub, cli.common_options())
        out.update((command, name) for command in sub.choices)
    return out


def test_every_lazy_entry_names_the_module_that_registers_it():
    """COMMAND_HOMES may lag behind new commands (they then build the whole parser), never point wrongly."""
    homes = registered()
    for command, module in cli.COMMAND_HOMES.items():
        assert homes.get(command) == module, f"{command}: registered by {homes.get(command)}, listed as {module}"


@pytest.mark.parametrize("command", sorted(cli.COMMAND_HOMES))
def test_the_lazy_parser_gives_the_same_help(command, capsys):
    """`ledger COMMAND --help` reads the same from the one-module parser as from the whole one."""
    helps = []
    for parser in (cli.build_parser(), cli._parser_for([command])):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        helps.append(capsys.readouterr().out)
    assert helps[0] == helps[1]


def _imported_by(module: str) -> set[str]:
    """The sibling command modules ``ledger/cli/<module>.py`` imports at its top level."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(cli.__file__).parent / f"{module}.py").read_text())
    return {f"ledger.cli.{node.module}" for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}


def test_prove_imports_no_other_command_module_nor_kafka_or_avro():
    """The `ledger prove` path loads no command module but its own (and what that imports), no kafka, no fastavro."""
    code = ("import sys\nfrom ledger.cli import main\ntry:\n    main(['prove', 'x', '--db', '/nonexistent.db'])\n"
            "except SystemExit:\n    pass\n"
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith(('ledger.cli.', 'kafka', "
            "'confluent_kafka', 'fastavro', 'ledger.wire.codec', 'ledger.audit', 'ledger.ingest')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    loaded = set(out.stdout.split())
    assert "ledger.cli.tlog" in loaded, out.stdout + out.stderr
    assert loaded <= {"ledger.cli.tlog"} | _imported_by("tlog"), sorted(loaded)
