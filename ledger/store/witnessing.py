"""Witness cosignatures for the checkpoints just signed, kept in the ledger beside the log's signature.

    witnessed = cosign_with_witnesses(ledger_path, issued, log_origin, clients)
    witnessed.issued          # the same checkpoints, each note now carrying every cosignature stored
    witnessed.outcomes        # per origin and witness: who cosigned, or the WitnessError saying why not

Each checkpoint goes to every witness with the consistency proof from the size this log key signed
before for its origin (``Issued.previous_size``; 0 and no proof for a first one). A witness that
answers 409 gets a proof from the size it reports, read from the ledger's tiles (any past size is
provable); a larger size than the log's tree is a :class:`~ledger.tlog.witness_client.WitnessAlarm`.
A checkpoint that already carries a cosignature of every trusted witness key is not sent again;
a witness found unreachable is not asked again for the other origins of the same run.

The cosignatures are appended to the stored note in one short write transaction (the
``checkpoints`` table lets a note only grow), re-reading the note inside it so that two
checkpointers never store the same witness key twice. A witness that fails leaves the
checkpoint stored as it was: what to do about too few cosignatures is the caller's decision.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ledger.tlog.errors import TlogError
from ledger.tlog.note import Verifier, parse_note, verified_signatures
from ledger.tlog.witness_client import WitnessAlarm, WitnessClient, WitnessError, WitnessUnreachable

from ..errors import StoreError
from . import tiles
from .checkpoints import Issued, _read_connection


@dataclass(frozen=True)
class Outcome:
    """One witness's answer for one origin: the key names that cosigned, or why not."""

    origin: str
    witness: str  # the witness's URL
    cosigners: tuple[str, ...] = ()  # "<name>+<key id>" of the verified cosignatures it returned
    error: TlogError | None = None  # a WitnessError, or the ledger unable to prove from the witness's size

    @property
    def alarm(self) -> bool:
        return isinstance(self.error, WitnessAlarm)


@dataclass(frozen=True)
class Witnessed:
    issued: list[Issued]
    outcomes: list[Outcome]
    skipped: tuple[str, ...]  # origins already cosigned by every trusted witness key: not sent again

    def cosigners(self, origin: str, verifiers: Sequence[Verifier]) -> list[str]:
        """The trusted witness keys whose cosignature the stored note of ``origin`` carries."""
        item = next(i for i in self.issued if i.origin == origin)
        return sorted(f"{n}+{k:08x}" for n, k in _cosigned_by(item.note, verifiers))


def cosign_with_witnesses(ledger_path, issued: Sequence[Issued], log_origin: str,
                          clients: Sequence[WitnessClient]) -> Witnessed:
    """Submit every checkpoint to every witness, verify and store the cosignatures; see the module doc."""
    verifiers = _trusted(clients)
    everyone = {(v.name, v.key_id) for v in verifiers}
    conn = _read_connection(ledger_path)
    outcomes: list[Outcome] = []
    gained: dict[tuple[str, int], list[str]] = {}
    skipped = []
    notes: dict[tuple[str, int], str] = {}
    down: dict[str, WitnessError] = {}
    try:
        for item in issued:
            stored = notes[(item.origin, item.size)] = _stored_note(conn, item) or item.note
            have = _cosigned_by(stored, verifiers)
            if have >= everyone:
                skipped.append(item.origin)
                continue
            topic, partition = _topic_partition(item.origin, log_origin)

            def proof_from(old: int, item=item, topic=topic, partition=partition) -> list[bytes]:
                return tiles.reader(conn, topic, partition).consistency_proof(old, item.size)

            for client in clients:
                if client.url in down:  # unreachable once in this run: do not wait for it again per origin
                    outcomes.append(Outcome(item.origin, client.url, error=down[client.url]))
                    continue
                try:
                    verified = client.cosign(item.note, item.size, item.previous_size, item.consistency, proof_from)
                except WitnessError as err:
                    if isinstance(err, WitnessUnreachable):
                        down[client.url] = err
                    outcomes.append(Outcome(item.origin, client.url, error=err))
                    continue
                except TlogError as err:  # the ledger cannot prove from the size the witness holds
                    outcomes.append(Outcome(item.origin, client.url, error=TlogError(
                        f"witness {client.url}: the ledger cannot prove its tree from the size the witness "
                        f"holds: {err}")))
                    continue
                except sqlite3.Error as err:
                    raise StoreError(f"cannot read the tiles of {item.origin} in {ledger_path}: {err}") from err
                names = tuple(f"{v.verifier.name}+{v.verifier.key_id:08x}" for v in verified)
                outcomes.append(Outcome(item.origin, client.url, names))
                gained.setdefault((item.origin, item.size), []).extend(v.signature.format() for v in verified)
    finally:
        conn.close()
    notes.update(_append_cosignatures(ledger_path, gained, verifiers))
    updated = [replace(i, note=notes[(i.origin, i.size)]) for i in issued]
    return Witnessed(updated, outcomes, tuple(skipped))


