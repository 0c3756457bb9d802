"""Signing checkpoints of the ledger's trees, never a fork; keeping them; proving entries under them.

:func:`issue_checkpoints` signs, for every topic-partition, a c2sp.org/tlog-checkpoint of its
committed tree (origin ``<log origin>/<topic>/<partition>``). Before signing it checks the tree
against the signer's own record of what it last signed for that origin — a JSON file beside the
key (``<key>.signed.json``), not in the ledger — with a consistency proof from the ledger's tiles.
A ledger restored from an old backup (a smaller tree) or rewritten (a root the proof does not
reach) is refused with :class:`ForkError`, so the key never signs two views of one log. Reading,
checking and recording that state happen under an exclusive ``flock`` on ``<key>.signed.json.lock``,
so a writer checkpointing on its own (``ledger consume --checkpoint-every``) and an operator's
``ledger checkpoint`` with the same key can never roll the record back between them.

:func:`publication_steps` turns the stored checkpoints into what the checkpoints topic carries:
each checkpoint with the consistency proof from the previous stored checkpoint of its origin
(ledger/ingest/checkpointing.py publishes them).

Beside a running writer: the trees are read in one read transaction (WAL: only committed batches,
and the writer is never blocked), and the checkpoints are inserted through a write connection of
our own (``BEGIN IMMEDIATE`` with a busy timeout). SQLite serialises that short transaction with
the writer's; it touches only the ``checkpoints`` table, so the writer's lock (store/lock.py),
which guards the entries, is not needed.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.errors import TlogError
from ledger.tlog.keyfile import safe_file_name
from ledger.tlog.merkle import verify_consistency
from ledger.tlog.note import Signer, b64, b64decode_strict

from ..errors import StoreError
from . import tiles


class ForkError(StoreError):
    """The ledger's tree is not an extension of what this key signed before: it will not sign."""


class UnknownEventError(StoreError):
    """No entry of the ledger has this event id."""


class NotCheckpointedError(StoreError):
    """The entry (or the asked-for origin) is not under a stored checkpoint yet."""


@dataclass(frozen=True)
class Issued:
    origin: str
    size: int
    root: bytes
    note: str
    previous_size: int  # what this signer had signed for the origin before (0: nothing)
    consistency: tuple[bytes, ...]  # proof from previous_size to size
    new: bool  # False: the same tree head was signed already


def origin_for(log_origin: str, topic: str, partition: int) -> str:
    return f"{log_origin}/{topic}/{partition}"


def state_path(key_path: str | os.PathLike) -> Path:
    """Where the signer records what it signed: beside the key file."""
    return Path(f"{key_path}.signed.json")


