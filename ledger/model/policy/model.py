"""The policy as plain frozen data, after :mod:`ledger.policy.load` has checked it.

Every category and purpose key is stored *canonical* (aliases resolved), so
the evaluator compares keys of one spelling. Rule ids (``access.need_to_know``,
``consent.marketing``, ``legal.request_kind``...) are listed in :data:`RULES`
with the severity their findings carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.model.vocabulary import Vocabulary

#: rule id -> (severity, what it checks). ``consent.<name>`` ids come from the policy's consent tables.
RULES: dict[str, tuple[str, str]] = {
    "access.need_to_know": ("high", "an actor's role may access these categories for this purpose"),
    "access.justification": ("medium", "access types that need a justification with a ticket have one"),
    "access.break_glass_review": ("high", "a BREAK_GLASS access is reviewed within the stated hours"),
    "consent": ("high", "a use for a purpose needing consent has the customer's consent (channel, scope)"),
    "recipient.agreement": ("high", "a share is covered by an agreement with its recipient"),
    "recipient.purpose": ("high", "a share's purpose is one its agreement allows"),
    "recipient.categories": ("high", "a share's categories are ones its agreement allows"),
    "recipient.retention": ("medium", "a recipient's retention_until is within the agreement's limit"),
    "recipient.transfer": ("high", "a transfer to a third country names a transfer_safeguard"),
    "legal.request_kind": ("high", "a legal disclosure releases only categories its request kind allows"),
    "legal.review": ("high", "a legal disclosure was reviewed by someone other than its requester"),
    "legal.notice": ("high", "customers are notified by the deadline, or once a delay ends"),
    "legal.delay": ("medium", "a delay does not run longer than the policy's longest delay"),
    "legal.authority": ("high", "only the policy's authorities record disclosures, status changes and notices"),
    "notice.purpose": ("high", "a use's purpose is covered by the notice version the customer accepted"),
}


def severity_of(rule_id: str) -> str:
    return RULES.get(rule_id, RULES.get(rule_id.partition(".")[0], ("high", "")))[0]


@dataclass(frozen=True)
class Grant:
    categories: tuple[str, ...]
    purposes: tuple[str, ...]


@dataclass(frozen=True)
class Role:
    name: str
    actor_types: frozenset[str]
    allow: tuple[Grant, ...]
    deny: tuple[str, ...] = ()
    #: A SUBJECT role may touch only the customer who is the actor (self-service).
    own_data_only: bool = False


@dataclass(frozen=True)
class BreakGlass:
    review_within_hours: float
    reviewer_roles: frozenset[str]
    review_reason_codes: frozenset[str]


@dataclass(frozen=True)
class ConsentRule:
    rule_id: str  # consent.<name>
    purposes: tuple[str, ...]
    channels: dict[str, str]  # purpose (canonical) -> MAIL PHONE EMAIL ONLINE ANY; unmapped = ANY
    partner_recipient_kinds: frozenset[str]


@dataclass(frozen=True)
class Agreement:
    ref: str
    recipients: frozenset[str]  # empty: any recipient citing the ref
    purposes: tuple[str, ...]
    categories: tuple[str, ...]
    max_retention_days: float | None


@dataclass(frozen=True)
class Legal:
    release: dict[str, tuple[str, ...]]  # request kind -> categories it may release
    notice_days: int
    max_delay_days: float | None
    authority_services: frozenset[str]
    authority_roles: frozenset[str]
    authority_actors: frozenset[str]


@dataclass(frozen=True)
class Policy:
    name: str
    version: str
    sha256: str
    vocabulary: Vocabulary = field(repr=False, compare=False)
    justification_required: frozenset[str] = frozenset()
    roles: dict[str, Role] = field(default_factory=dict)
    break_glass: BreakGlass | None = None
    consent: tuple[ConsentRule, ...] = ()
    agreements: dict[str, Agreement] = field(default_factory=dict)
    home_countries: frozenset[str] = frozenset()
    legal: Legal | None = None
    notices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # notice version -> purposes
    #: Company keys the file added: (kind, key, label).
    added_keys: tuple[tuple[str, str, str], ...] = ()

    def agreement_for(self, agreement_ref: str | None, recipient_id: str) -> Agreement | None:
        """The agreement a share cites, else the one naming its recipient, else None."""
        if agreement_ref is not None and agreement_ref in self.agreements:
            return self.agreements[agreement_ref]
        for agreement in self.agreements.values():
            if recipient_id in agreement.recipients:
                return agreement
        return None
