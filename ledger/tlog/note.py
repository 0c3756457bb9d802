"""Signed notes (c2sp.org/signed-note) with Ed25519 keys, and timestamped cosignatures (type 0x04).

A note is text ending in a newline, a blank line, then signature lines
``— <key name> base64(key ID ‖ signature)``. Keys are written as strings::

    signer key    PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 ‖ 32-byte Ed25519 seed)
    verifier key  <name>+<hex key ID>+base64(<type> ‖ 32-byte Ed25519 public key)
    key ID        SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4], big-endian

Two signature types are supported, one per kind of statement:

- ``0x01`` Ed25519 over the note text: the log signing its checkpoints;
- ``0x04`` timestamped Ed25519 cosignature v1 (c2sp.org/tlog-cosignature): a witness stating that,
  at ``timestamp``, this is the largest consistent tree it saw. The signature is
  ``u64 timestamp ‖ Ed25519(“cosignature/v1\\n” ‖ “time <timestamp>\\n” ‖ note text)``.

A cosigner's signer key is a standard ``0x01`` signer key string (as transparency-dev/formats'
``NewSignerForCosignatureV1`` takes it); its verifier key carries type 0x04 and the key ID for
0x04, so its signatures can never be taken for the log's. Ed25519 is the ``cryptography``
package's; nothing here does curve arithmetic.

Entry points: :func:`generate_signer`, :func:`parse_signer_key`, :func:`parse_verifier_key`,
:func:`sign_note`, :func:`parse_note`, :func:`open_note`, :func:`verified_signatures`.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import time
from dataclasses import dataclass, field
from hashlib import sha256

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import FormatError, SignatureError

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
SIGNATURE_TYPES = {ED25519: "Ed25519", COSIGNATURE_V1: "timestamped Ed25519 cosignature v1"}
EM_DASH = "\u2014"
MAX_SIGNATURES = 64  # the spec asks verifiers to accept at least 16
MAX_NOTE_BYTES = 64 * 1024
MAX_TIMESTAMP = 2**63 - 1
COSIGNATURE_HEADER = b"cosignature/v1\n"


def b64decode_strict(text: str, what: str, line: int | None = None) -> bytes:
    """Standard base64 (RFC 4648 section 4) with padding and no stray characters; canonical only."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise FormatError(what, f"{text[:60]!r} is not standard base64", line) from None
    if base64.b64encode(raw).decode("ascii") != text:  # non-zero padding bits: not the canonical form
        raise FormatError(what, f"{text[:60]!r} is not canonical base64", line)
    return raw


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def check_key_name(name: str, what: str = "key name") -> None:
    """A key name is non-empty, with no Unicode space, no '+', no control character."""
    if not name:
        raise FormatError(what, "is empty")
    bad = next((c for c in name if c.isspace() or c == "+" or ord(c) < 0x20), None)
    if bad is not None:
        raise FormatError(what, f"{name!r} contains {bad!r} (no spaces, '+' or control characters allowed)")


def key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4] as a big-endian uint32."""
    digest = sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


# --- keys -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verifier:
    """A verifier key: checks signatures of one type from one (name, key ID)."""

    name: str
    key_id: int
    sig_type: int
    public_key: bytes

    @property
    def vkey(self) -> str:
        """The verifier key string ``<name>+<hex key ID>+base64(type ‖ public key)``."""
        return f"{self.name}+{self.key_id:08x}+{b64(bytes([self.sig_type]) + self.public_key)}"

    def verify(self, text: bytes, signature: bytes) -> int | None:
        """Check ``signature`` (without the 4-byte key ID) over note ``text``.

        Returns the cosignature's timestamp for type 0x04, None for 0x01; raises SignatureError
        naming the key if the signature does not verify.
        """
        public = Ed25519PublicKey.from_public_bytes(self.public_key)
        timestamp = None
        if self.sig_type == COSIGNATURE_V1:
            if len(signature) != 8 + 64:
                raise SignatureError(f"cosignature by {self.name} is {len(signature)} bytes, not 72 "
                                     "(u64 timestamp ‖ 64-byte Ed25519 signature)")
            (timestamp,) = struct.unpack(">Q", signature[:8])
            if timestamp > MAX_TIMESTAMP:
                raise SignatureError(f"cosignature by {self.name} has timestamp {timestamp}, above 2^63-1")
            message, signature = cosignature_message(text, timestamp), signature[8:]
        else:
            if len(signature) != 64:
                raise SignatureError(f"signature by {self.name} is {len(signature)} bytes, not 64")
            message = text
        try:
            public.verify(signature, message)
        except InvalidSignature:
            raise SignatureError(f"the {SIGNATURE_TYPES[self.sig_type]} signature by {self.name} "
                                 f"(key ID {self.key_id:08x}) does not verify") from None
        return timestamp


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes as (name, key ID) with one signature type."""

    name: str
    key_id: int
    sig_type: int
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)

    @property
    def skey(self) -> str:
        """The signer key string: always the standard 0x01 encoding of the Ed25519 seed."""
        seed = self.private_key.private_bytes_raw()
        public = self.private_key.public_key().public_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{key_id(self.name, ED25519, public):08x}+{b64(bytes([ED25519]) + seed)}"

    def verifier(self) -> Verifier:
        public = self.private_key.public_key().public_bytes_raw()
        return Verifier(self.name, self.key_id, self.sig_type, public)

    def sign(self, text: bytes, timestamp: int | None = None) -> bytes:
        """The signature bytes (without key ID); a cosigner signs ``timestamp`` (default now) too."""
        if self.sig_type == COSIGNATURE_V1:
            if timestamp is None:
                timestamp = int(time.time())
            if not 0 < timestamp <= MAX_TIMESTAMP:
                raise ValueError(f"cosignature timestamp {timestamp} is not in 1..2^63-1")
            return struct.pack(">Q", timestamp) + self.private_key.sign(cosignature_message(text, timestamp))
        return self.private_key.sign(text)

    def signature_line(self, text: bytes, timestamp: int | None = None) -> str:
        """``— <name> base64(key ID ‖ signature)`` followed by a newline."""
        raw = self.key_id.to_bytes(4, "big") + self.sign(text, timestamp)
        return f"{EM_DASH} {self.name} {b64(raw)}\n"


