"""ledger.tlog.follow: a witness fed from the checkpoints topic, outcome by outcome (no broker: the records
are the values the publisher writes, built here with the same body function)."""

from __future__ import annotations

import pytest
import tlog_fixtures as fx
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import ConfigError
from ledger.ingest.checkpointing import Every
from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.follow import Follower, FollowState
from ledger.tlog.witness import Witness, add_checkpoint_body, parse_add_checkpoint

ORIGIN = f"{fx.LOG_ORIGIN}/ledger.access/0"


class Log:
    def __init__(self, n: int = 300, salt: bytes = b""):
        store = merkle.MemoryHashStore()
        tree = merkle.MerkleTree(store)
        tree.extend([merkle.leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)])
        tree.flush()
        self.reader = merkle.TreeReader(store)

    def note(self, size: int, key=fx.LOG_KEY, origin: str = ORIGIN) -> str:
        return Checkpoint(origin, size, self.reader.root(size)).sign([key])

    def record(self, old: int, size: int, **kwargs) -> tuple[bytes, bytes]:
        proof = self.reader.consistency_proof(old, size) if old else []
        note = self.note(size, **kwargs)
        origin = note.split("\n", 1)[0]
        return origin.encode(), add_checkpoint_body(old, proof, note)


@pytest.fixture
def follower(tmp_path):
    witness = Witness([fx.WITNESS_KEY], [fx.LOG_KEY.verifier()], tmp_path / "w.db", clock=lambda: 1_780_000_000)
    state = FollowState(tmp_path / "w.db")
    yield Follower(witness, state)
    state.close()
    witness.close()


def kinds(follower, records):
    return [follower.take(*r).kind for r in records]


def test_a_chain_of_records_is_cosigned_step_by_step(follower):
    """Records 0→10→50→120, as the publisher chains them, are each cosigned."""
    log = Log()
    assert kinds(follower, [log.record(0, 10), log.record(10, 50), log.record(50, 120)]) == ["cosigned"] * 3


def test_a_record_delivered_again_is_a_repeat(follower):
    """At-least-once delivery: the same record again (latest or older) is a repeat, not a refusal."""
    log = Log()
    first, second = log.record(0, 10), log.record(10, 50)
    assert kinds(follower, [first, second, second, first]) == ["cosigned", "cosigned", "repeat", "repeat"]


def test_a_follower_that_starts_late_trusts_the_first_checkpoint_it_sees(follower):
    """A record proving from a size this witness never saw is taken as its first checkpoint of the origin."""
    log = Log()
    outcome = follower.take(*log.record(50, 120))
    assert outcome.kind == "cosigned" and "trusted on first use" in outcome.reason
    assert kinds(follower, [log.record(120, 200)]) == ["cosigned"]


def test_an_older_checkpoint_never_seen_is_skipped(follower):
    """Older than what was cosigned and unseen here: nothing can check it, so it is skipped, not cosigned."""
    log = Log()
    follower.take(*log.record(50, 120))
    outcome = follower.take(*log.record(0, 10))
    assert outcome.kind == "skipped" and "older than the cosigned size 120" in outcome.reason


def test_same_size_other_root_is_an_alarm(follower):
    """A fork: the log signs another root for the size the witness cosigned; refused by the witness (422)."""
    log, fork = Log(), Log(salt=b"x")
    follower.take(*log.record(0, 50))
    outcome = follower.take(*fork.record(0, 50))
    assert outcome.kind == "alarm" and "fork" in outcome.reason and "another root" in outcome.reason
    assert follower.witness.evidence()  # the forked checkpoint is kept


def test_an_earlier_size_with_another_root_is_an_alarm(follower):
    """A fork below the witness's size: this follower cosigned that size with another root."""
    log, fork = Log(), Log(salt=b"x")
    kinds(follower, [log.record(0, 10), log.record(10, 50)])
    outcome = follower.take(*fork.record(0, 10))
    assert outcome.kind == "alarm" and "size 10 was cosigned with another root" in outcome.reason


