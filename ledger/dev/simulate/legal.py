"""Legal disclosures and what follows them: delays, lifts, notices, anomalies.

:func:`open_case` is the maker the stream calls for a new legal request. It
builds the disclosure and schedules the case's later events (status changes,
``SubjectNotified``) with ``stream.later``. The first cases opened run through
:data:`CASES` in order, so every situation the obligation rules distinguish
occurs in any workload long enough to reach them (a few thousand events);
later cases are drawn by weight.
"""

from __future__ import annotations

from bisect import bisect
from datetime import datetime, timedelta
from itertools import accumulate

from . import cast
from .clock import midnight_after

FRAUD = "DELAYED_FRAUD_INVESTIGATION"
GAG = "DELAYED_BY_ORDER"


def _pick(rng, options):
    return options[int(rng.random() * len(options))]


def _customers(s, low: int = 1, high: int | None = None) -> list[str]:
    """Customers named in a request: usually one, sometimes a handful, rarely two dozen."""
    if high is None:
        roll = s.rng.random()
        low, high = (1, 1) if roll < 0.55 else (2, 5) if roll < 0.9 else (6, 25)
    if high == 1:
        return [s.subject()]
    return s.sample(low, high)


def _disclosure(s, kinds: tuple[str, ...], status: str, *, customers=None, due_days=30,
                delay_until=None, order_ref=None, reason=None, recorded_by=None, categories=None,
                self_reviewed=False) -> dict:
    rng, now = s.rng, s.now
    authorities = [a for a in cast.AUTHORITIES if set(a[2]) & set(kinds)]
    recipient, jurisdiction, offered = _pick(rng, authorities)
    kind = _pick(rng, [k for k in offered if k in kinds])
    number = s.serial("legal-request")
    request_id = f"LR-{now:%Y}-{number:05d}"
    # What a request may release follows the policy (examples/policy.toml); violations.py breaks it on purpose.
    requested = categories or _pick(rng, cast.LEGAL_REQUESTS if kind in cast.CONTENT_REQUEST_KINDS
                                    else cast.LEGAL_REQUESTS_WITHOUT_CONTENT)
    released = requested[:-1] if len(requested) > 1 and rng.random() < 0.3 else requested
    emergency = kind == "EMERGENCY"
    counsel = _pick(rng, cast.LEGAL_COUNSEL)
    event = s.event("LegalDisclosure", counsel,
                    customers if customers is not None else _customers(s), "legal-case-tool",
                    correlation_id=request_id, recorded_by=recorded_by)
    event.update(
        data_categories=list(released),
        purpose="essential.legal_obligation",
        legal_basis="VITAL_INTERESTS" if emergency else "LEGAL_OBLIGATION",
        justification={"reason_code": "legal_process", "ticket": request_id,
                       "note": "life at risk; released before the written order" if emergency else None},
        request={
            "id": request_id,
            "kind": kind,
            "authority": recipient["name"],
            "jurisdiction": jurisdiction,
            "case_ref": f"{jurisdiction}-{rng.randrange(10_000, 100_000)}/{now:%y}",
            "received_at": s.after(now, -10, -0.05),
            "document_ref": f"dms://legal/{now:%Y}/{request_id}.pdf",
            "document_sha256": "%064x" % rng.getrandbits(256),
        },
        # Reviewed by another counsel than the one who records it (the requester).
        reviewed_by=counsel[0] if self_reviewed else _pick(rng, [c for c in cast.LEGAL_COUNSEL if c != counsel])[0],
        requested_categories=list(requested),
        recipient=dict(recipient),
        notification={
            "status": status,
            "due_by": None if due_days is None else midnight_after(now, due_days),
            "delay_until": delay_until,
            "order_ref": order_ref,
            "reason": reason,
        },
    )
    return event


def _order_ref(s, jurisdiction: str = "ORD") -> str:
    return f"{jurisdiction}-{s.now:%Y}-{s.rng.randrange(1000, 10_000)}"


def _change(s, disclosure: dict, status: str, delay_until: datetime | None, order_ref: str | None,
            reason: str):
    """A builder for a NotificationStatusChanged about ``disclosure``.

    What it needs is copied now, so a consumer mutating the emitted
    disclosure cannot change the follow-up.
    """
    about, case, named = disclosure["event_id"], disclosure["correlation_id"], list(disclosure["subject_ids"])

    def build(now: datetime) -> dict:
        event = s.event("NotificationStatusChanged", _pick(s.rng, cast.LEGAL_COUNSEL), list(named),
                        "legal-case-tool", correlation_id=case)
        event.update(disclosure_event_id=about, status=status, delay_until=delay_until,
                     order_ref=order_ref, reason=reason)
        return event
    return build


