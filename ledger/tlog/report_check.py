"""Checking a report with proofs offline: what `ledger verify-report` runs, with no ledger and no broker.

Two kinds of report carry proofs (``ledger report S --format json --proofs``):

- **auditor**: every timeline line carries ``receipt``, a c2sp.org/tlog-proof@v1 receipt of its
  entry. Each receipt must verify (:func:`~.receipt.verify_receipt`: log signature, witness
  cosignatures, inclusion, the record decodes), and the line must say what the record says: every
  field of the record's readable form (the event as its writer's schema has it) equal, no field
  the record lacks except the report's own annotations (:data:`ANNOTATIONS`), the labels and
  ``own_action`` as the record gives them, ``recorded_at`` the record's Kafka time (or, when an
  identical copy was recorded earlier, that copy's, proved by ``earliest_copy_receipt``), and the
  report's subject among its ``subject_ids``. No two lines may prove the same entry, and every
  event the accounting of disclosures lists must be a proved line.
- **subject**: no receipts and no leaf data (they would let a customer test guesses of hidden
  fields by hashing); each line names ``log: {origin, index}`` instead, the report carries the
  signed ``checkpoints`` those positions fall under, and the whole report is signed by a report
  key (:mod:`.signed_report`). Checked: the report signature, each checkpoint's signature (and
  cosignatures), one checkpoint per origin, every position below its checkpoint's size.

What is not checked, because no proof covers it: the derived sections (GDPR view, counts,
groupings), the auditor's judgments (``withheld_from_subject``, ``notice``, anomalies) and the
contradiction references, and that the report lists *every* event of the customer (a receipt
proves inclusion, not completeness). A signed report binds all of it to the report key.

:func:`verify_report` returns a :class:`ReportCheck` whose ``problems`` name each failing line
(``timeline[4] (event 6f1c…): field purpose is 'x' in the line, 'y' in the record``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import LedgerError
from .checkpoint import open_checkpoint
from .errors import FormatError, ReceiptError, SignatureError
from .jcs import loads_strict
from .note import COSIGNATURE_V1, ED25519, parse_verifier_key, verified_signatures
from .signed_report import SIGNATURE_FIELD, check_report_signature

#: Members a report adds to a line beside the record's fields (what no receipt proves, or proves apart).
ANNOTATIONS = frozenset({
    "labels", "own_action", "recorded_at", "contradicted_by", "contradicts", "withheld_from_subject",
    "withheld_with", "notice", "receipt", "earliest_copy_receipt", "log",
})
KINDS = ("subject-access-report",)
MAX_PROBLEMS_PER_LINE = 3


@dataclass
class ReportCheck:
    """The outcome of checking one report: what was proved, and each problem by line."""

    audience: str
    subject: str
    lines: int = 0
    proved: int = 0  # lines whose receipt (auditor) or position (subject) checked
    origins: dict[str, int] = field(default_factory=dict)  # checkpoint origin -> size relied on
    witnesses: set[str] = field(default_factory=set)
    signature: str | None = None  # the report key that signed it, when checked
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One paragraph for people: what holds, or how many problems."""
        what = "receipts" if self.audience == "auditor" else "log positions"
        head = (f"{self.audience} report on {self.subject}: {self.proved} of {self.lines} lines' {what} verified "
                f"under {len(self.origins)} checkpoint(s)")
        parts = [head]
        if self.witnesses:
            parts.append(f"witnessed by {', '.join(sorted(self.witnesses))}")
        if self.signature:
            parts.append(f"signed by report key {self.signature}")
        return "; ".join(parts)


def _verifiers(keys, sig_type: int, role: str):
    out = []
    for key in keys:
        verifier = parse_verifier_key(key) if isinstance(key, str) else key
        if verifier.sig_type != sig_type:
            raise FormatError(f"{role} key", f"{verifier.name}+{verifier.key_id:08x} has signature type "
                              f"{verifier.sig_type:02x}; a {role} key must have type {sig_type:02x}")
        out.append(verifier)
    return out


