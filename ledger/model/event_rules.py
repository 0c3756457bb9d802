"""The rules Avro cannot express, and the failure every check raises.

The validator (validator.py) compiles each schema into type checks and calls
these where a field or record has one: ``FIELD_RULES`` is keyed
``"<record short name>.<field>"`` ("Event" is any top-level event record),
``RECORD_RULES`` by record short name. A rule returns the value unchanged
or raises :class:`Bad` (no rule rewrites a value: evidence holds what was sent).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from .taxonomy import CODE_PATTERN

MAX_SUBJECTS = 1000
DELAYED = ("DELAYED_BY_ORDER", "DELAYED_FRAUD_INVESTIGATION")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COUNTRY = re.compile(r"[A-Z]{2}")
# Identifiers are keys of the ledger's indexes and columns of handed-over reports, matched
# exactly by queries: a control character (NUL above all, which SQLite text functions end strings
# at; C1 such as U+009B CSI, U+0085 NEL) or an invisible format character (bidi overrides and
# isolates, zero-width space and joiners, word joiner, BOM: Unicode category Cf) would make
# `emp\u200b-1007` look like `emp-1007` and escape `accesses --actor emp-1007`. Unicode categories
# Cc and Cf are refused; ASCII text needs only the C0/DEL check (ASCII has no Cf).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INVISIBLE = ("Cc", "Cf")


class Bad(Exception):
    """A check failed; ``parts`` collects the path on the way out (innermost first)."""

    def __init__(self, reason: str, part: str | None = None):
        self.reason = reason
        self.parts = [] if part is None else [part]


def _subject_ids(ids: list) -> list:
    if not 1 <= len(ids) <= MAX_SUBJECTS:
        raise Bad(f"needs 1 to {MAX_SUBJECTS} subject ids, got {len(ids)}; split a bigger bulk "
                   "operation into several events sharing a correlation_id")
    if len(set(ids)) != len(ids):
        seen: set = set()
        for i, s in enumerate(ids):
            if s in seen:
                raise Bad(f"duplicate subject id {s!r}", f"[{i}]")
            seen.add(s)
    if not "".join(ids).isprintable():  # printable text has no Cc or Cf character (nor a surrogate)
        for i, s in enumerate(ids):
            _identifier(s, f"[{i}]")
    return ids


def _identifier(text: str, part: str | None = None) -> str:
    if text.isprintable():  # the usual case: no Cc or Cf character, nothing to look for
        return text
    if text.isascii():
        found = _CONTROL.search(text)
        if found is None:
            return text
        bad = found.group()
    else:
        bad = next((ch for ch in text if unicodedata.category(ch) in _INVISIBLE), None)
        if bad is None:
            return text
    kind = "control" if unicodedata.category(bad) == "Cc" else "invisible formatting"
    name = unicodedata.name(bad, "")
    raise Bad(f"{text!r} contains U+{ord(bad):04X}{' ' + name if name else ''}, a {kind} character; "
              "identifiers are visible text (Unicode categories Cc and Cf are refused)", part)


# Codes that matched CODE_PATTERN: events repeat a few hundred codes, and a set
# lookup is 8x cheaper than the regex. Bounded, so random codes cannot grow it.
_KNOWN_CODES: set[str] = set()
_MAX_KNOWN_CODES = 10_000


def _is_code(code: str) -> bool:
    if code in _KNOWN_CODES:
        return True
    if not CODE_PATTERN.fullmatch(code):
        return False
    if len(_KNOWN_CODES) < _MAX_KNOWN_CODES:
        _KNOWN_CODES.add(code)
    return True


def _codes(what: str):
    def check(codes: list) -> list:
        if not codes:
            raise Bad(f"needs at least one {what}")
        if not _KNOWN_CODES.issuperset(codes):
            for i, c in enumerate(codes):
                if not _is_code(c):
                    raise Bad(f"{c!r} is not a dotted lowercase code like user.contact.email", f"[{i}]")
        if len(set(codes)) != len(codes):
            raise Bad(f"duplicate {what}")
        return codes
    return check


def _purpose(code: str) -> str:
    if not _is_code(code):
        raise Bad(f"{code!r} is not a dotted lowercase code like essential.billing")
    return code


# Evidence holds what was sent: a country code or digest in another case is refused, not rewritten.
def _country(code: str) -> str:
    if not _COUNTRY.fullmatch(code):
        raise Bad(f"{code!r} is not an upper-case ISO 3166-1 alpha-2 country code such as DE")
    return code


def _sha256(digest: str) -> str:
    if not _SHA256.fullmatch(digest):
        raise Bad(f"expected 64 lowercase hexadecimal digits, got {digest[:80]!r}")
    return digest


def _non_negative(n: int) -> int:
    if n < 0:
        raise Bad(f"must not be negative, got {n}")
    return n


def _notification(rec: dict) -> None:
    """DELAYED_BY_ORDER needs the order; a delay end only makes sense with a delay."""
    status = rec["status"]
    if status == "DELAYED_BY_ORDER" and rec["order_ref"] is None:
        raise Bad("is required when status is DELAYED_BY_ORDER", "order_ref")
    if rec["delay_until"] is not None and status not in DELAYED:
        raise Bad(f"only allowed with status {' or '.join(DELAYED)}, not {status}", "delay_until")


FIELD_RULES = {
    "Event.subject_ids": _subject_ids,
    "Event.data_categories": _codes("data category"),
    "Event.requested_categories": _codes("requested category"),
    "Event.purpose": _purpose,
    "Event.source_service": _identifier,
    "Event.correlation_id": _identifier,
    "Event.trace_id": _identifier,
    "Event.recorded_by": _identifier,
    "Event.reviewed_by": _identifier,
    "Actor.id": _identifier,
    "Recipient.id": _identifier,
    "LegalRequest.id": _identifier,
    "Event.record_count": _non_negative,
    "Recipient.country": _country,
    "LegalRequest.document_sha256": _sha256,
    "Event.policy_sha256": _sha256,
    "Event.policy_name": _identifier,
}
def _policy_published(rec: dict) -> None:
    # The digest is what findings cite: it must be the digest of the text carried, or the
    # recorded evidence would name a policy nobody can reproduce.
    digest = hashlib.sha256(rec["policy_toml"].encode("utf-8")).hexdigest()
    if rec["policy_sha256"] != digest:
        raise Bad(f"is not the SHA-256 of policy_toml (that is {digest})", "policy_sha256")


RECORD_RULES = {"Notification": _notification, "NotificationStatusChanged": _notification,
                "PolicyPublished": _policy_published}

