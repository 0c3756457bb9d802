"""ledger.tlog.witness: the add-checkpoint protocol of tlog-witness.md, status by status."""

from __future__ import annotations

import base64
import hashlib

import pytest
import tlog_fixtures as fx
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.tlog import merkle, note
from ledger.tlog.checkpoint import Checkpoint, open_checkpoint
from ledger.tlog.witness import MAX_PROOF_LINES, Witness, parse_add_checkpoint

ORIGIN = f"{fx.LOG_ORIGIN}/ledger.access/0"
NOW = 1_780_000_123


class Log:
    """A log of synthetic leaves that signs checkpoints of any size it has."""

    def __init__(self, n: int = 300, origin: str = ORIGIN, salt: bytes = b""):
        self.origin = origin
        self.leaves = [merkle.leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]
        self.store = merkle.MemoryHashStore()
        tree = merkle.MerkleTree(self.store)
        tree.extend(self.leaves)
        tree.flush()
        self.reader = merkle.TreeReader(self.store)

    def checkpoint(self, size: int, key=fx.LOG_KEY, root: bytes | None = None) -> str:
        head = Checkpoint(self.origin, size, self.reader.root(size) if root is None else root)
        return head.sign([key])

    def request(self, old: int, size: int, proof=None, **kwargs) -> bytes:
        if proof is None:
            proof = self.reader.consistency_proof(old, size) if old else []
        lines = [f"old {old}"] + [base64.b64encode(h).decode() for h in proof]
        return ("\n".join(lines) + "\n\n" + self.checkpoint(size, **kwargs)).encode()


@pytest.fixture
def witness(tmp_path):
    w = Witness([fx.WITNESS_KEY], [fx.LOG_KEY.verifier()], tmp_path / "witness.db", clock=lambda: NOW)
    yield w
    w.close()


def _cosignatures(response, signed_checkpoint: str) -> list[note.Verified]:
    """What a log does with a 200 body: append it to its checkpoint, verify with the witness key."""
    assert response.status == 200, response.body
    assert response.body.startswith("—".encode()) and response.body.endswith(b"\n")
    parsed = note.parse_note(signed_checkpoint + response.body.decode())
    return note.verified_signatures(parsed, [fx.WITNESS_KEY.verifier()])


def test_first_checkpoint_then_consistent_growth(witness):
    """Old 0 with no proof is cosigned; then each consistent growth is, with a v1 timestamped cosignature."""
    log = Log()
    for old, size in ((0, 5), (5, 6), (6, 200), (200, 200), (200, 300)):
        response = witness.add_checkpoint(log.request(old, size))
        verified = _cosignatures(response, log.checkpoint(size))
        assert len(verified) == 1 and verified[0].timestamp == NOW
    assert witness.evidence() == []


def test_409_names_the_latest_size_as_text_x_tlog_size(witness):
    """A wrong old size is a 409 whose body is the cosigned size and a newline, typed text/x.tlog.size."""
    log = Log()
    assert witness.add_checkpoint(log.request(0, 10)).status == 200
    response = witness.add_checkpoint(log.request(0, 20))
    assert (response.status, response.content_type, response.body) == (409, "text/x.tlog.size", b"10\n")
    response = witness.add_checkpoint(log.request(15, 20))
    assert (response.status, response.body) == (409, b"10\n")
    assert witness.add_checkpoint(log.request(10, 20)).status == 200


def test_409_is_read_inside_the_transaction(tmp_path):
    """Two witness processes on one state file: the second sees the first's update (no cached size)."""
    log = Log()
    a = Witness([fx.WITNESS_KEY], [fx.LOG_KEY.verifier()], tmp_path / "w.db")
    b = Witness([fx.WITNESS_KEY], [fx.LOG_KEY.verifier()], tmp_path / "w.db")
    try:
        assert a.add_checkpoint(log.request(0, 50)).status == 200
        assert b.add_checkpoint(log.request(0, 40)).body == b"50\n"
        assert b.add_checkpoint(log.request(50, 60)).status == 200
        assert a.add_checkpoint(log.request(50, 55)).body == b"60\n"  # no roll-back to 55
    finally:
        a.close()
        b.close()


