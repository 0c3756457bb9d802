"""Reports with proofs for the verify-report tests, and the tamper cases made from them.

    made = build_reports(tmp_dir)        # a small real ledger, checkpoints, an auditor and a subject report
    files = tamper_files(made)           # {file name: text}: the good reports and each tampered one

The ledger is written by the real ingest path (no broker), its checkpoints signed with the fixed
log key of tlog_fixtures and cosigned by its witness, the reports built by
``ledger.audit.report.proofs`` at a fixed ``generated_at`` and the subject's signed with a fixed
report key. ``python tests/support/report_fixtures.py`` rewrites tests/data/tamper_report/ (the
committed copies stay valid whatever later versions add to reports: each file carries its proofs).
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tlog_fixtures import LOG_KEY, LOG_ORIGIN, TIMESTAMP, WITNESS_KEY, fixed_signer

REPORT_KEY = fixed_signer("reports.example.com/2026", 5)
IMPOSTOR_REPORT_KEY = fixed_signer("reports.example.com/2026", 6)  # the report key's name, another key
GENERATED_AT = datetime(2026, 6, 30, 12, 0, tzinfo=timezone.utc)
SUBJECT = "cust-000003"
TAMPER_DIR = Path(__file__).parent.parent / "data" / "tamper_report"


@dataclass
class Made:
    ledger: Path
    auditor: dict  # the auditor's report with receipts (JSON object)
    subject: dict  # the subject's report, signed


def build_ledger(path: Path, *, events: int = 160, subjects: int = 6) -> Path:
    """A ledger of a simulated workload with every partition checkpointed and cosigned."""
    import sqlite3

    from fill import ingest_records, to_records

    from ledger.dev.simulate import simulate
    from ledger.store.checkpoints import issue_checkpoints
    from ledger.wire.codec import default_codec

    work = simulate(seed=14, events=events, subjects=subjects)
    ingest_records(path, list(to_records(work.events, codec=default_codec())), batch=64)
    key_file = path.parent / "log.key"
    issue_checkpoints(path, LOG_KEY, key_file, LOG_ORIGIN, now_ms=1_780_000_000_000)
    conn = sqlite3.connect(path)
    with conn:
        for origin, size, note in conn.execute("SELECT origin, size, note FROM checkpoints").fetchall():
            text = note[:note.index("\n\n") + 1].encode()
            conn.execute("UPDATE checkpoints SET note = ? WHERE origin = ? AND size = ?",
                         (note + WITNESS_KEY.signature_line(text, TIMESTAMP), origin, size))
    conn.close()
    return path


def report_json(ledger_path: Path, audience: str, *, signer=None, subject: str = SUBJECT) -> dict:
    """The report with proofs as ``ledger report --proofs`` writes it, parsed back."""
    from ledger.audit.report.proofs import build_report_with_proofs, render_proved
    from ledger.store import Ledger

    with Ledger.open(ledger_path, readonly=True) as ledger:
        report = build_report_with_proofs(ledger, subject, audience=audience, log_origin=LOG_ORIGIN,
                                          generated_at=GENERATED_AT)
    return json.loads(render_proved(report, signer))


def build_reports(directory: Path) -> Made:
    path = build_ledger(Path(directory) / "ledger.db")
    return Made(path, report_json(path, "auditor"), report_json(path, "subject", signer=REPORT_KEY))


def _dump(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _copy(doc: dict) -> dict:
    return json.loads(json.dumps(doc))


def _flip_signature_bit(note: str, line_from_end: int = 1) -> str:
    """The note with one bit of the signature (not the key ID) of one signature line flipped."""
    lines = note.rstrip("\n").split("\n")
    dash, name, sig = lines[-line_from_end].split(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 0x01
    lines[-line_from_end] = f"{dash} {name} {base64.b64encode(bytes(raw)).decode()}"
    return "\n".join(lines) + "\n"


def _log_signature_line(receipt: str) -> int:
    """Which signature line from the end holds the log's signature (its name is the log origin)."""
    lines = receipt.rstrip("\n").split("\n")
    return next(n for n in range(1, len(lines)) if lines[-n].startswith(f"\u2014 {LOG_ORIGIN} "))


