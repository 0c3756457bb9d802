"""A policy as a PolicyPublished event and back: what ``ledger policy publish`` sends, what readers load.

    fields = published_fields(policy, text, actor)  # the event's fields (without type/event_id)
    policy = policy_of(event)                  # the recorded policy, re-checked; PolicyError if refused

The event carries the file's text verbatim and its SHA-256, so every reader
rebuilds the very policy that was in force and every finding can name it.
"""

from __future__ import annotations

from .load import loads
from .model import Policy


def published_fields(policy: Policy, text: str, actor: dict, source_service: str = "ledger-cli") -> dict:
    """The fields of a PolicyPublished event for ``policy``, loaded from ``text`` (the file, verbatim)."""
    return {"source_service": source_service, "actor": actor, "policy_name": policy.name,
            "policy_version": policy.version, "policy_sha256": policy.sha256,
            "vocabulary_version": policy.vocabulary.version, "policy_toml": text}


def policy_of(event: dict) -> Policy:
    """The policy a PolicyPublished event recorded, checked as a file would be."""
    return loads(event["policy_toml"], f"PolicyPublished {event['event_id']}")