def cosignature_message(text: bytes, timestamp: int) -> bytes:
    """What a v1 cosignature signs: the header line, the time line, then the note text."""
    return COSIGNATURE_HEADER + f"time {timestamp}\n".encode("ascii") + text


def _signer(name: str, seed: bytes, cosigner: bool) -> Signer:
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes_raw()
    sig_type = COSIGNATURE_V1 if cosigner else ED25519
    return Signer(name, key_id(name, sig_type, public), sig_type, private)


def generate_signer(name: str, *, cosigner: bool = False) -> Signer:
    """A new Ed25519 key named ``name``: a log signer (0x01) or a cosigner (0x04)."""
    check_key_name(name)
    return _signer(name, os.urandom(32), cosigner)


def parse_signer_key(skey: str, *, cosigner: bool = False) -> Signer:
    """Read ``PRIVATE+KEY+<name>+<hex id>+base64(0x01 ‖ seed)``; the key ID must match the key.

    ``cosigner=True`` makes the signer produce 0x04 cosignatures from the same key material.
    """
    what = "signer key"
    parts = skey.strip("\n").split("+", 4)  # base64 may contain "+": only the first four separate
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise FormatError(what, "is not of the form PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")
    _, _, name, hex_id, encoded = parts
    check_key_name(name, f"{what} name")
    wanted_id = _parse_key_id(hex_id, what)
    raw = b64decode_strict(encoded, f"{what} material")
    if len(raw) != 33 or raw[0] != ED25519:
        raise FormatError(what, f"the key material must be 0x01 followed by a 32-byte Ed25519 seed "
                                f"(got {len(raw)} bytes, type {raw[:1].hex() or 'none'})")
    signer = _signer(name, raw[1:], False)
    if signer.key_id != wanted_id:
        raise FormatError(what, f"key ID {hex_id} does not match the key (computed {signer.key_id:08x})")
    return _signer(name, raw[1:], True) if cosigner else signer


def parse_verifier_key(vkey: str) -> Verifier:
    """Read ``<name>+<hex id>+base64(type ‖ public key)`` (type 0x01 or 0x04); the ID must match."""
    what = "verifier key"
    if vkey.startswith("PRIVATE+KEY+"):
        raise FormatError(what, "this is a signer key (PRIVATE+KEY+...): give the .vkey, never hand out the .key")
    parts = vkey.strip("\n").split("+", 2)  # base64 may contain "+"
    if len(parts) != 3:
        raise FormatError(what, "is not of the form <name>+<hex key ID>+<base64 type and key>")
    name, hex_id, encoded = parts
    check_key_name(name, f"{what} name")
    wanted_id = _parse_key_id(hex_id, what)
    raw = b64decode_strict(encoded, f"{what} material")
    if not raw or raw[0] not in SIGNATURE_TYPES:
        raise FormatError(what, f"signature type {raw[:1].hex() or 'missing'} is not supported "
                                "(01 Ed25519, 04 timestamped Ed25519 cosignature)")
    if len(raw) != 33:
        raise FormatError(what, f"an Ed25519 public key is 32 bytes, got {len(raw) - 1}")
    verifier = Verifier(name, key_id(name, raw[0], raw[1:]), raw[0], raw[1:])
    if verifier.key_id != wanted_id:
        raise FormatError(what, f"key ID {hex_id} does not match the key (computed {verifier.key_id:08x})")
    try:
        Ed25519PublicKey.from_public_bytes(verifier.public_key)
    except ValueError as err:
        raise FormatError(what, f"not an Ed25519 public key: {err}") from None
    return verifier


def _parse_key_id(hex_id: str, what: str) -> int:
    if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id):
        raise FormatError(what, f"key ID {hex_id!r} is not 8 lowercase hex digits")
    return int(hex_id, 16)


