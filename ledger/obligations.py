"""Notices still owed to customers after legal disclosures, and the rules that decide them.

    rows, anomalies = obligations(ledger, as_of="2026-03-01T00:00:00Z")
    for notice in rows:
        print(notice.disclosure_event_id, notice.subject_id, notice.due_by, notice.overdue)

One :class:`Notice` per (disclosure, customer) still owed at an instant
``now``. The rules (the same as ``ledger.simulate.oracle``, the reference):

* Only events with ``occurred_at <= now`` count; a SubjectNotified also needs
  ``notified_at <= now``. It clears exactly the customers it names, whether it
  was recorded before or after its disclosure. One whose disclosure never
  appears is an anomaly.
* The state starts from the disclosure's ``notification``; each
  NotificationStatusChanged for it replaces status, ``delay_until`` and
  ``order_ref`` in ``(occurred_at, event_id)`` order: it imposes or extends a
  delay (DELAYED_*; no ``delay_until`` = no end), lifts it (PENDING), waives
  the notice (NOT_REQUIRED) or records everyone told (NOTIFIED).
* Status NOTIFIED or NOT_REQUIRED: nothing owed. Own due date:
  ``notification.due_by``, else the disclosure time + :data:`DEFAULT_DUE`.
* A delay is in force while ``now < delay_until`` (forever without an end);
  nothing is overdue meanwhile. Released at instant R (expiry, or a lift at
  ``min(L, delay_until)``), the notice is due at ``max(own due, R)``.
  Overdue means ``now > due`` (at the due instant itself it is due, not late).

``as_of`` keeps only entries recorded (Kafka timestamp of the event's
earliest same-content copy) by then; "now" defaults to ``as_of``, else the
wall clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator

from .query import connection
from .timeparse import iso, parse_time, to_millis
from .errors import StoreError

NOTICE_TYPES = ("LegalDisclosure", "NotificationStatusChanged", "SubjectNotified")
DELAYED = ("DELAYED_BY_ORDER", "DELAYED_FRAUD_INVESTIGATION")
NOTHING_OWED = ("NOTIFIED", "NOT_REQUIRED")
_DISCLOSURE_FIELDS = ("type", "event_id", "occurred_at", "subject_ids", "notification", "recipient", "request")
_CHANGE_FIELDS = ("type", "event_id", "occurred_at", "subject_ids", "disclosure_event_id", "status",
                  "delay_until", "order_ref")
_NOTICE_FIELDS = ("type", "event_id", "occurred_at", "subject_ids", "disclosure_event_id", "notified_at")
#: Due date of a notice whose disclosure leaves ``due_by`` unset.
DEFAULT_DUE = timedelta(days=30)


def _time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


@dataclass(frozen=True)
class Notice:
    """One notice owed to one customer about one disclosure, judged at some instant."""

    disclosure_event_id: str
    subject_id: str
    disclosed_at: datetime
    recipient: str  # the authority's name
    request_id: str | None
    own_due_by: datetime  # the disclosure's own due date (or the default)
    due_by: datetime | None  # effective due date; None while an indefinite delay is in force
    status: str  # PENDING or the DELAYED_* status in effect
    delay: str | None  # "in force", "expired", "lifted" or None (never delayed)
    delay_until: datetime | None  # expiry of the current delay (None: indefinite, or not delayed)
    order_ref: str | None
    overdue: bool

    def as_dict(self) -> dict:
        """JSON-ready: times as ``...Z`` strings."""
        return {
            "disclosure_event_id": self.disclosure_event_id, "subject_id": self.subject_id,
            "disclosed_at": iso(self.disclosed_at), "recipient": self.recipient,
            "request_id": self.request_id, "own_due_by": iso(self.own_due_by), "due_by": iso(self.due_by),
            "status": self.status, "delay": self.delay, "delay_until": iso(self.delay_until),
            "order_ref": self.order_ref, "overdue": self.overdue,
        }


@dataclass(frozen=True)
class NoticeState:
    """Where one disclosure's notice stands at an instant (see the module docstring)."""

    status: str
    delay_until: datetime | None
    order_ref: str | None
    in_force: bool  # a delay holds the notice back now
    delay: str | None  # "in force", "expired", "lifted" or None
    own_due_by: datetime
    due_by: datetime | None  # effective; None for an indefinite delay in force


