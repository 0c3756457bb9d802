"""Reference answers computed from a list of event dicts, naively and obviously.

These are what the fast SQL queries are checked against, so each one is a
plain loop over every event that reads like the rule it implements. Nothing
here depends on emission order: only ``occurred_at`` (ties broken by
``event_id``) decides what came first.

Listing order, everywhere: newest first, i.e. sorted by ``(occurred_at,
event_id)`` descending. Time windows are half-open: ``since <= occurred_at <
until``; either bound may be None.

Notification obligations (:func:`owed_notices`), as of an instant ``as_of``:

* A ``NotificationStatusChanged`` or ``SubjectNotified`` is *effective* only
  when its disclosure is among the events, it has the disclosure's
  ``source_service``, it was recorded on the disclosure topic, and neither
  its ``occurred_at`` nor (for a notice) its ``notified_at`` is before the
  disclosure's ``occurred_at``. Nothing else changes any state.
* Where and when Kafka recorded each event comes from ``recorded``
  (event_id -> ``(timestamp_ms, topic, partition, offset)``); without it an
  event counts as recorded at its ``occurred_at`` on its own topic (the
  hand-built scenarios). An effective event counts once recorded by
  ``as_of``; a notice also needs ``notified_at <= as_of``; it clears exactly
  the customers it names for its ``disclosure_event_id``, whether it arrived
  before or after the disclosure.
* The notice state starts from the disclosure's ``notification`` and each
  effective ``NotificationStatusChanged`` replaces ``status``,
  ``delay_until`` and ``order_ref`` in recorded order (timestamp, topic,
  partition, offset), at its recorded instant.
* Current status ``NOTIFIED`` or ``NOT_REQUIRED``: nothing is owed.
* Own due date: ``notification.due_by``, or when it is None the
  disclosure's ``occurred_at`` + :data:`DEFAULT_NOTICE_DAYS` days.
* A delay (status ``DELAYED_BY_ORDER`` or ``DELAYED_FRAUD_INVESTIGATION``)
  is *in force* at ``as_of`` when its ``delay_until`` is None (indefinite:
  it never expires by itself) or ``as_of < delay_until``. While in force
  nothing is overdue.
* A delay *expires* at ``delay_until`` (the instant itself is no longer
  delayed). A delay is *lifted* at the recorded instant L of the change that
  sets a non-delayed status; the release instant is ``min(L, delay_until)``
  (lifting an already expired delay changes nothing).
* *Due at once*: once the latest delay has expired or been lifted at
  instant R, the notice is due at ``max(own due date, R)``.
* Each row carries ``own_due_by`` (the own due date), ``due_by`` (the
  effective due date: the own one when no delay was ever released,
  ``max(own, delay_until)`` for a current delay with an end, in force or
  expired, None for an indefinite delay in force) and ``delay`` ("in force",
  "expired", "lifted", or None when the notice was never delayed).
  ``overdue`` is ``as_of > due_by`` (strictly: at the due instant itself a
  notice is due, not yet overdue) and is always False while a delay is in
  force.

Subject-facing report (:func:`subject_report`): a legal disclosure is hidden
from a customer while its current status is DELAYED_* (in force *or*
expired: only a change away from DELAYED_* publishes it, "until the delay is
lifted") and that customer has not been notified.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping

DEFAULT_NOTICE_DAYS = 30
EXPOSURE_TYPES = ("DataAccessed", "DataShared", "LegalDisclosure")
DISCLOSURE_TYPES = ("DataShared", "LegalDisclosure")
DELAYED = ("DELAYED_BY_ORDER", "DELAYED_FRAUD_INVESTIGATION")
NOTHING_OWED = ("NOTIFIED", "NOT_REQUIRED")
_TOPIC = {"LegalDisclosure": "disclosure", "NotificationStatusChanged": "disclosure", "SubjectNotified": "disclosure"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
Recorded = Mapping[str, tuple]  # event_id -> (timestamp_ms, topic, partition, offset)


def position(event: dict, recorded: Recorded | None) -> tuple:
    """``(recorded instant, topic, partition, offset)`` of an event: the order state changes apply in."""
    if recorded is None:
        return (event["occurred_at"], "ledger." + _TOPIC.get(event["type"], "other"), 0, event["event_id"])
    ms, topic, partition, offset = recorded[event["event_id"]]
    return (_EPOCH + timedelta(milliseconds=ms), topic, partition, offset)


def effective(event: dict, disclosure: dict | None, recorded: Recorded | None) -> bool:
    """Whether a status change or notice may change ``disclosure``'s notice (see the module docstring)."""
    if disclosure is None:
        return False
    return (event.get("source_service") == disclosure.get("source_service")
            and position(event, recorded)[1].endswith("disclosure")
            and event["occurred_at"] >= disclosure["occurred_at"]
            and (event["type"] != "SubjectNotified" or event["notified_at"] >= disclosure["occurred_at"]))


