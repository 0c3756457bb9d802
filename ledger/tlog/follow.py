"""A witness that follows a log's published checkpoints instead of being called by the log.

:class:`Follower` takes one record of a checkpoints topic (key = origin, value = an
add-checkpoint body: ``old N``, the proof lines, an empty line, the signed checkpoint) and hands
the value to :meth:`Witness.add_checkpoint` unchanged, then says what happened as an
:class:`Outcome`. Where a log's own client would retry after a 409 (the witness has another
size), the follower does what it can without the log's tree:

* the witness has nothing for the origin: it cosigns the checkpoint as its first (``old 0``:
  trust on first use — a follower that starts late has no older checkpoint to check against);
* the checkpoint has the witness's size: resent with ``old <size>`` and no proof, so the same
  tree is a repeat and another root is refused by the witness as a fork (422, kept as evidence);
* it is older than the witness's size: a repeat if this follower cosigned that very tree
  (delivery is at least once, ``--from-beginning`` reads everything again), a fork if it
  cosigned another root at that size, otherwise skipped (nothing here can check it);
* it is newer but proves from another size: refused (a record was missed; no proof links them).

Outcomes: ``cosigned``, ``repeat``, ``skipped`` (fine), ``refused`` (a record the witness would
not take: malformed, unknown origin, bad signature, unlinkable) and ``alarm`` (the log signed
two views of one origin: a fork). The follower's own bookkeeping — its position per topic
partition and every tree it cosigned — lives in the witness's state file, in tables of its own
(:class:`FollowState`), so stopping and starting again resumes where it stopped.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import parse_checkpoint
from .errors import FormatError, TlogError
from .note import parse_note
from .witness import Witness, add_checkpoint_body, parse_add_checkpoint

_SCHEMA = """
CREATE TABLE IF NOT EXISTS follow_positions (   -- the next offset to read, per topic partition
    topic       TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS follow_cosigned (    -- every tree head this follower got cosigned
    origin TEXT NOT NULL,
    size   INTEGER NOT NULL,
    root   BLOB NOT NULL,
    PRIMARY KEY (origin, size)
);
"""

KINDS = ("cosigned", "repeat", "skipped", "refused", "alarm")


@dataclass(frozen=True)
class Outcome:
    """What the follower did with one record; ``reason`` says why in words."""

    kind: str  # one of KINDS
    origin: str | None
    size: int | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.kind in ("cosigned", "repeat", "skipped")


class FollowState:
    """The follower's positions and cosigned tree heads, in the witness's state file."""

    def __init__(self, path: str | Path):
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None)
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            raise TlogError(f"follower state {path}: {err}") from err

    def close(self) -> None:
        self._db.close()

    def positions(self, topic: str) -> dict[int, int]:
        return dict(self._db.execute("SELECT partition, next_offset FROM follow_positions WHERE topic = ?",
                                     (topic,)).fetchall())

    def save_positions(self, topic: str, positions: dict[int, int]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("INSERT INTO follow_positions (topic, partition, next_offset) VALUES (?, ?, ?) "
                             "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                             [(topic, p, o) for p, o in positions.items()])
        self._db.execute("COMMIT")

    def cosigned_root(self, origin: str, size: int) -> bytes | None:
        row = self._db.execute("SELECT root FROM follow_cosigned WHERE origin = ? AND size = ?",
                               (origin, size)).fetchone()
        if row is None:
            return None
        (root,) = row
        return bytes(root)

    def remember(self, origin: str, size: int, root: bytes) -> None:
        self._db.execute("INSERT OR IGNORE INTO follow_cosigned (origin, size, root) VALUES (?, ?, ?)",
                         (origin, size, root))


class Follower:
    """Feeds checkpoints-topic records to a :class:`Witness` and classifies the answers."""

    def __init__(self, witness: Witness, state: FollowState):
        self.witness, self.state = witness, state

    def take(self, key: bytes | None, value: bytes | None) -> Outcome:
        """One record of the checkpoints topic; never raises for a bad record."""
        if value is None:
            return Outcome("refused", None, None, "the record has no value (expected an add-checkpoint body)")
        try:
            request = parse_add_checkpoint(value)
            first_line = len(request.proof) + 3
            note = parse_note(request.checkpoint, first_line=first_line)
            head = parse_checkpoint(note.text, first_line=first_line)
        except FormatError as err:
            return Outcome("refused", None, None, f"malformed record: {err}")
        origin, size = head.origin, head.size
        if key is not None and key != origin.encode("utf-8"):
            shown = key.decode("utf-8", "replace")[:200]
            return Outcome("refused", origin, size, f"the record's key {shown!r} is not the checkpoint's origin")
        response = self.witness.add_checkpoint(value)
        if response.status == 409:
            return self._other_size(request, head, int(response.body.decode("ascii").strip()))
        return self._classify(response, head, "cosigned", f"consistent with size {request.old_size}"
                              if request.old_size else "the first checkpoint of this origin")

    def _other_size(self, request, head, stored: int) -> Outcome:
        origin, size = head.origin, head.size
        if stored == 0:
            response = self.witness.add_checkpoint(add_checkpoint_body(0, [], request.checkpoint))
            return self._classify(response, head, "cosigned", f"first seen for this origin: trusted on first use "
                                  f"(its proof from size {request.old_size} cannot be checked here)")
        if size == stored:
            response = self.witness.add_checkpoint(add_checkpoint_body(stored, [], request.checkpoint))
            return self._classify(response, head, "repeat", f"size {size} was cosigned already")
        if size < stored:
            root = self.state.cosigned_root(origin, size)
            if root == head.root:
                return Outcome("repeat", origin, size, f"cosigned already (the witness is at size {stored})")
            if root is not None:
                return Outcome("alarm", origin, size, f"fork: size {size} was cosigned with another root; the log "
                                                      "signed two trees of one size")
            return Outcome("skipped", origin, size, f"older than the cosigned size {stored} and not seen by this "
                                                    "follower: nothing here can check it")
        return Outcome("refused", origin, size, f"the record proves from size {request.old_size} but the witness "
                                                f"cosigned size {stored}: no proof links them (a record was "
                                                "missed; re-read the topic with --from-beginning)")

    def _classify(self, response, head, kind: str, reason: str) -> Outcome:
        origin, size = head.origin, head.size
        text = response.body.decode("utf-8", "replace").strip()
        if response.status == 200:
            self.state.remember(origin, size, head.root)
            return Outcome(kind, origin, size, reason)
        if response.status == 422:
            return Outcome("alarm", origin, size, f"fork: {text}")
        if response.status == 500:
            raise TlogError(f"the witness cannot use its state file: {text}")
        if response.status == 409:
            return Outcome("refused", origin, size, f"the witness's size changed meanwhile ({text})")
        return Outcome("refused", origin, size, f"{response.status}: {text}")
