"""Signed reports: a report's canonical JSON signed as a self-describing signed note.

A report (JSON) is signed by a *report key*: a signed-note Ed25519 key (type 0x01) of its own,
never the log's key, because one key signs one kind of statement. What the key signs is a note
whose text names what it is::

    ledger.report/v1
    <subject>
    <generated_at>
    <lowercase hex SHA-256 of the report's RFC 8785 canonical JSON, without "report_signature">

and the signed note (text, blank line, signature lines) is carried in the report itself as the
string member ``report_signature``. To check one: remove ``report_signature``, canonicalise the
rest (:mod:`.jcs`), hash it, compare with the fourth line, check that the second and third lines
are the report's ``subject`` and ``generated_at``, and verify the note with the report's vkey.
The context line keeps a report signature from being read as a checkpoint or any other statement
(a checkpoint's first line is its origin, which a log key's name covers), and the digest binds
every byte of meaning in the report, whatever its whitespace or key order.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256

from .checkpoint import key_covers
from .errors import FormatError, SignatureError
from .jcs import canonical
from .note import Verified, open_note, sign_note

CONTEXT = "ledger.report/v1"
SIGNATURE_FIELD = "report_signature"


def report_digest(report: dict) -> str:
    """Lowercase hex SHA-256 of the report's canonical JSON, leaving out its signature member."""
    unsigned = {k: v for k, v in report.items() if k != SIGNATURE_FIELD}
    return sha256(canonical(unsigned)).hexdigest()


def statement(subject: str, generated_at: str, digest: str) -> str:
    """The note text a report key signs."""
    for what, value in (("subject", subject), ("generated_at", generated_at)):
        if not isinstance(value, str) or not value or any(ord(c) < 0x20 for c in value):
            raise FormatError(f"report {what}", f"{value!r} must be one non-empty line of text")
    return f"{CONTEXT}\n{subject}\n{generated_at}\n{digest}\n"


def sign_report(report: dict, signer) -> dict:
    """A copy of ``report`` with ``report_signature`` (its signed statement) as the last member."""
    note = sign_note(statement(report["subject"], report["generated_at"], report_digest(report)), [signer])
    return {**{k: v for k, v in report.items() if k != SIGNATURE_FIELD}, SIGNATURE_FIELD: note}


@dataclass(frozen=True)
class ReportSignature:
    """A report signature that verified: by which key, over which digest."""

    key: str  # <name>+<hex key id>
    digest: str


def check_report_signature(report: dict, verifiers, log_origins=()) -> ReportSignature:
    """Verify ``report_signature`` with the report keys; FormatError or SignatureError says what is wrong.

    ``log_origins`` are the checkpoint origins the report relies on: a report key that would also
    cover one of them is refused, since it would be a log key signing a second kind of statement.
    """
    verifiers = list(verifiers)
    for verifier in verifiers:
        clash = next((o for o in log_origins if key_covers(verifier.name, o)), None)
        if clash is not None:
            raise SignatureError(f"the report key {verifier.name} also covers the log origin {clash}: a report "
                                 "must be signed by a key of its own, not the log's")
    note_text = report.get(SIGNATURE_FIELD)
    if not isinstance(note_text, str):
        raise FormatError(SIGNATURE_FIELD, "missing: the report is not signed")
    note, verified = open_note(note_text, verifiers)
    lines = note.text.split("\n")[:-1]
    if len(lines) != 4 or lines[0] != CONTEXT:
        raise SignatureError(f"the signed statement is not a {CONTEXT} statement (first line {lines[0][:40]!r})")
    digest = report_digest(report)
    if lines[1] != report.get("subject"):
        raise SignatureError(f"the signature is for subject {lines[1]!r}, the report is about "
                             f"{report.get('subject')!r}")
    if lines[2] != report.get("generated_at"):
        raise SignatureError(f"the signature is of a report generated at {lines[2]}, this one says "
                             f"{report.get('generated_at')}")
    if lines[3] != digest:
        raise SignatureError(f"the report's content does not match what was signed (canonical JSON SHA-256 "
                             f"{digest}, signed {lines[3][:64]}): the report was changed after signing")
    first: Verified = verified[0]
    return ReportSignature(f"{first.verifier.name}+{first.verifier.key_id:08x}", digest)
