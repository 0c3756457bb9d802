"""Errors of the transparency-log package, all under :class:`TlogError`.

    LedgerError                      (ledger/errors.py)
    └── TlogError                    something about a tree, a proof, a note or a receipt is wrong
        ├── ProofError               a Merkle proof does not prove what it claims (``reason`` names why)
        │   ├── IndexBeyondSizeError     the leaf index is not below the tree size
        │   ├── ProofSizeError           the proof has the wrong number of hashes
        │   ├── HashSizeError            a hash is not 32 bytes
        │   ├── SizeOrderError           consistency asked from a larger to a smaller tree
        │   ├── EmptyTreeConsistencyError consistency from size 0 (meaningless: check it first)
        │   └── RootMismatchError        the recomputed root differs from the one given
        ├── TreeError                the tree or its hash store cannot answer (missing tile, bad size)
        ├── FormatError              text is not a well-formed note / checkpoint / key / receipt
        │                            (``line`` is the 1-based line number when there is one)
        ├── KeyFileError             a key file is unusable (unreadable, readable by others, wrong kind)
        ├── SignatureError           a note is not signed as required (unknown key, bad signature)
        ├── ReceiptError             a receipt failed verification (``step`` names which check)
        └── WitnessError             a witness did not cosign (witness_client.py: unreachable, refused,
                                     alarm, or an answer outside the protocol)

Every message names the line, field or value at fault so that a user can act on it.
"""

from __future__ import annotations

from ..errors import LedgerError


class TlogError(LedgerError):
    """Root of the errors of ledger.tlog."""


class ProofError(TlogError):
    """A Merkle inclusion or consistency proof failed; ``reason`` is a short code."""

    reason = "proof"

    def __init__(self, message: str):
        super().__init__(message)


class IndexBeyondSizeError(ProofError):
    """The leaf index is not below the tree size."""

    reason = "index-beyond-size"


class ProofSizeError(ProofError):
    """The proof does not have the number of hashes the sizes require."""

    reason = "wrong-proof-size"


class HashSizeError(ProofError):
    """A leaf hash or proof hash is not a 32-byte SHA-256 value."""

    reason = "wrong-hash-size"


class SizeOrderError(ProofError):
    """A consistency proof was asked from a larger tree to a smaller one."""

    reason = "size-order"


class EmptyTreeConsistencyError(ProofError):
    """A consistency proof from the empty tree: meaningless, the caller must handle size 0 itself."""

    reason = "empty-tree"


class RootMismatchError(ProofError):
    """The root recomputed from the proof is not the expected one (``expected``, ``computed``)."""

    reason = "root-mismatch"

    def __init__(self, message: str, expected: bytes = b"", computed: bytes = b""):
        self.expected, self.computed = expected, computed
        super().__init__(message)


class TreeError(TlogError):
    """The tree or its hash store cannot answer (a size beyond the tree, a tile missing)."""


class FormatError(TlogError, ValueError):
    """Text is not a well-formed note, checkpoint, key or receipt; ``line`` is 1-based or None."""

    def __init__(self, what: str, reason: str, line: int | None = None):
        self.what, self.reason, self.line = what, reason, line
        where = f" line {line}" if line is not None else ""
        super().__init__(f"{what}{where}: {reason}")


class KeyFileError(TlogError):
    """A key file cannot be used: unreadable, readable by group or others, or of the wrong kind."""


class SignatureError(TlogError):
    """A note lacks a verified signature from a trusted key, or a known key's signature fails."""


class ReceiptError(TlogError):
    """A receipt failed one check; ``step`` is one of format, signature, cosignature, inclusion, record."""

    def __init__(self, step: str, message: str):
        self.step = step
        super().__init__(f"{step}: {message}")