def load_report(data: bytes | str | dict) -> dict:
    """The report as a JSON object, read strictly (repeated keys and NaN refused)."""
    report = data if isinstance(data, dict) else loads_strict(data, "report")
    if not isinstance(report, dict):
        raise FormatError("report", "is not a JSON object")
    if report.get("kind") not in KINDS:
        raise FormatError("report", f"kind {report.get('kind')!r} is not a ledger report ({', '.join(KINDS)})")
    for name, kind in (("subject", str), ("audience", str), ("generated_at", str), ("timeline", list)):
        if not isinstance(report.get(name), kind):
            raise FormatError(f"report {name}", f"missing or not a {kind.__name__}")
    if report["audience"] not in ("auditor", "subject"):
        raise FormatError("report audience", f"{report['audience']!r} is neither auditor nor subject")
    return report


def verify_report(data, log_vkeys, report_vkeys=(), witness_vkeys=(), min_witnesses: int = 0, *,
                  codec=None) -> ReportCheck:
    """Check a report with proofs offline; see the module docstring for what each audience proves.

    Keys are verifier key strings or parsed Verifiers: log keys (type 01), report keys (type 01,
    not covering any log origin), witness keys (type 04). A report or key that cannot be read
    raises FormatError; everything about the report's content goes into ``problems``.
    """
    logs = _verifiers(log_vkeys, ED25519, "log")
    reports = _verifiers(report_vkeys, ED25519, "report")
    witnesses = _verifiers(witness_vkeys, COSIGNATURE_V1, "witness")
    if not logs:
        raise FormatError("log key", "no log verifier key given (--vkey)")
    report = load_report(data)
    check = ReportCheck(report["audience"], report["subject"], lines=len(report["timeline"]))
    if check.audience == "auditor":
        _check_auditor(report, check, logs, witnesses, min_witnesses, codec)
    else:
        _check_subject(report, check, logs, witnesses, min_witnesses)
    _check_signature(report, check, reports, logs)
    return check


def _line_name(i: int, line) -> str:
    event_id = line.get("event_id") if isinstance(line, dict) else None
    return f"timeline[{i}]" + (f" (event {event_id})" if isinstance(event_id, str) else "")


def _check_signature(report: dict, check: ReportCheck, reports, logs) -> None:
    signed = SIGNATURE_FIELD in report
    log_keys = {v.public_key for v in logs}
    shared = next((v for v in reports if v.public_key in log_keys), None)
    if shared is not None:
        check.problems.append(f"report signature: the report key {shared.name} is the log's key material; one key "
                              "signs one kind of statement, so a report key must be a key of its own")
        return
    if not reports:
        if check.audience == "subject":
            check.problems.append("report signature: a subject report is proved by its signature; give the "
                                  "report key's vkey (--report-vkey)")
        elif signed:
            check.notes.append("the report is signed; its signature was not checked (no --report-vkey)")
        return
    if not signed:
        check.problems.append(f"report signature: the report has no {SIGNATURE_FIELD} but a report key was given")
        return
    try:
        check.signature = check_report_signature(report, reports, tuple(check.origins)).key
    except (FormatError, SignatureError) as err:
        check.problems.append(f"report signature: {err}")


# --- the subject's report --------------------------------------------------------------------------


