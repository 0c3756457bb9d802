"""Who a report is for, and what each audience may see of an event.

The *subject* audience is the customer. One filter applies to everything a
subject report outputs (rows, counts, groupings): the report model drops the
events a customer may not see (``Case.withheld_from`` in
:mod:`ledger.obligations`) before anything is counted, and
:func:`subject_view` copies only the fields a customer may read, from an
allow-list, so a field added to a schema later stays hidden until someone
decides otherwise:

* a legal disclosure whose notice is delayed stays hidden until the delay is
  lifted by a NotificationStatusChanged or this customer is notified, both
  from an authority for the case (an expired delay makes the notice due; it
  does not publish the disclosure; an unauthorised event changes nothing);
* every event tied to such a disclosure (its correlation_id or request id as
  the event's correlation_id or justification ticket) stays hidden with it;
* other customers' ids, ``justification.note``, ``attributes``, tracing and
  bookkeeping ids (``recorded_by``, ``reviewed_by``, ``trace_id``...) never
  appear;
* people appear by role and organisation, never by name or id;
* an action is the customer's own ("you viewed...") only when its actor is
  ``{type: SUBJECT, id: <this customer>}``: every view carries
  ``own_action``; another customer acting is shown as another customer.

:class:`SubjectRules` is the one place these rules are decided: the report
model and the HTTP API (``who-saw`` with a ``subject:`` token) both ask it.

The *auditor* audience sees whole events, with delayed disclosures and the
events withheld with them marked, and the anomalies of the customer's cases.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ledger.model.taxonomy import category_label, purpose_label

if TYPE_CHECKING:
    from ledger.audit.obligations import CaseBook

AUDIENCES = ("subject", "auditor")

# Allow-lists for the subject audience, per event type (top-level fields).
_COMMON = ("type", "event_id", "occurred_at", "source_service", "data_categories", "purpose", "legal_basis")
_BY_TYPE = {
    "DataAccessed": _COMMON + ("access_type", "outcome", "channel"),
    "DataShared": _COMMON + ("transfer_safeguard", "retention_until"),
    "LegalDisclosure": _COMMON,
}
_RECIPIENT = ("name", "kind", "country", "address")
_REQUEST = ("kind", "authority", "jurisdiction", "received_at")


def actor_for_subject(actor: dict) -> dict:
    """An actor as a customer sees it: kind, role and organisation; never an id or a name."""
    return {"type": actor["type"], "role": actor.get("role"), "organization": actor.get("organization")}


def is_own_action(event: dict, subject: str) -> bool:
    """True when ``subject`` itself did this: the actor is a SUBJECT with exactly that id."""
    actor = event["actor"]
    return actor["type"] == "SUBJECT" and actor.get("id") == subject


def subject_view(event: dict, subject: str) -> dict:
    """The fields of ``event`` (JSON form) a customer may read, plus labels."""
    view = {k: event[k] for k in _BY_TYPE.get(event["type"], _COMMON) if k in event}
    view["actor"] = actor_for_subject(event["actor"])
    view["own_action"] = is_own_action(event, subject)
    j = event.get("justification")
    view["justification"] = None if j is None else {"reason_code": j["reason_code"]}
    if event.get("recipient"):
        view["recipient"] = {k: event["recipient"].get(k) for k in _RECIPIENT}
    if event.get("request"):
        view["request"] = {k: event["request"].get(k) for k in _REQUEST}
    add_labels(view)
    return view


def auditor_view(event: dict, subject: str) -> dict:
    """The whole event (JSON form) plus labels."""
    view = dict(event)
    view["own_action"] = is_own_action(event, subject)
    add_labels(view)
    return view


def add_labels(view: dict) -> dict:
    labels = {}
    if view.get("purpose"):
        labels["purpose"] = purpose_label(view["purpose"])
    if view.get("data_categories"):
        labels["data_categories"] = [category_label(c) for c in view["data_categories"]]
    view["labels"] = labels
    return view


def view_for(audience: str, event: dict, subject: str) -> dict:
    return subject_view(event, subject) if audience == "subject" else auditor_view(event, subject)


class SubjectRules:
    """What the subject audience withholds from one customer, judged at one time.

    A delayed disclosure (``Case.withheld_from``) takes with it every event
    tied to the same legal case: an event whose ``correlation_id`` or
    ``justification.ticket`` is one of the case's keys (the disclosure's
    ``correlation_id`` and its legal request id). A record contradicting an
    entry of its event_id is a claim, not an event, and is never shown.
    """

    def __init__(self, book: "CaseBook", legal_ids: list[str], subject: str, judged: datetime):
        self.subject = subject
        self.withheld: set[str] = set()
        self.tied: dict[str, str] = {}  # case key -> the withheld disclosure it belongs with
        for i in legal_ids:
            case = book.case(i)
            if case.withheld_from(subject, judged):
                self.withheld.add(i)
                for key in sorted(case.correlation_keys()):
                    self.tied.setdefault(key, i)

    @classmethod
    def load(cls, source, subject: str, *, as_of: datetime | str | None, judged: datetime) -> "SubjectRules":
        """The rules for ``subject`` over every legal disclosure of theirs in ``source`` (as of ``as_of``)."""
        from ledger.audit.obligations import CaseBook, load_cases
        from ledger.audit.query import who_saw

        legal_ids = [e["event_id"] for e in who_saw(source, subject, types=["LegalDisclosure"], as_of=as_of)
                     if "contradicts" not in e]
        book = load_cases(source, as_of=as_of, disclosure_ids=legal_ids) if legal_ids else CaseBook()
        return cls(book, legal_ids, subject, judged)

    def withheld_with(self, event: dict) -> str | None:
        """The withheld disclosure ``event`` is (or belongs with), else None."""
        if event["event_id"] in self.withheld:
            return event["event_id"]
        if not self.tied:
            return None
        ticket = (event.get("justification") or {}).get("ticket")
        for key in (event.get("correlation_id"), ticket):
            if key and key in self.tied:
                return self.tied[key]
        return None

    def view(self, event: dict) -> dict | None:
        """What the customer sees of ``event``: its :func:`subject_view`, or None when it is withheld."""
        if "contradicts" in event or self.withheld_with(event):
            return None
        return subject_view(event, self.subject)
