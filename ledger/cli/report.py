"""`ledger report`: a report on one customer, for the customer or for an auditor."""

from __future__ import annotations

import argparse
import sys


EPILOG = """\
The report has an accounting of disclosures (45 CFR 164.528: date, recipient
and address, data, purpose or legal request; repeated disclosures to one
recipient for one purpose summarised as first, count, last), a GDPR Art. 15
view (purposes, data categories, recipients, third-country transfers and
safeguards, retention, sources) and a timeline of who saw what. It states
when it was generated, its parameters, the time zone (UTC) and the ledger's
chain heads.

--audience subject (the default) is what the customer may see: a legal
disclosure whose notice is delayed stays hidden until the delay is lifted or
the customer is notified; other customers' ids, justification notes and
attributes never appear; employees appear by role and organisation only.
--audience auditor shows everything, delayed disclosures marked.

By default the accounting leaves out essential.service.* purposes (service,
payment processing, operations, account management: treatment/payment/
operations; also the older essential.billing and essential.account.* keys),
disclosures under the
customer's consent or at their request, and national-security requests; it
looks back six years. Times are ISO-8601 with an offset; --as-of T answers as
the ledger stood at recorded time T.

example:
  ledger report cust-000042 --format html --output cust-000042.html
  ledger report cust-000042 --audience auditor --as-of 2026-03-01T00:00:00Z --format json
"""


def register(subparsers, common) -> None:
    p = subparsers.add_parser("report", parents=[common], help="report on one customer (HTML, JSON or CSV)",
                              description="Report on one customer: accounting of disclosures, GDPR Art. 15 view "
                                          "and a timeline of who saw what.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("subject", help="customer id")
    p.add_argument("--format", choices=("json", "html", "csv"), default="json", help="output format (default json)")
    p.add_argument("--audience", choices=("subject", "auditor"), default="subject",
                   help="who reads it (default subject: the customer)")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--as-of", metavar="T", help="as the ledger stood at recorded time T")
    p.add_argument("--lookback-years", type=int, default=6, metavar="N",
                   help="how far back the accounting of disclosures looks (default 6)")
    p.add_argument("--exclude-purpose", action="append", metavar="CODE",
                   help="purpose left out of the accounting, with its dotted children (repeatable; "
                        "replaces the default essential.service, essential.billing, essential.account)")
    p.add_argument("--exclude-recipient-kind", action="append", metavar="KIND",
                   help="recipient kind left out of the accounting (repeatable; default none)")
    p.add_argument("--include-consented", action="store_true",
                   help="also account for disclosures made under the customer's consent")
    p.set_defaults(func=run)


def rules_from(args):
    from ..errors import ValidationError
    from ..report import AccountingRules

    if args.lookback_years < 1:
        raise ValidationError("--lookback-years", "must be at least 1")
    defaults = AccountingRules()
    return AccountingRules(
        excluded_purposes=tuple(args.exclude_purpose) if args.exclude_purpose else defaults.excluded_purposes,
        excluded_recipient_kinds=tuple(args.exclude_recipient_kind or ()),
        excluded_legal_bases=() if args.include_consented else defaults.excluded_legal_bases,
        lookback_years=args.lookback_years,
    )


def run(args) -> int:
    from ..report import build_report, render
    from .query import open_ledger

    rules = rules_from(args)
    with open_ledger(args) as ledger:
        report = build_report(ledger, args.subject, audience=args.audience, as_of=args.as_of, rules=rules)
    text = render(report, args.format)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {args.output} ({len(report.timeline)} events, "
              f"{report.accounting['disclosures']} accountable disclosures)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
