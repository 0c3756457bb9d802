"""Findings in words, with vocabulary labels: "emp-1012 (support_agent) viewed Payment card details
for Customer support: not allowed for this role"."""

from __future__ import annotations

from ledger.model.vocabulary import Vocabulary

VERBS = {"VIEW": "viewed", "QUERY": "queried", "EXPORT": "exported", "MODIFY": "modified", "DELETE": "deleted"}


def who(actor: dict) -> str:
    role = actor.get("role")
    return f"{actor['id']} ({role})" if role else actor["id"]


def categories(vocabulary: Vocabulary, keys) -> str:
    labels = [vocabulary.label("category", k) for k in keys]
    if len(labels) <= 2:
        return " and ".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]


def purpose(vocabulary: Vocabulary, key: str) -> str:
    return vocabulary.label("purpose", key)


def customers(subjects) -> str:
    subjects = list(subjects)
    if len(subjects) == 1:
        return subjects[0]
    return f"{len(subjects)} customers"


def access(vocabulary: Vocabulary, event: dict, keys, reason: str) -> str:
    verb = VERBS.get(event["access_type"], "accessed")
    return (f"{who(event['actor'])} {verb} {categories(vocabulary, keys)} of {customers(event['subject_ids'])} "
            f"for {purpose(vocabulary, event['purpose'])}: {reason}")


def share(vocabulary: Vocabulary, event: dict, keys, reason: str, subjects=None) -> str:
    return (f"{who(event['actor'])} shared {categories(vocabulary, keys)} of "
            f"{customers(subjects or event['subject_ids'])} with {event['recipient']['name']} for "
            f"{purpose(vocabulary, event['purpose'])}: {reason}")


def disclosure(vocabulary: Vocabulary, event: dict, keys, reason: str, subjects=None) -> str:
    request = event["request"]
    kind = request["kind"].replace("_", " ").lower()
    return (f"{who(event['actor'])} released {categories(vocabulary, keys)} of "
            f"{customers(subjects or event['subject_ids'])} to {event['recipient']['name']} on "
            f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ({request['id']}): {reason}")
