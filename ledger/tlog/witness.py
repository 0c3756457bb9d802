"""A witness (c2sp.org/tlog-witness): cosign checkpoints only when consistent with what it saw.

Pure protocol logic with its own SQLite state file; no HTTP server here (the binding comes
later and only maps requests to :meth:`Witness.add_checkpoint` and :meth:`Witness.checkpoint_for`).

``POST <prefix>/add-checkpoint`` body::

    old <size>
    <0..63 base64 consistency proof lines>
    <empty line>
    <signed checkpoint>

Answers (status, content type, body), checked in this order:

    400  malformed body (bad old line, > 63 proof lines, bad checkpoint, too large), or old > size
    404  origin not covered by a trusted log key (or above the origins-per-key bound)
    403  no signature by a trusted log key for the origin, or a trusted key's signature fails
    409  old ≠ the size of the latest cosigned checkpoint; body "<size>\\n", text/x.tlog.size
    422  size 0 with a root other than SHA-256(""), a proof with old 0, equal sizes with another
         root, or a consistency proof that does not verify
    200  one cosignature line per witness key (timestamped Ed25519 v1, type 0x04)

The size check and the update run in one ``BEGIN IMMEDIATE`` transaction (the spec's race
note), so two requests can never roll the stored size back. A validly signed checkpoint that is
refused (400 old > size, 409, 422) is kept in ``evidence`` (deduplicated, with a count): it
may prove that the log misbehaved. The origins one log key may use are bounded
(``max_origins_per_key``); a foreign witness must be configured with each partition's origin
``<log origin>/<topic>/<partition>``, or with the log origin as the key name.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import key_covers, parse_checkpoint, parse_size
from .errors import FormatError, ProofError, SignatureError, TlogError
from .merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from .note import COSIGNATURE_V1, ED25519, Signer, Verifier, b64, b64decode_strict, parse_note, verified_signatures

MAX_REQUEST_BYTES = 64 * 1024
MAX_PROOF_LINES = 63
DEFAULT_MAX_ORIGINS_PER_KEY = 4096
SIZE_CONTENT_TYPE = "text/x.tlog.size"
TEXT = "text/plain; charset=utf-8"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    origin        TEXT PRIMARY KEY,
    origin_sha256 TEXT NOT NULL UNIQUE,   -- hex, for GET <prefix>/<origin hash>/checkpoint
    size          INTEGER NOT NULL,
    root          BLOB NOT NULL,
    checkpoint    TEXT NOT NULL,          -- note text, the log signatures verified, our cosignatures
    updated_at    INTEGER NOT NULL        -- POSIX seconds
);
CREATE TABLE IF NOT EXISTS evidence (
    id           INTEGER PRIMARY KEY,
    origin       TEXT NOT NULL,
    note_sha256  BLOB NOT NULL,
    old_size     INTEGER NOT NULL,
    status       INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    size         INTEGER NOT NULL,
    root         BLOB NOT NULL,
    checkpoint   TEXT NOT NULL,           -- the signed checkpoint as submitted
    proof        TEXT NOT NULL,           -- the proof lines as submitted
    stored_size  INTEGER NOT NULL,        -- what the witness had cosigned then
    stored_root  BLOB,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    UNIQUE (origin, note_sha256, old_size, status)
);
"""


@dataclass(frozen=True)
class Response:
    """What the HTTP binding sends: status code, Content-Type and body."""

    status: int
    content_type: str
    body: bytes

    @classmethod
    def text(cls, status: int, message: str) -> "Response":
        return cls(status, TEXT, (message.rstrip("\n") + "\n").encode("utf-8"))


@dataclass(frozen=True)
class AddCheckpointRequest:
    old_size: int
    proof: tuple[bytes, ...]
    proof_text: str
    checkpoint: str  # the signed checkpoint note as submitted


class _Refusal(Exception):
    def __init__(self, response: Response, evidence: str | None = None):
        self.response, self.evidence = response, evidence