def _notice(s, disclosure: dict, customers: list[str]):
    """A builder for a SubjectNotified telling ``customers`` about ``disclosure``."""
    about, case, told = disclosure["event_id"], disclosure["correlation_id"], list(customers)

    def build(now: datetime) -> dict:
        letter = s.rng.random() < 0.3
        actor = _pick(s.rng, cast.LEGAL_COUNSEL) if letter else cast.NOTIFIER
        # Logged by the legal case tool, the authority for its cases (obligations.same_source_service).
        event = s.event("SubjectNotified", actor, list(told), "legal-case-tool", correlation_id=case)
        # A letter is posted first and logged afterwards; an email is logged as it is sent.
        sent = now - timedelta(minutes=s.rng.randint(5, 360)) if letter else now
        event.update(disclosure_event_id=about, notified_at=max(sent, s.start),
                     channel="letter" if letter else "email")
        return event
    return build


def _notify_all(s, disclosure, low_days, high_days, base=None):
    s.later(s.after(base or disclosure["occurred_at"], low_days, high_days),
            _notice(s, disclosure, disclosure["subject_ids"]))


# -- the cases ------------------------------------------------------------------
# Each takes the stream and returns the disclosure to emit now, or None when
# the disclosure is emitted later (or never).
_COURT = ("COURT_ORDER", "SUBPOENA", "SEARCH_WARRANT", "INTERCEPTION_ORDER")
_POLICE = ("LAW_ENFORCEMENT_REQUEST", "COURT_ORDER", "SUBPOENA")


def notified(s):
    d = _disclosure(s, _POLICE + _COURT, "PENDING")
    _notify_all(s, d, 2, 20)
    return d


def notified_late(s):
    d = _disclosure(s, _POLICE, "PENDING", due_days=14)
    _notify_all(s, d, 16, 30)
    return d


def never_notified(s):
    return _disclosure(s, _POLICE + _COURT, "PENDING")


def due_unset(s):
    d = _disclosure(s, _POLICE, "PENDING", due_days=None)
    if s.rng.random() < 0.5:
        _notify_all(s, d, 10, 40)
    return d


def partial(s):
    """Only some of the customers named are notified (the rest still owed)."""
    d = _disclosure(s, _COURT, "PENDING", customers=_customers(s, 2, 6))
    named = d["subject_ids"]
    s.later(s.after(d["occurred_at"], 3, 15), _notice(s, d, named[: s.rng.randint(1, len(named) - 1)]
                                                      if len(named) > 1 else named))
    return d


def split_notices(s):
    """All customers are notified, in two separate batches."""
    d = _disclosure(s, _COURT, "PENDING", customers=_customers(s, 2, 8))
    named = d["subject_ids"]
    cut = s.rng.randint(1, max(1, len(named) - 1))
    s.later(s.after(d["occurred_at"], 2, 8), _notice(s, d, named[:cut]))
    if named[cut:]:
        s.later(s.after(d["occurred_at"], 9, 20), _notice(s, d, named[cut:]))
    return d


def gag_extended_lifted(s):
    """A gag order, extended by a second order before it expires, then lifted by the court."""
    first = _order_ref(s, "GAG")
    t = s.now
    d = _disclosure(s, _COURT, GAG, delay_until=midnight_after(t, 21), order_ref=first,
                    reason="non-disclosure order")
    second = _order_ref(s, "GAG")
    s.later(s.after(t, 10, 18), _change(s, d, GAG, midnight_after(t, 45), second,
                                        "non-disclosure order extended"))
    lifted = s.after(t, 30, 40)
    s.later(lifted, _change(s, d, "PENDING", None, None, "non-disclosure order lifted by the court"))
    _notify_all(s, d, 1, 5, base=lifted)
    return d


def gag_expires(s):
    """A gag order runs out on its own; the notice is due at once."""
    t = s.now
    until = midnight_after(t, s.rng.randint(7, 20))
    d = _disclosure(s, _COURT, GAG, delay_until=until, order_ref=_order_ref(s, "GAG"),
                    reason="non-disclosure order")
    if s.rng.random() < 0.5:
        _notify_all(s, d, 1, 10, base=until)
    return d


