"""Events that break Northwind's policy (examples/policy.toml) on purpose, each recorded in the oracle.

:func:`inject` takes :data:`RATE` of the fresh slots. The first injections
run through :data:`KINDS` in order, so every rule kind occurs in any
workload of a few thousand events; later ones are drawn at random. Each
maker emits an event that breaks exactly one rule and records the finding
it must produce in ``stream.truth`` (oracle.Truth); the oracle adds the
findings that depend on the instant of judgement (break-glass reviews,
overdue notices). Everything else the simulator emits keeps the policy.
"""

from __future__ import annotations

from datetime import timedelta

from . import background, cast, legal

#: Share of fresh slots that carry a violation.
RATE = 0.012

INTERN = ("emp-9001", "EMPLOYEE", "intern", None)
DATA_BROKER = {"id": "rcpt-databroker", "name": "Data Harvest LLC", "kind": "CONTROLLER",
               "country": "US", "address": "1 Main St, Wilmington, DE 19801, US"}


def _pick(rng, options):
    return options[int(rng.random() * len(options))]


def support_sees_payment_card(s):
    """A support agent browses payment cards for a support ticket (need to know)."""
    e = background._accessed(s, _pick(s.rng, cast.SUPPORT_AGENTS), [s.subject()], "support-console",
                             ("user.financial.payment_card", "user.name"), "essential.service.operations.support",
                             "CONTRACT", background._why("customer_request", s.ticket("SUP")),
                             "VIEW", "GRANTED", "crm_console", 1)
    s.truth.broken("access.need_to_know", e)
    return e


def export_without_ticket(s):
    """A data engineer exports customers without a justification (access.justification)."""
    subjects = s.sample(5, 40)
    e = background._accessed(s, _pick(s.rng, cast.DATA_ENGINEERS), subjects, "data-warehouse",
                             _pick(s.rng, cast.EXPORT_READS), "analytics.reporting", "LEGITIMATE_INTERESTS",
                             None, "EXPORT", "GRANTED", "sql", len(subjects))
    s.truth.broken("access.justification", e)
    return e


def break_glass_never_reviewed(s):
    """A break-glass session nobody reviews (judged once its review window has passed)."""
    return background.break_glass(s, reviewed=False)


def unknown_role(s):
    """An intern the policy does not name (not judgeable, never silently passed)."""
    e = background._accessed(s, INTERN, [s.subject()], "support-console", ("user.name",),
                             "essential.service.operations.support", "CONTRACT",
                             background._why("customer_request", s.ticket("SUP")), "VIEW", "GRANTED",
                             "crm_console", 1)
    s.truth.not_judgeable("access.need_to_know", e)
    return e


def partner_share_first_party_consent(s):
    """A customer consents for first-party email marketing only; the affiliate gets them anyway."""
    subject = s.subject()
    purpose = "marketing.communications.email"
    consent = s.event("ConsentChanged", (subject, "SUBJECT", "customer", None), [subject], "consent-service")
    consent.update(purpose=purpose, granted=True, channel="EMAIL", scope="FIRST_PARTY",
                   notice_version=_pick(s.rng, cast.NOTICE_VERSIONS), captured_via="preference_center")
    s.truth.notice_version[subject] = consent["notice_version"]
    s.consents.grant(subject, purpose, consent["event_id"], shareable=False)
    # marketing_share records the finding if the consent still does not cover partners when it is sent.
    s.later(s.after(s.now, 0.1, 2), lambda now: background.marketing_share(s, purpose, subject, consent["event_id"]))
    return consent


def shipper_gets_payment_card(s):
    """The shipper receives payment cards its agreement does not cover (recipient.categories)."""
    e = background._shared(s, cast.FULFILMENT, [s.subject()], "fulfilment",
                           ("user.name", "user.contact.address", "user.financial.payment_card"),
                           "essential.service.delivery", "CONTRACT", cast.SHIPPER,
                           agreement="DPA-SHIPFAST-2023", retention_days=30)
    s.truth.broken("recipient.categories", e)
    return e


def credit_bureau_for_analytics(s):
    """The credit bureau receives data for a purpose outside its agreement (recipient.purpose)."""
    e = background._shared(s, cast.PAYMENTS, [s.subject()], "payments-gateway",
                           ("user.name", "user.contact.address"), "analytics.reporting", "LEGITIMATE_INTERESTS",
                           cast.CREDIT_BUREAU, agreement="CSA-CREDITCHECK-2021", retention_days=30)
    s.truth.broken("recipient.purpose", e)
    return e