def _trusted(clients: Sequence[WitnessClient]) -> list[Verifier]:
    seen: dict[tuple[str, int], Verifier] = {}
    for client in clients:
        for v in client.verifiers:
            seen.setdefault((v.name, v.key_id), v)
    return list(seen.values())


def _topic_partition(origin: str, log_origin: str) -> tuple[str, int]:
    topic, _, part = origin[len(log_origin) + 1:].rpartition("/")
    if not origin.startswith(log_origin + "/") or not topic or not part.isdigit():
        raise StoreError(f"origin {origin!r} is not <log origin>/<topic>/<partition> of {log_origin!r}")
    return topic, int(part)


def _cosigned_by(note_text: str, verifiers: Sequence[Verifier]) -> set[tuple[str, int]]:
    """(name, key ID) of every trusted witness key with a valid cosignature on the note."""
    try:
        return {(v.verifier.name, v.verifier.key_id) for v in verified_signatures(parse_note(note_text), verifiers)}
    except TlogError:  # a stored cosignature that fails would be a damaged ledger; `ledger verify` names it
        return set()


def _stored_note(conn: sqlite3.Connection, item: Issued) -> str | None:
    row = conn.execute("SELECT note FROM checkpoints WHERE origin = ? AND size = ?",
                       (item.origin, item.size)).fetchone()
    if row is None:
        return None
    (note,) = row
    return note


def _append_cosignatures(ledger_path, gained: dict[tuple[str, int], list[str]],
                         verifiers: Sequence[Verifier]) -> dict[tuple[str, int], str]:
    """Append each new cosignature line to its stored note unless that key is there already."""
    if not gained:
        return {}
    notes = {}
    try:
        conn = sqlite3.connect(ledger_path, isolation_level=None, timeout=10)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("BEGIN IMMEDIATE")
            for (origin, size), lines in gained.items():
                row = conn.execute("SELECT note FROM checkpoints WHERE origin = ? AND size = ?",
                                   (origin, size)).fetchone()
                if row is None:
                    raise StoreError(f"the checkpoint of {origin} at size {size} is not in the ledger")
                (note,) = row
                have, add = _cosigned_by(note, verifiers), []
                for line in lines:
                    key = _line_key(line)
                    if key not in have:
                        have.add(key)
                        add.append(line)
                if add:
                    conn.execute("UPDATE checkpoints SET note = note || ? WHERE origin = ? AND size = ?",
                                 ("".join(add), origin, size))
                notes[(origin, size)] = note + "".join(add)
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise StoreError(f"cannot store the witnesses' cosignatures in {ledger_path}: {err}") from err
    return notes


def _line_key(line: str) -> tuple[str, int]:
    sig = parse_note("x\n\n" + line).signatures[0]
    return sig.name, sig.key_id