def _check_subject(report, check, logs, witnesses, min_witnesses) -> None:
    notes = report.get("checkpoints")
    if not isinstance(notes, list) or (not notes and report["timeline"]):
        check.problems.append("checkpoints: the report carries no signed checkpoints for its log positions")
        notes = []
    for n, text in enumerate(notes):
        where = f"checkpoints[{n}]"
        if not isinstance(text, str):
            check.problems.append(f"{where}: not a signed checkpoint (a string)")
            continue
        try:
            signed = open_checkpoint(text, logs)
            cosigned = _cosigners(signed, witnesses, min_witnesses)
        except (FormatError, SignatureError, ReceiptError) as err:
            check.problems.append(f"{where}: {err}")
            continue
        origin = signed.checkpoint.origin
        if origin in check.origins:
            check.problems.append(f"{where}: a second checkpoint of {origin}: one per origin")
            continue
        check.origins[origin] = signed.checkpoint.size
        check.witnesses |= set(cosigned)
    for i, line in enumerate(report["timeline"]):
        name = _line_name(i, line)
        if not isinstance(line, dict):
            check.problems.append(f"{name}: not an object")
            continue
        leaked = sorted({"receipt", "earliest_copy_receipt"} & line.keys())
        if leaked:
            check.problems.append(f"{name}: a subject report must not carry {', '.join(leaked)} (leaf data "
                                  "lets a reader test guesses of hidden fields)")
        position = line.get("log")
        if not (isinstance(position, dict) and isinstance(position.get("origin"), str)
                and type(position.get("index")) is int and position["index"] >= 0):
            check.problems.append(f"{name}: no log position (log: {{origin, index}})")
            continue
        origin, index = position["origin"], position["index"]
        size = check.origins.get(origin)
        if size is None:
            check.problems.append(f"{name}: its position {origin} #{index} falls under no checkpoint the report "
                                  "carries")
        elif index >= size:
            check.problems.append(f"{name}: position {index} of {origin} is beyond its checkpoint (size {size}): "
                                  "the log had not signed that entry")
        else:
            check.proved += 1


def _cosigners(signed, witnesses, minimum: int) -> tuple[str, ...]:
    try:
        verified = verified_signatures(signed.note, witnesses)
    except SignatureError as err:
        raise ReceiptError("cosignature", str(err)) from None
    if len({(v.verifier.name, v.verifier.key_id) for v in verified}) < minimum:
        names = sorted({v.verifier.name for v in verified})
        raise ReceiptError("cosignature", f"{len(names)} valid witness cosignature(s) "
                           f"({', '.join(names) or 'none'}), {minimum} required")
    return tuple(sorted({v.verifier.name for v in verified}))


# --- the auditor's report ---------------------------------------------------------------------------


def _check_auditor(report, check, logs, witnesses, min_witnesses, codec) -> None:
    from .receipt import verify_receipt

    if codec is None:
        from ledger.wire.codec import default_codec

        codec = default_codec()
    seen: dict[tuple[str, int], int] = {}
    proved_ids: set[str] = set()
    for i, line in enumerate(report["timeline"]):
        name = _line_name(i, line)
        if not isinstance(line, dict):
            check.problems.append(f"{name}: not an object")
            continue
        receipt = line.get("receipt")
        if not isinstance(receipt, str):
            check.problems.append(f"{name}: no receipt (make the report with --proofs)")
            continue
        try:
            facts = verify_receipt(receipt, logs, witnesses, min_witnesses, codec=codec)
        except ReceiptError as err:
            check.problems.append(f"{name}: receipt: {err}")
            continue
        where = (facts.origin, facts.index)
        if where in seen:
            check.problems.append(f"{name}: proves the same entry ({facts.origin} #{facts.index}) as "
                                  f"timeline[{seen[where]}]")
            continue
        seen[where] = i
        size = check.origins.get(facts.origin)
        check.origins[facts.origin] = max(size or 0, facts.tree_size)
        check.witnesses |= set(facts.witnesses)
        wrong = _line_problems(line, facts, report["subject"], codec, logs, witnesses, min_witnesses)
        if wrong:
            check.problems += [f"{name}: {w}" for w in wrong[:MAX_PROBLEMS_PER_LINE]]
            if len(wrong) > MAX_PROBLEMS_PER_LINE:
                check.problems.append(f"{name}: … and {len(wrong) - MAX_PROBLEMS_PER_LINE} more difference(s)")
            continue
        check.proved += 1
        if "contradicts" not in line:
            proved_ids.add(line["event_id"])
    accounting = report.get("accounting")
    groups = accounting.get("groups") if isinstance(accounting, dict) else None
    for g, group in enumerate(groups if isinstance(groups, list) else []):
        ids = group.get("event_ids") if isinstance(group, dict) else None
        for event_id in ids if isinstance(ids, list) else []:
            if event_id not in proved_ids:
                check.problems.append(f"accounting.groups[{g}]: lists event {event_id}, which no proved timeline "
                                      "line holds")


