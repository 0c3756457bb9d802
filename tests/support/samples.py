"""A minimal valid input of each event type, as a producer would pass it (strings for times)."""

from __future__ import annotations

import hashlib

from ledger.model import events

EVENT_ID = "0b7c0d1e-2f3a-4b5c-8d6e-7f8091a2b3c4"
ACTOR = {"id": "emp-7", "type": "EMPLOYEE", "role": "support_agent"}
PROCESSING = {"data_categories": ["user.contact.email"], "purpose": "essential.service.support"}
RECIPIENT = {"id": "acme", "name": "ACME Payments", "kind": "PAYMENT_PROCESSOR", "country": "DE"}
POLICY_TOML = "[policy]\nname = \"acme-telecom\"\n"
POLICY_SHA256 = hashlib.sha256(POLICY_TOML.encode()).hexdigest()


def sample(event_type: str) -> dict:
    """A minimal valid input of each event type."""
    common = {"type": event_type, "occurred_at": "2026-01-02T03:04:05.123456Z", "source_service": "crm",
              "actor": dict(ACTOR), "subject_ids": ["cust-2", "cust-1"]}
    specific = {
        "DataAccessed": {**PROCESSING, "access_type": "VIEW", "outcome": "GRANTED"},
        "DataShared": {**PROCESSING, "recipient": dict(RECIPIENT)},
        "LegalDisclosure": {
            **PROCESSING, "purpose": "legal.obligation", "reviewed_by": "legal-3",
            "request": {"id": "REQ-1", "kind": "SUBPOENA", "authority": "District Court",
                        "received_at": "2026-01-01T09:00:00+01:00"},
            "requested_categories": ["user.contact.email", "user.usage.call_records"],
            "recipient": {"id": "court-1", "name": "District Court", "kind": "REGULATOR"},
            "notification": {"status": "PENDING", "due_by": "2026-02-01T00:00:00Z"},
        },
        "NotificationStatusChanged": {"disclosure_event_id": EVENT_ID, "status": "DELAYED_BY_ORDER",
                                      "order_ref": "ORD-9", "reason": "gag order"},
        "SubjectNotified": {"disclosure_event_id": EVENT_ID, "notified_at": "2026-03-01T00:00:00Z",
                            "channel": "email"},
        "ConsentChanged": {"purpose": "marketing.email", "granted": True, "channel": "EMAIL",
                           "scope": "FIRST_PARTY"},
        "PolicyPublished": {"policy_name": "acme-telecom", "policy_version": "2026.1",
                            "policy_sha256": POLICY_SHA256, "vocabulary_version": "fideslang 3.1.4",
                            "policy_toml": POLICY_TOML},
    }[event_type]
    if event_type in events.SUBJECTLESS_TYPES:
        del common["subject_ids"]
    return {**common, **specific}
