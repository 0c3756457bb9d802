"""`ledger keys generate` and `ledger verify-receipt`: files, modes, exit codes and messages."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
import tlog_fixtures as fx

from ledger.cli import main
from ledger.tlog import note
from ledger.tlog.errors import KeyFileError
from ledger.tlog.keyfile import load_signer, load_verifier, safe_file_name

DATA = fx.TAMPER_DIR
CASES = json.loads((DATA / "cases.json").read_text())


def test_generate_writes_the_two_files(tmp_path, capsys):
    """A name with '/' gets a safe file name; .key is 0600 and holds the signer key, .vkey the verifier key."""
    assert main(["keys", "generate", "ledger.example.com/audit", "--out", str(tmp_path / "keys")]) == 0
    key, vkey = tmp_path / "keys" / "ledger.example.com_audit.key", tmp_path / "keys" / "ledger.example.com_audit.vkey"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    skey_line = key.read_text()
    assert skey_line.startswith("PRIVATE+KEY+ledger.example.com/audit+") and skey_line.count("\n") == 1
    verifier = load_verifier(vkey)
    assert verifier.sig_type == note.ED25519 and verifier.name == "ledger.example.com/audit"
    assert load_signer(key).verifier() == verifier
    assert verifier.vkey in capsys.readouterr().out


def test_generate_cosigner_makes_a_type_04_vkey(tmp_path):
    """--cosigner: the same kind of signer key file, a vkey of type 04 with the 04 key ID."""
    assert main(["keys", "generate", "witness.example.org/w1", "--out", str(tmp_path), "--cosigner"]) == 0
    verifier = load_verifier(tmp_path / "witness.example.org_w1.vkey")
    assert verifier.sig_type == note.COSIGNATURE_V1
    cosigner = load_signer(tmp_path / "witness.example.org_w1.key", cosigner=True)
    assert cosigner.verifier() == verifier
    assert load_signer(tmp_path / "witness.example.org_w1.key").key_id != verifier.key_id


def test_generate_never_overwrites(tmp_path, capsys):
    """A second generate of the same name fails and leaves the first key intact."""
    assert main(["keys", "generate", "a.example", "--out", str(tmp_path)]) == 0
    before = (tmp_path / "a.example.key").read_text()
    assert main(["keys", "generate", "a.example", "--out", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "a.example.key").read_text() == before


@pytest.mark.parametrize("name", ["", "has space", "a+b"])
def test_generate_refuses_bad_names(tmp_path, capsys, name):
    """A key name that signed-note forbids is refused with the reason."""
    assert main(["keys", "generate", name, "--out", str(tmp_path)]) == 1
    assert "key name" in capsys.readouterr().err


def test_safe_file_names():
    """Unsafe characters become '_' and a leading dot is dropped."""
    assert safe_file_name("ledger.example.com/audit") == "ledger.example.com_audit"
    assert safe_file_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_file_name("ünïcode/x") == "_n_code_x"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_readable_by_others_is_refused(tmp_path, mode):
    """Loading a signer key file that group or others may access fails, naming the mode and the fix."""
    main(["keys", "generate", "a.example", "--out", str(tmp_path)])
    key = tmp_path / "a.example.key"
    os.chmod(key, mode)
    with pytest.raises(KeyFileError, match=f"mode {mode:04o}: group or others"):
        load_signer(key)


def test_a_vkey_file_with_a_signer_key_is_refused(tmp_path):
    """Pointing --vkey at the .key file is refused without echoing the secret."""
    main(["keys", "generate", "a.example", "--out", str(tmp_path)])
    with pytest.raises(KeyFileError, match="this is a signer key") as info:
        load_verifier(tmp_path / "a.example.key")
    assert (tmp_path / "a.example.key").read_text().split("+")[4].strip() not in str(info.value)


def _verify_args(name):
    return ["verify-receipt", str(DATA / name), "--vkey", str(DATA / "log.vkey"),
            "--witness-vkey", str(DATA / "witness.vkey"), "--min-witnesses", "1"]


def test_verify_receipt_prints_what_the_entry_says(capsys):
    """Exit 0 and the entry's type, actor, subjects and purpose on stdout."""
    assert main(_verify_args("good.tlog-proof")) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: receipt verified: entry 3 of ledger.example.com/audit/ledger.access/0")
    for part in ("DataAccessed", "emp-1012 (EMPLOYEE, support_agent)", "cust-000005",
                 "essential.service.operations.support", "ledger.access[0]@3", "witness.example.org/w1"):
        assert part in out
    assert main(_verify_args("good.tlog-proof") + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["subject_ids"] == ["cust-000005"]


@pytest.mark.parametrize("case", [c for c in CASES if c["step"]], ids=lambda c: c["file"])
def test_verify_receipt_names_what_failed(capsys, case):
    """Each tamper case exits 1 with one line naming the failed step and the reason."""
    assert main(_verify_args(case["file"])) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ledger verify-receipt: error: {case['step']}: ") and case["match"] in err
    assert err.count("\n") == 1


def test_verify_receipt_bad_inputs_are_clean_errors(tmp_path, capsys):
    """A missing receipt, a missing vkey or a garbled vkey file: exit 1, one line, no traceback."""
    assert main(["verify-receipt", str(tmp_path / "nope"), "--vkey", str(DATA / "log.vkey")]) == 1
    assert "format: cannot read" in capsys.readouterr().err
    assert main(["verify-receipt", str(DATA / "good.tlog-proof"), "--vkey", str(tmp_path / "nope.vkey")]) == 1
    assert "cannot read verifier key file" in capsys.readouterr().err
    garbled = tmp_path / "g.vkey"
    garbled.write_text("not a key\n")
    assert main(["verify-receipt", str(DATA / "good.tlog-proof"), "--vkey", str(garbled)]) == 1
    assert "g.vkey: verifier key" in capsys.readouterr().err


def test_verify_receipt_from_stdin_in_a_subprocess():
    """'-' reads stdin; the real command exits 0, and 1 without a traceback on a tampered receipt."""
    cmd = [sys.executable, "-m", "ledger", "verify-receipt", "-", "--vkey", str(DATA / "log.vkey")]
    good = subprocess.run(cmd, input=(DATA / "good.tlog-proof").read_bytes(), capture_output=True)
    assert good.returncode == 0, good.stderr
    bad = subprocess.run(cmd, input=(DATA / "proof-for-wrong-index.tlog-proof").read_bytes(), capture_output=True)
    assert bad.returncode == 1 and b"Traceback" not in bad.stderr and b"inclusion:" in bad.stderr


def test_new_commands_have_help_with_an_example(capsys):
    """keys generate, verify-receipt and witness follow document themselves with an example."""
    for argv, example in ((["keys", "generate", "--help"], "examples:\n  ledger keys generate"),
                          (["verify-receipt", "--help"], "example:\n  ledger verify-receipt"),
                          (["witness", "follow", "--help"], "example:\n  ledger witness follow")):
        with pytest.raises(SystemExit):
            main(argv)
        assert example in capsys.readouterr().out