@dataclass
class Case:
    """What the ledger holds about one disclosure's notices."""

    disclosure_event_id: str
    disclosure: dict | None = None  # the LegalDisclosure's needed fields (JSON form); None if not seen
    changes: list[tuple[datetime, str, dict]] = field(default_factory=list)  # (occurred_at, event_id, NSC)
    notices: list[tuple[datetime, datetime, dict]] = field(default_factory=list)  # (occurred_at, notified_at, SN)

    def notified(self, now: datetime) -> set[str]:
        """Customers told by ``now`` (both the notice's event time and its ``notified_at``)."""
        return {s for at, sent, n in self.notices if at <= now and sent <= now for s in n["subject_ids"]}

    def state(self, now: datetime) -> NoticeState:
        """The notice state at ``now``: the disclosure's notification, then each change by then, in order."""
        d = self.disclosure
        n = d["notification"]
        status, delay_until, order_ref = n["status"], _time(n["delay_until"]), n["order_ref"]
        released = lifted = None  # when the latest delay ended, by expiry or lift
        for at, _, c in sorted(self.changes, key=lambda x: (x[0], x[1])):
            if at > now:
                break
            if status in DELAYED and c["status"] not in DELAYED:
                lifted = at
                released = at if delay_until is None else min(at, delay_until)
            status, delay_until, order_ref = c["status"], _time(c["delay_until"]), c["order_ref"]
        own = _time(n["due_by"]) or _time(d["occurred_at"]) + DEFAULT_DUE
        if status in DELAYED:
            in_force = delay_until is None or now < delay_until
            due = None if delay_until is None else max(own, delay_until)
            delay = "in force" if in_force else "expired"
        else:
            in_force, due = False, own if released is None else max(own, released)
            delay = None if released is None else "lifted" if released == lifted else "expired"
        return NoticeState(status, delay_until, order_ref, in_force, delay, own, due)

    def withheld_from(self, subject_id: str, now: datetime) -> bool:
        """True while the customer must not see this disclosure: a delay was set and not lifted.

        An expired delay makes the notice due (an auditor's task) but does not
        publish the disclosure; only a change away from DELAYED_* or the
        customer's own notice does.
        """
        if self.disclosure is None:
            return False
        return self.state(now).status in DELAYED and subject_id not in self.notified(now)

    def owed(self, now: datetime) -> list[Notice]:
        """Notices still owed at ``now``, by subject id (empty when nothing is owed)."""
        d = self.disclosure
        if d is None or _time(d["occurred_at"]) > now:
            return []
        st = self.state(now)
        if st.status in NOTHING_OWED:
            return []
        overdue = not st.in_force and st.due_by is not None and now > st.due_by
        told = self.notified(now)
        disclosed_at = _time(d["occurred_at"])
        recipient = d["recipient"]["name"]
        request_id = (d["request"] or {}).get("id")
        return [
            Notice(self.disclosure_event_id, s, disclosed_at, recipient, request_id, st.own_due_by,
                   st.due_by, st.status, st.delay, st.delay_until, st.order_ref, overdue)
            for s in sorted(d["subject_ids"]) if s not in told
        ]