def test_an_inconsistent_growth_is_an_alarm(follower):
    """A larger tree that does not extend the cosigned one (rewritten history): the proof fails, alarm."""
    log, fork = Log(), Log(salt=b"x")
    follower.take(*log.record(0, 50))
    key, _ = fork.record(0, 120)
    forged = add_checkpoint_body(50, fork.reader.consistency_proof(50, 120), fork.note(120))
    outcome = follower.take(key, forged)
    assert outcome.kind == "alarm" and "consistency proof does not verify" in outcome.reason


def test_a_gap_that_no_proof_links_is_refused(follower):
    """A record proving from another size than the witness's, newer than it: refused with how to recover."""
    log = Log()
    follower.take(*log.record(0, 10))
    outcome = follower.take(*log.record(50, 120))
    assert outcome.kind == "refused" and "--from-beginning" in outcome.reason


@pytest.mark.parametrize("value, reason", [
    (None, "no value"),
    (b"nonsense", "malformed record: add-checkpoint request: no empty line"),
    (b"old x\n\nfoo\n", "add-checkpoint request old size line 1"),
])
def test_a_malformed_record_is_refused_naming_the_line(follower, value, reason):
    """Junk on the topic is refused with what is wrong and where, never raised."""
    outcome = follower.take(b"k", value)
    assert outcome.kind == "refused" and reason in outcome.reason


def test_a_key_other_than_the_origin_is_refused(follower):
    """The record's key must be its checkpoint's origin (the publisher's contract)."""
    log = Log()
    _, value = log.record(0, 10)
    outcome = follower.take(b"ledger.example.com/audit/ledger.access/1", value)
    assert outcome.kind == "refused" and "is not the checkpoint's origin" in outcome.reason


def test_a_checkpoint_by_another_key_or_origin_is_refused(follower):
    """Signed by an impostor with the log's name: 403; an origin no trusted key covers: 404."""
    log = Log()
    impostor = follower.take(*log.record(0, 10, key=fx.IMPOSTOR_KEY))
    assert impostor.kind == "refused" and impostor.reason.startswith("403")
    other = follower.take(*log.record(0, 10, origin="elsewhere.example/log/x/0"))
    assert other.kind == "refused" and other.reason.startswith("404")


def test_positions_survive_reopening(tmp_path):
    """The follower's positions are kept per topic partition in the state file."""
    state = FollowState(tmp_path / "w.db")
    state.save_positions("p.checkpoints", {0: 5, 2: 9})
    state.close()
    again = FollowState(tmp_path / "w.db")
    assert again.positions("p.checkpoints") == {0: 5, 2: 9} and again.positions("other") == {}
    again.close()


@given(old=st.integers(0, 2**63), proof=st.lists(st.binary(min_size=32, max_size=32), max_size=63))
def test_the_record_body_round_trips_through_the_witness_parser(old, proof):
    """What the publisher writes is what the witness's parser reads back."""
    note = Log(4).note(3)
    parsed = parse_add_checkpoint(add_checkpoint_body(old, proof, note))
    assert (parsed.old_size, list(parsed.proof), parsed.checkpoint) == (old, proof, note)


@pytest.mark.parametrize("text, expected", [
    ("60s", Every(seconds=60.0)), ("5m", Every(seconds=300.0)), ("1h", Every(seconds=3600.0)),
    ("10000", Every(entries=10000)),
])
def test_checkpoint_every_takes_a_period_or_a_count(text, expected):
    assert Every.parse(text) == expected


@pytest.mark.parametrize("text", ["0", "0s", "-5", "5x", "1.5m", "", "s"])
def test_checkpoint_every_refuses_anything_else_naming_the_option(text):
    with pytest.raises(ConfigError, match="--checkpoint-every"):
        Every.parse(text)