def _newest_first(events: list[dict]) -> list[dict]:
    return sorted(events, key=lambda e: (e["occurred_at"], e["event_id"]), reverse=True)


def _in_window(event: dict, since: datetime | None, until: datetime | None) -> bool:
    at = event["occurred_at"]
    return (since is None or since <= at) and (until is None or at < until)


def touching(events: Iterable[dict], subject_id: str, since=None, until=None) -> list[dict]:
    """Accesses, shares and legal disclosures naming ``subject_id``, newest first."""
    return _newest_first([
        e for e in events
        if e["type"] in EXPOSURE_TYPES and subject_id in e["subject_ids"] and _in_window(e, since, until)
    ])


def by_actor(events: Iterable[dict], actor_id: str, since=None, until=None, types=None) -> list[dict]:
    """Every event (of ``types``, default all) whose ``actor.id`` is ``actor_id``, newest first.

    Denied and break-glass accesses are included like any other.
    """
    return _newest_first([
        e for e in events
        if e["actor"]["id"] == actor_id and (types is None or e["type"] in types)
        and _in_window(e, since, until)
    ])


def disclosed_to(events: Iterable[dict], recipient_id: str | None = None, since=None, until=None,
                 recipient_kind: str | None = None) -> list[dict]:
    """Shares and legal disclosures to a recipient id and/or recipient kind, newest first."""
    return _newest_first([
        e for e in events
        if e["type"] in DISCLOSURE_TYPES
        and (recipient_id is None or e["recipient"]["id"] == recipient_id)
        and (recipient_kind is None or e["recipient"]["kind"] == recipient_kind)
        and _in_window(e, since, until)
    ])


def notice_state(disclosure: dict, changes: Iterable[dict], as_of: datetime,
                 recorded: Recorded | None = None) -> dict:
    """The notice state of one disclosure at ``as_of`` (see the module docstring).

    ``changes`` are the NotificationStatusChanged events for this disclosure;
    those not effective or recorded after ``as_of`` are ignored. Returns
    ``status``, ``delay_until``, ``order_ref``, ``in_force`` (a delay holds
    the notice back now), ``delay``, ``own_due_by`` and ``due_by`` (the
    effective due date).
    """
    notification = disclosure["notification"]
    status = notification["status"]
    delay_until = notification["delay_until"]
    order_ref = notification["order_ref"]
    released = lifted = None  # when the latest delay ended (by expiry or lift), when it was lifted
    applied = sorted((position(c, recorded), c) for c in changes
                     if effective(c, disclosure, recorded) and position(c, recorded)[0] <= as_of)
    for (at, *_), change in applied:
        if status in DELAYED and change["status"] not in DELAYED:
            lifted = at
            released = lifted if delay_until is None else min(lifted, delay_until)
        status, delay_until, order_ref = change["status"], change["delay_until"], change["order_ref"]

    own_due = notification["due_by"]
    if own_due is None:
        own_due = disclosure["occurred_at"] + timedelta(days=DEFAULT_NOTICE_DAYS)
    if status in DELAYED:
        in_force = delay_until is None or as_of < delay_until
        due = None if delay_until is None else max(own_due, delay_until)
        delay = "in force" if in_force else "expired"
    else:
        in_force = False
        due = own_due if released is None else max(own_due, released)
        delay = None if released is None else "lifted" if released == lifted else "expired"
    return {"status": status, "delay_until": delay_until, "order_ref": order_ref,
            "in_force": in_force, "delay": delay, "own_due_by": own_due, "due_by": due}


def _notified(events: list[dict], as_of: datetime, recorded: Recorded | None) -> set[tuple[str, str]]:
    """(disclosure_event_id, subject_id) pairs told by an effective notice by ``as_of``."""
    disclosures = {e["event_id"]: e for e in events if e["type"] == "LegalDisclosure"}
    done = set()
    for e in events:
        if (e["type"] == "SubjectNotified" and effective(e, disclosures.get(e["disclosure_event_id"]), recorded)
                and position(e, recorded)[0] <= as_of and e["notified_at"] <= as_of):
            for subject_id in e["subject_ids"]:
                done.add((e["disclosure_event_id"], subject_id))
    return done


