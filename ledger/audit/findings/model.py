"""What the evaluator says: findings, retractions, their deterministic ids, and the recorded order.

A :class:`Finding` is one event that breaks one rule (``kind="broken"``) or
that a rule could not judge (``kind="not_judgeable"``: an agreement or role
the policy does not name). A :class:`Retraction` withdraws an earlier finding
when later-recorded evidence clears it (a consent recorded late but dated
before the share).

``finding_id`` is the first 32 hex digits of SHA-256 over the JSON array
``[rule, event_ids, subjects, policy_sha256]`` (``event_ids`` is the judged
event first, then the evidence), so the same finding has the same id in every
run, replay and partition layout that feeds the same evidence.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Finding:
    finding_id: str
    rule: str
    kind: str  # broken | not_judgeable
    severity: str
    sentence: str
    subjects: tuple[str, ...]
    event_ids: tuple[str, ...]  # the judged event first, then its evidence
    policy_sha256: str
    policy_version: str

    def as_json(self) -> dict:
        data = asdict(self)
        data["subjects"], data["event_ids"] = list(self.subjects), list(self.event_ids)
        return data


@dataclass(frozen=True)
class Retraction:
    finding_id: str
    rule: str
    sentence: str
    event_ids: tuple[str, ...]  # the evidence that cleared the finding
    policy_sha256: str


def finding_id(rule: str, event_ids, subjects, policy_sha256: str) -> str:
    blob = json.dumps([rule, list(event_ids), list(subjects), policy_sha256], separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def recorded_order_key(event: dict) -> tuple:
    """The order the evaluator must see events in: recorded time, then (topic, partition, offset).

    Events read from a ledger carry ``recorded_at`` (the Kafka timestamp) and
    their ``topic``, ``partition``, ``offset``; this key makes the order, and
    so the findings and retractions, the same for every reader.
    """
    return (event["recorded_at"], event.get("topic", ""), event.get("partition", 0), event.get("offset", 0))
