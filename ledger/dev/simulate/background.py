"""Everyday events: staff and services reading customer data, shares, consents.

Each public maker takes the :class:`~ledger.simulate.stream.Stream` and returns
one event at ``stream.now`` (a back-dated manual entry takes an earlier
``occurred_at``). Scenarios are picked by weight from small tables so the mix
reads like a telecom's week: mostly support lookups, nightly billing chunks,
fulfilment, fraud checks, a few denials and break-glass sessions.
"""

from __future__ import annotations

from bisect import bisect
from datetime import timedelta
from itertools import accumulate

from . import cast

MARKETING_RECIPIENTS = {"marketing.advertising": cast.ADVERTISER, "marketing.communications.email": cast.AFFILIATE}
_MARKETING_CATEGORIES = {
    "marketing.advertising": ("user.device.device_id", "user.behavior.purchase_history"),
    "marketing.communications.email": ("user.name", "user.contact.email"),
}


def _pick(rng, options):
    return options[int(rng.random() * len(options))]


def _accessed(s, actor, subjects, source, categories, purpose, basis, justification,
              access_type, outcome, channel, records, **common) -> dict:
    event = s.event("DataAccessed", actor, subjects, source, **common)
    event.update(
        data_categories=list(categories), purpose=purpose, legal_basis=basis,
        justification=justification, access_type=access_type, outcome=outcome,
        channel=channel, record_count=records,
    )
    return event


def _why(reason: str, ticket: str | None, note: str | None = None) -> dict:
    return {"reason_code": reason, "ticket": ticket, "note": note}


# -- accesses -----------------------------------------------------------------
def _support_view(s):
    rng = s.rng
    return _accessed(s, _pick(rng, cast.SUPPORT_AGENTS), [s.subject()], "support-console",
                     _pick(rng, cast.SUPPORT_VIEWS), "essential.service.operations.support", "CONTRACT",
                     _why("customer_request", s.ticket("SUP")), "VIEW", "GRANTED", "crm_console", 1)


def _support_modify(s):
    rng = s.rng
    return _accessed(s, _pick(rng, cast.SUPPORT_AGENTS), [s.subject()], "support-console",
                     ("user.contact.address", "user.contact.email"), "essential.service.account_management",
                     "CONTRACT", _why("customer_request", s.ticket("SUP"), "contact details updated"),
                     "MODIFY", "GRANTED", "crm_console", 1)


def _support_denied(s):
    rng = s.rng
    ticket = s.ticket("SUP") if rng.random() < 0.5 else None
    return _accessed(s, _pick(rng, cast.SUPPORT_AGENTS), [s.subject()], "support-console",
                     _pick(rng, cast.DENIED_VIEWS), "essential.service.operations.support", None,
                     _why("customer_request", ticket) if ticket else None,
                     "VIEW", "DENIED", "crm_console", 0)


def _self_service(s):
    subject = s.subject()
    rng = s.rng
    return _accessed(s, (subject, "SUBJECT", "customer", None), [subject], "self-service-portal",
                     _pick(rng, cast.SELF_SERVICE), "essential.service.account_management", "CONTRACT",
                     None, "VIEW", "GRANTED", _pick(rng, ("web", "mobile_app")), 1)


def _billing_chunk(s, run: str, chunks_left: int):
    subjects = s.block(50, 300)
    event = _accessed(s, cast.BILLING_JOB, subjects, "billing-engine", _pick(s.rng, cast.BILLING_READS),
                      "essential.service.payment_processing", "CONTRACT", None, "QUERY", "GRANTED", "batch",
                      len(subjects) * s.rng.randint(1, 4), correlation_id=run,
                      attributes={"billing_cycle": s.now.strftime("%Y-%m")}, traced=False)
    if chunks_left > 1:
        s.later(s.now + timedelta(seconds=s.rng.randint(5, 120)),
                lambda now: _billing_chunk(s, run, chunks_left - 1))
    return event


def _billing_run(s):
    run = f"billing-run-{s.now:%Y%m%d}-{s.serial('billing'):04d}"
    return _billing_chunk(s, run, s.rng.randint(1, 4))


def _payment_charge(s):
    return _accessed(s, cast.PAYMENTS, [s.subject()], "payments-gateway",
                     ("user.financial.payment_card", "user.name"), "essential.service.payment_processing", "CONTRACT",
                     None, "QUERY", "GRANTED", "api", 1)


def _fulfilment(s):
    return _accessed(s, cast.FULFILMENT, [s.subject()], "fulfilment",
                     ("user.name", "user.contact.address", "user.contact.phone_number"),
                     "essential.service.delivery", "CONTRACT", None, "VIEW", "GRANTED", "api", 1,
                     correlation_id=s.ticket("order"))