@contextmanager
def signer_lock(state: Path):
    """Exclusive for one signing (read the state, check, sign, record); blocks until a concurrent one ends."""
    lock = state.with_name(state.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as err:
        raise StoreError(f"cannot open the signer's lock file {lock}: {err.strerror}") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def load_state(path: Path) -> dict[str, tuple[int, bytes]]:
    """``{origin: (size, root)}`` last signed, from the signer's state file (empty if none)."""
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {o: (int(v["size"]), b64decode_strict(v["root"], f"{path} {o} root")) for o, v in raw.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, TlogError) as err:
        raise StoreError(f"the signer's state file {path} is unreadable ({err}); it records what this key "
                         "signed: restore it from its backup rather than deleting it") from err


def save_state(path: Path, state: dict[str, tuple[int, bytes]]) -> None:
    """Replace the state file atomically (and durably) before any checkpoint leaves this process."""
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps({o: {"size": s, "root": b64(r)} for o, (s, r) in sorted(state.items())}, indent=1)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def committed_trees(ledger_path: str | os.PathLike) -> dict[tuple[str, int], tuple[int, bytes]]:
    """Every partition's (size, root) as committed, read in one snapshot."""
    conn = _read_connection(ledger_path)
    try:
        conn.execute("BEGIN")
        return tiles.roots(conn)
    finally:
        conn.close()


def _read_connection(ledger_path) -> sqlite3.Connection:
    path = Path(ledger_path)
    if not path.exists():
        raise StoreError(f"no ledger file at {path}; check --db")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    if not tiles.has_tables(conn):
        conn.close()
        raise StoreError(f"{path} has no Merkle tiles; rebuild it with `ledger replay --into NEW.db`")
    return conn


def issue_checkpoints(ledger_path: str | os.PathLike, signer: Signer, key_path: str | os.PathLike,
                      log_origin: str, *, now_ms: int | None = None) -> list[Issued]:
    """Sign a checkpoint of every committed tree consistent with what ``signer`` signed; store them."""
    if not (signer.name == log_origin or log_origin.startswith(signer.name + "/")):
        raise StoreError(f"the key is named {signer.name!r} but the log origin is {log_origin!r}: a log key's "
                         "name is the log origin (LEDGER_LOG_ORIGIN) or a '/'-prefix of it")
    spath = state_path(key_path)
    with signer_lock(spath):
        state = load_state(spath)
        issued = _sign_consistent(ledger_path, signer, log_origin, state)
        for item in issued:
            state[item.origin] = (item.size, item.root)
        save_state(spath, state)  # recorded before the checkpoints are stored or published
        # Stored under the lock too, so the ledger's checkpoints appear in the order they were signed.
        store_checkpoints(ledger_path, issued, now_ms)
    return issued


def _sign_consistent(ledger_path, signer: Signer, log_origin: str, state) -> list[Issued]:
    conn = _read_connection(ledger_path)
    issued: list[Issued] = []
    try:
        conn.execute("BEGIN")
        for (topic, partition), (size, root) in tiles.roots(conn).items():
            origin = origin_for(log_origin, topic, partition)
            old_size, old_root = state.get(origin, (0, b""))
            proof: list[bytes] = []
            if size < old_size:
                raise ForkError(f"{origin}: the ledger's tree has {size} leaves but this key signed {old_size} "
                                "before: the ledger was restored from an older copy or rewritten. Not signing; "
                                "restore the newest copy (or replay from Kafka)")
            if 0 < old_size:
                reader = tiles.reader(conn, topic, partition)
                proof = reader.consistency_proof(old_size, size) if old_size < size else []
                try:
                    if old_size == size:
                        if root != old_root:
                            raise ForkError(f"{origin}: same size {size}, other root")
                    else:
                        verify_consistency(old_size, size, proof, old_root, root)
                except TlogError as err:
                    raise ForkError(f"{origin}: the ledger's tree of {size} leaves is not consistent with the "
                                    f"{old_size}-leaf tree this key signed ({err}): the history was rewritten. "
                                    "Not signing") from err
            note = Checkpoint(origin, size, root).sign([signer])
            issued.append(Issued(origin, size, root, note, old_size, tuple(proof), (old_size, old_root) != (size, root)))
    finally:
        conn.close()
    return issued


def store_checkpoints(ledger_path, issued: list[Issued], now_ms: int | None = None) -> None:
    """Insert the checkpoints through our own write connection (serialised with the writer's by SQLite)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        conn = sqlite3.connect(ledger_path, isolation_level=None, timeout=10)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR IGNORE INTO checkpoints (origin, size, root, note, signed_at) "
                             "VALUES (?, ?, ?, ?, ?)", [(i.origin, i.size, i.root, i.note, now) for i in issued])
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise StoreError(f"cannot store the checkpoints in {ledger_path}: {err}") from err


def write_checkpoint_files(out_dir: str | os.PathLike, issued: list[Issued]) -> list[Path]:
    """One file per origin in ``out_dir`` (``<safe origin>.checkpoint``), each replaced atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for item in issued:
        path = out / f"{safe_file_name(item.origin)}.checkpoint"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(item.note, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written


@dataclass(frozen=True)
class PublicationStep:
    """One record of the checkpoints topic: a stored checkpoint and the proof from its predecessor."""

    origin: str
    old_size: int  # the previous stored checkpoint's size for the origin (0: none)
    size: int
    proof: tuple[bytes, ...]  # consistency proof from old_size to size (empty when old_size is 0)
    note: str  # the signed checkpoint as stored, with any cosignatures


def publication_steps(ledger_path: str | os.PathLike, log_origin: str, after: dict[str, int],
                      *, limit_per_origin: int = 1000) -> list[PublicationStep]:
    """The stored checkpoints of this log above ``after[origin]`` (0 if absent), oldest first per origin.

    Each carries the consistency proof from the stored checkpoint just below it, so the steps of
    one origin chain: a witness that took one can take the next. Deterministic (the same
    checkpoint and proof each time; the note may have gained cosignatures), so publishing a step
    again is a repeat a follower recognises. At most
    ``limit_per_origin`` steps per origin (the rest come on the next call).
    """
    conn = _read_connection(ledger_path)
    steps: list[PublicationStep] = []
    try:
        conn.execute("BEGIN")
        readers: dict[str, object] = {}
        prefix = log_origin + "/"
        for origin in [o for (o,) in conn.execute("SELECT DISTINCT origin FROM checkpoints ORDER BY origin")]:
            if not origin.startswith(prefix):
                continue  # signed under another log origin (the setting changed): not this log's
            topic, _, part = origin[len(prefix):].rpartition("/")
            start = after.get(origin, 0)
            below = conn.execute("SELECT max(size) FROM checkpoints WHERE origin = ? AND size <= ?",
                                 (origin, start)).fetchone()[0]
            old = below or 0
            for size, note in conn.execute("SELECT size, note FROM checkpoints WHERE origin = ? AND size > ? "
                                           "ORDER BY size LIMIT ?", (origin, start, limit_per_origin)).fetchall():
                proof: list[bytes] = []
                if old:
                    reader = readers.get(origin) or readers.setdefault(origin, tiles.reader(conn, topic, int(part)))
                    proof = reader.consistency_proof(old, size)
                steps.append(PublicationStep(origin, old, size, tuple(proof), note))
                old = size
    finally:
        conn.close()
    return steps


def latest_checkpoint(conn: sqlite3.Connection, origin: str) -> tuple[int, str] | None:
    """The stored checkpoint of ``origin`` with the largest size: (size, note), or None."""
    row = conn.execute("SELECT size, note FROM checkpoints WHERE origin = ? ORDER BY size DESC LIMIT 1",
                       (origin,)).fetchone()
    return None if row is None else tuple(row)


def prove_event(ledger_path: str | os.PathLike, event_id: str, log_origin: str) -> str:
    """The c2sp.org/tlog-proof@v1 receipt of an event's entry under the latest stored checkpoint."""
    from ledger.tlog.chain import leaf_bytes
    from ledger.tlog.receipt import make_receipt

    from .read import Entry
    from .schema import ENTRY_COLUMNS

    conn = _read_connection(ledger_path)
    try:
        conn.execute("BEGIN")
        row = conn.execute("SELECT seq FROM event_ids WHERE event_id = ?", (event_id,)).fetchone()
        if row is None:
            raise UnknownEventError(f"no entry with event_id {event_id!r} in {ledger_path}")
        cols = conn.execute(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries WHERE seq = ?", row).fetchone()  # (seq,)
        entry = Entry(*cols)
        origin = origin_for(log_origin, entry.topic, entry.partition)
        latest = latest_checkpoint(conn, origin)
        index = tiles.leaf_index(conn, entry.topic, entry.partition, entry.offset)
        if latest is None or latest[0] <= index:
            raise NotCheckpointedError(f"event {event_id} (leaf {index} of {origin}) is not under a stored checkpoint yet; "
                             "run `ledger checkpoint --key FILE` first")
        size, note = latest
        proof = tiles.reader(conn, entry.topic, entry.partition).inclusion_proof(index, size)
        return make_receipt(leaf_bytes(entry.record())[1:], index, proof, note)
    finally:
        conn.close()


def prove_consistency(ledger_path: str | os.PathLike, old_note: str, log_origin: str) -> tuple[str, int, int, list[bytes]]:
    """(origin, old size, latest size, proof) from an old checkpoint to the latest stored one of its origin."""
    from ledger.tlog.checkpoint import parse_checkpoint
    from ledger.tlog.note import parse_note

    old = parse_checkpoint(parse_note(old_note).text)
    prefix = log_origin + "/"
    if not old.origin.startswith(prefix):
        raise StoreError(f"the checkpoint's origin {old.origin!r} is not one of this log ({log_origin!r})")
    topic, _, part = old.origin[len(prefix):].rpartition("/")
    if not (topic and part.isdigit()):
        raise StoreError(f"the checkpoint's origin {old.origin!r} does not name <topic>/<partition>")
    conn = _read_connection(ledger_path)
    try:
        conn.execute("BEGIN")
        latest = latest_checkpoint(conn, old.origin)
        if latest is None or latest[0] < old.size:
            raise StoreError(f"no stored checkpoint of {old.origin} at or beyond size {old.size}")
        reader = tiles.reader(conn, topic, int(part))
        if reader.root(old.size) != old.root:
            raise ForkError(f"{old.origin}: the ledger's tree at size {old.size} has another root than the "
                            "checkpoint given: they are different histories")
        return old.origin, old.size, latest[0], reader.consistency_proof(old.size, latest[0])
    finally:
        conn.close()


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint kept in the ledger: the newest one of its origin, as signed (with any cosignatures)."""

    origin: str
    size: int
    root: bytes
    note: str
    signed_at_ms: int


def latest_checkpoints(ledger_path: str | os.PathLike) -> list[StoredCheckpoint]:
    """The largest stored checkpoint of every origin, sorted by origin, read in one snapshot."""
    conn = _read_connection(ledger_path)
    try:
        conn.execute("BEGIN")
        rows = conn.execute(
            "SELECT c.origin, c.size, c.root, c.note, c.signed_at FROM checkpoints c "
            "JOIN (SELECT origin, max(size) AS size FROM checkpoints GROUP BY origin) m "
            "ON c.origin = m.origin AND c.size = m.size ORDER BY c.origin").fetchall()
    finally:
        conn.close()
    return [StoredCheckpoint(o, s, bytes(r), n, t) for o, s, r, n, t in rows]


def consistency_from_size(ledger_path: str | os.PathLike, origin: str, old_size: int,
                          log_origin: str) -> tuple[StoredCheckpoint, list[bytes]]:
    """(latest checkpoint of ``origin``, consistency proof from ``old_size`` to its size).

    ValidationError (field ``origin`` or ``old_size``) when the origin is not one of this log's or
    ``old_size`` is 0 or above the latest checkpoint's size (RFC 6962 proves nothing from an empty
    tree); NotCheckpointedError when the origin has no stored checkpoint.
    """
    from ..errors import ValidationError

    prefix = log_origin + "/"
    topic, _, part = origin[len(prefix):].rpartition("/") if origin.startswith(prefix) else ("", "", "")
    if not (topic and part.isdigit()):
        raise ValidationError("origin", f"{origin!r} is not <log origin>/<topic>/<partition> of this log "
                                        f"({log_origin!r})")
    conn = _read_connection(ledger_path)
    try:
        conn.execute("BEGIN")
        row = conn.execute("SELECT origin, size, root, note, signed_at FROM checkpoints WHERE origin = ? "
                           "ORDER BY size DESC LIMIT 1", (origin,)).fetchone()
        if row is None:
            raise NotCheckpointedError(f"no stored checkpoint of {origin}")
        stored_origin, size, root, note, signed_at = row
        latest = StoredCheckpoint(stored_origin, size, bytes(root), note, signed_at)
        if not 0 < old_size <= latest.size:
            raise ValidationError("old_size", f"{old_size} is not from 1 to the latest checkpoint's size {latest.size}")
        proof = tiles.reader(conn, topic, int(part)).consistency_proof(old_size, latest.size) \
            if old_size < latest.size else []
        return latest, proof
    finally:
        conn.close()
