"""Read a policy file (TOML) into a :class:`~ledger.policy.model.Policy`, or refuse it by line.

The file's layout is documented in ``examples/policy.toml``. Everything is
checked before anything is evaluated, and every refusal is a
:class:`~ledger.errors.PolicyError` naming the line and the reason:

* TOML syntax (tomllib's own line and column);
* unknown keys at every level, missing required keys, wrong types;
* categories and purposes not in the vocabulary (fideslang, the project's
  extensions and aliases, plus the keys the file itself adds under
  ``[[vocabulary.categories]]`` / ``[[vocabulary.purposes]]``), enum values
  the event schemas do not have (actor types, access types, request kinds,
  channels, recipient kinds);
* rules that can never match (empty lists, an allow entry whose every
  category the role also denies, a channel mapped for a purpose the consent
  rule does not cover);
* contradictions: a role that both allows and denies the same category.

A malformed policy therefore never reaches the evaluator, so it can never
produce an empty "no findings" answer.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

from ledger.errors import PolicyError
from ledger.model.vocabulary import Vocabulary, VocabularyError, default_vocabulary

from .lines import LineIndex
from .model import Agreement, BreakGlass, ConsentRule, Grant, Legal, Policy, Role

# The enums of the event schemas (schemas/*/v1.avsc); tests pin them against the files.
ACTOR_TYPES = ("EMPLOYEE", "SERVICE", "PARTNER", "AUTHORITY", "SUBJECT", "SYSTEM")
ACCESS_TYPES = ("VIEW", "QUERY", "EXPORT", "MODIFY", "DELETE")
CHANNELS = ("MAIL", "PHONE", "EMAIL", "ONLINE", "ANY")
REQUEST_KINDS = ("SUBPOENA", "COURT_ORDER", "SEARCH_WARRANT", "INTERCEPTION_ORDER", "REGULATOR_REQUEST",
                 "LAW_ENFORCEMENT_REQUEST", "EMERGENCY", "NATIONAL_SECURITY", "OTHER")
RECIPIENT_KINDS = ("PROCESSOR", "CONTROLLER", "AFFILIATE", "ADVERTISER", "PAYMENT_PROCESSOR", "PARTNER",
                   "AUDITOR", "REGULATOR", "ACQUIRER", "OTHER")
DEFAULT_PARTNER_KINDS = ("PARTNER", "AFFILIATE", "ADVERTISER")


class _Reader:
    """Typed access to one TOML table that remembers which keys were read."""

    def __init__(self, owner: "_Loader", table: Any, path: tuple):
        self.owner, self.path = owner, path
        if not isinstance(table, dict):
            owner.fail(path, f"[{self.name}] must be a table")
        self.table = table
        self.seen: set[str] = set()

    @property
    def name(self) -> str:
        return ".".join(str(p) for p in self.path if not isinstance(p, int)) or "top level"

    def fail(self, key: str | None, reason: str):
        self.owner.fail(self.path + ((key,) if key is not None else ()), reason)

    def get(self, key: str, kind: type | tuple, required: bool = False, default=None):
        self.seen.add(key)
        if key not in self.table:
            if required:
                self.fail(None, f"[{self.name}] needs {key!r}")
            return default
        value = self.table[key]
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.fail(key, f"{key} must be a number, not {value!r}")
        if not isinstance(value, kind):
            expected = {str: "a string", int: "a whole number", bool: "true or false", list: "a list",
                        dict: "a table", (int, float): "a number"}.get(kind, str(kind))
            self.fail(key, f"{key} must be {expected}, not {value!r}")
        return value

    def strings(self, key: str, required: bool = False, allowed: tuple[str, ...] | None = None,
                nonempty: bool = True) -> tuple[str, ...]:
        values = self.get(key, list, required, default=None)
        if values is None:
            return ()
        if nonempty and not values:
            self.fail(key, f"{key} is empty, so this rule can never match")
        for value in values:
            if not isinstance(value, str) or not value:
                self.fail(key, f"{key} must list non-empty strings, found {value!r}")
            if allowed is not None and value not in allowed:
                self.fail(key, f"{key}: {value!r} is not one of {', '.join(allowed)}")
        if len(set(values)) != len(values):
            self.fail(key, f"{key} lists a value twice")
        return tuple(values)

    def sub(self, key: str, required: bool = False) -> "_Reader | None":
        self.seen.add(key)
        if key not in self.table:
            if required:
                table = f"{self.name}.{key}" if self.path else key
                self.fail(None, f"{'the file' if not self.path else f'[{self.name}]'} needs a [{table}] table")
            return None
        return _Reader(self.owner, self.table[key], self.path + (key,))

    def done(self) -> None:
        for key in self.table:
            if key not in self.seen:
                expected = ", ".join(sorted(self.seen)) or "nothing"
                self.fail(key, f"unknown key {key!r} in [{self.name}]; expected one of: {expected}")


class _Loader:
    def __init__(self, text: str, source: str | None):
        self.text, self.source = text, source
        self.index = LineIndex(text)
        self.vocabulary: Vocabulary = default_vocabulary()

    def fail(self, path: tuple, reason: str):
        raise PolicyError(reason, self.index.line(path), self.source)

    # -- vocabulary keys ---------------------------------------------------
    def key(self, reader: _Reader, field: str, kind: str, value: str) -> str:
        if not self.vocabulary.known(kind, value):
            parent = value.rpartition(".")[0]
            hint = (f"; add it under [[vocabulary.{kind_table(kind)}]] (its parent {parent!r} exists)"
                    if parent and self.vocabulary.known(kind, parent) else "")
            reader.fail(field, f"{field}: {kind} {value!r} is not in the vocabulary "
                               f"({self.vocabulary.version}){hint}")
        return self.vocabulary.canonical(kind, value)

    def keys(self, reader: _Reader, field: str, kind: str, required: bool = True) -> tuple[str, ...]:
        return tuple(self.key(reader, field, kind, v) for v in reader.strings(field, required))

    # -- sections ----------------------------------------------------------
    def load(self) -> Policy:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as err:
            line = _line_from_toml_error(str(err))
            raise PolicyError(f"not valid TOML: {err}", line, self.source) from err
        top = _Reader(self, data, ())
        head = top.sub("policy", required=True)
        name = head.get("name", str, required=True)
        version = head.get("version", str, required=True)
        head.done()
        added = self._vocabulary(top.sub("vocabulary"))
        policy = Policy(
            name=name, version=version,
            sha256=hashlib.sha256(self.text.encode("utf-8")).hexdigest(),
            vocabulary=self.vocabulary, added_keys=added,
            **self._access(top.sub("access")),
            consent=self._consent(top.sub("consent")),
            **self._recipients(top.sub("recipients")),
            legal=self._legal(top.sub("legal")),
            notices=self._notices(top.sub("notices")),
        )
        top.done()
        return policy

    def _vocabulary(self, reader: _Reader | None) -> tuple:
        if reader is None:
            return ()
        additions = []
        for table, kind in (("categories", "category"), ("purposes", "purpose"), ("subjects", "subject")):
            entries = reader.get(table, list, default=[])
            for i, entry in enumerate(entries):
                r = _Reader(self, entry, reader.path + (table, i))
                key = r.get("key", str, required=True)
                label = r.get("label", str, required=True)
                description = r.get("description", str)
                r.done()
                try:
                    self.vocabulary = self.vocabulary.extended([(kind, key, label, description)])
                except VocabularyError as err:
                    r.fail("key", str(err))
                additions.append((kind, key, label))
        reader.done()
        return tuple(additions)

    def _access(self, reader: _Reader | None) -> dict:
        if reader is None:
            return {}
        justification = frozenset(reader.strings("justification_required", allowed=ACCESS_TYPES))
        glass = None
        g = reader.sub("break_glass")
        if g is not None:
            hours = g.get("review_within_hours", (int, float), required=True)
            if hours <= 0:
                g.fail("review_within_hours", "review_within_hours must be more than 0")
            glass = BreakGlass(float(hours), frozenset(g.strings("reviewer_roles", required=True)),
                               frozenset(g.strings("review_reason_codes", required=True)))
            g.done()
        roles = {}
        r = reader.sub("roles")
        if r is not None:
            for role_name in r.table:
                r.seen.add(role_name)
                roles[role_name] = self._role(_Reader(self, r.table[role_name], r.path + (role_name,)), role_name)
            r.done()
        reader.done()
        return {"justification_required": justification, "break_glass": glass, "roles": roles}

    def _role(self, r: _Reader, name: str) -> Role:
        actor_types = frozenset(r.strings("actor_types", required=True, allowed=ACTOR_TYPES))
        own = r.get("own_data_only", bool, default=False)
        deny = self.keys(r, "deny", "category", required=False)
        grants = []
        for i, entry in enumerate(r.get("allow", list, default=[])):
            g = _Reader(self, entry, r.path + ("allow", i))
            categories = self.keys(g, "categories", "category")
            purposes = self.keys(g, "purposes", "purpose")
            g.done()
            for c in categories:
                if c in deny:
                    g.fail("categories", f"role {name} both allows and denies {c!r} (a contradiction)")
            if all(self.vocabulary.covered_by_any("category", deny, c) for c in categories):
                g.fail("categories", f"role {name}: every category of this allow entry is also denied, "
                                     f"so it can never match")
            grants.append(Grant(categories, purposes))
        if not grants:
            r.fail(None, f"role {name} allows nothing; give it an [[allow]] entry or remove it")
        r.done()
        return Role(name, actor_types, tuple(grants), deny, own)

    def _consent(self, reader: _Reader | None) -> tuple[ConsentRule, ...]:
        if reader is None:
            return ()
        rules = []
        for rule_name in reader.table:
            reader.seen.add(rule_name)
            r = _Reader(self, reader.table[rule_name], reader.path + (rule_name,))
            purposes = self.keys(r, "purposes", "purpose")
            kinds = r.strings("partner_recipient_kinds", allowed=RECIPIENT_KINDS) or DEFAULT_PARTNER_KINDS
            channels = {}
            c = r.sub("channels")
            if c is not None:
                for purpose, channel in c.table.items():
                    c.seen.add(purpose)
                    canonical = self.key(c, purpose, "purpose", purpose)
                    if channel not in CHANNELS:
                        c.fail(purpose, f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
                    if not self.vocabulary.covered_by_any("purpose", purposes, canonical):
                        c.fail(purpose, f"{purpose} is not under this rule's purposes, so its channel "
                                        f"can never be used")
                    channels[canonical] = channel
                c.done()
            r.done()
            rules.append(ConsentRule(f"consent.{rule_name}", purposes, channels, frozenset(kinds)))
        return tuple(rules)

    def _recipients(self, reader: _Reader | None) -> dict:
        if reader is None:
            return {}
        home = frozenset(reader.strings("home_countries"))
        agreements = {}
        a = reader.sub("agreements")
        if a is not None:
            for ref in a.table:
                a.seen.add(ref)
                r = _Reader(self, a.table[ref], a.path + (ref,))
                retention = r.get("max_retention_days", (int, float))
                if retention is not None and retention <= 0:
                    r.fail("max_retention_days", "max_retention_days must be more than 0")
                agreements[ref] = Agreement(ref, frozenset(r.strings("recipients")),
                                            self.keys(r, "purposes", "purpose"),
                                            self.keys(r, "categories", "category"),
                                            None if retention is None else float(retention))
                r.done()
            a.done()
        reader.done()
        return {"agreements": agreements, "home_countries": home}

    def _legal(self, reader: _Reader | None) -> Legal | None:
        if reader is None:
            return None
        notice_days = reader.get("notice_days", int, default=30)
        max_delay = reader.get("max_delay_days", (int, float))
        if notice_days < 0 or (max_delay is not None and max_delay <= 0):
            reader.fail("notice_days" if notice_days < 0 else "max_delay_days", "must be more than 0")
        release = {}
        r = reader.sub("release", required=True)
        for kind in r.table:
            r.seen.add(kind)
            if kind not in REQUEST_KINDS:
                r.fail(kind, f"request kind {kind!r} is not one of {', '.join(REQUEST_KINDS)}")
            release[kind] = self.keys(r, kind, "category")
        r.done()
        auth = reader.sub("authorities", required=True)
        services = frozenset(auth.strings("services", required=True))
        roles = frozenset(auth.strings("roles"))
        actors = frozenset(auth.strings("actors"))
        if not roles and not actors:
            auth.fail(None, "[legal.authorities] names no roles and no actors, so no one may record a "
                            "disclosure; list roles or actors")
        auth.done()
        reader.done()
        return Legal(release, notice_days, None if max_delay is None else float(max_delay),
                     services, roles, actors)

    def _notices(self, reader: _Reader | None) -> dict[str, tuple[str, ...]]:
        if reader is None:
            return {}
        notices = {}
        for version in reader.table:
            reader.seen.add(version)
            r = _Reader(self, reader.table[version], reader.path + (version,))
            notices[version] = self.keys(r, "purposes", "purpose")
            r.done()
        return notices


def kind_table(kind: str) -> str:
    return {"category": "categories", "purpose": "purposes", "subject": "subjects"}[kind]


def _line_from_toml_error(message: str) -> int | None:
    import re

    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def loads(text: str, source: str | None = None) -> Policy:
    """Parse and check policy text; ``source`` names the file in errors."""
    return _Loader(text, source).load()


def load(path: str | Path) -> Policy:
    """Read and check a policy file; a missing or unreadable file is a PolicyError too."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise PolicyError(f"cannot read the policy file: {err.strerror}", None, str(path)) from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise PolicyError("not UTF-8 text", line, str(path)) from err
    return loads(text, str(path))