def _shipper_portal(s):
    return _accessed(s, cast.SHIPPER_PORTAL, [s.subject()], "partner-portal",
                     ("user.contact.address", "user.contact.phone_number"), "essential.service.delivery",
                     "CONTRACT", None, "VIEW", "GRANTED", "partner_portal", 1)


def _fraud_check(s):
    rng = s.rng
    subjects = [s.subject()] if rng.random() < 0.8 else s.sample(2, 10)
    return _accessed(s, _pick(rng, cast.FRAUD_ANALYSTS), subjects, "fraud-workbench",
                     _pick(rng, cast.FRAUD_READS), "essential.fraud_detection", "LEGITIMATE_INTERESTS",
                     _why("fraud_alert", s.ticket("FRD")), _pick(rng, ("VIEW", "QUERY")), "GRANTED",
                     "fraud_workbench", len(subjects))


def _recommender(s):
    return _accessed(s, cast.RECOMMENDER, [s.subject()], "recommendations",
                     ("user.behavior.purchase_history",), "functional.service.improve", "LEGITIMATE_INTERESTS",
                     None, "QUERY", "GRANTED", "api", s.rng.randint(1, 40))


def _export(s):
    subjects = s.sample(20, 300)
    job = s.ticket("DATA")
    return _accessed(s, _pick(s.rng, cast.DATA_ENGINEERS), subjects, "data-warehouse",
                     _pick(s.rng, cast.EXPORT_READS), "analytics.reporting", "LEGITIMATE_INTERESTS",
                     _why("scheduled_report", job, "quarterly churn analysis"), "EXPORT", "GRANTED",
                     "sql", len(subjects) * 12, correlation_id=job,
                     attributes={"destination": f"s3://northwind-analytics/exports/{job.lower()}.parquet"})


def break_glass(s, reviewed: bool = True):
    """An on-call override; a privacy officer reviews it a few hours later (same correlation_id)."""
    rng = s.rng
    ticket = s.ticket("INC")
    event = _accessed(s, _pick(rng, cast.SITE_ENGINEERS), [s.subject()], "ops-bastion",
                      _pick(rng, cast.INCIDENT_READS), "essential.service.security", "LEGITIMATE_INTERESTS",
                      _why("incident", ticket, "production outage; on-call override"),
                      _pick(rng, ("VIEW", "QUERY")), "BREAK_GLASS", "bastion_ssh", 1, correlation_id=ticket)
    s.truth.glass[event["event_id"]] = (event["occurred_at"], None)
    if reviewed:
        s.later(s.after(s.now, 1 / 24, 20 / 24), lambda now: _glass_review(s, event))
    return event


def _glass_review(s, glass: dict) -> dict:
    """The follow-up review of a break-glass session, by the convention of the policy file."""
    review = _accessed(s, _pick(s.rng, cast.PRIVACY_OFFICERS), list(glass["subject_ids"]), "privacy-desk",
                       glass["data_categories"], "essential.service.security", "LEGITIMATE_INTERESTS",
                       _why("break_glass_review", glass["correlation_id"], "override reviewed"),
                       "VIEW", "GRANTED", "privacy_tool", 1, correlation_id=glass["correlation_id"])
    s.truth.glass[glass["event_id"]] = (glass["occurred_at"], review["occurred_at"])
    return review


def _break_glass(s):
    return break_glass(s)


def _engineer_denied(s):
    return _accessed(s, _pick(s.rng, cast.DATA_ENGINEERS), [s.subject()], "data-warehouse",
                     ("user.content.communications",), "functional.service.improve", None, None,
                     "QUERY", "DENIED", "sql", 0)


def _erasure(s):
    return _accessed(s, _pick(s.rng, cast.PRIVACY_OFFICERS), [s.subject()], "privacy-desk",
                     ("user.behavior.purchase_history", "user.behavior.browsing_history"), "essential.legal_obligation",
                     "LEGAL_OBLIGATION", _why("erasure_request", s.ticket("DSR")),
                     "DELETE", "GRANTED", "privacy_tool", s.rng.randint(1, 500))


def _access_request(s):
    return _accessed(s, _pick(s.rng, cast.PRIVACY_OFFICERS), [s.subject()], "privacy-desk",
                     ("user.name", "user.contact.email", "user.behavior.call_records",
                      "user.financial.billing_history"), "essential.legal_obligation", "LEGAL_OBLIGATION",
                     _why("subject_access_request", s.ticket("DSR")), "EXPORT", "GRANTED",
                     "privacy_tool", s.rng.randint(10, 2000))