def _changes_by_disclosure(events: list[dict]) -> dict[str, list[dict]]:
    changes: dict[str, list[dict]] = {}
    for e in events:
        if e["type"] == "NotificationStatusChanged":
            changes.setdefault(e["disclosure_event_id"], []).append(e)
    return changes


def owed_notices(events: Iterable[dict], as_of: datetime, recorded: Recorded | None = None) -> list[dict]:
    """One row per (disclosure, customer) still owed a notice at ``as_of``.

    Rows: ``disclosure_event_id, subject_id, own_due_by, due_by, status,
    delay, delay_until, order_ref, overdue``, ordered by the disclosure's ``(occurred_at,
    event_id)`` then ``subject_id``.
    """
    events = list(events)
    notified = _notified(events, as_of, recorded)
    changes = _changes_by_disclosure(events)
    disclosures = sorted((e for e in events if e["type"] == "LegalDisclosure" and e["occurred_at"] <= as_of),
                         key=lambda e: (e["occurred_at"], e["event_id"]))
    rows = []
    for d in disclosures:
        state = notice_state(d, changes.get(d["event_id"], ()), as_of, recorded)
        if state["status"] in NOTHING_OWED:
            continue
        overdue = not state["in_force"] and state["due_by"] is not None and as_of > state["due_by"]
        for subject_id in sorted(d["subject_ids"]):
            if (d["event_id"], subject_id) in notified:
                continue
            rows.append({
                "disclosure_event_id": d["event_id"], "subject_id": subject_id,
                "own_due_by": state["own_due_by"], "due_by": state["due_by"], "status": state["status"],
                "delay": state["delay"], "delay_until": state["delay_until"],
                "order_ref": state["order_ref"],
                "overdue": overdue,
            })
    return rows


def subject_report(events: Iterable[dict], subject_id: str, as_of: datetime,
                   recorded: Recorded | None = None) -> list[dict]:
    """What the subject-facing report shows ``subject_id`` at ``as_of``, newest first.

    Every access, share and legal disclosure naming the subject with
    ``occurred_at <= as_of``, except a legal disclosure whose current status
    is DELAYED_* (in force or expired) while this customer has not been
    notified yet, and every event tied to such a disclosure: the same
    ``correlation_id``, or the disclosure's correlation id or request id as
    the event's correlation id or justification ticket.
    """
    events = list(events)
    notified = _notified(events, as_of, recorded)
    changes = _changes_by_disclosure(events)
    mine = [e for e in touching(events, subject_id, until=None) if e["occurred_at"] <= as_of]
    hidden, keys = set(), set()
    for e in mine:
        if e["type"] == "LegalDisclosure" and (e["event_id"], subject_id) not in notified:
            if notice_state(e, changes.get(e["event_id"], ()), as_of, recorded)["status"] in DELAYED:
                hidden.add(e["event_id"])
                keys |= {k for k in (e.get("correlation_id"), (e.get("request") or {}).get("id")) if k}
    return [e for e in mine if e["event_id"] not in hidden
            and not ({e.get("correlation_id"), (e.get("justification") or {}).get("ticket")} & keys)]


def anomalies(events: Iterable[dict]) -> list[dict]:
    """SubjectNotified events whose disclosure never appears, in list order."""
    events = list(events)
    disclosure_ids = {e["event_id"] for e in events if e["type"] == "LegalDisclosure"}
    return [e for e in events if e["type"] == "SubjectNotified" and e["disclosure_event_id"] not in disclosure_ids]


def marketing_without_consent(events: Iterable[dict]) -> list[tuple[dict, str]]:
    """(share, subject_id) for marketing shares not backed by a current PARTNERS-scope consent.

    A share with purpose ``marketing.*`` needs, for each subject, a latest
    ConsentChanged for that purpose (by ``(occurred_at, event_id)``, not after
    the share) that grants consent with scope PARTNERS. In list order.
    """
    events = list(events)
    consents = sorted((e for e in events if e["type"] == "ConsentChanged"),
                      key=lambda e: (e["occurred_at"], e["event_id"]))
    found = []
    for share in events:
        if share["type"] != "DataShared" or not share["purpose"].startswith("marketing."):
            continue
        for subject_id in share["subject_ids"]:
            latest = None
            for c in consents:
                if c["occurred_at"] > share["occurred_at"]:
                    break
                if c["purpose"] == share["purpose"] and subject_id in c["subject_ids"]:
                    latest = c
            if latest is None or not latest["granted"] or latest["scope"] != "PARTNERS":
                found.append((share, subject_id))
    return found