def add_checkpoint_body(old_size: int, proof, checkpoint: str) -> bytes:
    """The add-checkpoint body for a signed checkpoint and the proof from ``old_size`` (inverse of the parser)."""
    if len(proof) > MAX_PROOF_LINES:
        raise FormatError("add-checkpoint request", f"{len(proof)} consistency proof lines; at most {MAX_PROOF_LINES}")
    lines = [f"old {old_size}", *(b64(h) for h in proof)]
    return ("\n".join(lines) + "\n\n" + checkpoint).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Read an add-checkpoint body strictly; FormatError names the line and the problem."""
    what = "add-checkpoint request"
    if len(body) > MAX_REQUEST_BYTES:
        raise FormatError(what, f"{len(body)} bytes is above the {MAX_REQUEST_BYTES}-byte limit")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FormatError(what, f"not valid UTF-8 (byte {err.start})") from None
    end = text.find("\n\n")
    if end < 0:
        raise FormatError(what, "no empty line between the proof and the checkpoint")
    lines = text[:end].split("\n")
    if not lines[0].startswith("old "):
        raise FormatError(what, "the first line must be 'old <size>'", 1)
    old = parse_size(lines[0][4:], f"{what} old size", 1)
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise FormatError(what, f"{len(proof_lines)} consistency proof lines; at most {MAX_PROOF_LINES}", 2)
    proof = []
    for number, line in enumerate(proof_lines, 2):
        raw = b64decode_strict(line, f"{what} proof line", number)
        if len(raw) != HASH_SIZE:
            raise FormatError(f"{what} proof line", f"is {len(raw)} bytes, not 32", number)
        proof.append(raw)
    return AddCheckpointRequest(old, tuple(proof), "\n".join(proof_lines), text[end + 2:])


class Witness:
    """One witness: its cosigner key(s), the log keys it trusts, and its state file."""

    def __init__(self, cosigners, log_verifiers, state_path: str | Path, *,
                 max_origins_per_key: int = DEFAULT_MAX_ORIGINS_PER_KEY, clock=time.time):
        self.cosigners: list[Signer] = list(cosigners)
        if not self.cosigners or any(s.sig_type != COSIGNATURE_V1 for s in self.cosigners):
            raise TlogError("a witness needs at least one cosigner key, each of signature type 04")
        self.logs: list[Verifier] = list(log_verifiers)
        if not self.logs or any(v.sig_type != ED25519 for v in self.logs):
            raise TlogError("a witness needs at least one log verifier key, each of signature type 01")
        self.max_origins_per_key = max_origins_per_key
        self.clock = clock
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(state_path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            raise TlogError(f"witness state {state_path}: {err}") from err

    def close(self) -> None:
        self._db.close()

    # --- add-checkpoint ---------------------------------------------------------------------------

    def add_checkpoint(self, body: bytes) -> Response:
        """Handle one add-checkpoint request body; never raises for a bad request."""
        try:
            request = parse_add_checkpoint(body)
            first_line = len(request.proof) + 3  # after the old line, the proof and the empty line
            note = parse_note(request.checkpoint, first_line=first_line)
            checkpoint = parse_checkpoint(note.text, first_line=first_line)
        except FormatError as err:
            return Response.text(400, str(err))
        covering = [v for v in self.logs if key_covers(v.name, checkpoint.origin)]
        if not covering:
            return Response.text(404, f"unknown origin {checkpoint.origin!r}")
        try:
            verified = verified_signatures(note, covering)
        except SignatureError as err:
            return Response.text(403, str(err))
        if not verified:
            return Response.text(403, f"no signature by a trusted log key for {checkpoint.origin!r}")
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    response = self._check_and_cosign(request, note, checkpoint, verified)
                    self._db.execute("COMMIT")
                    return response
                except _Refusal as refusal:
                    if refusal.evidence is not None:
                        self._keep_evidence(request, checkpoint, refusal)
                    self._db.execute("COMMIT")
                    return refusal.response
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:  # the state file is unusable: not the client's fault
                return Response.text(500, f"witness state: {err}")

    def _check_and_cosign(self, request, note, checkpoint, verified) -> Response:
        origin = checkpoint.origin
        row = self._db.execute("SELECT size, root FROM checkpoints WHERE origin = ?", (origin,)).fetchone()
        stored_size, stored_root = 0, None
        if row is not None:
            stored_size, root = row
            stored_root = bytes(root)
        self._stored = (stored_size, stored_root)
        if row is None:
            key = next(v for v in verified).verifier.name
            count = sum(1 for (o,) in self._db.execute("SELECT origin FROM checkpoints") if key_covers(key, o))
            if count >= self.max_origins_per_key:
                raise _Refusal(Response.text(404, f"unknown origin {origin!r}: this witness accepts at most "
                                                  f"{self.max_origins_per_key} origins for log key {key}"))
        if request.old_size > checkpoint.size:
            raise _Refusal(Response.text(400, f"old size {request.old_size} is above the checkpoint size "
                                              f"{checkpoint.size}"), "old size above checkpoint size")
        if request.old_size != stored_size:
            raise _Refusal(Response(409, SIZE_CONTENT_TYPE, f"{stored_size}\n".encode("ascii")),
                           f"old size {request.old_size}, latest cosigned size {stored_size}")
        if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
            raise _Refusal(Response.text(422, "a checkpoint of size 0 must have the empty tree's root"),
                           "size 0 with a non-empty root")
        if request.old_size == 0:
            if request.proof:
                raise _Refusal(Response.text(422, "old size 0 takes an empty consistency proof"),
                               "proof with old size 0")
        elif request.old_size == checkpoint.size:
            if checkpoint.root != stored_root:
                raise _Refusal(Response.text(422, f"size {checkpoint.size} was cosigned with another root"),
                               "same size, different root (fork)")
            if request.proof:
                raise _Refusal(Response.text(422, "equal sizes take an empty consistency proof"),
                               "proof with equal sizes")
        else:
            try:
                verify_consistency(request.old_size, checkpoint.size, request.proof, stored_root, checkpoint.root)
            except ProofError as err:
                raise _Refusal(Response.text(422, f"consistency proof does not verify ({err.reason}): {err}"),
                               f"inconsistent: {err.reason}") from None
        now = int(self.clock())
        text = note.text.encode("utf-8")
        lines = "".join(s.signature_line(text, now) for s in self.cosigners)
        stored = note.text + "\n" + "".join(v.signature.format() for v in verified) + lines
        self._db.execute(
            "INSERT INTO checkpoints (origin, origin_sha256, size, root, checkpoint, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET size = excluded.size, "
            "root = excluded.root, checkpoint = excluded.checkpoint, updated_at = excluded.updated_at",
            (origin, hashlib.sha256(origin.encode("utf-8")).hexdigest(), checkpoint.size, checkpoint.root,
             stored, now))
        return Response(200, TEXT, lines.encode("utf-8"))

    def _keep_evidence(self, request, checkpoint, refusal: _Refusal) -> None:
        now = int(self.clock())
        stored_size, stored_root = self._stored
        digest = hashlib.sha256(request.checkpoint.encode("utf-8")).digest()
        self._db.execute(
            "INSERT INTO evidence (origin, note_sha256, old_size, status, reason, size, root, checkpoint, proof, "
            "stored_size, stored_root, first_seen, last_seen, count) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1) "
            "ON CONFLICT (origin, note_sha256, old_size, status) DO UPDATE SET last_seen = excluded.last_seen, "
            "count = count + 1",
            (checkpoint.origin, digest, request.old_size, refusal.response.status, refusal.evidence,
             checkpoint.size, checkpoint.root, request.checkpoint, request.proof_text, stored_size, stored_root,
             now, now))

    # --- monitoring -------------------------------------------------------------------------------

    def checkpoint_for(self, origin_hash: str) -> Response:
        """GET <monitoring prefix>/<origin hash>/checkpoint: the latest cosigned checkpoint, or 404."""
        with self._lock:
            row = self._db.execute("SELECT checkpoint FROM checkpoints WHERE origin_sha256 = ?",
                                   (origin_hash,)).fetchone()
        if row is None:
            return Response.text(404, "this witness has not cosigned a checkpoint for that origin")
        (text,) = row
        return Response(200, TEXT, text.encode("utf-8"))

    def evidence(self) -> list[dict]:
        """Every refused, validly signed checkpoint kept, oldest first."""
        with self._lock:
            cursor = self._db.execute("SELECT * FROM evidence ORDER BY id")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]


def read_evidence(state_path: str | Path) -> list[dict]:
    """The evidence rows of a witness state file, read-only and JSON-ready (hashes in base64)."""
    from .note import b64

    try:
        db = sqlite3.connect(f"{Path(state_path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            db.execute("PRAGMA busy_timeout=5000")
            cursor = db.execute("SELECT * FROM evidence ORDER BY id")
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row)) for row in cursor.fetchall()]
        finally:
            db.close()
    except sqlite3.Error as err:
        raise TlogError(f"witness state {state_path}: {err} (is it a witness state file?)") from err
    for row in rows:
        for name, value in row.items():
            if isinstance(value, bytes):
                row[name] = b64(value)
    return rows