def _retention(s):
    return _accessed(s, cast.RETENTION, s.sample(5, 100), "retention-sweeper",
                     ("user.behavior.call_records",), "essential.legal_obligation", "LEGAL_OBLIGATION",
                     _why("retention_expired", None, "call records older than 6 months"),
                     "DELETE", "GRANTED", "batch", s.rng.randint(100, 5000), traced=False)


def _inspection(s):
    return _accessed(s, cast.INSPECTOR, s.sample(1, 5), "regulator-portal",
                     ("user.behavior.call_records", "user.account.identifiers"), "essential.legal_obligation",
                     "LEGAL_OBLIGATION", _why("regulatory_inspection", s.ticket("INSP")),
                     "QUERY", "GRANTED", "regulator_portal", 5)


def _manual_entry(s):
    """A paper access log typed in days later by a records clerk (back-dated)."""
    rng = s.rng
    typed_in = s.now - timedelta(minutes=rng.randint(60, 14 * 24 * 60))
    when = max(s.start, typed_in.replace(second=0, microsecond=0))
    log = s.ticket("PL")
    return _accessed(s, _pick(rng, cast.SUPPORT_AGENTS), [s.subject()], "manual-entry",
                     _pick(rng, cast.SUPPORT_VIEWS), "essential.service.operations.support", "CONTRACT",
                     _why("customer_request", None, f"in-store visit, paper log {log}"),
                     "VIEW", "GRANTED", "in_store", 1, occurred_at=when,
                     recorded_by=_pick(rng, cast.RECORDS_CLERKS)[0],
                     attributes={"entry": "manual", "paper_log": log}, traced=False)


_ACCESSES = (
    (_support_view, 44), (_support_modify, 5), (_support_denied, 2.5), (_self_service, 10),
    (_billing_run, 3), (_payment_charge, 4), (_fulfilment, 7), (_shipper_portal, 2),
    (_fraud_check, 6), (_recommender, 4), (_export, 1.2), (_break_glass, 1),
    (_engineer_denied, 0.5), (_erasure, 0.8), (_access_request, 0.7), (_retention, 0.4),
    (_inspection, 0.2), (_manual_entry, 1),
)


# -- shares -------------------------------------------------------------------
def _shared(s, actor, subjects, source, categories, purpose, basis, recipient, *,
            safeguard=None, agreement=None, consent_ref=None, retention_days=None,
            justification=None, **common) -> dict:
    event = s.event("DataShared", actor, subjects, source, **common)
    event.update(
        data_categories=list(categories), purpose=purpose, legal_basis=basis,
        justification=justification, recipient=dict(recipient), transfer_safeguard=safeguard,
        agreement_ref=agreement, consent_ref=consent_ref,
        retention_until=None if retention_days is None else event["occurred_at"] + timedelta(days=retention_days),
    )
    return event


def _to_payments(s):
    subjects = [s.subject()] if s.rng.random() < 0.85 else s.sample(10, 200)
    return _shared(s, cast.PAYMENTS, subjects, "payments-gateway",
                   ("user.financial.payment_card", "user.name", "user.contact.address"),
                   "essential.service.payment_processing", "CONTRACT", cast.PAYMENT_PROCESSOR,
                   safeguard="EU-US Data Privacy Framework", agreement="DPA-PAYSTREAM-2024",
                   retention_days=_pick(s.rng, (180, 365, None)))


def _to_shipper(s):
    return _shared(s, cast.FULFILMENT, [s.subject()], "fulfilment",
                   ("user.name", "user.contact.address", "user.contact.phone_number"),
                   "essential.service.delivery", "CONTRACT", cast.SHIPPER,
                   agreement="DPA-SHIPFAST-2023", retention_days=90, correlation_id=s.ticket("order"))


def marketing_share(s, purpose: str, subject: str, consent_ref: str | None) -> dict:
    """Send one customer to the advertiser or the affiliate, relying on ``consent_ref``."""
    recipient = MARKETING_RECIPIENTS[purpose]
    event = _shared(s, cast.MARKETING_SYNC, [subject], "marketing-sync", _MARKETING_CATEGORIES[purpose],
                   purpose, "CONSENT", recipient,
                   safeguard="UK adequacy decision" if recipient["country"] == "GB" else None,
                   agreement="IGA-2022-NW" if recipient is cast.AFFILIATE else "DSA-ADREACH-2025",
                   consent_ref=consent_ref, retention_days=365,
                   correlation_id=f"audience-sync-{s.now:%Y%m%d}")
    if not s.consents.shareable(subject, purpose):  # a stale audience list: the oracle knows
        s.truth.broken("consent.marketing", event, [subject])
    return event


