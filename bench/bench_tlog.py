"""What the Merkle tree and the receipts cost: per appended leaf, per proof, per receipt check.

    python bench/bench_tlog.py                   # 1,000,000 leaves, median of 3
    python bench/bench_tlog.py --leaves 200000 --repeat 1
    python bench/bench_tlog.py --writer --writer-events 200000   # the writer with and without --checkpoint-every

Prints:

- CPU per appended leaf (time.process_time over the whole run divided by the leaves), for
  ``extend`` in writer-sized batches and for ``append`` one leaf at a time, into an in-memory
  tile store (full tiles are hashed and stored as they fill; one ``flush`` per batch);
- inclusion and consistency proofs on the 1M-leaf tree from the in-memory store: p50 / p99 wall
  time over random indexes, with the reader's tile cache warm and cold;
- signing a checkpoint, and ``verify_receipt`` on a receipt of that tree (one witness), p50 / p99;
- tree recomputation from leaf hashes (``root_of``) and from leaf data (hashing each leaf too),
  in leaves per second.

With ``--writer`` (instead of the above): the real writer (``LedgerWriter``) on a local broker
(or LEDGER_BENCH_BOOTSTRAP) reads the same produced topics into fresh ledger files, alternately
without and with a checkpointer (``--checkpoint-every`` of 10,000 entries and of 1 s, signing,
storing and publishing to the checkpoints topic), three times each; prints the medians of
events/s and their ratio (one run: the ratio is what this shared machine can resolve), and how
many checkpoint rounds each run made.

Leaf hashes are generated before any timing starts. The cyclic GC is paused while timing, as
ingest pauses it.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from hashlib import sha256
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.receipt import make_receipt, verify_receipt


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def cpu_per_leaf(leaves: list[bytes], batch: int) -> float:
    """µs of CPU per leaf for extend() in batches of ``batch`` with a flush per batch."""
    store = merkle.MemoryHashStore()
    tree = merkle.MerkleTree(store)
    start = time.process_time()
    for i in range(0, len(leaves), batch):
        tree.extend(leaves[i:i + batch])
        tree.flush()
    return (time.process_time() - start) / len(leaves) * 1e6


def cpu_per_leaf_single(leaves: list[bytes]) -> float:
    tree = merkle.MerkleTree(merkle.MemoryHashStore())
    append = tree.append
    start = time.process_time()
    for leaf in leaves:
        append(leaf)
    return (time.process_time() - start) / len(leaves) * 1e6


def timed(call, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each of ``runs`` calls (CPU is immune to other tenants' load)."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        cpu.append((time.process_time() - start_cpu) * 1e3)
        wall.append((time.perf_counter() - start) * 1e3)
    return wall, cpu


def show(label: str, wall: list[float], cpu: list[float], target: str = "") -> None:
    print(f"{label}: wall p50 {percentile(wall, .5):.3f} ms, p99 {percentile(wall, .99):.3f} ms; "
          f"CPU p50 {percentile(cpu, .5):.3f} ms, p99 {percentile(cpu, .99):.3f} ms{target}")


def writer_cost(events: int, repeat: int, kafka_client: str) -> None:
    """Writer throughput with and without its own checkpoints, on the same topics, interleaved."""
    import os
    import tempfile

    from bench_ingest import produce
    from common import bench_settings, describe_client, machine

    from ledger.ingest.checkpointing import Checkpointer, Every
    from ledger.ingest.writer import LedgerWriter
    from ledger.tlog.keyfile import write_key_pair

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp, bench_settings(kafka_client=kafka_client) as settings:
        print(describe_client(settings))
        produce(settings, events)
        modes = {"none": None, "every 10000 entries": Every(entries=10_000), "every 1s": Every(seconds=1.0)}
        rates: dict[str, list[float]] = {m: [] for m in modes}
        rounds: dict[str, list[int]] = {m: [] for m in modes}
        round_ms: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
        for run in range(repeat):
            for mode, every in modes.items():
                db = os.path.join(tmp, f"w{run}-{len(rates[mode])}-{mode.replace(' ', '_')}.db")
                here = settings.with_(db=db)
                checkpointer = None
                if every is not None:  # a key per ledger: one key signing two fresh ledgers would be a fork
                    key, _, _ = write_key_pair(settings.log_origin, db + ".keys")
                    checkpointer = Checkpointer(here, key, every)
                writer = LedgerWriter(here, group_id=None, checkpointer=checkpointer)
                stats = writer.run(until_idle=True, install_signals=False)
                rates[mode].append(stats.records / stats.seconds)
                rounds[mode].append(0 if checkpointer is None else checkpointer.rounds)
                round_ms[mode] += [] if checkpointer is None else checkpointer.round_ms
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(db + suffix):
                        os.remove(db + suffix)
        base = statistics.median(rates["none"])
        for mode in modes:
            median = statistics.median(rates[mode])
            print(f"writer, checkpoints {mode}: {median:,.0f} events/s (runs {', '.join(f'{r:,.0f}' for r in rates[mode])}"
                  f"; checkpoint rounds per run {rounds[mode]}); ratio to none {median / base:.3f}")
            if round_ms[mode]:
                sign = statistics.median(s for s, _ in round_ms[mode])
                pub = statistics.median(p for _, p in round_ms[mode])
                print(f"  one round, on the commit thread: sign + store {sign:.1f} ms, publish {pub:.1f} ms "
                      f"(medians of {len(round_ms[mode])} rounds)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writer", action="store_true", help="measure the writer with and without checkpoints")
    parser.add_argument("--writer-events", type=int, default=200_000)
    parser.add_argument("--kafka-client", choices=("auto", "confluent", "kafka-python"), default="auto")
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000, help="leaves per extend() call (a writer batch)")
    parser.add_argument("--proofs", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.writer:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        writer_cost(args.writer_events, args.repeat, args.kafka_client)
        return 0
    n = args.leaves
    leaves = [sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    gc.disable()

    runs = [cpu_per_leaf(leaves, args.batch) for _ in range(args.repeat)]
    print(f"append, extend() in batches of {args.batch} + flush: {statistics.median(runs):.3f} µs CPU/leaf "
          f"(median of {args.repeat}: {', '.join(f'{r:.3f}' for r in runs)}; target ≤ 2)")
    runs = [cpu_per_leaf_single(leaves) for _ in range(args.repeat)]
    print(f"append, append() one leaf at a time:  {statistics.median(runs):.3f} µs CPU/leaf "
          f"(median of {args.repeat})")

    store = merkle.MemoryHashStore()
    tree = merkle.MerkleTree(store)
    tree.extend(leaves)
    tree.flush()
    reader = merkle.TreeReader(store)
    rng = random.Random(7)
    indexes = [rng.randrange(n) for _ in range(args.proofs)]
    root = reader.root(n)
    assert root == tree.root()

    proofs = iter(indexes)
    wall, cpu = timed(lambda: reader.inclusion_proof(next(proofs), n), len(indexes))
    show(f"inclusion proof, {n:,} leaves, in-memory store, reader reused", wall, cpu, " (target p99 < 1)")
    proofs = iter(indexes[:2000])
    wall, cpu = timed(lambda: merkle.TreeReader(store).inclusion_proof(next(proofs), n), 2000)
    show("inclusion proof, cold reader (no tile cached)", wall, cpu)
    olds = iter([rng.randrange(1, n) for _ in range(2000)])
    wall, cpu = timed(lambda: merkle.TreeReader(store).consistency_proof(next(olds), n), 2000)
    show(f"consistency proof to {n:,}, cold reader", wall, cpu)

    import tlog_fixtures as fx

    from ledger.dev.simulate import simulate
    from ledger.wire.codec import default_codec

    codec = default_codec()
    event = codec.validate(simulate(seed=1, events=1).events[0])
    from ledger.tlog.chain import leaf_bytes
    from ledger.wire.record import Record

    at = n * 3 // 7  # an entry in the middle: a full-length proof
    record = Record("ledger.access", 0, at, 1_767_225_600_000, b"cust-000001", codec.encode(event))
    data = leaf_bytes(record)
    # Put a real record at ``at`` so the receipt decodes; rebuild that tree.
    leaves2 = list(leaves)
    leaves2[at] = sha256(data).digest()
    store2 = merkle.MemoryHashStore()
    tree2 = merkle.MerkleTree(store2)
    tree2.extend(leaves2)
    tree2.flush()
    reader2 = merkle.TreeReader(store2)
    head = Checkpoint(f"{fx.LOG_ORIGIN}/ledger.access/0", n, reader2.root(n))
    show("sign a checkpoint", *timed(lambda: head.sign([fx.LOG_KEY]), 200))
    signed = head.sign([fx.LOG_KEY]) + fx.WITNESS_KEY.signature_line(head.text().encode(), fx.TIMESTAMP)
    proof = reader2.inclusion_proof(at, n)
    text = make_receipt(data[1:], at, proof, signed)
    logs, witnesses = [fx.LOG_KEY.verifier()], [fx.WITNESS_KEY.verifier()]
    verify_receipt(text, logs, witnesses, 1, codec=codec)
    show(f"verify_receipt ({len(proof)} proof hashes, 1 witness, codec loaded)",
         *timed(lambda: verify_receipt(text, logs, witnesses, 1, codec=codec), 500), " (target < 5)")

    def rate(call, count):
        walls, cpus = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            call()
            cpus.append(count / (time.process_time() - start_cpu))
            walls.append(count / (time.perf_counter() - start))
        return statistics.median(walls), statistics.median(cpus)

    wall, cpu = rate(lambda: merkle.root_of(leaves), n)
    print(f"recompute the tree from leaf hashes: {wall:,.0f} leaves/s wall, {cpu:,.0f} per CPU second "
          "(target ≥ 500,000)")
    datas = [b"\x00" + i.to_bytes(8, "big") * 40 for i in range(min(n, 300_000))]  # ~320-byte leaves
    wall, cpu = rate(lambda: merkle.root_of([sha256(d).digest() for d in datas]), len(datas))
    print(f"recompute from 320-byte leaf data (leaf hashes too): {wall:,.0f} leaves/s wall, {cpu:,.0f} per CPU second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