class CaseBook:
    """Cases keyed by disclosure event_id, filled from LegalDisclosure, NSC and SubjectNotified events."""

    def __init__(self) -> None:
        self.cases: dict[str, Case] = {}

    def case(self, disclosure_event_id: str) -> Case:
        found = self.cases.get(disclosure_event_id)
        if found is None:
            found = self.cases[disclosure_event_id] = Case(disclosure_event_id)
        return found

    def add(self, event: dict) -> None:
        """Take one event in JSON form (as stored in the ledger); other types are ignored.

        Only the fields the rules and the rows need are kept, so a ledger with
        many disclosures fits in memory.
        """
        etype = event["type"]
        if etype == "LegalDisclosure":
            slim = {k: event.get(k) for k in _DISCLOSURE_FIELDS}
            slim["recipient"] = {"name": event["recipient"]["name"]}
            slim["request"] = {"id": (event.get("request") or {}).get("id")}
            self.case(event["event_id"]).disclosure = slim
        elif etype == "NotificationStatusChanged":
            self.case(event["disclosure_event_id"]).changes.append(
                (_time(event["occurred_at"]), event["event_id"], {k: event[k] for k in _CHANGE_FIELDS}))
        elif etype == "SubjectNotified":
            self.case(event["disclosure_event_id"]).notices.append(
                (_time(event["occurred_at"]), _time(event["notified_at"]), {k: event[k] for k in _NOTICE_FIELDS}))

    def notices(self, now: datetime, *, overdue_only: bool = False) -> list[Notice]:
        """Every notice owed at ``now``, by disclosure (time, event_id) then subject id."""
        ordered = sorted(
            (c for c in self.cases.values() if c.disclosure is not None),
            key=lambda c: (c.disclosure["occurred_at"], c.disclosure_event_id),
        )
        return [n for case in ordered for n in case.owed(now) if n.overdue or not overdue_only]

    def anomalies(self, now: datetime | None = None) -> list[dict]:
        """Notices and status changes about disclosures the ledger does not hold, and notices naming strangers.

        Kinds: ``notice_without_disclosure``, ``status_change_without_disclosure``,
        ``notice_names_other_customers``; sorted by event time.
        """
        found = []
        for case in self.cases.values():
            if case.disclosure is None:
                for _, _, n in case.notices:
                    found.append(_anomaly("notice_without_disclosure", n, n["subject_ids"]))
                for _, _, c in case.changes:
                    found.append(_anomaly("status_change_without_disclosure", c, c["subject_ids"]))
                continue
            named = set(case.disclosure["subject_ids"])
            for _, _, n in case.notices:
                strangers = [s for s in n["subject_ids"] if s not in named]
                if strangers:
                    found.append(_anomaly("notice_names_other_customers", n, strangers))
        if now is not None:
            found = [a for a in found if _time(a["occurred_at"]) <= now]
        found.sort(key=lambda a: (a["occurred_at"], a["event_id"]))
        return found


def _anomaly(kind: str, event: dict, subject_ids: list[str]) -> dict:
    return {"kind": kind, "event_id": event["event_id"], "type": event["type"],
            "disclosure_event_id": event["disclosure_event_id"], "subject_ids": list(subject_ids),
            "occurred_at": event["occurred_at"]}


def load_cases(source, *, as_of=None, disclosure_ids: Iterable[str] | None = None) -> CaseBook:
    """A CaseBook from the ledger's notice events recorded by ``as_of`` (all when None).

    Reads the actors side table (one row per event) for the three notice
    types, so no scan of the entries themselves. ``disclosure_ids`` keeps only
    those cases (the per-customer report uses it).
    """
    import sqlite3

    wanted = None if disclosure_ids is None else set(disclosure_ids)
    sql = (
        "SELECT e.json FROM actors AS a JOIN entries AS e ON e.seq = a.seq "
        "JOIN event_ids AS i ON i.event_id = e.event_id AND i.seq = e.seq "
        f"WHERE e.status = 'entry' AND a.type IN ({', '.join('?' * len(NOTICE_TYPES))})"
    )
    params: list = list(NOTICE_TYPES)
    if as_of is not None:
        # Recorded by then: the entry, or a same-content copy recorded before it (ledger.repeats).
        sql += " AND (e.timestamp <= ? OR e.seq IN (SELECT entry_seq FROM earlier_copies WHERE timestamp <= ?))"
        params += [to_millis(parse_time(as_of, option="--as-of"))] * 2
    book = CaseBook()
    try:
        cur = connection(source).execute(sql, params)
        while rows := cur.fetchmany(1000):
            for (text,) in rows:
                event = json.loads(text)
                key = event["event_id"] if event["type"] == "LegalDisclosure" else event["disclosure_event_id"]
                if wanted is None or key in wanted:
                    book.add(event)
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the ledger: {err}") from err
    return book


def obligations(
    source,
    *,
    as_of: datetime | str | None = None,
    overdue_only: bool = False,
    now: datetime | str | None = None,
) -> tuple[Iterator[Notice], list[dict]]:
    """``(notices, anomalies)``: notices owed as the ledger stood at ``as_of``, judged at ``now``.

    ``now`` defaults to ``as_of``, else the wall clock.
    """
    book = load_cases(source, as_of=as_of)
    judged_at = judgement_time(as_of, now)
    return iter(book.notices(judged_at, overdue_only=overdue_only)), book.anomalies(judged_at)


def judgement_time(as_of=None, now=None) -> datetime:
    """The instant obligations are judged at: ``now``, else ``as_of``, else the wall clock."""
    if now is not None:
        return parse_time(now, option="--now")
    if as_of is not None:
        return parse_time(as_of, option="--as-of")
    return datetime.now(timezone.utc)
