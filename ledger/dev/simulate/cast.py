"""Who appears in a simulated workload: staff, services, recipients, authorities.

The company is *Northwind*, a telecom operator that also sells devices online.
Everything here is constant data; the stream modules pick from it. Actors of
the operator itself carry ``organization=None`` (the schema reserves the field
for outside parties).
"""

from __future__ import annotations


def _staff(prefix: str, first: int, count: int, role: str) -> list[tuple[str, str, str, None]]:
    return [(f"{prefix}-{first + i}", "EMPLOYEE", role, None) for i in range(count)]


# Actors as (id, type, role, organization) tuples; the stream copies them into dicts.
SUPPORT_AGENTS = _staff("emp", 1001, 40, "support_agent")
FRAUD_ANALYSTS = _staff("emp", 2001, 6, "fraud_analyst")
DATA_ENGINEERS = _staff("emp", 3001, 4, "data_engineer")
SITE_ENGINEERS = _staff("emp", 4001, 4, "site_reliability_engineer")
PRIVACY_OFFICERS = _staff("emp", 5001, 2, "privacy_officer")
LEGAL_COUNSEL = _staff("emp", 6001, 3, "legal_counsel")
RECORDS_CLERKS = _staff("emp", 7001, 2, "records_clerk")

BILLING_JOB = ("svc-billing", "SERVICE", "billing_job", None)
FULFILMENT = ("svc-fulfilment", "SERVICE", "order_fulfilment", None)
RECOMMENDER = ("svc-recommender", "SERVICE", "recommendation_engine", None)
MARKETING_SYNC = ("svc-marketing-sync", "SERVICE", "audience_sync", None)
PAYMENTS = ("svc-payments", "SERVICE", "payment_gateway", None)
NOTIFIER = ("sys-notifier", "SYSTEM", "notification_sender", None)
RETENTION = ("sys-retention", "SYSTEM", "retention_policy", None)
SHIPPER_PORTAL = ("partner-shipfast-portal", "PARTNER", "courier_dispatch", "ShipFast Logistics B.V.")
INSPECTOR = ("auth-bnetza-inspector-7", "AUTHORITY", "inspector", "Bundesnetzagentur")

# Recipients as dicts in the event shape (copied before use).
PAYMENT_PROCESSOR = {
    "id": "rcpt-paystream", "name": "PayStream Inc.", "kind": "PAYMENT_PROCESSOR",
    "country": "US", "address": "500 Market St, San Francisco, CA 94105, US",
}
SHIPPER = {
    "id": "rcpt-shipfast", "name": "ShipFast Logistics B.V.", "kind": "PROCESSOR",
    "country": "NL", "address": "Westerdoksdijk 40, 1013 AE Amsterdam, NL",
}
ADVERTISER = {
    "id": "rcpt-adreach", "name": "AdReach Media Ltd", "kind": "ADVERTISER",
    "country": "GB", "address": "1 Canada Square, London E14 5AB, GB",
}
AFFILIATE = {
    "id": "rcpt-northwind-retail", "name": "Northwind Retail GmbH", "kind": "AFFILIATE",
    "country": "DE", "address": "Friedrichstr. 90, 10117 Berlin, DE",
}
CREDIT_BUREAU = {
    "id": "rcpt-creditcheck", "name": "CreditCheck SE", "kind": "CONTROLLER",
    "country": "DE", "address": "Kaiserstr. 12, 60311 Frankfurt am Main, DE",
}
AUDIT_FIRM = {
    "id": "rcpt-auditors", "name": "Keller & Partner Wirtschaftsprüfer", "kind": "AUDITOR",
    "country": "DE", "address": "Jungfernstieg 7, 20354 Hamburg, DE",
}

