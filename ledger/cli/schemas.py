"""`ledger schemas check` and `ledger schemas list`: the event contract in schemas/."""

from __future__ import annotations

import argparse
import sys


def register(subparsers, common) -> None:
    group = subparsers.add_parser(
        "schemas", help="inspect and check the Avro event schemas",
        description="Inspect and check the Avro event schemas (schemas/<Event>/vN.avsc).",
    )
    commands = group.add_subparsers(dest="schemas_command", metavar="SUBCOMMAND", required=True)
    dir_help = "schema directory (env LEDGER_SCHEMAS_DIR, default: the repository's schemas/)"

    check = commands.add_parser(
        "check", parents=[common], help="prove every version reads every earlier one",
        description="Check that each schema version can read data written by every earlier version "
                    "(backward, transitive), that no field was removed or renamed, and that no two "
                    "versions share a fingerprint. Exit status 1 when any check fails.",
        epilog="example: ledger schemas check --dir schemas/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--dir", metavar="DIR", help=dir_help)
    check.set_defaults(func=run_check)

    listing = commands.add_parser(
        "list", parents=[common], help="list event types, versions and fingerprints",
        description="List every event type with its schema versions, fingerprints and files.",
        epilog="example: ledger schemas list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument("--dir", metavar="DIR", help=dir_help)
    listing.set_defaults(func=run_list)


def _print_versions(versions) -> None:
    for event_type, version_list in versions.items():
        print(event_type)
        for sv in version_list:
            print(f"  {sv.label:<4} {sv.fingerprint.hex()}  {sv.path}")


def run_list(args) -> int:
    from ledger.wire.codec import load_versions

    _print_versions(load_versions(args.dir))
    return 0


def run_check(args) -> int:
    from ledger.wire.codec import load_versions
    from ledger.wire.schema_check import find_problems

    _print_versions(load_versions(args.dir))
    problems = find_problems(args.dir)
    if not problems:
        print("ok")
        return 0
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stdout)
    print(f"{len(problems)} problem(s)", file=sys.stderr)
    return 1
