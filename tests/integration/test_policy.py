"""The policy file (ledger.policy): the example loads, and a bad file is refused by line and reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.errors import PolicyError
from ledger.model.policy import describe, load, loads
from ledger.model.policy.lines import LineIndex
from ledger.model.policy.load import ACCESS_TYPES, ACTOR_TYPES, CHANNELS, RECIPIENT_KINDS, REQUEST_KINDS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "policy.toml"
HEAD = '[policy]\nname = "t"\nversion = "1"\n'


def refused(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        loads(HEAD + text, "p.toml")
    return caught.value


def test_the_example_policy_loads_and_names_its_sha256():
    """examples/policy.toml is valid; its SHA-256 is of the file's bytes and every rule kind is present."""
    import hashlib

    p = load(EXAMPLE)
    assert p.sha256 == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert p.roles and p.consent and p.agreements and p.legal and p.notices and p.break_glass
    text = "\n".join(describe(p))
    assert "support_agent" in text and "Payment card details" in text and p.vocabulary.version in text


def test_enums_match_the_event_schemas():
    """The enum values the loader accepts are exactly those of schemas/*/v1.avsc."""
    def symbols(event: str, name: str) -> list[str]:
        found = []

        def walk(node):
            if isinstance(node, dict):
                if node.get("type") == "enum" and node.get("name") == name:
                    found.append(node["symbols"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)
        walk(json.loads((ROOT / "schemas" / event / "v1.avsc").read_text()))
        return found[0]
    assert tuple(symbols("DataAccessed", "ActorType")) == ACTOR_TYPES
    assert tuple(symbols("DataAccessed", "AccessType")) == ACCESS_TYPES
    assert tuple(symbols("ConsentChanged", "ConsentChannel")) == CHANNELS
    assert tuple(symbols("LegalDisclosure", "RequestKind")) == REQUEST_KINDS
    assert tuple(symbols("DataShared", "RecipientKind")) == RECIPIENT_KINDS


ROLE = '[access.roles.agent]\nactor_types = ["EMPLOYEE"]\n[[access.roles.agent.allow]]\n'


@pytest.mark.parametrize("text, line, reason", [
    ('[access]\njustification = ["EXPORT"]\n', 5, "unknown key 'justification' in [access]"),
    ('colour = "blue"\n', 4, "unknown key 'colour' in [policy]; expected one of: name, version"),
    ('[extras]\nx = 1\n', 4, "unknown key 'extras' in [top level]"),
    (ROLE + 'categories = ["user.pets"]\npurposes = ["essential"]\n', 7, "'user.pets' is not in the vocabulary"),
    (ROLE + 'categories = ["user.name"]\npurposes = ["shopping"]\n', 8, "'shopping' is not in the vocabulary"),
    (ROLE + 'categories = []\npurposes = ["essential"]\n', 7, "empty, so this rule can never match"),
    (ROLE.replace('\n[[', '\ndeny = ["user.contact"]\n[[') + 'categories = ["user.contact.email"]\npurposes = ["essential"]\n',
     8, "can never match"),
    (ROLE.replace('\n[[', '\ndeny = ["user.name"]\n[[') + 'categories = ["user.name"]\npurposes = ["essential"]\n',
     8, "both allows and denies 'user.name'"),
    ('[access.roles.agent]\nactor_types = ["ROBOT"]\n', 5, "'ROBOT' is not one of EMPLOYEE"),
    ('[access.roles.agent]\nactor_types = ["EMPLOYEE"]\n', 4, "allows nothing"),
    ('[consent.m]\npurposes = ["marketing"]\n[consent.m.channels]\n"essential.service" = "EMAIL"\n', 7,
     "not under this rule's purposes"),
    ('[consent.m]\npurposes = ["marketing"]\n[consent.m.channels]\n"marketing.advertising" = "FAX"\n', 7,
     "'FAX' is not one of"),
    ('[legal]\n[legal.release]\nSUMMONS = ["user"]\n[legal.authorities]\nservices = ["x"]\nroles = ["y"]\n', 6,
     "request kind 'SUMMONS'"),
    ('[legal.release]\nSUBPOENA = ["user"]\n[legal.authorities]\nservices = ["x"]\n', 6, "names no roles"),
    ('[recipients.agreements."A-1"]\npurposes = ["essential"]\ncategories = ["user"]\nmax_retention_days = 0\n',
     7, "max_retention_days must be more than 0"),
    ('[[vocabulary.categories]]\nkey = "user.pets.names"\nlabel = "Pets"\n', 5, "needs an existing parent"),
    ('[access.break_glass]\nreview_within_hours = "soon"\n', 5, "must be a number"),
    ('[access\n', 4, "not valid TOML"),
])
def test_a_bad_policy_is_refused_with_its_line_and_reason(text, line, reason):
    """Unknown keys, unknown vocabulary, never-matching rules, contradictions and bad values name line and reason."""
    err = refused(text)
    assert reason in err.reason
    assert err.line == line, (err.line, err.reason)
    assert str(err).startswith(f"p.toml:{line}: ")


def test_a_missing_policy_table_is_refused():
    """A file without [policy] name and version is refused (a policy must say which version it is)."""
    with pytest.raises(PolicyError, match=r"needs a \[policy\]"):
        loads('[access]\njustification_required = ["EXPORT"]\n')


def test_company_keys_under_an_existing_parent_are_usable_in_rules():
    """A key added under [[vocabulary.categories]] can be used by a rule and is covered by its parent."""
    p = loads(HEAD + '[[vocabulary.categories]]\nkey = "user.contact.pager"\nlabel = "Pager number"\n'
              + ROLE + 'categories = ["user.contact.pager"]\npurposes = ["essential"]\n')
    assert p.vocabulary.label("category", "user.contact.pager") == "Pager number"
    assert p.added_keys == (("category", "user.contact.pager", "Pager number"),)


def test_aliases_are_accepted_and_stored_canonical():
    """A rule written with an old key is stored as the fideslang key it stands for."""
    p = loads(HEAD + ROLE + 'categories = ["user.contact.phone"]\npurposes = ["essential.service.support"]\n')
    grant = p.roles["agent"].allow[0]
    assert grant.categories == ("user.contact.phone_number",)
    assert grant.purposes == ("essential.service.operations.support",)


def test_line_index_follows_arrays_of_tables_quoted_keys_and_multiline_values():
    """Nested [[tables]], quoted keys and multi-line arrays map to the lines that define them."""
    text = ('[a]\nx = [\n  "[not a table]",\n  2,\n]\ny = """\nz = 1\n"""\n[[a.list]]\nk = 1\n[[a.list]]\n'
            'k = 2\n[a."dotted.key"]\n"q.k" = 3\nb.c = 4\n')
    index = LineIndex(text)
    assert index.line(("a", "x")) == 2
    assert index.line(("a", "y")) == 6
    assert ("a", "z") not in index.lines  # inside the multi-line string
    assert index.line(("a", "list", 0, "k")) == 10
    assert index.line(("a", "list", 1, "k")) == 12
    assert index.line(("a", "dotted.key", "q.k")) == 14
    assert index.line(("a", "dotted.key", "b", "c")) == 15
    assert index.line(("a", "list", 1, "missing")) == 11  # falls back to the enclosing table


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ledger", "policy", *args], capture_output=True, text=True,
                          cwd=ROOT)


def test_cli_check_and_show(tmp_path):
    """`policy check` exits 0 on the example and 2 with FILE:LINE: reason on a bad file; `show` prints words."""
    ok = run_cli("check", str(EXAMPLE))
    assert ok.returncode == 0 and "ok" in ok.stdout and "sha256" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + '[access]\ncolour = 1\n')
    refused_run = run_cli("check", str(bad))
    assert refused_run.returncode == 2
    assert f"{bad}:5: unknown key 'colour'" in refused_run.stderr and "Traceback" not in refused_run.stderr
    shown = run_cli("show", str(EXAMPLE))
    assert shown.returncode == 0 and "may release" in shown.stdout
    assert run_cli("show", str(tmp_path / "missing.toml")).returncode == 2


def test_policy_commands_have_help_with_an_example(capsys):
    """`ledger policy check|show --help` documents itself with an example."""
    from ledger.cli import main

    for command in ("check", "show"):
        with pytest.raises(SystemExit):
            main(["policy", command, "--help"])
        assert f"ledger policy {command} examples/policy.toml" in capsys.readouterr().out
