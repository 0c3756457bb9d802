"""``evaluate(policy, events, as_of)``: every finding the policy makes about a stream of events.

Pure and streaming: events (plain dicts, see docs/architecture.md) arrive in
*recorded* order (:func:`~ledger.findings.model.recorded_order_key`) and
each is judged as it arrives against what was recorded before it; what is
kept grows with customers and cases (consent histories, open consent
findings, break-glass sessions, legal cases), never with the number of
events. Time-based rules (overdue notices, break-glass reviews, delays
without an end) are judged at ``as_of`` when the stream ends.

Conventions the rules rely on (docs/promises.md has the full list):

* Consent: the consent that counts for a use at event time T is the
  customer's latest ConsentChanged by event time at or before T whose
  purpose is the use's purpose or a parent of it and whose channel is the
  use's channel (the policy maps purposes to channels; unmapped = ANY) or
  ANY; at equal event time a withdrawal wins. It must grant, cover the
  channel (a use on ANY needs a consent on ANY) and, for a share to a
  partner kind of recipient, have scope PARTNERS. A consent recorded later
  but dated before the use clears the finding: a :class:`Retraction`.
  (A withdrawal recorded late does not reopen uses already judged kept.)
* BREAK_GLASS review: a later DataAccessed by another actor whose role is
  one of ``reviewer_roles``, with the same ``correlation_id`` and a
  ``justification.reason_code`` from ``review_reason_codes``, within
  ``review_within_hours`` of the access.
* Legal notices: one finding per (disclosure, customer) still owed and
  overdue at ``as_of``, or notified after the notice was due. The own due
  date is ``notification.due_by`` capped at ``notice_days`` after the
  disclosure; delays and lifts follow ledger.obligations.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import Counter
from datetime import datetime, timedelta
from typing import Iterable, Iterator

from ledger.model.policy.model import Policy, severity_of

from . import sentences as say
from .model import Finding, Retraction, finding_id

DELAYED = ("DELAYED_BY_ORDER", "DELAYED_FRAUD_INVESTIGATION")
NOTHING_OWED = ("NOTIFIED", "NOT_REQUIRED")
LEGAL_TYPES = ("LegalDisclosure", "NotificationStatusChanged", "SubjectNotified")


def evaluate(policy: Policy, events: Iterable[dict], as_of: datetime) -> Iterator[Finding | Retraction]:
    """Findings and retractions for ``events`` (recorded order), time rules judged at ``as_of``."""
    evaluator = Evaluator(policy)
    for event in events:
        yield from evaluator.feed(event)
    yield from evaluator.finish(as_of)


def tally(judged: Counter, standing: Iterable[Finding]) -> dict[str, dict[str, int]]:
    """Per rule: judged, kept, broken, not_judgeable (for a report's promises section)."""
    counts: dict[str, dict[str, int]] = {}
    for f in standing:
        row = counts.setdefault(f.rule, {"judged": 0, "kept": 0, "broken": 0, "not_judgeable": 0})
        row[f.kind] += 1
    for rule, n in judged.items():
        counts.setdefault(rule, {"judged": 0, "kept": 0, "broken": 0, "not_judgeable": 0})["judged"] = n
    for row in counts.values():
        row["kept"] = max(row["judged"] - row["broken"] - row["not_judgeable"], 0)
    return dict(sorted(counts.items()))


def current(results: Iterable[Finding | Retraction]) -> list[Finding]:
    """The findings still standing once every retraction has been applied, in emission order."""
    standing: dict[str, Finding] = {}
    for r in results:
        if isinstance(r, Retraction):
            standing.pop(r.finding_id, None)
        else:
            standing[r.finding_id] = r
    return list(standing.values())


class _Case:
    """One legal disclosure's notice duty: the disclosure, its status changes, its notices."""

    __slots__ = ("disclosure", "changes", "notices")

    def __init__(self):
        self.disclosure: dict | None = None
        self.changes: list[dict] = []
        self.notices: list[dict] = []


class Evaluator:
    """The state behind :func:`evaluate`; ``feed`` each event, then ``finish`` once."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.v = policy.vocabulary
        self._access_verdicts: dict[tuple, tuple] = {}
        self._consent_rule: dict[str, object] = {}
        self._always_noticed: dict[str, bool] = {}
        # subject -> purpose -> channel -> sorted [(at, withdrawal, event_id, purpose, channel, scope)]
        self.consents: dict[str, dict[str, dict[str, list[tuple]]]] = {}
        self.notice_versions: dict[str, list[tuple]] = {}  # subject -> [(at, event_id, version)]
        self.open_consent: dict[str, list[tuple]] = {}  # subject -> [(finding, use)]
        self.glass: list[dict] = []
        self.reviews: dict[str, list[dict]] = {}
        self.cases: dict[str, _Case] = {}
        #: Judgements made per rule (an event, or an event and customer for per-customer rules):
        #: with the standing findings this gives kept / broken / not judgeable per promise.
        self.judged: Counter = Counter()

    def clone(self) -> Evaluator:
        """An independent copy of the facts gathered so far (the live judge rewinds to such copies).

        Every container :meth:`feed` changes is copied; the events in them are shared, since nothing
        changes an event once fed, and so are the caches, which depend on the policy only.
        """
        new = Evaluator.__new__(Evaluator)
        new.policy, new.v = self.policy, self.v
        new._access_verdicts, new._consent_rule, new._always_noticed = \
            self._access_verdicts, self._consent_rule, self._always_noticed
        new.consents = {s: {p: {c: list(r) for c, r in by_channel.items()} for p, by_channel in by_purpose.items()}
                        for s, by_purpose in self.consents.items()}
        new.notice_versions = {s: list(r) for s, r in self.notice_versions.items()}
        new.open_consent = {s: list(r) for s, r in self.open_consent.items()}
        new.glass = list(self.glass)
        new.reviews = {k: list(r) for k, r in self.reviews.items()}
        new.cases = {}
        for k, case in self.cases.items():
            copy = new.cases[k] = _Case()
            copy.disclosure, copy.changes, copy.notices = case.disclosure, list(case.changes), list(case.notices)
        new.judged = Counter(self.judged)
        return new

    # -- output ----------------------------------------------------------------
    def _finding(self, rule: str, kind: str, sentence: str, subjects, event_ids) -> Finding:
        subjects, event_ids = tuple(subjects), tuple(event_ids)
        p = self.policy
        return Finding(finding_id(rule, event_ids, subjects, p.sha256), rule, kind,
                       severity_of(rule) if kind == "broken" else "info", sentence, subjects, event_ids,
                       p.sha256, p.version)

    # -- dispatch ----------------------------------------------------------------
    def feed(self, event: dict) -> list:
        kind = event["type"]
        if kind == "DataAccessed":
            return self._accessed(event) if event["outcome"] != "DENIED" else []
        if kind == "DataShared":
            return self._shared(event)
        if kind == "ConsentChanged":
            return self._consent_changed(event)
        if kind in LEGAL_TYPES:
            return self._legal(event)
        return []

    # -- need to know -------------------------------------------------------------
    def _role_verdict(self, role, purpose: str, categories: tuple) -> tuple:
        key = (role.name, purpose, categories)
        verdict = self._access_verdicts.get(key)
        if verdict is None:
            v = self.v
            bad = []
            for c in categories:
                if v.covered_by_any("category", role.deny, c):
                    bad.append(c)
                elif not any(v.covered_by_any("category", g.categories, c)
                             and v.covered_by_any("purpose", g.purposes, purpose) for g in role.allow):
                    bad.append(c)
            verdict = self._access_verdicts[key] = tuple(bad)
        return verdict

    def _accessed(self, e: dict) -> list:
        out = []
        p, actor, eid = self.policy, e["actor"], e["event_id"]
        role = p.roles.get(actor["role"]) if actor["role"] is not None else None
        if p.roles:
            self.judged["access.need_to_know"] += 1
            if role is None:
                out.append(self._finding("access.need_to_know", "not_judgeable", say.access(
                    self.v, e, e["data_categories"],
                    f"the policy names no role {actor['role']!r}" if actor["role"] else "the actor has no role"),
                    e["subject_ids"], (eid,)))
            elif actor["type"] not in role.actor_types:
                out.append(self._finding("access.need_to_know", "broken", say.access(
                    self.v, e, e["data_categories"], f"a {actor['type']} may not act as {role.name}"),
                    e["subject_ids"], (eid,)))
            elif role.own_data_only and e["subject_ids"] != [actor["id"]]:
                out.append(self._finding("access.need_to_know", "broken", say.access(
                    self.v, e, e["data_categories"], "this role may access only its own data"),
                    e["subject_ids"], (eid,)))
            else:
                bad = self._role_verdict(role, e["purpose"], tuple(e["data_categories"]))
                if bad:
                    out.append(self._finding("access.need_to_know", "broken",
                                             say.access(self.v, e, bad, "not allowed for this role"),
                                             e["subject_ids"], (eid,)))
        glass = e["outcome"] == "BREAK_GLASS"
        if glass or e["access_type"] in p.justification_required:
            self.judged["access.justification"] += 1
            j = e["justification"]
            if j is None or not j.get("ticket"):
                why = "a break-glass access" if glass else f"a {e['access_type']} access"
                out.append(self._finding("access.justification", "broken", say.access(
                    self.v, e, e["data_categories"], f"{why} needs a justification with a ticket"),
                    e["subject_ids"], (eid,)))
        if p.break_glass is not None:
            if glass:
                self.glass.append(e)
            elif (actor["role"] in p.break_glass.reviewer_roles and e["correlation_id"] is not None
                  and e["justification"] is not None
                  and e["justification"]["reason_code"] in p.break_glass.review_reason_codes):
                self.reviews.setdefault(e["correlation_id"], []).append(e)
        out.extend(self._consent_use(e, partner=False))
        out.extend(self._notice_use(e))
        return out

    # -- recipients ---------------------------------------------------------------
    def _shared(self, e: dict) -> list:
        out = []
        p, v, eid, recipient = self.policy, self.v, e["event_id"], e["recipient"]
        subjects = e["subject_ids"]
        if p.agreements:
            self.judged["recipient.agreement"] += 1
            agreement = p.agreement_for(e["agreement_ref"], recipient["id"])
            if agreement is None:
                ref = f"agreement {e['agreement_ref']}" if e["agreement_ref"] else "no agreement_ref"
                out.append(self._finding("recipient.agreement", "not_judgeable", say.share(
                    v, e, e["data_categories"], f"{ref}: the policy names no such agreement, nor one with "
                                                f"{recipient['id']}"), subjects, (eid,)))
            elif agreement.recipients and recipient["id"] not in agreement.recipients:
                out.append(self._finding("recipient.agreement", "broken", say.share(
                    v, e, e["data_categories"], f"agreement {agreement.ref} does not cover {recipient['id']}"),
                    subjects, (eid,)))
            else:
                self.judged["recipient.purpose"] += 1
                self.judged["recipient.categories"] += 1
                if not v.covered_by_any("purpose", agreement.purposes, e["purpose"]):
                    out.append(self._finding("recipient.purpose", "broken", say.share(
                        v, e, e["data_categories"], f"agreement {agreement.ref} does not allow this purpose"),
                        subjects, (eid,)))
                bad = [c for c in e["data_categories"] if not v.covered_by_any("category", agreement.categories, c)]
                if bad:
                    out.append(self._finding("recipient.categories", "broken", say.share(
                        v, e, bad, f"agreement {agreement.ref} does not allow these categories"),
                        subjects, (eid,)))
                limit = agreement.max_retention_days
                if limit is not None and e["retention_until"] is not None:
                    self.judged["recipient.retention"] += 1
                    kept = (e["retention_until"] - e["occurred_at"]) / timedelta(days=1)
                    if kept > limit:
                        out.append(self._finding("recipient.retention", "broken", say.share(
                            v, e, e["data_categories"], f"kept until {e['retention_until']:%Y-%m-%d}, "
                                                        f"{kept:.0f} days; agreement {agreement.ref} allows "
                                                        f"{limit:.0f}"), subjects, (eid,)))
        country = recipient.get("country")
        if p.home_countries and country is not None:
            self.judged["recipient.transfer"] += 1
        if p.home_countries and country is not None and country not in p.home_countries \
                and not e["transfer_safeguard"]:
            out.append(self._finding("recipient.transfer", "broken", say.share(
                v, e, e["data_categories"], f"a transfer to {country} without a transfer_safeguard"),
                subjects, (eid,)))
        out.extend(self._consent_use(e, partner=recipient["kind"]))
        out.extend(self._notice_use(e))
        return out

    # -- consent ------------------------------------------------------------------
    def _rule_for(self, purpose: str):
        """(rule, channel) of the consent rule covering ``purpose``, or None."""
        found = self._consent_rule.get(purpose, False)
        if found is False:
            found = None
            chain = self.v.ancestry("purpose", purpose)
            for rule in self.policy.consent:
                if any(r in chain for r in rule.purposes):
                    channel = next((rule.channels[k] for k in chain if k in rule.channels), "ANY")
                    found = (rule, channel)
                    break
            self._consent_rule[purpose] = found
        return found

    def _consent_use(self, e: dict, partner) -> list:
        found = self._rule_for(e["purpose"])
        if found is None:
            return []
        rule, channel = found
        needs_partners = partner is not False and partner in rule.partner_recipient_kinds
        use = (e, channel, needs_partners, rule)
        out = []
        self.judged[rule.rule_id] += len(e["subject_ids"])
        for subject in e["subject_ids"]:
            ok, evidence, reason = self._judge_consent(subject, use)
            if not ok:
                f = self._finding(rule.rule_id, "broken", self._consent_sentence(e, subject, reason),
                                  (subject,), (e["event_id"],) + evidence)
                self.open_consent.setdefault(subject, []).append((f, use))
                out.append(f)
        return out

    def _consent_sentence(self, e: dict, subject: str, reason: str) -> str:
        if e["type"] == "DataShared":
            return say.share(self.v, e, e["data_categories"], reason, subjects=[subject])
        return say.access(self.v, e, e["data_categories"], reason).replace(
            say.customers(e["subject_ids"]), subject, 1)

    def _judge_consent(self, subject: str, use: tuple) -> tuple[bool, tuple, str]:
        e, channel, needs_partners, _ = use
        by_purpose = self.consents.get(subject)
        latest = None
        if by_purpose is not None:
            probe = (e["occurred_at"], True, "\uffff")  # after every record at the use's instant
            for purpose in self.v.ancestry("purpose", e["purpose"]):
                by_channel = by_purpose.get(purpose)
                if by_channel is None:
                    continue
                for r_channel, records in by_channel.items():
                    if not (r_channel == "ANY" or channel == "ANY" or r_channel == channel):
                        continue
                    i = bisect_right(records, probe)
                    if i and (latest is None or records[i - 1][:3] > latest[:3]):
                        latest = records[i - 1]
        if latest is None:
            return False, (), "no consent was ever recorded for this purpose"
        _, withdrawal, eid, _, r_channel, scope = latest
        if withdrawal:
            return False, (eid,), "the customer withdrew consent"
        if channel == "ANY" and r_channel != "ANY":
            return False, (eid,), f"consent covers {r_channel} only, this use any channel"
        if needs_partners and scope != "PARTNERS":
            return False, (eid,), "consent covers first-party use only, not partners"
        return True, (eid,), ""

    def _consent_changed(self, e: dict) -> list:
        out = []
        withdrawal = not e["granted"]
        record = (e["occurred_at"], withdrawal, e["event_id"], self.v.canonical("purpose", e["purpose"]),
                  e["channel"], e["scope"])
        for subject in e["subject_ids"]:
            # Per customer, purpose and channel, sorted by (event time, withdrawal last, event_id):
            # the latest record at or before a use is one bisect away.
            records = self.consents.setdefault(subject, {}).setdefault(record[3], {}).setdefault(e["channel"], [])
            if records and records[-1] > record:
                insort(records, record)
            else:
                records.append(record)
            if e["notice_version"] is not None:
                self.notice_versions.setdefault(subject, []).append(
                    (e["occurred_at"], e["event_id"], e["notice_version"]))
            still = []
            for f, use in self.open_consent.get(subject, ()):
                # Only a grant dated at or before the use, for its purpose or a parent, can clear it.
                if withdrawal or record[0] > use[0]["occurred_at"] \
                        or record[3] not in self.v.ancestry("purpose", use[0]["purpose"]):
                    still.append((f, use))
                    continue
                ok, _, _ = self._judge_consent(subject, use)
                if ok:
                    out.append(Retraction(f.finding_id, f.rule, f.sentence + " (cleared by a consent "
                                          "recorded later)", (e["event_id"],), f.policy_sha256))
                else:
                    still.append((f, use))
            if still:
                self.open_consent[subject] = still
            else:
                self.open_consent.pop(subject, None)
        return out

    # -- notice versions ----------------------------------------------------------
    def _notice_use(self, e: dict) -> list:
        notices = self.policy.notices
        if not notices:
            return []
        purpose = e["purpose"]
        always = self._always_noticed.get(purpose)
        if always is None:
            always = self._always_noticed[purpose] = all(
                self.v.covered_by_any("purpose", purposes, purpose) for purposes in notices.values())
        if always:
            return []
        out = []
        for subject in e["subject_ids"]:
            latest = None
            for record in self.notice_versions.get(subject, ()):
                if record[0] <= e["occurred_at"] and (latest is None or record[:2] > latest[:2]):
                    latest = record
            if latest is None:
                continue
            self.judged["notice.purpose"] += 1
            _, consent_id, version = latest
            purposes = notices.get(version)
            if purposes is None:
                out.append(self._finding("notice.purpose", "not_judgeable", self._consent_sentence(
                    e, subject, f"the policy does not know notice version {version}"),
                    (subject,), (e["event_id"], consent_id)))
            elif not self.v.covered_by_any("purpose", purposes, purpose):
                out.append(self._finding("notice.purpose", "broken", self._consent_sentence(
                    e, subject, f"the notice the customer accepted ({version}) does not cover this purpose"),
                    (subject,), (e["event_id"], consent_id)))
        return out

    # -- legal process ------------------------------------------------------------
    def _legal(self, e: dict) -> list:
        legal = self.policy.legal
        if legal is None:
            return []
        out = []
        actor = e["actor"]
        self.judged["legal.authority"] += 1
        if e["source_service"] not in legal.authority_services or not (
                actor["id"] in legal.authority_actors or actor["role"] in legal.authority_roles):
            what = {"LegalDisclosure": "recorded a legal disclosure",
                    "NotificationStatusChanged": f"changed a notice status to {e.get('status')}",
                    "SubjectNotified": "recorded a notice to customers"}[e["type"]]
            out.append(self._finding("legal.authority", "broken",
                                     f"{say.who(actor)} via {e['source_service']} {what}: not an authority "
                                     f"for legal cases", e["subject_ids"], (e["event_id"],)))
        if e["type"] == "LegalDisclosure":
            case = self.cases.setdefault(e["event_id"], _Case())
            case.disclosure = e
            self.judged["legal.request_kind"] += 1
            self.judged["legal.review"] += 1
            allowed = legal.release.get(e["request"]["kind"])
            if allowed is None:
                out.append(self._finding("legal.request_kind", "not_judgeable", say.disclosure(
                    self.v, e, e["data_categories"], "the policy does not say what this request kind may release"),
                    e["subject_ids"], (e["event_id"],)))
            else:
                bad = [c for c in e["data_categories"] if not self.v.covered_by_any("category", allowed, c)]
                if bad:
                    out.append(self._finding("legal.request_kind", "broken", say.disclosure(
                        self.v, e, bad, "this request kind may not release these categories"),
                        e["subject_ids"], (e["event_id"],)))
            if e["reviewed_by"] == actor["id"]:
                out.append(self._finding("legal.review", "broken", say.disclosure(
                    self.v, e, e["data_categories"], "reviewed by the requester themself"),
                    e["subject_ids"], (e["event_id"],)))
            n = e["notification"]
            out.extend(self._delay_set(e, e, n["status"], n["delay_until"]))
        elif e["type"] == "NotificationStatusChanged":
            case = self.cases.setdefault(e["disclosure_event_id"], _Case())
            case.changes.append(e)
            out.extend(self._delay_set(e, None, e["status"], e["delay_until"]))
        else:
            self.cases.setdefault(e["disclosure_event_id"], _Case()).notices.append(e)
        return out

    def _delay_set(self, e: dict, disclosure, status: str, delay_until) -> list:
        limit = self.policy.legal.max_delay_days
        if limit is None or status not in DELAYED or delay_until is None:
            return []
        self.judged["legal.delay"] += 1
        days = (delay_until - e["occurred_at"]) / timedelta(days=1)
        if days <= limit:
            return []
        return [self._finding("legal.delay", "broken",
                              f"{say.who(e['actor'])} delayed the notice to {say.customers(e['subject_ids'])} "
                              f"until {delay_until:%Y-%m-%d} ({days:.0f} days): longer than the policy's "
                              f"{limit:.0f} days without renewal", e["subject_ids"], (e["event_id"],))]

    # -- at the stated instant ----------------------------------------------------
    def finish(self, as_of: datetime) -> list:
        out = []
        if self.policy.break_glass is not None:
            out.extend(self._break_glass_reviews(as_of))
        if self.policy.legal is not None:
            for case in self.cases.values():
                if case.disclosure is not None and case.disclosure["occurred_at"] <= as_of:
                    out.extend(self._notice_findings(case, as_of))
        return out

    def _break_glass_reviews(self, as_of: datetime) -> list:
        rule = self.policy.break_glass
        window = timedelta(hours=rule.review_within_hours)
        out = []
        for e in self.glass:
            deadline = e["occurred_at"] + window
            if as_of > deadline:
                self.judged["access.break_glass_review"] += 1
            reviewed = any(
                r["actor"]["id"] != e["actor"]["id"] and e["occurred_at"] < r["occurred_at"] <= deadline
                and r["occurred_at"] <= as_of
                for r in self.reviews.get(e["correlation_id"], ()) if e["correlation_id"] is not None)
            if not reviewed and as_of > deadline:
                out.append(self._finding("access.break_glass_review", "broken", say.access(
                    self.v, e, e["data_categories"],
                    f"a break-glass access not reviewed within {rule.review_within_hours:g} hours"),
                    e["subject_ids"], (e["event_id"],)))
        return out

    def _notice_findings(self, case: _Case, as_of: datetime) -> list:
        d = case.disclosure
        legal = self.policy.legal
        changes = sorted((c for c in case.changes if c["occurred_at"] <= as_of),
                         key=lambda c: (c["occurred_at"], c["event_id"]))
        own_due = d["occurred_at"] + timedelta(days=legal.notice_days)
        if d["notification"]["due_by"] is not None:
            own_due = min(own_due, d["notification"]["due_by"])
        notified: dict[str, dict] = {}
        for n in case.notices:
            if n["occurred_at"] <= as_of and n["notified_at"] <= as_of:
                for s in n["subject_ids"]:
                    first = notified.get(s)
                    if first is None or (n["notified_at"], n["event_id"]) < (first["notified_at"], first["event_id"]):
                        notified[s] = n
        out = []
        state = _notice_state(d, changes, own_due, as_of)
        change_ids = tuple(c["event_id"] for c in changes)
        self.judged["legal.notice"] += len(d["subject_ids"])
        for subject in sorted(d["subject_ids"]):
            n = notified.get(subject)
            if n is not None:
                at = max(n["notified_at"], n["occurred_at"])
                then = _notice_state(d, [c for c in changes if c["occurred_at"] <= at], own_due, at)
                if then["status"] not in NOTHING_OWED and not then["in_force"] and then["due_by"] is not None \
                        and n["notified_at"] > then["due_by"]:
                    out.append(self._finding("legal.notice", "broken", say.disclosure(
                        self.v, d, d["data_categories"],
                        f"{subject} was notified on {n['notified_at']:%Y-%m-%d}, after the notice was due on "
                        f"{then['due_by']:%Y-%m-%d}", subjects=[subject]), (subject,),
                        (d["event_id"], n["event_id"]) + change_ids))
                continue
            if state["status"] in NOTHING_OWED:
                continue
            if not state["in_force"] and state["due_by"] is not None and as_of > state["due_by"]:
                out.append(self._finding("legal.notice", "broken", say.disclosure(
                    self.v, d, d["data_categories"],
                    f"{subject} not notified; the notice was due on {state['due_by']:%Y-%m-%d}",
                    subjects=[subject]), (subject,), (d["event_id"],) + change_ids))
        limit = legal.max_delay_days
        if limit is not None and state["status"] in DELAYED and state["delay_until"] is None:
            self.judged["legal.delay"] += 1
            since = state["set_at"]
            if (as_of - since) / timedelta(days=1) > limit:
                out.append(self._finding("legal.delay", "broken", say.disclosure(
                    self.v, d, d["data_categories"], f"notice delayed without an end since {since:%Y-%m-%d}, "
                                                     f"longer than the policy's {limit:.0f} days"),
                    d["subject_ids"], (d["event_id"],) + change_ids))
        return out


def _notice_state(d: dict, changes: list[dict], own_due: datetime, as_of: datetime) -> dict:
    """Status, delay and effective due date at ``as_of`` (the rules of ledger.obligations)."""
    n = d["notification"]
    status, delay_until, set_at = n["status"], n["delay_until"], d["occurred_at"]
    released = None
    for c in changes:
        if status in DELAYED and c["status"] not in DELAYED:
            lifted = c["occurred_at"]
            released = lifted if delay_until is None else min(lifted, delay_until)
        status, delay_until, set_at = c["status"], c["delay_until"], c["occurred_at"]
    if status in DELAYED:
        in_force = delay_until is None or as_of < delay_until
        due = None if delay_until is None else max(own_due, delay_until)
    else:
        in_force = False
        due = own_due if released is None else max(own_due, released)
    return {"status": status, "delay_until": delay_until, "in_force": in_force, "due_by": due, "set_at": set_at}