def tamper_files(made: Made) -> dict[str, str]:
    """The data files of tests/data/tamper_report/, by name."""
    from ledger.tlog.signed_report import sign_report

    files = {
        "log.vkey": LOG_KEY.verifier().vkey + "\n",
        "witness.vkey": WITNESS_KEY.verifier().vkey + "\n",
        "report.vkey": REPORT_KEY.verifier().vkey + "\n",
        "auditor-good.json": _dump(made.auditor),
        "subject-good.json": _dump(made.subject),
    }
    auditor = made.auditor
    # A line that says another purpose than its record.
    edited = _copy(auditor)
    line = edited["timeline"][1]
    line["purpose"] = "marketing.advertising" if line["purpose"] != "marketing.advertising" else "essential"
    files["auditor-line-edited.json"] = _dump(edited)
    # The receipts of the first two lines swapped: each line then carries another entry's proof.
    swapped = _copy(auditor)
    first, second = swapped["timeline"][0], swapped["timeline"][2]
    first["receipt"], second["receipt"] = second["receipt"], first["receipt"]
    files["auditor-receipt-swapped.json"] = _dump(swapped)
    # One bit of the log's signature in one line's receipt flipped.
    flipped = _copy(auditor)
    receipt = flipped["timeline"][3]["receipt"]
    flipped["timeline"][3]["receipt"] = _flip_signature_bit(receipt, _log_signature_line(receipt))
    files["auditor-signature-bit.json"] = _dump(flipped)
    # A line dropped from the timeline while the accounting still lists its event.
    accounted = {i for g in auditor["accounting"]["groups"] for i in g["event_ids"]}
    dropped = _copy(auditor)
    dropped["timeline"] = [v for v in dropped["timeline"] if v["event_id"] != min(accounted)]
    files["auditor-accounted-line-missing.json"] = _dump(dropped)

    subject = made.subject
    unsigned = {k: v for k, v in subject.items() if k != "report_signature"}
    # A position beyond its checkpoint's size, the report re-signed (so only the position is wrong).
    beyond = _copy(unsigned)
    line = beyond["timeline"][0]
    size = next(int(c.split("\n")[1]) for c in beyond["checkpoints"] if c.startswith(line["log"]["origin"] + "\n"))
    line["log"]["index"] = size
    files["subject-position-beyond.json"] = _dump(sign_report(beyond, REPORT_KEY))
    # Signed by a key with the report key's name that is not the report key.
    files["subject-wrong-key.json"] = _dump(sign_report(_copy(unsigned), IMPOSTOR_REPORT_KEY))
    # A line edited after signing.
    changed = _copy(subject)
    changed["timeline"][0]["purpose"] = "marketing.advertising"
    files["subject-line-edited.json"] = _dump(changed)
    # One bit of the report signature flipped.
    bit = _copy(subject)
    bit["report_signature"] = _flip_signature_bit(bit["report_signature"])
    files["subject-signature-bit.json"] = _dump(bit)
    # A receipt (leaf data) in a subject report, re-signed: refused even though the signature holds.
    leaky = _copy(unsigned)
    leaky["timeline"][0]["receipt"] = auditor["timeline"][0]["receipt"]
    files["subject-with-receipt.json"] = _dump(sign_report(leaky, REPORT_KEY))
    return files


CASES = [
    {"file": "auditor-good.json", "description": "an auditor's report with a receipt on every line", "match": None},
    {"file": "subject-good.json", "description": "a subject's report, signed, with log positions and checkpoints",
     "match": None},
    {"file": "auditor-line-edited.json", "description": "line 1's purpose edited",
     "match": "timeline[1]", "reason": "field purpose is"},
    {"file": "auditor-receipt-swapped.json", "description": "the receipts of lines 0 and 2 swapped",
     "match": "timeline[0]", "reason": "its receipt proves another entry"},
    {"file": "auditor-signature-bit.json", "description": "one bit of the log signature in line 3's receipt flipped",
     "match": "timeline[3]", "reason": "does not verify"},
    {"file": "auditor-accounted-line-missing.json",
     "description": "a line the accounting of disclosures lists removed from the timeline",
     "match": "accounting.groups", "reason": "which no proved timeline line holds"},
    {"file": "subject-position-beyond.json", "description": "line 0's position set to its checkpoint's size, re-signed",
     "match": "timeline[0]", "reason": "beyond its checkpoint"},
    {"file": "subject-wrong-key.json", "description": "signed by another key under the report key's name",
     "match": "report signature", "reason": "no signature by a trusted key"},
    {"file": "subject-line-edited.json", "description": "line 0's purpose edited after signing",
     "match": "report signature", "reason": "changed after signing"},
    {"file": "subject-signature-bit.json", "description": "one bit of the report signature flipped",
     "match": "report signature", "reason": "does not verify"},
    {"file": "subject-with-receipt.json", "description": "a receipt in a subject report (leaf data), re-signed",
     "match": "timeline[0]", "reason": "must not carry receipt"},
]


def write_tamper_files() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        files = tamper_files(build_reports(Path(tmp)))
    TAMPER_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (TAMPER_DIR / name).write_text(text, encoding="utf-8")
    (TAMPER_DIR / "cases.json").write_text(json.dumps(CASES, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_tamper_files()
    print(f"wrote {TAMPER_DIR}")