# -- promise checks (ledger.findings) against examples/policy.toml -------------------------
class Truth:
    """What the simulator knows it broke, recorded as it emits (see violations.py).

    ``found`` holds ``(rule, kind, event_id, subjects)`` for findings that do
    not depend on the instant of judgement; ``glass`` maps each break-glass
    access to ``(occurred_at, review occurred_at or None)`` so the review rule
    can be judged at any instant; the legal-notice findings follow from the
    events by :func:`owed_notices` and :func:`late_notices`.
    """

    def __init__(self) -> None:
        self.found: list[tuple[str, str, str, tuple[str, ...]]] = []
        self.glass: dict[str, tuple[datetime, datetime | None]] = {}
        self.notice_version: dict[str, str] = {}  # subject -> latest notice version accepted

    def broken(self, rule: str, event: dict, subjects=None) -> None:
        self.found.append((rule, "broken", event["event_id"], tuple(subjects or event["subject_ids"])))

    def not_judgeable(self, rule: str, event: dict) -> None:
        self.found.append((rule, "not_judgeable", event["event_id"], tuple(event["subject_ids"])))


def late_notices(events: Iterable[dict], as_of: datetime) -> list[tuple[str, str]]:
    """(disclosure_event_id, subject_id) first notified after the notice was due (by ``as_of``)."""
    events = list(events)
    changes = _changes_by_disclosure(events)
    first: dict[tuple[str, str], dict] = {}
    for e in events:
        if e["type"] == "SubjectNotified" and e["occurred_at"] <= as_of and e["notified_at"] <= as_of:
            for s in e["subject_ids"]:
                key = (e["disclosure_event_id"], s)
                if key not in first or (e["notified_at"], e["event_id"]) < (first[key]["notified_at"],
                                                                            first[key]["event_id"]):
                    first[key] = e
    late = []
    for d in events:
        if d["type"] != "LegalDisclosure" or d["occurred_at"] > as_of:
            continue
        for s in sorted(d["subject_ids"]):
            n = first.get((d["event_id"], s))
            if n is None:
                continue
            at = max(n["notified_at"], n["occurred_at"])
            state = notice_state(d, changes.get(d["event_id"], ()), at)
            if state["status"] not in NOTHING_OWED and not state["in_force"] and state["due_by"] is not None \
                    and n["notified_at"] > state["due_by"]:
                late.append((d["event_id"], s))
    return late


def expected_findings(events: list[dict], truth: Truth, as_of: datetime,
                      review_hours: float = 24, max_delay_days: float = 90) -> set[tuple[str, str, str, tuple[str, ...]]]:
    """Every finding examples/policy.toml must produce at ``as_of``: (rule, kind, event_id, subjects)."""
    expected = set(truth.found)
    window = timedelta(hours=review_hours)
    by_id = {e["event_id"]: e for e in events if e["event_id"] in truth.glass}
    for event_id, (at, reviewed_at) in truth.glass.items():
        if event_id in by_id and as_of > at + window and (reviewed_at is None or reviewed_at > min(at + window, as_of)):
            expected.add(("access.break_glass_review", "broken", event_id, tuple(by_id[event_id]["subject_ids"])))
    for row in owed_notices(events, as_of):
        if row["overdue"]:
            expected.add(("legal.notice", "broken", row["disclosure_event_id"], (row["subject_id"],)))
    for disclosure_id, subject in late_notices(events, as_of):
        expected.add(("legal.notice", "broken", disclosure_id, (subject,)))
    for d in endless_delays(events, as_of, max_delay_days):
        expected.add(("legal.delay", "broken", d["event_id"], tuple(d["subject_ids"])))
    return expected


def endless_delays(events: list[dict], as_of: datetime, max_days: float) -> list[dict]:
    """Disclosures whose notice is held back without an end, by the last status set, for over ``max_days``."""
    changes = _changes_by_disclosure(events)
    found = []
    for d in events:
        if d["type"] != "LegalDisclosure" or d["occurred_at"] > as_of:
            continue
        last = d["notification"] | {"occurred_at": d["occurred_at"]}
        for c in sorted(changes.get(d["event_id"], ()), key=lambda c: (c["occurred_at"], c["event_id"])):
            last = c
        if last["status"] in DELAYED and last["delay_until"] is None \
                and as_of - last["occurred_at"] > timedelta(days=max_days):
            found.append(d)
    return found
