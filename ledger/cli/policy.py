"""`ledger policy check|show|publish FILE`: validate a policy file, say it in words, record it in force."""

from __future__ import annotations

import argparse
import sys

EPILOG = """\
A policy file (TOML) states what the privacy policy promises as rules the
ledger checks against the events: need to know per role, consent for
marketing, agreements with recipients, legal process and privacy-notice
versions. Keys are fideslang data categories and data uses (with the
ledger's extensions and aliases); a company adds its own under an existing
parent. A bad file is refused with its line and the reason (exit 2).

examples:
  ledger policy check examples/policy.toml
  ledger policy show examples/policy.toml
  ledger policy publish examples/policy.toml --actor dpo-1
"""


def register(subparsers, common) -> None:
    p = subparsers.add_parser("policy", help="check a policy file or print it in words",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a policy file (exit 0 ok, 2 refused, with the line)",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=run_check)
    show = sub.add_parser("show", help="print a policy file's rules in words",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    show.add_argument("file", metavar="FILE")
    show.set_defaults(func=run_show)
    publish = sub.add_parser("publish", parents=[common], help="record a policy as in force (a PolicyPublished "
                             "event); a refused file is not sent (exit 2)", epilog=EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    publish.add_argument("file", metavar="FILE")
    publish.add_argument("--actor", default="ledger-cli", metavar="ID",
                         help="who puts the policy in force (recorded as the event's actor; default ledger-cli)")
    publish.set_defaults(func=run_publish)


def _load(path: str):
    from ledger.model.policy import load

    from ..errors import PolicyError

    try:
        return load(path)
    except PolicyError as err:
        print(f"ledger policy: error: {err}", file=sys.stderr)
        return None


def run_check(args) -> int:
    policy = _load(args.file)
    if policy is None:
        return 2
    rules = len(policy.roles) + len(policy.consent) + len(policy.agreements) + len(policy.notices)
    print(f"{args.file}: ok: policy {policy.name!r} version {policy.version}, {len(policy.roles)} roles, "
          f"{len(policy.consent)} consent rules, {len(policy.agreements)} agreements, "
          f"{len(policy.notices)} notice versions ({rules} in all)")
    print(f"sha256 {policy.sha256}; vocabulary {policy.vocabulary.version}")
    return 0


def run_show(args) -> int:
    from ledger.model.policy import describe

    policy = _load(args.file)
    if policy is None:
        return 2
    print("\n".join(describe(policy)))
    return 0


def run_publish(args) -> int:
    from ledger.model.policy import published_fields
    from ledger.produce.producer import AuditProducer

    from . import settings_from

    policy = _load(args.file)
    if policy is None:
        return 2
    with open(args.file, "rb") as fh:  # _load read it as UTF-8 already
        text = fh.read().decode("utf-8")
    actor = {"id": args.actor, "type": "EMPLOYEE" if args.actor != "ledger-cli" else "SYSTEM", "role": None}
    with AuditProducer(settings_from(args)) as producer:
        from datetime import datetime, timezone

        delivery = producer.policy_published(occurred_at=datetime.now(timezone.utc),
                                             **published_fields(policy, text, actor))
        producer.flush()
        delivery.result()
    print(f"published policy {policy.name!r} version {policy.version} (sha256 {policy.sha256}) as event "
          f"{delivery.event_id} on {delivery.topic}")
    return 0
