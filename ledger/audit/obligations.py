"""Notices still owed to customers after legal disclosures, and the rules that decide them.

    rows, anomalies = obligations(ledger, as_of="2026-03-01T00:00:00Z")
    for notice in rows:
        print(notice.disclosure_event_id, notice.subject_id, notice.due_by, notice.overdue)

One :class:`Notice` per (disclosure, customer) still owed at an instant
``now``. The rules (the same as ``ledger.simulate.oracle``, the reference):

* **Who may change a case.** A NotificationStatusChanged or SubjectNotified
  takes effect only when it comes from an *authority* for its disclosure
  (:func:`same_source_service`: the disclosure's own ``source_service``; with
  a recorded policy also the ``authority_services`` of the policy in force
  when the change was recorded, ledger.audit.authorities), sits on the disclosure topic (nothing on the access,
  sharing or consent topics is ever a notice-state change), and is not dated
  before the disclosure (``occurred_at``, and a notice's ``notified_at``).
  Anything else is kept as evidence, changes nothing, and is listed by
  :meth:`CaseBook.anomalies` with a sentence saying what it tried.
* **Order and instant: recorded time.** Changes apply in the order Kafka
  recorded them (record timestamp, ties by topic, partition, offset: the
  answer never depends on read order) and take effect at their recorded
  time; ``occurred_at`` is the producer's claim, kept and shown, never used to
  jump the queue. An event counts at ``now`` once recorded by ``now``; a
  SubjectNotified also needs ``notified_at <= now``. It clears exactly the
  customers it names, whether recorded before or after its disclosure. One
  whose disclosure never appears is an anomaly.
* The state starts from the disclosure's ``notification``; each effective
  NotificationStatusChanged replaces status, ``delay_until`` and
  ``order_ref``: it imposes or extends a delay (DELAYED_*; no ``delay_until``
  = no end), lifts it (PENDING), waives the notice (NOT_REQUIRED) or records
  everyone told (NOTIFIED).
* Status NOTIFIED or NOT_REQUIRED: nothing owed. Own due date:
  ``notification.due_by``, else the disclosure time + :data:`DEFAULT_DUE`.
* A delay is in force while ``now < delay_until`` (forever without an end);
  nothing is overdue meanwhile. Released at instant R (expiry, or a lift
  recorded at L: ``min(L, delay_until)``), the notice is due at
  ``max(own due, R)``. Overdue means ``now > due`` (at the due instant itself
  it is due, not late).

``as_of`` keeps only entries recorded (Kafka timestamp of the event's
earliest same-content copy) by then; "now" defaults to ``as_of``, else the
wall clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator, NamedTuple

from ledger.kafka.topics import TOPIC_SUFFIX
from ledger.model.times import iso, parse_as_of, parse_time, to_millis
from ledger.store import reads

from .query import iso_millis

NOTICE_TYPES = ("LegalDisclosure", "NotificationStatusChanged", "SubjectNotified")
DELAYED = ("DELAYED_BY_ORDER", "DELAYED_FRAUD_INVESTIGATION")
NOTHING_OWED = ("NOTIFIED", "NOT_REQUIRED")
_DISCLOSURE_FIELDS = ("type", "event_id", "occurred_at", "subject_ids", "notification", "recipient", "request",
                      "source_service", "correlation_id")
_CHANGE_FIELDS = ("type", "event_id", "occurred_at", "subject_ids", "disclosure_event_id", "status",
                  "delay_until", "order_ref", "source_service")
_NOTICE_FIELDS = ("type", "event_id", "occurred_at", "subject_ids", "disclosure_event_id", "notified_at",
                  "source_service")
#: Due date of a notice whose disclosure leaves ``due_by`` unset.
DEFAULT_DUE = timedelta(days=30)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FIRST, _LAST = datetime.min.replace(tzinfo=timezone.utc), datetime.max.replace(tzinfo=timezone.utc)


def _time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


class Recorded(NamedTuple):
    """Where and when Kafka recorded an event: the order in which state changes apply.

    Sorting compares the Kafka timestamp first, then topic, partition and
    offset, so equal timestamps are ordered the same in every read.
    """

    timestamp: int  # Kafka record timestamp, ms
    topic: str
    partition: int
    offset: int

    @property
    def at(self) -> datetime:
        """The recorded instant; a timestamp outside what a datetime holds is clamped to its ends."""
        try:
            return _EPOCH + timedelta(milliseconds=self.timestamp)
        except OverflowError:
            return _FIRST if self.timestamp < 0 else _LAST


def same_source_service(disclosure: dict) -> frozenset[str]:
    """The default authorities for a case: the service that recorded the disclosure.

    The hook a recorded policy will extend (the promise-checks issue): a
    function from the disclosure (JSON form, the fields kept by CaseBook) to
    the ``source_service`` names whose state changes take effect. Never a
    file a reader passes: every reader must see the same state.
    """
    return frozenset([disclosure["source_service"]])


def on_own_topic(event_type: str, topic: str) -> bool:
    """True when ``topic`` is the one ``event_type`` is produced to, under any prefix.

    Every topic of a ledger shares one prefix, and no other suffix ends with
    the disclosure topic's (``access``, ``sharing``, ``consent``, ``dlq``), so
    a suffix test is exact.
    """
    return topic.endswith(TOPIC_SUFFIX[event_type])


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
class Refused:
    """A notice-state event kept as evidence that changes nothing, and why."""

    recorded: Recorded
    event: dict
    kind: str
    message: str


@dataclass
class Case:
    """What the ledger holds about one disclosure's notices."""

    disclosure_event_id: str
    disclosure: dict | None = None  # the LegalDisclosure's needed fields (JSON form); None if not seen
    changes: list[tuple[Recorded, dict]] = field(default_factory=list)  # every NSC about it
    notices: list[tuple[Recorded, datetime, dict]] = field(default_factory=list)  # (.., notified_at, SN)
    authorities: Callable[[dict], frozenset[str]] = same_source_service
    _judged: tuple | None = field(default=None, repr=False)

    def judged(self) -> tuple[list[tuple[Recorded, dict]], list[tuple[Recorded, datetime, dict]], list[Refused]]:
        """``(effective changes, effective notices, refused)``: changes and notices in recorded order."""
        if self._judged is None:
            self._judged = self._judge()
        return self._judged

    def _judge(self):
        changes = sorted(self.changes, key=lambda x: x[0])
        notices = sorted(self.notices, key=lambda x: x[0])
        d = self.disclosure
        if d is None:  # nothing takes effect without its disclosure (listed as an anomaly)
            return [], [], []
        allowed = self.authorities(d)
        # A recorded policy (ledger.audit.authorities): who is an authority depends on when it was recorded.
        at = getattr(self.authorities, "at", None)
        disclosed_at = _time(d["occurred_at"])
        ok_changes, refused = [], []
        for rec, c in changes:
            problem = _refusal(c, rec, at(d, rec) if at else allowed, disclosed_at)
            if problem is None:
                ok_changes.append((rec, c))
            else:
                kind, _ = problem
                words = (_unauthorised_change(c, self._status_at(ok_changes, rec.at)[0], c["source_service"])
                         if kind == "unauthorised" else problem[1])
                refused.append(Refused(rec, c, f"status_change_{kind}", words))
        ok_notices = []
        for rec, sent, n in notices:
            problem = _refusal(n, rec, at(d, rec) if at else allowed, disclosed_at, sent)
            if problem is None:
                ok_notices.append((rec, sent, n))
                continue
            kind, words = problem
            if kind == "unauthorised":
                status, until = self._status_at(ok_changes, rec.at)
                held = status in DELAYED and (until is None or rec.at < until)
                words = (f"SubjectNotified for {self.disclosure_event_id} from {n['source_service']} "
                         + ("while the delay was in force: ignored" if held else
                            "(not an authority for this disclosure): ignored"))
            refused.append(Refused(rec, n, f"notice_{kind}", words))
        return ok_changes, ok_notices, refused

    def _status_at(self, changes: list[tuple[Recorded, dict]], at: datetime) -> tuple[str, datetime | None]:
        """``(status, delay_until)`` after the effective ``changes`` recorded by ``at``."""
        n = self.disclosure["notification"]
        status, until = n["status"], _time(n["delay_until"])
        for rec, c in changes:
            if rec.at > at:
                break
            status, until = c["status"], _time(c["delay_until"])
        return status, until

    def notified(self, now: datetime) -> set[str]:
        """Customers told by ``now`` by an effective notice (recorded by then, ``notified_at`` by then)."""
        return {s for rec, sent, n in self.judged()[1] if rec.at <= now and sent <= now for s in n["subject_ids"]}

    def state(self, now: datetime) -> NoticeState:
        """The notice state at ``now``: the disclosure's notification, then each effective change by then."""
        d = self.disclosure
        n = d["notification"]
        status, delay_until, order_ref = n["status"], _time(n["delay_until"]), n["order_ref"]
        released = lifted = None  # when the latest delay ended, by expiry or lift
        for rec, c in self.judged()[0]:
            at = rec.at
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
        publish the disclosure; only an effective change away from DELAYED_*
        or the customer's own effective notice does.
        """
        if self.disclosure is None:
            return False
        return self.state(now).status in DELAYED and subject_id not in self.notified(now)

    def correlation_keys(self) -> frozenset[str]:
        """Identifiers that tie other events to this case: its correlation_id and legal request id."""
        d = self.disclosure or {}
        return frozenset(k for k in (d.get("correlation_id"), (d.get("request") or {}).get("id")) if k)

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


def _refusal(event: dict, rec: Recorded, allowed: frozenset[str], disclosed_at: datetime,
             notified_at: datetime | None = None) -> tuple[str, str] | None:
    """``(kind, words)`` when a notice-state event may not take effect, else None."""
    what = "SubjectNotified" if event["type"] == "SubjectNotified" else f"notice status {event['status']}"
    about = event["disclosure_event_id"]
    if not on_own_topic(event["type"], rec.topic):
        return "off_topic", f"{what} for {about} on topic {rec.topic}, not the disclosure topic: ignored"
    if _time(event["occurred_at"]) < disclosed_at:
        return "before_disclosure", f"{what} dated before disclosure {about} ({event['occurred_at']}): ignored"
    if notified_at is not None and notified_at < disclosed_at:
        return "before_disclosure", (f"{what} for {about} says the customers were notified before the "
                                     f"disclosure ({event['notified_at']}): ignored")
    if event["source_service"] not in allowed:
        return "unauthorised", ""
    return None


def _unauthorised_change(change: dict, status_then: str, service: str) -> str:
    """What an unauthorised NotificationStatusChanged tried to do, in words."""
    about, new = change["disclosure_event_id"], change["status"]
    if new in DELAYED:
        verb = "extend the delay of" if status_then in DELAYED else "delay the notice of"
    elif status_then in DELAYED:
        verb = "lift the delay of"
    elif new == "NOT_REQUIRED":
        verb = "waive the notice of"
    elif new == "NOTIFIED":
        verb = "mark as notified the customers of"
    else:
        verb = f"set to {new} the notice of"
    return f"unauthorised attempt to {verb} disclosure {about} by {service} (status {new}): ignored"


class CaseBook:
    """Cases keyed by disclosure event_id, filled from LegalDisclosure, NSC and SubjectNotified events.

    ``authorities`` maps a disclosure to the services whose state changes
    take effect for it (default :func:`same_source_service`).
    """

    def __init__(self, authorities: Callable[[dict], frozenset[str]] = same_source_service) -> None:
        self.cases: dict[str, Case] = {}
        self.authorities = authorities

    def case(self, disclosure_event_id: str) -> Case:
        found = self.cases.get(disclosure_event_id)
        if found is None:
            found = self.cases[disclosure_event_id] = Case(disclosure_event_id, authorities=self.authorities)
        return found

    def add(self, event: dict, recorded: Recorded) -> None:
        """Take one event in JSON form (as stored in the ledger) and where Kafka recorded it.

        Other types are ignored. Only the fields the rules and the rows need
        are kept, so a ledger with many disclosures fits in memory.
        """
        etype = event["type"]
        if etype == "LegalDisclosure":
            slim = {k: event.get(k) for k in _DISCLOSURE_FIELDS}
            slim["recipient"] = {"name": event["recipient"]["name"]}
            slim["request"] = {"id": (event.get("request") or {}).get("id")}
            case = self.case(event["event_id"])
            case.disclosure = slim
        elif etype == "NotificationStatusChanged":
            case = self.case(event["disclosure_event_id"])
            case.changes.append((recorded, {k: event[k] for k in _CHANGE_FIELDS}))
        elif etype == "SubjectNotified":
            case = self.case(event["disclosure_event_id"])
            case.notices.append((recorded, _time(event["notified_at"]), {k: event[k] for k in _NOTICE_FIELDS}))
        else:
            return
        case._judged = None

    def notices(self, now: datetime, *, overdue_only: bool = False) -> list[Notice]:
        """Every notice owed at ``now``, by disclosure (time, event_id) then subject id."""
        ordered = sorted(
            (c for c in self.cases.values() if c.disclosure is not None),
            key=lambda c: (c.disclosure["occurred_at"], c.disclosure_event_id),
        )
        return [n for case in ordered for n in case.owed(now) if n.overdue or not overdue_only]

    def anomalies(self, now: datetime | None = None) -> list[dict]:
        """Notice-state events that change nothing, and notices naming strangers, each with a sentence.

        Kinds: ``notice_without_disclosure``, ``status_change_without_disclosure``,
        ``notice_names_other_customers``, and for events refused by the rules
        ``status_change_unauthorised`` / ``notice_unauthorised``,
        ``..._before_disclosure`` and ``..._off_topic``. Only events recorded by
        ``now`` (all when None), sorted by recorded time (then topic,
        partition, offset): an event's own date is a claim and cannot hide it.
        """
        found = []
        for case in self.cases.values():
            if case.disclosure is None:
                for rec, _, n in case.notices:
                    found.append(_anomaly("notice_without_disclosure", n, rec, n["subject_ids"],
                                          f"SubjectNotified for {case.disclosure_event_id}, a disclosure the "
                                          "ledger does not hold"))
                for rec, c in case.changes:
                    found.append(_anomaly("status_change_without_disclosure", c, rec, c["subject_ids"],
                                          f"notice status {c['status']} for {case.disclosure_event_id}, a "
                                          "disclosure the ledger does not hold"))
                continue
            named = set(case.disclosure["subject_ids"])
            for rec, _, n in case.judged()[1]:
                strangers = [s for s in n["subject_ids"] if s not in named]
                if strangers:
                    found.append(_anomaly("notice_names_other_customers", n, rec, strangers,
                                          f"SubjectNotified for {case.disclosure_event_id} names customers the "
                                          f"disclosure does not: {', '.join(strangers)}"))
            for r in case.judged()[2]:
                found.append(_anomaly(r.kind, r.event, r.recorded, r.event["subject_ids"], r.message))
        if now is not None:
            found = [a for a in found if a["_recorded"].at <= now]
        found.sort(key=lambda a: a["_recorded"])
        for a in found:
            del a["_recorded"]
        return found


def _anomaly(kind: str, event: dict, rec: Recorded, subject_ids: list[str], message: str) -> dict:
    return {"kind": kind, "event_id": event["event_id"], "type": event["type"],
            "disclosure_event_id": event["disclosure_event_id"], "subject_ids": list(subject_ids),
            "occurred_at": event["occurred_at"], "recorded_at": iso_millis(rec.timestamp),
            "source_service": event["source_service"], "message": message, "_recorded": rec}


def load_cases(source, *, as_of=None, disclosure_ids: Iterable[str] | None = None,
               authorities: Callable[[dict], frozenset[str]] | None = None) -> CaseBook:
    """A CaseBook from the ledger's notice events recorded by ``as_of`` (all when None).

    Reads the actors side table (one row per event) for the three notice
    types, so no scan of the entries themselves. ``disclosure_ids`` keeps only
    those cases (the per-customer report uses it). ``authorities`` defaults to
    the disclosure's own service plus those of the policy the ledger recorded
    in force at each change (ledger.audit.authorities).
    """
    wanted = None if disclosure_ids is None else set(disclosure_ids)
    as_of_ms = None if as_of is None else to_millis(parse_as_of(as_of))
    if authorities is None:  # the disclosure's own service, plus those of the policy recorded in force
        from .authorities import recorded_authorities

        authorities = recorded_authorities(source, as_of_ms)
    book = CaseBook(authorities)
    # The store keeps only the wanted cases (in SQLite); the check here stays as the definition.
    for row in reads.notice_entries(source, NOTICE_TYPES, as_of_ms, disclosure_ids=wanted):
        event = json.loads(row.json)
        key = event["event_id"] if event["type"] == "LegalDisclosure" else event["disclosure_event_id"]
        if wanted is None or key in wanted:
            book.add(event, Recorded(row.timestamp, row.topic, row.partition, row.offset))
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
        return parse_as_of(as_of)
    return datetime.now(timezone.utc)
