"""Reports with proofs: receipts for the auditor, log positions and a signature for the customer.

    report = build_report_with_proofs(ledger, "cust-000042", audience="auditor", log_origin=origin)
    text = render_proved(report, signer=None)            # JSON; signed when a report key is given

*Auditor*: every timeline line gets ``receipt``, the c2sp.org/tlog-proof@v1 receipt of its entry
under the latest stored checkpoint of its partition (and ``earliest_copy_receipt`` when an
identical copy was recorded earlier, which is what ``recorded_at`` then shows).

*Subject*: a receipt hands out the record's leaf data, and a leaf hash commits to the raw record
without a secret: a customer could confirm a guess of a field the report hides (a staff id such
as ``emp-1012``, another customer's id) by hashing candidates. So a subject line only names its
log position, ``log: {origin, index}``, the report carries the signed checkpoints those positions
fall under (``checkpoints``), and the whole report is signed with a report key
(ledger/tlog/signed_report.py): the customer can prove what they were told and that it points at
entries of the published log, and an auditor can open those positions with full receipts.

Everything is read in the report's one read transaction (ledger/store/proofs.py), so the
receipts are of exactly the entries the report shows. ``ledger verify-report`` checks the result
(ledger/tlog/report_check.py).
"""

from __future__ import annotations

import json

from ledger.errors import ValidationError
from ledger.store import reads
from ledger.store.proofs import Prover
from ledger.tlog.checkpoint import key_covers
from ledger.tlog.signed_report import sign_report

from .inert import json_inert
from .model import Report, build_report


def build_report_with_proofs(source, subject: str, *, audience: str, log_origin: str, **options) -> Report:
    """:func:`~.model.build_report` with the proofs of its audience attached, all in one snapshot."""
    with reads.snapshot(source):
        report = build_report(source, subject, audience=audience, **options)
        attach_proofs(report, source, log_origin)
    return report


def attach_proofs(report: Report, source, log_origin: str) -> None:
    """Give each timeline line its receipt (auditor) or log position (subject).

    NotCheckpointedError (ledger/store/checkpoints.py) when no stored checkpoint covers a line's entry.
    """
    prover = Prover(source, log_origin)
    prover.load(report.line_seqs)
    if report.audience == "auditor":
        for view, seq in zip(report.timeline, report.line_seqs):
            view["receipt"] = prover.receipt(seq)
            copy = prover.earliest_copy(seq)
            if copy is not None:
                view["earliest_copy_receipt"] = prover.receipt(copy)
        return
    used: dict[str, str] = {}
    for view, seq in zip(report.timeline, report.line_seqs):
        origin, index = prover.position(seq)
        view["log"] = {"origin": origin, "index": index}
        used[origin] = prover.checkpoint(origin)[1]
    report.checkpoints = [used[o] for o in sorted(used)]


def check_report_key(signer, log_origin: str) -> None:
    """A report key must not be the log's: its name may not cover the log origin (one key, one statement)."""
    if key_covers(signer.name, log_origin):
        raise ValidationError("--sign-key", f"the key {signer.name!r} is named like the log ({log_origin!r}) and would "
                              "also verify its checkpoints; sign reports with a key of their own (`ledger keys "
                              "generate NAME --out DIR --report`)")


def render_proved(report: Report, signer=None) -> str:
    """The report as JSON (the form ``render(report, "json")`` writes), signed when ``signer`` is given."""
    data = report.to_dict()
    if signer is not None:
        data = sign_report(data, signer)
    return json_inert(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)) + "\n"
