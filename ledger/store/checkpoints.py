"""Signing checkpoints of the ledger's trees, never a fork; keeping them; proving entries under them.

:func:`issue_checkpoints` signs, for every topic-partition, a c2sp.org/tlog-checkpoint of its
committed tree (origin ``<log origin>/<topic>/<partition>``). Before signing it checks the tree
against the signer's own record of what it last signed for that origin — a JSON file beside the
key (``<key>.signed.json``), not in the ledger — with a consistency proof from the ledger's tiles.
A ledger restored from an old backup (a smaller tree) or rewritten (a root the proof does not
reach) is refused with :class:`ForkError`, so the key never signs two views of one log.

Beside a running writer: the trees are read in one read transaction (WAL: only committed batches,
and the writer is never blocked), and the checkpoints are inserted through a write connection of
our own (``BEGIN IMMEDIATE`` with a busy timeout). SQLite serialises that short transaction with
the writer's; it touches only the ``checkpoints`` table, so the writer's lock (store/lock.py),
which guards the entries, is not needed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
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
    state = load_state(spath)
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
    for item in issued:
        state[item.origin] = (item.size, item.root)
    save_state(spath, state)  # recorded before the checkpoints are stored or published
    store_checkpoints(ledger_path, issued, now_ms)
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
            raise StoreError(f"no entry with event_id {event_id!r} in {ledger_path}")
        cols = conn.execute(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries WHERE seq = ?", row).fetchone()  # (seq,)
        entry = Entry(*cols)
        origin = origin_for(log_origin, entry.topic, entry.partition)
        latest = latest_checkpoint(conn, origin)
        index = tiles.leaf_index(conn, entry.topic, entry.partition, entry.offset)
        if latest is None or latest[0] <= index:
            raise StoreError(f"event {event_id} (leaf {index} of {origin}) is not under a stored checkpoint yet; "
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
