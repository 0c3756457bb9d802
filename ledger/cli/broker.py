"""`ledger broker` commands (not yet built)."""


def register(subparsers, common) -> None:
    pass