def shipper_keeps_too_long(s):
    """The shipper keeps addresses 200 days where the agreement allows 90 (recipient.retention)."""
    e = background._shared(s, cast.FULFILMENT, [s.subject()], "fulfilment",
                           ("user.name", "user.contact.address"), "essential.service.delivery", "CONTRACT",
                           cast.SHIPPER, agreement="DPA-SHIPFAST-2023", retention_days=200)
    s.truth.broken("recipient.retention", e)
    return e


def transfer_without_safeguard(s):
    """Payment data to the US processor without naming a safeguard (recipient.transfer)."""
    e = background._shared(s, cast.PAYMENTS, [s.subject()], "payments-gateway",
                           ("user.financial.payment_card", "user.name"), "essential.service.payment_processing",
                           "CONTRACT", cast.PAYMENT_PROCESSOR, agreement="DPA-PAYSTREAM-2024", retention_days=180)
    s.truth.broken("recipient.transfer", e)
    return e


def unknown_agreement(s):
    """A share under an agreement the policy does not know (not judgeable)."""
    e = background._shared(s, cast.PAYMENTS, s.sample(2, 20), "payments-gateway",
                           ("user.name", "user.contact.address"), "analytics.reporting", "LEGITIMATE_INTERESTS",
                           DATA_BROKER, safeguard="Standard Contractual Clauses", agreement="DSA-HARVEST-2026",
                           retention_days=30)
    s.truth.not_judgeable("recipient.agreement", e)
    return e


def content_on_subpoena(s):
    """Communications content released on a subpoena (legal.request_kind)."""
    d = legal._disclosure(s, ("SUBPOENA",), "PENDING",
                          categories=("user.content.communications", "user.behavior.call_records"))
    legal._notify_all(s, d, 2, 15)
    s.truth.broken("legal.request_kind", d)
    return d


def self_reviewed_disclosure(s):
    """A counsel reviews their own disclosure (legal.review)."""
    d = legal._disclosure(s, ("COURT_ORDER",), "PENDING", self_reviewed=True)
    legal._notify_all(s, d, 2, 15)
    s.truth.broken("legal.review", d)
    return d


def notice_status_by_support(s):
    """A support agent restates a notice status in the support console (legal.authority)."""
    d = legal._disclosure(s, ("COURT_ORDER", "LAW_ENFORCEMENT_REQUEST"), "PENDING")
    legal._notify_all(s, d, 3, 15)
    about, case, named = d["event_id"], d["correlation_id"], list(d["subject_ids"])

    def build(now):
        e = s.event("NotificationStatusChanged", _pick(s.rng, cast.SUPPORT_AGENTS), list(named),
                    "support-console", correlation_id=case)
        e.update(disclosure_event_id=about, status="PENDING", delay_until=None, order_ref=None,
                 reason="customer asked on the phone")
        s.truth.broken("legal.authority", e)
        return e
    s.later(s.after(s.now, 0.05, 1), build)
    return d


def gag_too_long(s):
    """A gag order of 120 days where the policy allows 90 before renewal (legal.delay)."""
    d = legal._disclosure(s, ("COURT_ORDER",), legal.GAG, delay_until=s.now + timedelta(days=120),
                          order_ref=legal._order_ref(s, "GAG"), reason="non-disclosure order")
    s.truth.broken("legal.delay", d)
    return d


def research_outside_notice(s):
    """Research on a customer whose accepted notice predates research uses (notice.purpose)."""
    older = cast.NOTICE_VERSIONS[0]
    holders = [subject for subject, version in s.truth.notice_version.items() if version == older]
    subject = _pick(s.rng, holders) if holders else s.subject()
    e = background._accessed(s, _pick(s.rng, cast.DATA_ENGINEERS), [subject], "data-warehouse",
                             ("user.behavior.purchase_history",), cast.NOTICE_ONLY_IN_NEWER,
                             "LEGITIMATE_INTERESTS", background._why("research", s.ticket("RND")),
                             "QUERY", "GRANTED", "sql", 1)
    if s.truth.notice_version.get(subject) == older:
        s.truth.broken("notice.purpose", e)
    return e


#: Every kind, in the order the first injections run through them.
KINDS = (
    support_sees_payment_card, export_without_ticket, break_glass_never_reviewed, unknown_role,
    partner_share_first_party_consent, shipper_gets_payment_card, credit_bureau_for_analytics,
    shipper_keeps_too_long, transfer_without_safeguard, unknown_agreement, content_on_subpoena,
    self_reviewed_disclosure, notice_status_by_support, gag_too_long, research_outside_notice,
)


def inject(s):
    index = s.counters.get("violation", 0)
    s.counters["violation"] = index + 1
    maker = KINDS[index] if index < len(KINDS) else KINDS[int(s.rng.random() * len(KINDS))]
    return maker(s)
