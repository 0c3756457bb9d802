"""Opening a customer's report: its lines checked against receipts an auditor obtained for their positions.

A subject report names, for each line, only a log position (origin, index) under a signed
checkpoint. An auditor or a regulator who holds the report can ask the operator for the receipts
of those positions (``ledger prove EVENT_ID``, or the auditor's report of the same customer with
``--proofs``) and check that each line is exactly what the customer may see of its record: the
record decoded from the receipt, passed through the same allow-list the report used
(:func:`.audience.subject_view`), must equal the line. :func:`open_lines` does that offline; it
imports neither the store nor Kafka (the report package loads its model lazily).

    problems, notes, opened = open_lines(subject_report, receipts, log_vkeys)
"""

from __future__ import annotations

from ledger.tlog.errors import ReceiptError
from ledger.tlog.receipt import verify_receipt
from ledger.tlog.report_check import readable_form

from .audience import subject_view

MAX_DIFFERENCES = 3


def receipts_in(data: dict | str) -> list[str]:
    """The receipts a file holds: every line's of an auditor's report, or the receipt text itself."""
    if isinstance(data, dict):
        return [line["receipt"] for line in data.get("timeline", []) if isinstance(line, dict)
                and isinstance(line.get("receipt"), str)]
    return [data]


def open_lines(report: dict, receipts, log_vkeys, witness_vkeys=(), min_witnesses: int = 0, *,
               codec=None) -> tuple[list[str], list[str], int]:
    """Check the subject report's lines whose positions the receipts prove; (problems, notes, lines opened).

    A receipt that does not verify is a problem. One proving a position no line names is a note:
    an auditor's report also holds what the customer's report withholds (a delayed disclosure).
    """
    if codec is None:
        from ledger.wire.codec import default_codec

        codec = default_codec()
    lines = {}
    for i, line in enumerate(report.get("timeline", [])):
        where = line.get("log") if isinstance(line, dict) else None
        if isinstance(where, dict):
            lines[(where.get("origin"), where.get("index"))] = (i, line)
    problems: list[str] = []
    notes: list[str] = []
    opened: set[int] = set()
    for n, text in enumerate(receipts):
        try:
            facts = verify_receipt(text, log_vkeys, witness_vkeys, min_witnesses, codec=codec)
        except ReceiptError as err:
            problems.append(f"receipt {n}: {err}")
            continue
        found = lines.get((facts.origin, facts.index))
        if found is None:
            event_id = facts.event.get("event_id")
            notes.append(f"receipt {n} (event {event_id}) proves {facts.origin} #{facts.index}, which the report "
                         "does not show (withheld from the customer, or not about them)")
            continue
        i, line = found
        name = f"timeline[{i}] (event {line.get('event_id')})"
        expected = subject_view(readable_form(codec, facts.record.value), report["subject"])
        shown = {k: v for k, v in line.items() if k != "log"}
        differences = [key for key in sorted(expected.keys() | shown.keys()) if expected.get(key) != shown.get(key)]
        for key in differences[:MAX_DIFFERENCES]:
            problems.append(f"{name}: {key} is {shown.get(key)!r} in the report, {expected.get(key)!r} in the record "
                            f"at {facts.origin} #{facts.index}")
        if not differences:
            opened.add(i)
    return problems, notes, len(opened)
