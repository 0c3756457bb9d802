"""`ledger verify-receipt` lists a bulk job's subjects briefly: the first five, then how many more.

The entry of a billing run or an export names hundreds of customers; the
printout shows five and ``... and N more (--json lists all)``, and
``--json`` keeps the full list.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from samples import sample
from tlog_fixtures import LOG_KEY, build_log

from ledger.cli import main
from ledger.cli.keys import first_few


def _receipt_files(tmp_path, subjects: list[str]):
    event = {**sample("DataAccessed"), "subject_ids": subjects,
             "occurred_at": datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC)}
    log = build_log([event])
    receipt, vkey = tmp_path / "entry.tlog-proof", tmp_path / "log.vkey"
    receipt.write_text(log.receipt(0))
    vkey.write_text(LOG_KEY.verifier().vkey + "\n")
    return ["verify-receipt", str(receipt), "--vkey", str(vkey)]


def _subjects_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.strip().startswith("subjects"))


def test_a_bulk_entry_shows_five_subjects_and_the_count_of_the_rest(tmp_path, capsys):
    """300 subjects: the first five (in the entry's order) and '... and 295 more'; --json has all 300."""
    subjects = [f"cust-{i:06d}" for i in range(1, 301)]
    args = _receipt_files(tmp_path, subjects)
    assert main([*args, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["subject_ids"]
    assert sorted(listed) == subjects
    assert main(args) == 0
    line = _subjects_line(capsys.readouterr().out)
    assert line == f"  subjects     {', '.join(listed[:5])} ... and 295 more (--json lists all)"


def test_a_few_subjects_are_all_listed(tmp_path, capsys):
    """Five subjects or fewer: every one, no count."""
    subjects = [f"cust-{i}" for i in range(1, 6)]
    assert main(_receipt_files(tmp_path, subjects)) == 0
    line = _subjects_line(capsys.readouterr().out)
    assert "more" not in line and all(s in line for s in subjects)


@pytest.mark.parametrize(("count", "expected"), [
    (0, ""),
    (1, "s1"),
    (5, "s1, s2, s3, s4, s5"),
    (6, "s1, s2, s3, s4, s5 ... and 1 more (--json lists all)"),
    (1234, "s1, s2, s3, s4, s5 ... and 1,229 more (--json lists all)"),
])
def test_first_few(count, expected):
    """Up to five values joined; past five, the count of the others."""
    assert first_few([f"s{i}" for i in range(1, count + 1)]) == expected
