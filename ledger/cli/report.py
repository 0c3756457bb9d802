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

With proofs (--format json only): --proofs gives the auditor's report a
receipt (c2sp.org/tlog-proof@v1) for every line, under the latest checkpoint
of its partition (run `ledger checkpoint` first). A subject report never
carries receipts (leaf data would let the customer test guesses of hidden
ids): --sign-key FILE gives each line its log position (origin, index), adds
the signed checkpoints they fall under and signs the whole report (RFC 8785
canonical JSON) with a report key of its own (`ledger keys generate NAME
--out DIR --report`). --sign-key also signs an auditor's report (and implies
--proofs). Check either offline with `ledger verify-report`.

example:
  ledger report cust-000042 --format html --output cust-000042.html
  ledger report cust-000042 --audience auditor --as-of 2026-03-01T00:00:00Z --format json
  ledger report cust-000042 --audience auditor --proofs --output proved.json
  ledger report cust-000042 --sign-key keys/reports.example.com.key --output signed.json

--output refuses to write over the ledger file (by inode: a symlink or another
path to it is the same file) or any SQLite file, and over an existing file
unless --force is given.
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
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout (never over the ledger or "
                                                     "another SQLite file; an existing FILE only with --force)")
    p.add_argument("--force", action="store_true", help="let --output replace an existing file")
    p.add_argument("--as-of", metavar="T", help="as the ledger stood at recorded time T")
    p.add_argument("--policy", metavar="FILE", help="auditor: judge the promises section by this draft policy "
                                                    "(default: the policy the ledger recorded, if any)")
    p.add_argument("--lookback-years", type=int, default=6, metavar="N",
                   help="how far back the accounting of disclosures looks (default 6)")
    p.add_argument("--exclude-purpose", action="append", metavar="CODE",
                   help="purpose left out of the accounting, with its dotted children (repeatable; "
                        "replaces the default essential.service, essential.billing, essential.account)")
    p.add_argument("--exclude-recipient-kind", action="append", metavar="KIND",
                   help="recipient kind left out of the accounting (repeatable; default none)")
    p.add_argument("--include-consented", action="store_true",
                   help="also account for disclosures made under the customer's consent")
    p.add_argument("--proofs", action="store_true",
                   help="json: a receipt per line (auditor) or log positions and checkpoints (subject, with "
                        "--sign-key)")
    p.add_argument("--sign-key", metavar="FILE", help="sign the report with this report key (mode 0600; not "
                                                       "the log's key); implies --proofs")
    p.add_argument("--log-origin", metavar="ORIGIN", help="log origin of the checkpoints (env LEDGER_LOG_ORIGIN)")
    p.set_defaults(func=run)


def rules_from(args):
    from ledger.audit.report import AccountingRules

    return AccountingRules.from_options(args.exclude_purpose, args.exclude_recipient_kind, args.include_consented,
                                        args.lookback_years)


def _proof_options(args):
    """(with proofs?, report signer or None), refusing combinations that cannot be proved."""
    from ..errors import ValidationError

    proofs = args.proofs or bool(args.sign_key)
    if not proofs:
        return False, None
    option = "--sign-key" if args.sign_key else "--proofs"
    if args.format != "json":
        raise ValidationError(option, f"proofs are carried by the JSON report only; use --format json, not "
                              f"{args.format}")
    if args.audience == "subject" and not args.sign_key:
        raise ValidationError("--proofs", "a subject report holds no receipts (they would hand out leaf data); it "
                              "is proved by its signature: give --sign-key FILE, a report key made with "
                              "`ledger keys generate NAME --out DIR --report`")
    signer = None
    if args.sign_key:
        from ledger.tlog.keyfile import load_signer

        signer = load_signer(args.sign_key)
    return True, signer


def run(args) -> int:
    from ledger.audit.report import build_report, render

    from .query import open_ledger

    rules = rules_from(args)
    proofs, signer = _proof_options(args)
    policy = None
    if args.policy:
        from ledger.model.policy import load

        policy = load(args.policy)  # a refused file is a PolicyError: exit 1 with its line, no report
    log_origin = None
    if proofs:
        from ledger.audit.report.proofs import check_report_key

        from .tlog import _settings

        log_origin = _settings(args).log_origin
        if signer is not None:
            check_report_key(signer, log_origin)
    with open_ledger(args) as ledger:
        if proofs:
            from ledger.audit.report.proofs import build_report_with_proofs

            report = build_report_with_proofs(ledger, args.subject, audience=args.audience, log_origin=log_origin,
                                              as_of=args.as_of, rules=rules, policy=policy)
        else:
            report = build_report(ledger, args.subject, audience=args.audience, as_of=args.as_of, rules=rules,
                                  policy=policy)
        ledger_path = ledger.path
    if proofs:
        from ledger.audit.report.proofs import render_proved

        text = render_proved(report, signer)
    else:
        text = render(report, args.format)
    if args.output:
        write_output(args.output, text.encode("utf-8"), ledger_path, force=args.force)
        print(f"wrote {args.output} ({len(report.timeline)} events, "
              f"{report.accounting['disclosures']} accountable disclosures)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


SQLITE_HEADER = b"SQLite format 3\x00"


def write_output(target: str, data: bytes, ledger_path, *, force: bool) -> None:
    """Write ``data`` to ``target``, never over the ledger, its WAL or any SQLite file.

    The checks run on the opened descriptor (its inode and first bytes), not on
    the name, so a symlink or a file swapped in between cannot slip past them;
    nothing is truncated until they passed. Without ``force`` the file must not
    exist (``O_EXCL``).
    """
    import os
    import stat

    from ..errors import ValidationError

    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | (0 if force else os.O_EXCL)
    try:
        fd = os.open(target, flags, 0o644)
    except FileExistsError:
        raise ValidationError("--output", f"{target} exists; pass --force to replace it") from None
    except OSError as err:
        raise ValidationError("--output", f"cannot write {target}: {err.strerror}") from None
    try:
        st = os.fstat(fd)
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                other = os.stat(f"{ledger_path}{suffix}")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino):
                raise ValidationError("--output", f"{target} is the ledger file{suffix and ' ' + suffix[1:]} "
                                      f"({ledger_path}{suffix}); refusing to overwrite it")
        regular = stat.S_ISREG(st.st_mode)  # not /dev/stdout, a pipe or a terminal
        if regular and os.pread(fd, len(SQLITE_HEADER), 0) == SQLITE_HEADER:
            raise ValidationError("--output", f"{target} is an SQLite database; refusing to overwrite it")
        if regular:
            os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError as err:
        raise ValidationError("--output", f"cannot write {target}: {err.strerror}") from None
    finally:
        os.close(fd)
