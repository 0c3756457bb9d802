"""What verify returns: each finding as a :class:`Problem` naming its entry, and the report.

The helpers at the end word the values a finding quotes (hashes as hex, stored rows as plain
tuples, long text cut short), so every check names things the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.errors import VerificationError

#: An entry whose decoded form cannot be derived (a problem already reported): its side rows are not compared.
UNKNOWN = object()


@dataclass(frozen=True)
class Problem:
    """One finding, naming the entry it concerns (when there is one)."""

    what: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    event_id: str | None = None
    seq: int | None = None

    def __str__(self) -> str:
        if self.topic is None:
            return self.what
        event = f" event_id {self.event_id}" if self.event_id else ""
        return f"{self.topic}[{self.partition}]@{self.offset} (seq {self.seq}{event}): {self.what}"


@dataclass
class VerifyReport:
    """What verify found: entries checked, problems (the first ``max_problems``), notes, flagged records."""

    checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem_count: int = 0
    flagged: list[Problem] = field(default_factory=list)  # records with implausible times (not problems)
    flagged_count: int = 0
    contradictions: int = 0  # entries of status contradiction (`ledger conflicts` lists them)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def raise_if_bad(self) -> None:
        if not self.ok:
            raise VerificationError(self.problems)



def hex_or_repr(value) -> str:
    """A hash as hex; anything else (a tampered column of another type, None) as its repr."""
    return value.hex() if isinstance(value, bytes) else repr(value)


def plain_row(row: tuple | None) -> str:
    """A stored row as its values, e.g. ``(1, 0)`` (the findings name rows this way, not by their type)."""
    return "None" if row is None else repr(tuple(row))


def shorten(value, limit: int = 120) -> str:
    """The repr of a stored or re-derived value, cut at ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."

