"""Human-readable labels for data-category and purpose codes.

Events carry dotted lowercase codes (``user.contact.email``,
``essential.billing``). Validation in :mod:`ledger.events` checks only their
*shape* (see :data:`CODE_PATTERN`), not membership in the tables below, so a
service can start using a new code without a release of this project; reports
then show the code itself where a label is expected. Add a label here when a
code becomes common. Codes not in these tables (the fideslang keys the
simulator emits since the vocabulary was adopted) take their label from
:mod:`ledger.vocabulary`.
"""

from __future__ import annotations

import re

#: Lowercase dotted identifier with at least two segments, e.g. ``user.contact.email``.
CODE_PATTERN = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")

DATA_CATEGORIES: dict[str, str] = {
    "user.name": "Name",
    "user.contact.email": "Email address",
    "user.contact.phone": "Phone number",
    "user.contact.address": "Postal address",
    "user.account.identifiers": "Account identifiers (customer number, username)",
    "user.account.credentials": "Account credentials (password hashes, security questions)",
    "user.government_id": "Government identifier (passport, national ID, SSN)",
    "user.demographic.date_of_birth": "Date of birth",
    "user.financial.payment_card": "Payment card details",
    "user.financial.bank_account": "Bank account details",
    "user.financial.billing_history": "Invoices and payment history",
    "user.communications.content": "Content of communications (messages, call recordings)",
    "user.usage.call_records": "Call detail records (who called whom, when, how long)",
    "user.usage.browsing": "Browsing history",
    "user.device.identifiers": "Device identifiers (IMEI, IMSI, advertising id)",
    "user.location.precise": "Precise location (GPS, cell tower)",
    "user.location.approximate": "Approximate location (city, region)",
    "user.behavior.purchase_history": "Purchase history",
    "user.health": "Health data",
    "user.biometric": "Biometric data",
    "user.support.tickets": "Customer-support tickets and notes",
}

PURPOSES: dict[str, str] = {
    "essential.service.delivery": "Providing the contracted service",
    "essential.service.support": "Customer support",
    "essential.billing": "Billing and payments",
    "essential.account.management": "Account management",
    "security.fraud_prevention": "Fraud prevention",
    "security.incident_response": "Security incident response",
    "marketing.advertising": "Advertising",
    "marketing.email": "Email marketing",
    "marketing.profiling": "Marketing profiling and personalization",
    "analytics.product": "Product analytics",
    "analytics.reporting": "Business reporting",
    "legal.obligation": "Compliance with a legal obligation",
    "legal.claims": "Establishing or defending legal claims",
    "research.development": "Research and development",
}


def is_code(code: object) -> bool:
    """True when ``code`` has the shape of a category or purpose code."""
    return isinstance(code, str) and CODE_PATTERN.fullmatch(code) is not None


def within(code: str | None, prefix: str) -> bool:
    """``code`` is ``prefix`` or one of its dotted children (``marketing`` covers ``marketing.email``).

    The one rule for a purpose (or category) filter: a query's ``--purpose``
    and the report's accounting rules both ask it.
    """
    return code is not None and (code == prefix or code.startswith(prefix + "."))


def category_label(code: str) -> str:
    """Label of a data category: the table above, else the shared vocabulary (fideslang), else the code."""
    label = DATA_CATEGORIES.get(code)
    return label if label is not None else _vocabulary().label("category", code)


def purpose_label(code: str) -> str:
    """Label of a purpose: the table above, else the shared vocabulary (fideslang), else the code."""
    label = PURPOSES.get(code)
    return label if label is not None else _vocabulary().label("purpose", code)


def _vocabulary():
    # Imported on first use: the vocabulary reads its data file once per process.
    from .vocabulary import default_vocabulary

    return default_vocabulary()
