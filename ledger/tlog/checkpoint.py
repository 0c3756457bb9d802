"""Checkpoints (c2sp.org/tlog-checkpoint): the signed tree head of one log.

The note text is exactly::

    <origin>
    <tree size, decimal, no leading zeroes>
    <base64 of the 32-byte RFC 6962 root>
    [extension lines, each non-empty]

:func:`parse_checkpoint` reads a note text strictly; :func:`open_checkpoint` also verifies the
note against the log's verifier keys. A log key verifies the checkpoints of its own origin and
of every origin below it: the key named ``ledger.example.com/audit`` signs
``ledger.example.com/audit/ledger.access/0``, one checkpoint per topic-partition.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FormatError, SignatureError
from .merkle import HASH_SIZE
from .note import Note, Verified, b64, b64decode_strict, parse_note, sign_note, verified_signatures

WHAT = "checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size, root and (opaque, discouraged) extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The note text of this checkpoint (ends with a newline)."""
        if not self.origin or "\n" in self.origin:
            raise FormatError(WHAT, f"origin {self.origin!r} must be one non-empty line")
        if self.size < 0 or len(self.root) != HASH_SIZE:
            raise FormatError(WHAT, f"size {self.size} / root of {len(self.root)} bytes is not a tree head")
        if any(not e or "\n" in e for e in self.extensions):
            raise FormatError(WHAT, "extension lines must be non-empty single lines")
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), b64(self.root), *self.extensions))

    def sign(self, signers, timestamp: int | None = None) -> str:
        """The signed checkpoint note."""
        return sign_note(self.text(), signers, timestamp)


def parse_size(text: str, what: str, line: int | None = None) -> int:
    """A decimal with no leading zeroes ("0" alone is zero), nothing else."""
    if not text or not text.isascii() or not text.isdigit() or (text != "0" and text[0] == "0"):
        raise FormatError(what, f"{text[:40]!r} is not a decimal number without leading zeroes", line)
    if len(text) > 20 or int(text) >= 2**64:
        raise FormatError(what, f"{text[:40]!r} does not fit 64 bits", line)
    return int(text)


def parse_checkpoint(text: str, *, first_line: int = 1) -> Checkpoint:
    """Read a checkpoint note text (not the signatures): at least three non-empty lines."""
    if not text.endswith("\n"):
        raise FormatError(WHAT, "the note text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise FormatError(WHAT, f"needs origin, size and root lines; got {len(lines)} line(s)", first_line)
    for number, line in enumerate(lines, first_line):
        if not line:
            raise FormatError(WHAT, "empty line (every line of the text must be non-empty)", number)
    origin, size, root = lines[:3]
    size_value = parse_size(size, f"{WHAT} size", first_line + 1)
    root_value = b64decode_strict(root, f"{WHAT} root", first_line + 2)
    if len(root_value) != HASH_SIZE:
        raise FormatError(f"{WHAT} root", f"is {len(root_value)} bytes, not a 32-byte SHA-256 root",
                          first_line + 2)
    return Checkpoint(origin, size_value, root_value, tuple(lines[3:]))


def key_covers(key_name: str, origin: str) -> bool:
    """True when a log key of this name signs checkpoints of ``origin`` (itself or below it)."""
    return origin == key_name or origin.startswith(key_name + "/")


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose log signature verified, with the note and every verified signature."""

    checkpoint: Checkpoint
    note: Note
    log_signatures: tuple[Verified, ...]


def open_checkpoint(data: bytes | str, log_verifiers, *, first_line: int = 1) -> SignedCheckpoint:
    """Parse a signed checkpoint and verify it with the log keys that cover its origin.

    Only keys whose name is the origin or a prefix of it followed by '/' count; a signature by
    a trusted key for another origin is ignored (like any unknown key). SignatureError if no
    covering key signed it or a covering key's signature fails; FormatError for a bad text.
    """
    log_verifiers = list(log_verifiers)
    note = parse_note(data, first_line=first_line)
    checkpoint = parse_checkpoint(note.text, first_line=first_line)
    covering = [v for v in log_verifiers if key_covers(v.name, checkpoint.origin)]
    if not covering:
        known = ", ".join(v.name for v in log_verifiers) or "none"
        raise SignatureError(f"no trusted log key covers origin {checkpoint.origin!r} (log keys: {known})")
    verified = verified_signatures(note, covering)
    if not verified:
        signed = ", ".join(f"{s.name}+{s.key_id:08x}" for s in note.signatures)
        raise SignatureError(f"checkpoint for {checkpoint.origin!r} is not signed by a trusted log key "
                             f"(signed by {signed}; trusted: "
                             + ", ".join(f"{v.name}+{v.key_id:08x}" for v in covering) + ")")
    return SignedCheckpoint(checkpoint, note, tuple(verified))
