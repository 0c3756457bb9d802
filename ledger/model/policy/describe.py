"""A checked policy said in words (``ledger policy show``), with vocabulary labels."""

from __future__ import annotations

from .model import Policy


def _list(items) -> str:
    items = list(items)
    if not items:
        return "nothing"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe(policy: Policy) -> list[str]:
    """Paragraph lines describing every rule of ``policy``."""
    v = policy.vocabulary
    cat = lambda keys: _list([f"{v.label('category', k)} ({k})" for k in keys])  # noqa: E731
    pur = lambda keys: _list([f"{v.label('purpose', k)} ({k})" for k in keys])  # noqa: E731
    out = [f"Policy {policy.name!r}, version {policy.version}", f"SHA-256 {policy.sha256}",
           f"Vocabulary: {v.version}", ""]
    if policy.added_keys:
        out.append("Company vocabulary:")
        out += [f"  {kind} {key}: {label}" for kind, key, label in policy.added_keys]
        out.append("")
    if policy.roles:
        out.append("Need to know (access.need_to_know):")
        for role in policy.roles.values():
            who = _list(sorted(role.actor_types))
            out.append(f"  {role.name} ({who}{', own data only' if role.own_data_only else ''}) may access")
            for g in role.allow:
                out.append(f"    {cat(g.categories)}")
                out.append(f"      for {pur(g.purposes)}")
            if role.deny:
                out.append(f"    but never {cat(role.deny)}")
        out.append("  Any other role is not judged and is reported as such.")
        out.append("")
    if policy.justification_required:
        out.append(f"Justification (access.justification): {_list(sorted(policy.justification_required))} "
                   "accesses and every break-glass access need a justification with a ticket.")
    if policy.break_glass:
        g = policy.break_glass
        out.append(f"Break glass (access.break_glass_review): reviewed within {g.review_within_hours:g} hours "
                   f"by a {_list(sorted(g.reviewer_roles))} recording a DataAccessed with the same "
                   f"correlation_id and reason {_list(sorted(g.review_reason_codes))}.")
    for rule in policy.consent:
        out.append("")
        out.append(f"Consent ({rule.rule_id}): {pur(rule.purposes)} need the customer's consent "
                   "(latest ConsentChanged by event time before the use).")
        for purpose, channel in rule.channels.items():
            out.append(f"  {v.label('purpose', purpose)} is marketing by {channel}")
        out.append(f"  A share to a {_list(sorted(rule.partner_recipient_kinds))} needs PARTNERS scope.")
    if policy.agreements:
        out.append("")
        out.append("Recipients (recipient.agreement, .purpose, .categories, .retention):")
        for a in policy.agreements.values():
            to = _list(sorted(a.recipients)) if a.recipients else "any recipient citing it"
            keep = f", kept at most {a.max_retention_days:g} days" if a.max_retention_days else ""
            out.append(f"  {a.ref} with {to}: {cat(a.categories)} for {pur(a.purposes)}{keep}")
    if policy.home_countries:
        out.append(f"Transfers (recipient.transfer): outside {_list(sorted(policy.home_countries))} "
                   "need a transfer_safeguard.")
    if policy.legal:
        legal = policy.legal
        out.append("")
        out.append("Legal process:")
        for kind, keys in legal.release.items():
            words = kind.replace("_", " ").lower()
            out.append(f"  {'an' if words[0] in 'aeiou' else 'a'} {words} may release {cat(keys)} (legal.request_kind)")
        out.append("  reviewed_by may not be the requester (legal.review)")
        out.append(f"  customers notified within {legal.notice_days} days, or once a delay ends (legal.notice)")
        if legal.max_delay_days:
            out.append(f"  a delay lasts at most {legal.max_delay_days:g} days before it is renewed (legal.delay)")
        who = _list(sorted(legal.authority_roles) + sorted(legal.authority_actors))
        out.append(f"  only {who} via {_list(sorted(legal.authority_services))} record disclosures, "
                   "status changes and notices (legal.authority)")
    if policy.notices:
        out.append("")
        out.append("Privacy-notice versions (notice.purpose):")
        for version, keys in policy.notices.items():
            out.append(f"  {version} covers {pur(keys)}")
    return out
