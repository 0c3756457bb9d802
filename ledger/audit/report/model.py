"""The data of a report on one customer: timeline, accounting of disclosures, GDPR Art. 15 view.

    report = build_report(ledger, "cust-000042", audience="subject")
    json.dumps(report.to_dict())            # what render_html / render_csv also read

Everything is computed once from the customer's history as the ledger stood
at ``as_of`` (recorded time; default: all of it) and judged at that instant
(default: when the report is generated). For the subject audience one
filter decides which events count at all (see :mod:`.audience`); every list,
count and grouping below is computed from what passed it.

* ``accounting``: disclosures as HIPAA 45 CFR 164.528 lists them (date,
  recipient name and address, data, purpose or legal request), repeated
  disclosures to one recipient for one purpose summarised as first, count,
  last; which are accountable is set by :class:`AccountingRules`.
* ``gdpr``: purposes, data categories, recipients and their kinds,
  third-country transfers with their safeguards, retention where known, and
  the systems the records came from.
* ``timeline``: every access, share and legal disclosure, newest first. For
  the auditor, an event contradicted by another record of its event_id
  carries ``contradicted_by``, and that record appears too, with
  ``contradicts`` (ledger.query); neither counts anywhere else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from ledger.audit.obligations import NOTHING_OWED, CaseBook, load_cases
from ledger.audit.query import DISCLOSURE_TYPES, WHO_SAW_TYPES, side_rows, to_row
from ledger.errors import ValidationError
from ledger.model.taxonomy import category_label, purpose_label, within
from ledger.model.times import iso, parse_as_of, parse_time
from ledger.store import reads

from .audience import AUDIENCES, SubjectRules, view_for

#: EU member states plus Iceland, Liechtenstein and Norway: anything else is a third country.
EEA = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO".split()
)


def _matches(code: str | None, prefixes: tuple[str, ...]) -> bool:
    return any(within(code, p) for p in prefixes)


@dataclass(frozen=True)
class AccountingRules:
    """Which disclosures an accounting lists, and how far back it looks.

    The defaults follow 45 CFR 164.528(a)(1): treatment, payment and
    operations (here ``essential.service.*``, fideslang's providing of the
    service, payment processing and operations, plus the pre-fideslang keys
    ``essential.billing`` and ``essential.account.*``; fideslang's
    ``essential.legal_obligation`` and ``essential.fraud_detection`` stay
    accountable, as ``legal.*`` and ``security.*`` were), disclosures made under
    the individual's authorisation (legal basis CONSENT) or at their own
    request (the actor is ``{type: SUBJECT, id: <that individual>}``: another
    customer acting is not the individual's request), and national-security
    requests are left out. A purpose matches itself and its dotted children.
    """

    excluded_purposes: tuple[str, ...] = ("essential.service", "essential.billing", "essential.account")
    excluded_recipient_kinds: tuple[str, ...] = ()
    excluded_legal_bases: tuple[str, ...] = ("CONSENT",)
    excluded_request_kinds: tuple[str, ...] = ("NATIONAL_SECURITY",)
    lookback_years: int = 6

    @classmethod
    def from_options(cls, exclude_purpose=None, exclude_recipient_kind=None, include_consented: bool = False,
                     lookback_years: int = 6) -> "AccountingRules":
        """The rules the CLI's and the HTTP API's options ask for (their defaults when not given)."""
        if lookback_years < 1:
            raise ValidationError("--lookback-years", "must be at least 1")
        defaults = cls()
        return cls(
            excluded_purposes=tuple(exclude_purpose) if exclude_purpose else defaults.excluded_purposes,
            excluded_recipient_kinds=tuple(exclude_recipient_kind or ()),
            excluded_legal_bases=() if include_consented else defaults.excluded_legal_bases,
            lookback_years=lookback_years,
        )

    def accountable(self, event: dict, subject: str | None = None) -> bool:
        """Whether ``event`` belongs in ``subject``'s accounting of disclosures."""
        if event["type"] not in DISCLOSURE_TYPES:
            return False
        if _matches(event.get("purpose"), self.excluded_purposes):
            return False
        if event["recipient"]["kind"] in self.excluded_recipient_kinds:
            return False
        if event.get("legal_basis") in self.excluded_legal_bases:
            return False
        actor = event["actor"]
        if actor["type"] == "SUBJECT" and actor.get("id") == subject:
            return False
        request = event.get("request")
        return not (request and request["kind"] in self.excluded_request_kinds)

    def window_start(self, end: datetime) -> datetime:
        """``end`` minus the look-back in calendar years (29 February becomes the 28th)."""
        year = end.year - self.lookback_years
        if not 1 <= year <= 9999:
            raise ValidationError("--lookback-years", f"{self.lookback_years} years back from {end.year} is "
                                  f"year {year}, outside 1 to 9999; use at most {end.year - 1}")
        try:
            return end.replace(year=year)
        except ValueError:
            return end.replace(year=year, day=28)


@dataclass
class Report:
    """A report as plain data; :meth:`to_dict` is its JSON form."""

    subject: str
    audience: str
    generated_at: str
    judged_at: str
    parameters: dict
    heads: list[dict]
    timeline: list[dict]
    accounting: dict
    gdpr: dict
    notices: list[dict] | None = None  # auditor only: notices still owed to this customer
    anomalies: list[dict] | None = None  # auditor only: events that changed nothing, implausible times
    #: auditor only, when a policy is recorded or given: per rule kept / broken / not judgeable (whole
    #: ledger) and the findings naming this customer (promises_section)
    promises: dict | None = None
    time_zone: str = "UTC"
    kind: str = field(default="subject-access-report")
    #: with proofs, subject audience: the signed checkpoints the lines' log positions fall under
    checkpoints: list[str] | None = None
    #: the entry (seq) behind each timeline line, in order: where proofs are looked up (not output)
    line_seqs: list[int] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["line_seqs"]
        for key in ("notices", "anomalies", "promises", "checkpoints"):
            if data[key] is None:
                del data[key]
        return data


def build_report(
    source,
    subject: str,
    *,
    audience: str = "subject",
    as_of: datetime | str | None = None,
    rules: AccountingRules | None = None,
    generated_at: datetime | None = None,
    policy=None,
) -> Report:
    """Everything a report on ``subject`` shows, for ``audience`` (``subject`` or ``auditor``).

    ``policy`` (a draft, ``--policy FILE``) judges the promises section instead of the recorded one.
    Events, notice cases, time flags and chain heads are read in one read transaction, so the
    heads printed cover exactly the entries shown, however a writer appends meanwhile.
    """
    with reads.snapshot(source):
        return _build_report(source, subject, audience=audience, as_of=as_of, rules=rules, generated_at=generated_at,
                             policy=policy)


def _build_report(source, subject: str, *, audience: str, as_of, rules: AccountingRules | None,
                  generated_at: datetime | None, policy=None) -> Report:
    if audience not in AUDIENCES:
        raise ValidationError("--audience", f"must be one of {', '.join(AUDIENCES)}, not {audience!r}")
    rules = rules or AccountingRules()
    generated = (generated_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    as_of_time = None if as_of is None else parse_as_of(as_of)
    judged = as_of_time or generated

    history = [(seq, to_row(text, ts, etype, marks)) for seq, text, ts, etype, *_, marks in
               side_rows(source, "subjects", "subject_id", subject, WHO_SAW_TYPES, as_of=as_of_time)]
    rows = [row for _, row in history]
    # A record contradicting an entry of its event_id (ledger.repeats) is a claim, not an event of the
    # ledger: the auditor sees it in the timeline (with ``contradicts``); nothing is counted from it.
    events = [e for e in rows if "contradicts" not in e]
    legal_ids = [e["event_id"] for e in events if e["type"] == "LegalDisclosure"]
    book = load_cases(source, as_of=as_of_time, disclosure_ids=legal_ids) if legal_ids else CaseBook()
    withholding = SubjectRules(book, legal_ids, subject, judged)

    shown: list[tuple[dict, dict]] = []  # (event, view) pairs that pass the audience's filter
    timeline: list[dict] = []
    line_seqs: list[int] = []
    for seq, event in history:
        if "contradicts" in event:
            if audience == "auditor":
                timeline.append(view_for(audience, event, subject))
                line_seqs.append(seq)
            continue
        because = withholding.withheld_with(event)
        if because and audience == "subject":
            continue
        view = view_for(audience, event, subject)
        if audience == "auditor":
            if event["type"] == "LegalDisclosure" or because:
                view["withheld_from_subject"] = bool(because)
            if because and because != event["event_id"]:
                view["withheld_with"] = because  # the delayed disclosure this event is tied to
            if event["type"] == "LegalDisclosure":
                state = book.case(event["event_id"]).state(judged)
                owing = state.status not in NOTHING_OWED  # a due date means nothing once waived or done
                view["notice"] = {"status": state.status, "delay": state.delay, "delay_until": iso(state.delay_until),
                                  "order_ref": state.order_ref, "due_by": iso(state.due_by) if owing else None,
                                  "notified": subject in book.case(event["event_id"]).notified(judged)}
        shown.append((event, view))
        timeline.append(view)
        line_seqs.append(seq)

    start = rules.window_start(judged)
    accountable = [
        (e, v) for e, v in shown
        if rules.accountable(e, subject) and start <= parse_time(e["occurred_at"]) <= judged
    ]
    notices = anomalies = promises = None
    if audience == "auditor":
        notices = [n.as_dict() for i in legal_ids for n in book.case(i).owed(judged) if n.subject_id == subject]
        anomalies = book.anomalies(judged) + time_flags(source, [e["event_id"] for e in events])
        promises = promises_section(source, subject, as_of_time, judged, policy)
    heads = [{"topic": h.topic, "partition": h.partition, "offset": h.offset, "chain_hash": h.chain_hash.hex()}
             for h in source.heads()] if hasattr(source, "heads") else []
    parameters = {
        "subject": subject, "audience": audience, "as_of": iso(as_of_time),
        "lookback_years": rules.lookback_years, "accounting_from": iso(start), "accounting_until": iso(judged),
        "accounting_rules": asdict(rules),
    }
    return Report(
        subject=subject, audience=audience, generated_at=iso(generated), judged_at=iso(judged),
        parameters=parameters, heads=heads, timeline=timeline,
        accounting=accounting(accountable, audience), gdpr=gdpr_view(shown, audience), notices=notices,
        anomalies=anomalies, promises=promises, line_seqs=line_seqs,
    )


def promises_section(source, subject: str, as_of, judged: datetime, policy=None) -> dict | None:
    """The promises the policy in force makes, judged over the whole ledger; None without any policy.

    The counts are the ledger's (one promise is kept or broken for everyone); the findings listed
    are those naming ``subject``.
    """
    from ledger.audit.findings import current
    from ledger.audit.findings.promises import promise_rows
    from ledger.audit.findings.recorded import judge_ledger
    from ledger.errors import PolicyError

    if policy is None and not hasattr(source, "conn"):
        return None
    try:
        run = judge_ledger(source, as_of=as_of, now=judged, draft=policy)
    except PolicyError:
        if policy is not None:
            raise
        return None  # no policy recorded: the section is absent, not "every promise kept"
    in_force = run.policies[-1]
    return {"policy_name": in_force.name, "policy_version": in_force.version, "policy_sha256": in_force.sha256,
            "recorded": policy is None, "judged_at": iso(judged), "rules": promise_rows(run),
            "findings": [f.as_json() for f in current(run.results) if subject in f.subjects]}


def time_flags(source, event_ids: list[str]) -> list[dict]:
    """Entries among ``event_ids`` whose times ingest flagged as implausible (``entries.reason`` "time: ...")."""
    found = reads.time_flagged(source, event_ids)
    return [{"kind": "implausible_time", "event_id": event_id, "type": etype,
             "message": f"{etype} {event_id} at {topic}[{partition}]@{offset}: {reason}"}
            for event_id, etype, reason, topic, partition, offset in sorted(found, key=lambda r: r[3:])]


def _basis(event: dict, audience: str) -> str:
    """The purpose or, for a legal disclosure, the legal request behind it, in words."""
    request = event.get("request")
    if not request:
        basis = event.get("legal_basis")
        return purpose_label(event["purpose"]) + (f" (legal basis: {basis.replace('_', ' ').lower()})" if basis else "")
    where = f", {request['jurisdiction']}" if request.get("jurisdiction") else ""
    ref = f" ref. {request['case_ref']}" if audience == "auditor" and request.get("case_ref") else ""
    return f"{request['kind'].replace('_', ' ').lower()} from {request['authority']}{where}{ref}"


def accounting(pairs: list[tuple[dict, dict]], audience: str) -> dict:
    """Accountable disclosures grouped by (recipient, purpose, legal request), most recent group first."""
    groups: dict[tuple, dict] = {}
    for event, view in sorted(pairs, key=lambda p: (p[0]["occurred_at"], p[0]["event_id"])):
        recipient = event["recipient"]
        key = (recipient["id"], event["purpose"], (event.get("request") or {}).get("id"))
        g = groups.get(key)
        if g is None:
            g = groups[key] = {
                "recipient": view["recipient"], "purpose": event["purpose"],
                "purpose_label": purpose_label(event["purpose"]), "basis": _basis(event, audience),
                "type": event["type"], "first": event["occurred_at"], "last": event["occurred_at"],
                "count": 0, "data_categories": [], "event_ids": [],
            }
            if audience == "auditor":
                g["withheld_from_subject"] = False
        g["count"] += 1
        g["last"] = event["occurred_at"]
        g["event_ids"].append(event["event_id"])
        for c in event["data_categories"]:
            if c not in g["data_categories"]:
                g["data_categories"].append(c)
        if audience == "auditor" and view.get("withheld_from_subject"):
            g["withheld_from_subject"] = True
    rows = sorted(groups.values(), key=lambda g: (g["last"], g["first"]), reverse=True)
    for g in rows:
        g["data_labels"] = [category_label(c) for c in g["data_categories"]]
    return {"disclosures": sum(g["count"] for g in rows), "groups": rows}


def _count(into: dict, key, **fields) -> dict:
    entry = into.get(key)
    if entry is None:
        entry = into[key] = {**fields, "count": 0}
    entry["count"] += 1
    return entry


def gdpr_view(pairs: list[tuple[dict, dict]], audience: str) -> dict:
    """GDPR Art. 15(1) and (2): what is processed, why, who received it, where, how long, from where."""
    purposes, categories, recipients, transfers, retention, sources, bases = {}, {}, {}, {}, {}, {}, {}
    for event, view in pairs:
        _count(purposes, event["purpose"], code=event["purpose"], label=purpose_label(event["purpose"]))
        for c in event["data_categories"]:
            _count(categories, c, code=c, label=category_label(c))
        _count(sources, event["source_service"], source_service=event["source_service"])
        if event.get("legal_basis"):
            _count(bases, event["legal_basis"], legal_basis=event["legal_basis"])
        if event["type"] not in DISCLOSURE_TYPES:
            continue
        r = event["recipient"]
        entry = _count(recipients, r["id"], recipient=view["recipient"], kind=r["kind"],
                       first=event["occurred_at"], last=event["occurred_at"])
        entry["first"] = min(entry["first"], event["occurred_at"])
        entry["last"] = max(entry["last"], event["occurred_at"])
        if r.get("country") and r["country"] not in EEA:
            t = _count(transfers, r["id"], recipient=view["recipient"], country=r["country"], safeguards=[])
            safeguard = event.get("transfer_safeguard") or (
                "legal request (no transfer safeguard recorded)" if event["type"] == "LegalDisclosure"
                else "none recorded")
            if safeguard not in t["safeguards"]:
                t["safeguards"].append(safeguard)
        if event.get("retention_until"):
            k = (r["id"], event["purpose"])
            entry = retention.get(k)
            if entry is None or event["retention_until"] > entry["retention_until"]:
                retention[k] = {"recipient": view["recipient"], "purpose": event["purpose"],
                                "purpose_label": purpose_label(event["purpose"]),
                                "retention_until": event["retention_until"]}

    def by_count(d: dict) -> list[dict]:
        return sorted(d.values(), key=lambda x: -x["count"])

    return {
        "purposes": by_count(purposes),
        "legal_bases": by_count(bases),
        "data_categories": by_count(categories),
        "recipients": sorted(recipients.values(), key=lambda x: (-x["count"], x["recipient"]["name"])),
        "recipient_kinds": sorted({r["kind"] for r in recipients.values()}),
        "third_country_transfers": sorted(transfers.values(), key=lambda x: x["recipient"]["name"]),
        "retention": sorted(retention.values(), key=lambda x: (x["recipient"]["name"], x["purpose"])),
        "sources": by_count(sources),
    }