# Authorities: (recipient dict, jurisdiction, request kinds they send).
AUTHORITIES = [
    ({"id": "auth-met-police", "name": "Metropolitan Police Service", "kind": "OTHER",
      "country": "GB", "address": "New Scotland Yard, Victoria Embankment, London SW1A 2JL, GB"},
     "GB", ("LAW_ENFORCEMENT_REQUEST", "COURT_ORDER", "EMERGENCY")),
    ({"id": "auth-fbi", "name": "Federal Bureau of Investigation", "kind": "OTHER",
      "country": "US", "address": "935 Pennsylvania Ave NW, Washington, DC 20535, US"},
     "US", ("SUBPOENA", "SEARCH_WARRANT", "NATIONAL_SECURITY")),
    ({"id": "auth-sta-berlin", "name": "Staatsanwaltschaft Berlin", "kind": "OTHER",
      "country": "DE", "address": "Turmstr. 91, 10559 Berlin, DE"},
     "DE", ("COURT_ORDER", "INTERCEPTION_ORDER", "LAW_ENFORCEMENT_REQUEST")),
    ({"id": "auth-tj-paris", "name": "Tribunal judiciaire de Paris", "kind": "OTHER",
      "country": "FR", "address": "Parvis du Tribunal de Paris, 75017 Paris, FR"},
     "FR", ("COURT_ORDER", "SEARCH_WARRANT")),
    ({"id": "auth-bnetza", "name": "Bundesnetzagentur", "kind": "REGULATOR",
      "country": "DE", "address": "Tulpenfeld 4, 53113 Bonn, DE"},
     "DE", ("REGULATOR_REQUEST",)),
    ({"id": "auth-ico", "name": "Information Commissioner's Office", "kind": "REGULATOR",
      "country": "GB", "address": "Wycliffe House, Water Lane, Wilmslow SK9 5AF, GB"},
     "GB", ("REGULATOR_REQUEST",)),
]

# Data-category combinations per scenario (tuples; the stream copies them).
SUPPORT_VIEWS = (
    ("user.name", "user.account.identifiers"),
    ("user.name", "user.contact.email", "user.contact.phone_number"),
    ("user.account.identifiers", "user.behavior.call_records"),
    ("user.contact.address", "user.name"),
    ("user.financial.billing_history", "user.account.identifiers"),
    ("user.content.support_tickets", "user.name"),
)
DENIED_VIEWS = (
    ("user.financial.payment_card",),
    ("user.content.communications",),
    ("user.location.precise", "user.behavior.call_records"),
)
BILLING_READS = (
    ("user.behavior.call_records", "user.financial.payment_card", "user.account.identifiers"),
    ("user.financial.billing_history", "user.account.identifiers"),
)
EXPORT_READS = (
    ("user.behavior.call_records", "user.device.device_id"),
    ("user.behavior.purchase_history", "user.account.identifiers"),
    ("user.location.imprecise", "user.behavior.browsing_history"),
)
FRAUD_READS = (
    ("user.behavior.call_records", "user.location.precise", "user.device.device_id"),
    ("user.financial.payment_card", "user.behavior.purchase_history"),
    ("user.device.device_id", "user.account.identifiers"),
)
SELF_SERVICE = (
    ("user.name", "user.contact.email", "user.contact.address"),
    ("user.financial.billing_history",),
    ("user.behavior.call_records",),
)
INCIDENT_READS = (
    ("user.account.identifiers", "user.authorization.credentials"),
    ("user.content.communications", "user.account.identifiers"),
)
LEGAL_REQUESTS = (
    ("user.name", "user.contact.address", "user.behavior.call_records"),
    ("user.behavior.call_records", "user.location.precise"),
    ("user.name", "user.account.identifiers", "user.financial.billing_history"),
    ("user.content.communications", "user.behavior.call_records", "user.device.device_id"),
    ("user.name", "user.contact.phone_number", "user.location.precise", "user.device.device_id"),
)

NOTICE_VERSIONS = ("privacy-2025-03", "privacy-2025-11")

# Request kinds that may release the content of communications (examples/policy.toml, [legal.release]).
CONTENT_REQUEST_KINDS = ("COURT_ORDER", "SEARCH_WARRANT", "INTERCEPTION_ORDER")
LEGAL_REQUESTS_WITHOUT_CONTENT = tuple(r for r in LEGAL_REQUESTS if "user.content.communications" not in r)

#: Privacy-notice versions and the purposes each covers beyond the older one.
NOTICE_ONLY_IN_NEWER = "functional.research_and_development"
