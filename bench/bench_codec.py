"""Per-event cost of the codec and the JSON form on the simulated workload, no Kafka, no SQLite.

    python bench/bench_codec.py                  # 20,000 simulated events, best of 7
    python bench/bench_codec.py --events 5000 --repeat 3

Prints µs per event for ``validate``, ``encode``, ``decode`` (including the
semantic validation of the decoded values), ``entry_columns`` (the readable
JSON form) and, for comparison, the fastavro decode path and the JSON form by
the C encoder (how both were done before), the validator's reference closures
(what its generated fast path stands in for) and fastavro's writer, over the whole mix and per event
type. With every schema given a v2 (a temporary copy of schemas/), it also
times v1 records read with v2 through fastavro's resolution (with the index
guard that refuses out-of-range enum/union indexes) and read as written (what
ingest does). Each figure is the best of ``--repeat`` passes (the
machine has 2 cores and other jobs may run), with the cyclic GC paused as
ingest pauses it.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.dev.simulate import simulate
from ledger.model import events
from ledger.store.index import entry_columns, micros
from ledger.wire.codec import Codec, default_codec

# entry_columns as it was before the per-type JSON forms: one pass of the C encoder.
_BEFORE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=lambda v: v.astimezone(timezone.utc).replace(tzinfo=None).isoformat(
                               timespec="microseconds") + "Z")


def entry_columns_before(event: dict) -> dict:
    return {"event_id": str(event["event_id"]), "type": event["type"], "occurred_at": micros(event["occurred_at"]),
            "json": _BEFORE.encode(event)}


def one_pass(fn, items: list) -> float:
    """µs per item of one pass of ``fn`` over ``items``, the cyclic GC paused as ingest pauses it."""
    gc.disable()
    try:
        start = time.perf_counter()
        for x in items:
            fn(x)
        return (time.perf_counter() - start) / max(len(items), 1) * 1e6
    finally:
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    codec = default_codec()
    workload = simulate(seed=1, events=args.events, subjects=args.subjects).events
    validated = [events.validate(e) for e in workload]
    encoded = [codec.encode(e) for e in validated]
    decoded = [codec.decode(d) for d in encoded]
    assert decoded == validated, "decode(encode(validate(x))) != validate(x)"
    assert all(entry_columns(e) == entry_columns_before(e) for e in validated), "JSON form changed"
    reference = getattr(codec, "decode_with_fastavro", None)

    stages = [("validate", events.validate, validated), ("encode", codec.encode, validated),
              ("decode", codec.decode, encoded), ("entry_columns", entry_columns, validated)]
    if reference is not None:
        stages.append(("decode, fastavro path", reference, encoded))
    stages.append(("validate, reference", events.Validator(events.default_validator().schemas, fast=False).validate,
                   validated))
    stages.append(("encode, fastavro writer", fastavro_encoder(codec), validated))
    stages.append(("entry_columns, C encoder", entry_columns_before, validated))
    upgraded = _upgraded_codec()
    stages += [("v1 read as v2 (resolving)", upgraded.decode, encoded),
               ("v1 read as written, v2 in", upgraded.decode_as_written, encoded)]

    by_type: dict[str, list[int]] = defaultdict(list)
    typical: list[int] = []
    for i, e in enumerate(validated):
        by_type[e["type"]].append(i)
        if e["type"] == "DataAccessed" and len(e["subject_ids"]) == 1:
            typical.append(i)
    columns = {**by_type, "DataAccessed, 1 subject (typical)": typical}
    # Passes interleave stages and columns so that a busy spell hits them alike; best pass wins.
    best = {(stage, col): float("inf") for stage, *_ in stages for col in columns}
    for _ in range(args.repeat):
        for stage, fn, items in stages:
            for col, ix in columns.items():
                best[stage, col] = min(best[stage, col], one_pass(fn, [items[i] for i in ix]))
    names = ["mix", *columns]
    print(f"{len(validated)} simulated events (seed 1, {args.subjects} subjects), best of {args.repeat} passes, "
          "µs per event; mix = the weighted mean over the types")
    print("columns: " + ", ".join(f"{chr(65 + i)} = {name} ({len(columns.get(name, validated))})"
                                  for i, name in enumerate(names)))
    print(f"{'stage':<26}" + "".join(f"{chr(65 + i):>8}" for i in range(len(names))))
    for stage, *_ in stages:
        mix = sum(best[stage, t] * len(ix) for t, ix in by_type.items()) / len(validated)
        print(f"{stage:<26}{mix:>8.2f}" + "".join(f"{best[stage, col]:>8.2f}" for col in columns))
    return 0


def fastavro_encoder(codec: Codec):
    """codec.encode done by fastavro's schemaless_writer (the reference for the compiled writer)."""
    import io

    from fastavro import schemaless_writer

    from ledger.wire.codec import MAGIC

    newest = {t: codec.versions(t)[-1] for t in events.EVENT_TYPES}
    plan = {t: (MAGIC + sv.fingerprint, sv.parsed) for t, sv in newest.items()}

    def encode(event: dict) -> bytes:
        header, parsed = plan[event["type"]]
        out = io.BytesIO()
        out.write(header)
        schemaless_writer(out, parsed, event)
        return out.getvalue()

    return encode


def _upgraded_codec() -> Codec:
    """A codec over a copy of schemas/ in which every event type has a v2 adding an optional field."""
    root = Path(tempfile.mkdtemp(prefix="bench-codec-")) / "schemas"
    shutil.copytree(Path(__file__).resolve().parent.parent / "schemas", root)
    for sub in root.iterdir():
        if sub.is_dir():
            schema = json.loads((sub / "v1.avsc").read_text())
            schema["fields"].append({"name": "bench_note", "type": ["null", "string"], "default": None})
            (sub / "v2.avsc").write_text(json.dumps(schema))
    try:
        return Codec.load(root)
    finally:
        shutil.rmtree(root.parent)


if __name__ == "__main__":
    sys.exit(main())
