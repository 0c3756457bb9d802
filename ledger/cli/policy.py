"""`ledger policy check FILE` and `ledger policy show FILE`: validate a policy file, say it in words."""

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