def _to_marketing(s):
    purpose = _pick(s.rng, ("marketing.advertising", "marketing.communications.email"))
    found = s.consents.pick(s.rng, purpose)
    if found is None:
        return _to_payments(s)
    return marketing_share(s, purpose, found[0], found[1])


def _to_credit_bureau(s):
    return _shared(s, cast.PAYMENTS, [s.subject()], "payments-gateway",
                   ("user.name", "user.contact.address", "user.financial.billing_history"),
                   "essential.fraud_detection", "LEGITIMATE_INTERESTS", cast.CREDIT_BUREAU,
                   agreement="CSA-CREDITCHECK-2021", retention_days=730,
                   justification={"reason_code": "credit_check", "ticket": None, "note": "new contract"})


def _to_auditor(s):
    """Sample files handed to the external auditor; half are logged by hand afterwards."""
    rng = s.rng
    manual = rng.random() < 0.5
    when = max(s.start, s.now - timedelta(days=rng.randint(1, 7))) if manual else None
    return _shared(s, _pick(rng, cast.PRIVACY_OFFICERS), s.sample(5, 50), "privacy-desk",
                   ("user.financial.billing_history", "user.account.identifiers"),
                   "essential.legal_obligation", "LEGAL_OBLIGATION", cast.AUDIT_FIRM,
                   agreement="ENG-KELLER-2026", retention_days=3650,
                   justification={"reason_code": "statutory_audit", "ticket": s.ticket("AUD"), "note": None},
                   occurred_at=when, recorded_by=_pick(rng, cast.RECORDS_CLERKS)[0] if manual else None,
                   attributes={"entry": "manual"} if manual else None)


_SHARES = ((_to_payments, 40), (_to_shipper, 30), (_to_marketing, 22), (_to_credit_bureau, 5),
           (_to_auditor, 3))


# -- consents -----------------------------------------------------------------
_CONSENT_PURPOSES = (("marketing.communications.email", 0.45), ("marketing.advertising", 0.35),
                     ("marketing.advertising.profiling", 0.1), ("functional.service.improve", 0.1))
_CONSENT_CHANNEL = {"marketing.communications.email": "EMAIL", "marketing.advertising": "ONLINE",
                    "marketing.advertising.profiling": "ANY", "functional.service.improve": "ONLINE"}


def consent(s):
    rng = s.rng
    subject = s.subject()
    purpose = _CONSENT_PURPOSES[bisect(_CONSENT_CUMULATIVE, rng.random() * _CONSENT_CUMULATIVE[-1])][0]
    held = s.consents.grants.get((subject, purpose))
    granted = rng.random() < (0.3 if held else 0.75)
    by_phone = rng.random() < 0.15
    actor = _pick(rng, cast.SUPPORT_AGENTS) if by_phone else (subject, "SUBJECT", "customer", None)
    if granted:
        via = "call_center" if by_phone else _pick(rng, ("signup_form", "preference_center", "checkout"))
    else:
        via = "call_center" if by_phone else _pick(rng, ("unsubscribe_link", "preference_center"))
    scope = "PARTNERS" if rng.random() < 0.7 else "FIRST_PARTY"
    event = s.event("ConsentChanged", actor, [subject], "consent-service")
    event.update(purpose=purpose, granted=granted,
                 channel=_CONSENT_CHANNEL[purpose], scope=scope,
                 notice_version=_pick(rng, cast.NOTICE_VERSIONS), captured_via=via)
    s.truth.notice_version[subject] = event["notice_version"]
    if granted:
        s.consents.grant(subject, purpose, event["event_id"], shareable=scope == "PARTNERS")
    elif held:
        withdrawn = s.consents.withdraw(subject, purpose)
        s.opt_outs += 1
        # Some teams keep syncing audiences from a stale list: the share still cites
        # the withdrawn consent. The first few opt-outs always lead to one.
        if purpose in MARKETING_RECIPIENTS and (s.opt_outs <= 3 or rng.random() < 0.15):
            s.later(s.after(s.now, 0.5, 6),
                    lambda now: marketing_share(s, purpose, subject, withdrawn))
    return event


_CONSENT_CUMULATIVE = list(accumulate(weight for _, weight in _CONSENT_PURPOSES))


# -- dispatch -----------------------------------------------------------------
def _chooser(table):
    makers = [maker for maker, _ in table]
    cumulative = list(accumulate(weight for _, weight in table))
    total = cumulative[-1]

    def choose(s):
        return makers[bisect(cumulative, s.rng.random() * total)](s)
    return choose


access = _chooser(_ACCESSES)
share = _chooser(_SHARES)