def test_unknown_origin_is_404(witness):
    """An origin no trusted log key covers, including a mere name prefix, is 404."""
    for origin in ("other.example/log", fx.LOG_ORIGIN + "or/x/0"):
        response = witness.add_checkpoint(Log(5, origin=origin).request(0, 5))
        assert response.status == 404 and b"unknown origin" in response.body


def test_origins_per_key_are_bounded(tmp_path):
    """Beyond max_origins_per_key new origins under one key are refused as unknown (404)."""
    w = Witness([fx.WITNESS_KEY], [fx.LOG_KEY.verifier()], tmp_path / "w.db", max_origins_per_key=2)
    try:
        for partition in (0, 1):
            assert w.add_checkpoint(Log(5, origin=f"{fx.LOG_ORIGIN}/t/{partition}").request(0, 5)).status == 200
        response = w.add_checkpoint(Log(5, origin=f"{fx.LOG_ORIGIN}/t/2").request(0, 5))
        assert response.status == 404 and b"at most 2 origins" in response.body
        assert w.add_checkpoint(Log(5, origin=f"{fx.LOG_ORIGIN}/t/1").request(5, 5)).status == 200
    finally:
        w.close()


def test_signature_failures_are_403(witness):
    """No trusted signature (an impostor key with the log's name), or a trusted key's bad signature: 403."""
    log = Log()
    response = witness.add_checkpoint(log.request(0, 5, key=fx.IMPOSTOR_KEY))
    assert response.status == 403 and b"no signature by a trusted log key" in response.body
    body = log.request(0, 5).decode()
    forged = body.replace("\n5\n", "\n6\n")  # the text changed under the log's signature
    response = witness.add_checkpoint(forged.encode())
    assert response.status == 403 and b"does not verify" in response.body
    assert witness.evidence() == []  # nothing validly signed was refused


def test_old_above_size_is_400_and_kept(witness):
    """Old size above the checkpoint size is a 400; the validly signed checkpoint is kept as evidence."""
    log = Log()
    response = witness.add_checkpoint(log.request(7, 5, proof=[]))
    assert response.status == 400 and b"above the checkpoint size" in response.body
    assert [e["status"] for e in witness.evidence()] == [400]


def test_422_cases_and_their_evidence(witness):
    """Size 0 with a non-empty root, a proof with old 0, a fork at equal size, a bad proof: 422 each,
    kept as evidence with the stored state; the state is unchanged."""
    log = Log()
    fork = Log(salt=b"fork")
    assert witness.add_checkpoint(log.request(0, 0, root=log.reader.root(1))).status == 422
    assert witness.add_checkpoint(log.request(0, 5, proof=[bytes(32)])).status == 422
    assert witness.add_checkpoint(log.request(0, 0)).status == 200  # the empty tree itself is fine
    assert witness.add_checkpoint(log.request(0, 5)).status == 200
    response = witness.add_checkpoint(fork.request(5, 5, proof=[]))
    assert response.status == 422 and b"another root" in response.body
    response = witness.add_checkpoint(fork.request(5, 9, proof=log.reader.consistency_proof(5, 9)))
    assert response.status == 422 and b"root-mismatch" in response.body
    response = witness.add_checkpoint(log.request(5, 9, proof=log.reader.consistency_proof(5, 9)[:-1]))
    assert response.status == 422 and b"wrong-proof-size" in response.body
    reasons = [e["reason"] for e in witness.evidence()]
    assert reasons == ["size 0 with a non-empty root", "proof with old size 0", "same size, different root (fork)",
                       "inconsistent: root-mismatch", "inconsistent: wrong-proof-size"]
    assert witness.evidence()[2]["stored_size"] == 5 and witness.evidence()[2]["stored_root"] == log.reader.root(5)
    assert witness.add_checkpoint(log.request(5, 9)).status == 200