def gag_indefinite(s):
    """A gag order without an end date: never expires by itself, sometimes lifted."""
    d = _disclosure(s, _COURT, GAG, order_ref=_order_ref(s, "GAG"), reason="non-disclosure order")
    if s.rng.random() < 0.4:
        lifted = s.after(d["occurred_at"], 20, 50)
        s.later(lifted, _change(s, d, "PENDING", None, None, "non-disclosure order lifted"))
        _notify_all(s, d, 1, 5, base=lifted)
    return d


def gag_imposed_later(s):
    """Disclosed as PENDING; a gag order arrives a few days afterwards."""
    t = s.now
    d = _disclosure(s, _COURT, "PENDING")
    s.later(s.after(t, 1, 5), _change(s, d, GAG, midnight_after(t, 40), _order_ref(s, "GAG"),
                                      "non-disclosure order received after release"))
    return d


def fraud_expiry(s):
    """Notice held back for a fraud investigation with an end date."""
    t = s.now
    until = midnight_after(t, s.rng.randint(7, 21))
    d = _disclosure(s, _POLICE, FRAUD, delay_until=until, reason="active fraud investigation")
    if s.rng.random() < 0.6:
        _notify_all(s, d, 0.5, 6, base=until)
    return d


def fraud_indefinite(s):
    """Notice held back for a fraud investigation with no end date; sometimes closed later."""
    d = _disclosure(s, _POLICE, FRAUD, reason="active fraud investigation")
    if s.rng.random() < 0.5:
        closed = s.after(d["occurred_at"], 15, 30)
        s.later(closed, _change(s, d, "PENDING", None, None, "fraud investigation closed"))
        if s.rng.random() < 0.5:
            _notify_all(s, d, 1, 5, base=closed)
    return d


def fraud_extended(s):
    """A fraud delay extended before it runs out."""
    t = s.now
    d = _disclosure(s, _POLICE, FRAUD, delay_until=midnight_after(t, 10), reason="active fraud investigation")
    s.later(s.after(t, 5, 9), _change(s, d, FRAUD, midnight_after(t, 30), None,
                                      "fraud investigation extended"))
    return d


def recorded_late(s):
    """Typed into the case tool after the customer was already notified: the notice comes first."""
    t = s.now
    d = _disclosure(s, _POLICE + _COURT, "PENDING", recorded_by=_pick(s.rng, cast.RECORDS_CLERKS)[0])
    d["attributes"] = {"entry": "manual"}
    notice_at = s.after(t, 2, 5)
    s.later(notice_at, _notice(s, d, d["subject_ids"]))
    s.later(s.after(notice_at, 0.5, 3), lambda now: d)
    return None


def not_required(s):
    return _disclosure(s, ("REGULATOR_REQUEST",), "NOT_REQUIRED",
                       reason="regulatory inspection: no notification duty")


def emergency(s):
    d = _disclosure(s, ("EMERGENCY",), "PENDING", customers=[s.subject()], due_days=7)
    _notify_all(s, d, 1, 10)
    return d


def waived_later(s):
    """Disclosed as PENDING, later ruled not to need a notice."""
    d = _disclosure(s, _COURT, "PENDING")
    s.later(s.after(d["occurred_at"], 2, 10),
            _change(s, d, "NOT_REQUIRED", None, None, "court ruled notification not required"))
    return d


def already_notified(s):
    """The customer was told before the release (e.g. they asked for it)."""
    return _disclosure(s, _POLICE, "NOTIFIED", reason="customer informed before release")


def lost_disclosure(s):
    """Anomaly: a notice for a disclosure that was never recorded."""
    d = _disclosure(s, _POLICE, "PENDING")
    s.later(s.after(d["occurred_at"], 2, 8), _notice(s, d, d["subject_ids"]))
    return None


#: (case, weight) in the order the first cases are opened.
CASES = (
    (notified, 22), (gag_extended_lifted, 6), (partial, 7), (fraud_expiry, 5),
    (recorded_late, 4), (lost_disclosure, 0.6), (gag_indefinite, 4), (fraud_indefinite, 4),
    (never_notified, 7), (gag_expires, 4), (gag_imposed_later, 3), (split_notices, 4),
    (fraud_extended, 2), (notified_late, 5), (due_unset, 4), (not_required, 5), (emergency, 3),
    (waived_later, 2), (already_notified, 2),
)
_CUMULATIVE = list(accumulate(weight for _, weight in CASES))


def open_case(s):
    """Open the next legal case: the scripted sequence first, then by weight."""
    index = s.cases_opened
    s.cases_opened += 1
    if index >= len(CASES):
        index = bisect(_CUMULATIVE, s.rng.random() * _CUMULATIVE[-1])
    return CASES[index][0](s)
