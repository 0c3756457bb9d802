"""`ledger simulate` commands (not yet built)."""


def register(subparsers, common) -> None:
    pass