def test_evidence_is_deduplicated(witness):
    """The same refused checkpoint sent again bumps a count instead of growing the file."""
    log = Log()
    witness.add_checkpoint(log.request(0, 10))
    for _ in range(3):
        assert witness.add_checkpoint(log.request(0, 8)).status == 409
    (row,) = witness.evidence()
    assert row["count"] == 3 and row["status"] == 409


@pytest.mark.parametrize("body, match", [
    (b"", "no empty line"),
    (b"old 01\n\nx\n", "leading zeroes"),
    (b"older 1\n\nx\n", "'old <size>'"),
    (b"old 1\nAAAA\n\nx\n", "not 32"),
    (b"old 1\nnot base64!\n\nx\n", "not standard base64"),
    (b"old 0\n\n\xff\n", "not valid UTF-8"),
    (b"old 0\n\nnot a note\n", "no blank line"),
    (b"old 0\n\norigin\n1\n\n\xe2\x80\x94 k AAAAAAA=\n", "needs origin, size and root"),
    (b"old 0\n" + b"x" * 70_000, "limit"),
])
def test_malformed_requests_are_400(witness, body, match):
    """A malformed body is a 400 naming the problem."""
    response = witness.add_checkpoint(body)
    assert response.status == 400 and match.encode() in response.body, response.body


def test_more_than_63_proof_lines_is_400(witness):
    """The client must not send more than 63 proof lines; 64 are refused before any hashing."""
    lines = "\n".join(["old 1"] + [base64.b64encode(bytes(32)).decode()] * (MAX_PROOF_LINES + 1))
    response = witness.add_checkpoint((lines + "\n\n" + Log().checkpoint(5)).encode())
    assert response.status == 400 and b"at most 63" in response.body
    request = parse_add_checkpoint(("\n".join(lines.split("\n")[:64]) + "\n\n" + Log().checkpoint(5)).encode())
    assert len(request.proof) == 63


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode()))
def test_arbitrary_bodies_never_crash(tmp_path_factory, body):
    """Whatever the body, the witness answers with one of the spec's status codes."""
    w = Witness([fx.WITNESS_KEY], [fx.LOG_KEY.verifier()], tmp_path_factory.mktemp("fuzz") / "w.db")
    try:
        assert w.add_checkpoint(body).status in (400, 403, 404, 409, 422)
        valid = Log(5).request(0, 5)
        cut = len(body) % (len(valid) + 1)
        assert w.add_checkpoint(valid[:cut] + body).status in (200, 400, 403, 404, 409, 422)
    finally:
        w.close()


def test_monitoring_serves_the_latest_cosigned_checkpoint(witness):
    """GET <origin hash>/checkpoint: 404 before any cosignature; then the checkpoint with the log's
    signature and the witness's cosignature, both verifying."""
    log = Log()
    origin_hash = hashlib.sha256(ORIGIN.encode()).hexdigest()
    assert witness.checkpoint_for(origin_hash).status == 404
    witness.add_checkpoint(log.request(0, 42))
    response = witness.checkpoint_for(origin_hash)
    assert response.status == 200
    signed = open_checkpoint(response.body, [fx.LOG_KEY.verifier()])
    assert signed.checkpoint.size == 42
    cosigned = note.verified_signatures(signed.note, [fx.WITNESS_KEY.verifier()])
    assert [c.timestamp for c in cosigned] == [NOW]


def test_keys_of_the_wrong_type_are_refused(tmp_path):
    """The witness key must be a cosigner (04) and the log keys Ed25519 (01)."""
    from ledger.tlog.errors import TlogError

    with pytest.raises(TlogError, match="type 04"):
        Witness([fx.LOG_KEY], [fx.LOG_KEY.verifier()], tmp_path / "w.db")
    with pytest.raises(TlogError, match="type 01"):
        Witness([fx.WITNESS_KEY], [fx.WITNESS_KEY.verifier()], tmp_path / "w.db")
