"""/v1/checkpoints' signature lines: a witness's cosignature is checked when its key was given (--witness-vkey)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("fastapi", reason="the http extra is needed for `ledger serve`")

from tlog_fixtures import LOG_KEY, OTHER_WITNESS_KEY, WITNESS_KEY, sample_log

from ledger.http.proofs import describe_checkpoint


def stored(note_text: str, log) -> SimpleNamespace:
    cp = log.checkpoint()
    return SimpleNamespace(note=note_text, origin=cp.origin, size=cp.size, root=cp.root, signed_at_ms=0)


def kinds(described: dict) -> list[tuple[str, str, object]]:
    return [(s["name"], s["kind"], s["verified"]) for s in described["signatures"]]


def test_a_cosignature_is_verified_by_the_witness_key_given_and_unknown_without_it():
    log = sample_log()
    cp = stored(log.signed_checkpoint(witnesses=(WITNESS_KEY, OTHER_WITNESS_KEY)), log)
    log_only = describe_checkpoint(cp, [LOG_KEY.verifier()])
    assert kinds(log_only)[1:] == [(WITNESS_KEY.name, "unknown key", None), (OTHER_WITNESS_KEY.name, "unknown key", None)]
    both = describe_checkpoint(cp, [LOG_KEY.verifier()], [WITNESS_KEY.verifier()])
    assert kinds(both) == [(LOG_KEY.name, "log", True), (WITNESS_KEY.name, "cosignature", True),
                           (OTHER_WITNESS_KEY.name, "unknown key", None)]
    assert both["log_signature"] == "verified"


def test_a_witness_key_alone_does_not_make_the_log_signature_checked_and_a_forged_cosignature_fails():
    log = sample_log()
    text = log.signed_checkpoint(witnesses=(WITNESS_KEY,))
    described = describe_checkpoint(stored(text, log), [], [WITNESS_KEY.verifier()])
    assert described["log_signature"] == "no log vkey configured"
    lines = text.splitlines(keepends=True)
    name, sig = lines[-1].rsplit(" ", 1)
    forged = "".join(lines[:-1]) + name + " " + sig[:-6] + ("AAAA" if sig[-6:-2] != "AAAA" else "BBBB") + sig[-2:]
    described = describe_checkpoint(stored(forged, log), [LOG_KEY.verifier()], [WITNESS_KEY.verifier()])
    assert kinds(described)[1] == (WITNESS_KEY.name, "cosignature", False)