def readable_form(codec, value: bytes | None) -> dict:
    """The record's readable form (docs/architecture.md): the event as its writer's schema has it, as JSON."""
    from ledger.model.events import canonical_json, to_json

    return json.loads(canonical_json(to_json(codec.decode_as_written(value))))


def labels_for(form: dict) -> dict:
    """The labels a report line carries for a record (the vocabulary's names of its purpose and categories)."""
    from ledger.model.taxonomy import category_label, purpose_label

    labels = {}
    if form.get("purpose"):
        labels["purpose"] = purpose_label(form["purpose"])
    if form.get("data_categories"):
        labels["data_categories"] = [category_label(c) for c in form["data_categories"]]
    return labels


def _line_problems(line: dict, facts, subject: str, codec, logs, witnesses, min_witnesses) -> list[str]:
    """What in ``line`` differs from the record its receipt proves (empty when it says the same)."""
    from ledger.model.times import iso_millis

    try:
        form = readable_form(codec, facts.record.value)
    except LedgerError as err:
        return [f"the record does not decode as written: {err}"]
    if line.get("event_id") != form.get("event_id"):
        record = facts.record
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        return [f"its receipt proves another entry (event {form.get('event_id')}, {where}): the receipt belongs "
                "to another line or the line was rewritten"]
    out = []
    for key in sorted(form):
        if key not in line:
            out.append(f"field {key} of the record is missing from the line")
        elif line[key] != form[key]:
            out.append(f"field {key} is {_short(line[key])} in the line, {_short(form[key])} in the record")
    for key in sorted(line.keys() - form.keys() - ANNOTATIONS):
        out.append(f"field {key} is in the line but not in the record")
    if "labels" in line and line["labels"] != labels_for(form):
        out.append(f"labels are {_short(line['labels'])}, the record's purpose and categories give "
                   f"{_short(labels_for(form))}")
    actor = form.get("actor") or {}
    own = actor.get("type") == "SUBJECT" and actor.get("id") == subject
    if "own_action" in line and line["own_action"] is not own:
        out.append(f"own_action is {line['own_action']!r} but the record's actor makes it {own!r}")
    if subject not in (form.get("subject_ids") or []):
        out.append(f"the record does not name the report's subject {subject!r} (subjects "
                   f"{_short(form.get('subject_ids'))})")
    recorded = iso_millis(facts.record.timestamp)
    copy = line.get("earliest_copy_receipt")
    if copy is None:
        if "recorded_at" in line and line["recorded_at"] != recorded:
            out.append(f"recorded_at is {line['recorded_at']} but the record was recorded at {recorded}")
    else:
        out += _copy_problems(line, copy, form, facts, codec, logs, witnesses, min_witnesses)
    return out


def _copy_problems(line, copy, form, facts, codec, logs, witnesses, min_witnesses) -> list[str]:
    """An earlier identical copy must prove the line's recorded_at: same content, recorded before."""
    from ledger.model.times import iso_millis

    from .receipt import verify_receipt

    if not isinstance(copy, str):
        return ["earliest_copy_receipt is not a receipt"]
    try:
        earlier = verify_receipt(copy, logs, witnesses, min_witnesses, codec=codec)
        same = readable_form(codec, earlier.record.value) == form
    except (ReceiptError, LedgerError) as err:
        return [f"earliest_copy_receipt: {err}"]
    if not same:
        return ["earliest_copy_receipt proves a record with other content than the line's"]
    if earlier.record.timestamp > facts.record.timestamp:
        return ["earliest_copy_receipt proves a copy recorded after the entry, not before"]
    recorded = iso_millis(earlier.record.timestamp)
    if line.get("recorded_at") != recorded:
        return [f"recorded_at is {line.get('recorded_at')} but the earliest copy was recorded at {recorded}"]
    return []


def _short(value, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 1] + "…"
