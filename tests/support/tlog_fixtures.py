"""A small signed, witnessed partition log for receipt tests, built without a store or Kafka.

    log = build_log(events, topic="ledger.access", partition=0)
    log.receipt(index)                      # a c2sp.org/tlog-proof@v1 receipt for one entry

Keys come from fixed seeds and cosignatures carry a fixed timestamp, so every receipt is
reproducible byte for byte: ``python tests/tlog_fixtures.py`` rewrites tests/data/tamper_tlog/.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.tlog import merkle, note
from ledger.tlog.chain import leaf_bytes, leaf_hash
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.receipt import make_receipt
from ledger.wire.record import Record

LOG_ORIGIN = "ledger.example.com/audit"
TIMESTAMP = 1_780_000_000  # the witnesses' cosignature time
TAMPER_DIR = Path(__file__).parent.parent / "data" / "tamper_tlog"


def fixed_signer(name: str, seed_byte: int, *, cosigner: bool = False) -> note.Signer:
    skey = note._signer(name, bytes([seed_byte]) * 32, False).skey
    return note.parse_signer_key(skey, cosigner=cosigner)


LOG_KEY = fixed_signer(LOG_ORIGIN, 1)
WITNESS_KEY = fixed_signer("witness.example.org/w1", 2, cosigner=True)
OTHER_WITNESS_KEY = fixed_signer("witness.example.net/w2", 3, cosigner=True)
IMPOSTOR_KEY = fixed_signer(LOG_ORIGIN, 4)  # the log's name, another key


@dataclass
class PartitionLog:
    topic: str
    partition: int
    records: list[Record]
    store: merkle.MemoryHashStore = field(default_factory=merkle.MemoryHashStore)

    def __post_init__(self):
        tree = merkle.MerkleTree(self.store)
        tree.extend(leaf_hash(r) for r in self.records)
        tree.flush()
        self.reader = merkle.TreeReader(self.store)

    @property
    def origin(self) -> str:
        return f"{LOG_ORIGIN}/{self.topic}/{self.partition}"

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        size = len(self.records) if size is None else size
        return Checkpoint(self.origin, size, self.reader.root(size))

    def signed_checkpoint(self, size: int | None = None, *, log_key=LOG_KEY, witnesses=(WITNESS_KEY,)) -> str:
        head = self.checkpoint(size)
        text = head.text().encode()
        return head.sign([log_key]) + "".join(w.signature_line(text, TIMESTAMP) for w in witnesses)

    def receipt(self, index: int, size: int | None = None, **sign) -> str:
        size = len(self.records) if size is None else size
        extra = leaf_bytes(self.records[index])[1:]
        return make_receipt(extra, index, self.reader.inclusion_proof(index, size),
                            self.signed_checkpoint(size, **sign))


def build_log(events, *, topic: str = "ledger.access", partition: int = 0, codec=None) -> PartitionLog:
    from ledger.wire.codec import default_codec

    codec = codec or default_codec()
    from ledger.model.times import to_micros

    records = []
    for offset, event in enumerate(events):
        event = codec.validate(event)
        recorded_ms = to_micros(event["occurred_at"]) // 1000 + 2000  # recorded two seconds after it happened
        records.append(Record(topic, partition, offset, recorded_ms,
                              min(event["subject_ids"]).encode(), codec.encode(event),
                              (("event_type", event["type"].encode()),)))
    return PartitionLog(topic, partition, records)


def sample_log() -> PartitionLog:
    from ledger.dev.simulate import simulate

    events = [e for e in simulate(seed=14, events=40).events if e["type"] == "DataAccessed"][:7]
    return build_log(events)


def tamper_files() -> dict[str, str]:
    """The data files of tests/data/tamper_tlog/, by name."""
    log = sample_log()
    good = log.receipt(3)
    files = {
        "log.vkey": LOG_KEY.verifier().vkey + "\n",
        "witness.vkey": WITNESS_KEY.verifier().vkey + "\n",
        "good.tlog-proof": good,
    }
    # Entry 3's leaf data with entry 5's index and inclusion proof.
    wrong = log.receipt(5).split("\n")
    wrong[1] = good.split("\n")[1]
    files["proof-for-wrong-index.tlog-proof"] = "\n".join(wrong)
    # The same receipt, its checkpoint signed by a key with the log's name that nobody trusts.
    files["checkpoint-unknown-key.tlog-proof"] = log.receipt(3, log_key=IMPOSTOR_KEY)
    # The witness's cosignature of the size-6 tree pasted onto the size-7 checkpoint.
    other = log.signed_checkpoint(6).rstrip("\n").split("\n")[-1]
    lines = good.rstrip("\n").split("\n")
    lines[-1] = other
    files["cosignature-other-tree.tlog-proof"] = "\n".join(lines) + "\n"
    # A checkpoint the log signed for another partition carrying entry 3's proof.
    other_partition = PartitionLog(log.topic, 1, log.records)
    files["checkpoint-other-partition.tlog-proof"] = other_partition.receipt(3)
    return files


CASES = [
    {"file": "good.tlog-proof", "description": "a valid receipt with one witness cosignature",
     "step": None, "match": None},
    {"file": "proof-for-wrong-index.tlog-proof",
     "description": "entry 3's leaf data with the index and inclusion proof of entry 5",
     "step": "inclusion", "match": "root-mismatch"},
    {"file": "checkpoint-unknown-key.tlog-proof",
     "description": "the checkpoint is signed by a key with the log's name but not the log's key",
     "step": "signature", "match": "not signed by a trusted log key"},
    {"file": "cosignature-other-tree.tlog-proof",
     "description": "the witness's cosignature over the size-6 tree attached to the size-7 checkpoint",
     "step": "cosignature", "match": "does not verify"},
    {"file": "checkpoint-other-partition.tlog-proof",
     "description": "the entry of ledger.access[0] proved under the checkpoint of ledger.access[1]",
     "step": "record", "match": "checkpoint is for"},
]


def write_tamper_files() -> None:
    TAMPER_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in tamper_files().items():
        (TAMPER_DIR / name).write_text(text, encoding="utf-8")
    (TAMPER_DIR / "cases.json").write_text(json.dumps(CASES, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_tamper_files()
    print(f"wrote {TAMPER_DIR}")
