"""The shared vocabulary: fideslang's data categories, data uses and data subjects, plus ours.

Start with :func:`default_vocabulary`. It holds

* the fideslang 3.1.4 default taxonomy, vendored unchanged in
  ``ledger/model/vocabulary_data/`` (see its ``SOURCE.md`` for the licence and why
  it is vendored rather than installed);
* :data:`EXTENSIONS`: keys this project needs that fideslang lacks
  (communications content, call records, payment cards, ...), each under the
  nearest fideslang parent;
* :data:`ALIASES`: the keys the project emitted before adopting fideslang
  (``essential.service.support``, ``legal.obligation``, ...) mapped to the
  fideslang or extension key that means the same, so old ledgers still label
  and match correctly.

A policy file may add company keys under an existing parent with
:meth:`Vocabulary.extended`. Matching is hierarchical: a rule on
``user.contact`` covers ``user.contact.email`` (:meth:`Vocabulary.covers`);
an unknown key is covered by its known dotted prefixes.

    >>> v = default_vocabulary()
    >>> v.canonical("purpose", "essential.service.support")
    'essential.service.operations.support'
    >>> v.covers("category", "user.contact", "user.contact.phone")   # an alias of user.contact.phone_number
    True
    >>> v.label("category", "user.financial.payment_card")
    'Payment card details'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

FIDESLANG_VERSION = "3.1.4"
EXTENSIONS_VERSION = "1"
#: Named in every output that shows labels, so a reader knows which vocabulary spoke.
VOCABULARY_VERSION = f"fideslang {FIDESLANG_VERSION} + ledger extensions {EXTENSIONS_VERSION}"

KINDS = ("category", "purpose", "subject")
_DATA_FILE = Path(__file__).with_name("vocabulary_data") / f"fideslang-{FIDESLANG_VERSION}.json"
_SECTIONS = {"category": "data_categories", "purpose": "data_uses", "subject": "data_subjects"}


@dataclass(frozen=True)
class Term:
    """One key of the vocabulary."""

    key: str
    label: str
    parent: str | None
    description: str | None = None
    origin: str = "fideslang"  # fideslang | ledger (EXTENSIONS) | policy (a company's own)


#: (kind, key, label, description) added by this project; the parent is the key minus its last segment.
EXTENSIONS: tuple[tuple[str, str, str, str], ...] = (
    ("category", "user.account.identifiers", "Account identifiers (customer number, username)",
     "Identifiers of the customer's account; fideslang splits these into user.account.username "
     "and user.unique_id, which the services do not distinguish."),
    ("category", "user.financial.payment_card", "Payment card details",
     "Credit, debit and prepaid card data; fideslang's user.financial.credit_card is narrower."),
    ("category", "user.financial.billing_history", "Invoices and payment history",
     "Invoices, payments and balances of the account."),
    ("category", "user.content.communications", "Content of communications (messages, call recordings)",
     "What was said or written in calls, texts and messages carried for the customer."),
    ("category", "user.behavior.call_records", "Call detail records (who called whom, when, how long)",
     "Traffic data of calls and messages, without their content."),
    ("category", "user.content.support_tickets", "Customer-support tickets and notes",
     "Tickets the customer opened and the notes staff added to them."),
    ("purpose", "essential.service.delivery", "Delivering the contracted service and goods",
     "Providing the contracted service and shipping what the customer ordered."),
    ("purpose", "essential.service.account_management", "Account management",
     "Keeping the customer's account and contact details up to date."),
    ("purpose", "essential.legal_claims", "Establishing or defending legal claims", None),
    ("purpose", "functional.research_and_development", "Research and development", None),
    ("purpose", "marketing.communications.mail", "Marketing by postal mail", None),
    ("purpose", "marketing.communications.phone", "Marketing by phone calls", None),
)

#: Keys emitted before the fideslang adoption -> the key that means the same now.
ALIASES: dict[str, dict[str, str]] = {
    "category": {
        "user.contact.phone": "user.contact.phone_number",
        "user.account.credentials": "user.authorization.credentials",
        "user.communications.content": "user.content.communications",
        "user.usage.call_records": "user.behavior.call_records",
        "user.usage.browsing": "user.behavior.browsing_history",
        "user.device.identifiers": "user.device.device_id",
        "user.location.approximate": "user.location.imprecise",
        "user.health": "user.health_and_medical",
        "user.support.tickets": "user.content.support_tickets",
    },
    "purpose": {
        "essential.service.support": "essential.service.operations.support",
        "essential.billing": "essential.service.payment_processing",
        "essential.account.management": "essential.service.account_management",
        "security.fraud_prevention": "essential.fraud_detection",
        "security.incident_response": "essential.service.security",
        "marketing.email": "marketing.communications.email",
        "marketing.profiling": "marketing.advertising.profiling",
        "analytics.product": "functional.service.improve",
        "legal.obligation": "essential.legal_obligation",
        "legal.claims": "essential.legal_claims",
        "research.development": "functional.research_and_development",
    },
    "subject": {},
}


class VocabularyError(ValueError):
    """A key cannot be added to the vocabulary (the caller names the line)."""


def parent_of(key: str) -> str | None:
    head, dot, _ = key.rpartition(".")
    return head if dot else None


class Vocabulary:
    """Terms by kind, aliases, and hierarchical matching. Immutable; extend with :meth:`extended`."""

    def __init__(self, terms: dict[str, dict[str, Term]], aliases: dict[str, dict[str, str]], version: str):
        self._terms = terms
        self._aliases = aliases
        self.version = version
        self._chains: dict[tuple[str, str], tuple[str, ...]] = {}
        self._rule_sets: dict[tuple[str, tuple], frozenset[str]] = {}

    # -- lookup -------------------------------------------------------------
    def terms(self, kind: str) -> dict[str, Term]:
        return self._terms[kind]

    def canonical(self, kind: str, key: str) -> str:
        """The key an alias stands for; any other key unchanged."""
        return self._aliases[kind].get(key, key)

    def known(self, kind: str, key: str) -> bool:
        """True for a key of the vocabulary or an alias of one."""
        return self.canonical(kind, key) in self._terms[kind]

    def alias_of(self, kind: str, key: str) -> str | None:
        return self._aliases[kind].get(key)

    def label(self, kind: str, key: str) -> str:
        """The label of a key (aliases resolved); an unknown key is its own label."""
        term = self._terms[kind].get(self.canonical(kind, key))
        return term.label if term else key

    def ancestry(self, kind: str, key: str) -> tuple[str, ...]:
        """The canonical key and every ancestor, nearest first.

        A known key climbs its parents; an unknown key contributes itself and
        its dotted prefixes, so ``user.contact.email.work`` still falls under
        ``user.contact``.
        """
        cached = self._chains.get((kind, key))
        if cached is not None:
            return cached
        terms = self._terms[kind]
        chain: list[str] = []
        current: str | None = self.canonical(kind, key)
        while current is not None:
            chain.append(current)
            term = terms.get(current)
            current = term.parent if term is not None else parent_of(current)
        result = tuple(chain)
        self._chains[(kind, key)] = result
        return result

    def covers(self, kind: str, rule_key: str, key: str) -> bool:
        """True when ``key`` is ``rule_key`` or lies beneath it (aliases resolved on both sides)."""
        return self.canonical(kind, rule_key) in self.ancestry(kind, key)

    def covered_by_any(self, kind: str, rule_keys: Iterable[str], key: str) -> bool:
        """True when ``key`` lies under any of ``rule_keys`` (a tuple is cached: the evaluator's hot path)."""
        if isinstance(rule_keys, tuple):
            canon = self._rule_sets.get((kind, rule_keys))
            if canon is None:
                canon = self._rule_sets[(kind, rule_keys)] = frozenset(self.canonical(kind, r) for r in rule_keys)
        else:
            canon = frozenset(self.canonical(kind, r) for r in rule_keys)
        return not canon.isdisjoint(self.ancestry(kind, key))

    # -- growth -------------------------------------------------------------
    def extended(self, additions: Iterable[tuple[str, str, str, str | None]], origin: str = "policy") -> "Vocabulary":
        """A new vocabulary with ``(kind, key, label, description)`` added under existing parents.

        Raises :class:`VocabularyError` for a key that exists (or is an
        alias), has no parent in the vocabulary, or a kind that is unknown.
        """
        terms = {kind: dict(table) for kind, table in self._terms.items()}
        for kind, key, label, description in additions:
            if kind not in terms:
                raise VocabularyError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
            if key in terms[kind] or key in self._aliases[kind]:
                raise VocabularyError(f"{kind} {key!r} already exists in the vocabulary")
            parent = parent_of(key)
            if parent is None or parent not in terms[kind]:
                raise VocabularyError(f"{kind} {key!r} needs an existing parent; "
                                      f"{parent!r} is not in the vocabulary")
            terms[kind][key] = Term(key, label, parent, description, origin)
        suffix = "" if origin != "policy" else " + policy keys"
        return Vocabulary(terms, self._aliases, self.version + suffix)


def _fideslang_terms() -> dict[str, dict[str, Term]]:
    data = json.loads(_DATA_FILE.read_text(encoding="utf-8"))
    terms: dict[str, dict[str, Term]] = {}
    for kind, section in _SECTIONS.items():
        terms[kind] = {t["key"]: Term(t["key"], t["name"], t["parent"], t["description"])
                       for t in data[section]}
    return terms


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    """fideslang + :data:`EXTENSIONS` + :data:`ALIASES`; built once per process."""
    base = Vocabulary(_fideslang_terms(), ALIASES, f"fideslang {FIDESLANG_VERSION}")
    full = base.extended(((k, key, label, d) for k, key, label, d in EXTENSIONS), origin="ledger")
    full.version = VOCABULARY_VERSION
    return full