# --- notes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, key ID and the signature bytes after the key ID."""

    name: str
    key_id: int
    signature: bytes
    line: int  # 1-based line number in the text it was parsed from

    def format(self) -> str:
        return f"{EM_DASH} {self.name} {b64(self.key_id.to_bytes(4, 'big') + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    """A parsed signed note: ``text`` (including its final newline) and its signature lines."""

    text: str
    signatures: tuple[Signature, ...]

    def format(self) -> str:
        return self.text + "\n" + "".join(s.format() for s in self.signatures)


@dataclass(frozen=True)
class Verified:
    """A signature that verified: by whom, and the cosignature timestamp (None for type 0x01)."""

    verifier: Verifier
    signature: Signature
    timestamp: int | None


def sign_note(text: str, signers, timestamp: int | None = None) -> str:
    """The signed note of ``text`` (which must end in a newline and be a valid note text)."""
    _check_text(text, 1)
    data = text.encode("utf-8")
    return text + "\n" + "".join(s.signature_line(data, timestamp) for s in signers)


def _check_text(text: str, first_line: int) -> None:
    if not text.endswith("\n"):
        raise FormatError("note", "the text must end with a newline")
    for number, line in enumerate(text.split("\n")[:-1], first_line):
        bad = next((c for c in line if ord(c) < 0x20), None)
        if bad is not None:
            raise FormatError("note", f"control character U+{ord(bad):04X} (only newlines are allowed)", number)


def parse_note(data: bytes | str, *, first_line: int = 1) -> Note:
    """Split a signed note into text and signature lines, strictly per signed-note.

    ``first_line`` is the line number of the note's first line where it sits in a larger text
    (a receipt), so errors name the line the user sees. Signatures are not verified here.
    """
    if isinstance(data, bytes):
        if len(data) > MAX_NOTE_BYTES:
            raise FormatError("note", f"{len(data)} bytes is above the {MAX_NOTE_BYTES}-byte limit")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise FormatError("note", f"not valid UTF-8 (byte {err.start})") from None
    elif len(data) > MAX_NOTE_BYTES:
        raise FormatError("note", f"{len(data)} characters is above the limit")
    split = data.rfind("\n\n")
    if split < 0:
        raise FormatError("note", "no blank line separating the text from the signatures")
    text, block = data[:split + 1], data[split + 2:]
    _check_text(text, first_line)
    sig_line = first_line + text.count("\n") + 1
    if not block:
        raise FormatError("note", "no signature lines after the blank line", sig_line)
    if not block.endswith("\n"):
        raise FormatError("note", "the last signature line does not end with a newline",
                          sig_line + block.count("\n"))
    lines = block.split("\n")[:-1]
    if len(lines) > MAX_SIGNATURES:
        raise FormatError("note", f"{len(lines)} signatures is above the limit of {MAX_SIGNATURES}", sig_line)
    signatures = []
    for number, line in enumerate(lines, sig_line):
        signatures.append(_parse_signature_line(line, number))
    return Note(text, tuple(signatures))


def _parse_signature_line(line: str, number: int) -> Signature:
    what = "signature line"
    if not line.startswith(EM_DASH + " "):
        raise FormatError(what, f"must start with an em dash (U+2014) and a space: {line[:40]!r}", number)
    parts = line[2:].split(" ")
    if len(parts) != 2:
        raise FormatError(what, "must be '— <key name> <base64 signature>'", number)
    name, encoded = parts
    try:
        check_key_name(name)
    except FormatError as err:
        raise FormatError(what, f"key name: {err.reason}", number) from None
    bad = next((c for c in line if ord(c) < 0x20), None)
    if bad is not None:
        raise FormatError(what, f"control character U+{ord(bad):04X}", number)
    raw = b64decode_strict(encoded, what, number)
    if len(raw) < 5:
        raise FormatError(what, f"signature is {len(raw)} bytes: needs a 4-byte key ID and a signature", number)
    return Signature(name, int.from_bytes(raw[:4], "big"), raw[4:], number)


def verified_signatures(note: Note, verifiers) -> list[Verified]:
    """Every signature of ``note`` by one of ``verifiers``, verified; signatures by unknown keys are
    ignored. SignatureError (naming the key and line) if a known key's signature does not verify."""
    by_key = {(v.name, v.key_id): v for v in verifiers}
    text = note.text.encode("utf-8")
    out = []
    for sig in note.signatures:
        verifier = by_key.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        try:
            timestamp = verifier.verify(text, sig.signature)
        except SignatureError as err:
            raise SignatureError(f"line {sig.line}: {err}") from None
        out.append(Verified(verifier, sig, timestamp))
    return out


def open_note(data: bytes | str, verifiers, *, first_line: int = 1) -> tuple[Note, list[Verified]]:
    """Parse ``data`` and verify it: at least one signature by a known key, none failing.

    SignatureError if no known key signed it, naming the keys that did sign and those trusted.
    """
    note = parse_note(data, first_line=first_line)
    verifiers = list(verifiers)
    verified = verified_signatures(note, verifiers)
    if not verified:
        signed = ", ".join(f"{s.name}+{s.key_id:08x}" for s in note.signatures)
        known = ", ".join(f"{v.name}+{v.key_id:08x}" for v in verifiers) or "none"
        raise SignatureError(f"no signature by a trusted key: signed by {signed}; trusted: {known}")
    return note, verified
