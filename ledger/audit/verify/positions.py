"""Where the writer resumes and what was written down: the ``offsets`` rows against the partitions'
last entries, and heads noted earlier (``ledger head``) against the chains."""

from __future__ import annotations

from collections.abc import Callable

from ledger.store import Entry, Head, Ledger, reads

from .report import hex_or_repr


def check_offsets(ledger: Ledger, last_entry: dict[tuple[str, int], Entry], problem: Callable[..., None]) -> None:
    """Each offsets row names a real record and its chain hash; the last one per partition is its last entry."""
    positions: dict[tuple[str, int], tuple[int, int]] = {}
    for topic, partition, next_offset, last_seq, chain in reads.offsets_rows(ledger):  # OffsetsRow
        where = (topic, partition)
        entry = ledger.entry_at(topic, partition, next_offset - 1)
        label = f"offsets row {topic}[{partition}] next_offset {next_offset}"
        if entry is None or entry["kind"] != "record":
            problem(f"{label} points to no record at offset {next_offset - 1}")
        elif (entry["seq"], entry["chain_hash"]) != (last_seq, chain):
            problem(f"{label} says seq {last_seq} chain {hex_or_repr(chain)}, the entry has seq "
                    f"{entry['seq']} chain {hex_or_repr(entry['chain_hash'])}")
        if where in positions and last_seq <= positions[where][1]:
            problem(f"{label} goes backwards (seq {last_seq} after {positions[where][1]})")
        positions[where] = (next_offset, last_seq)
    for where, last in sorted(last_entry.items()):
        stored = positions.pop(where, None)
        if stored is None:
            problem(f"{where[0]}[{where[1]}] has entries but no offsets row", last)
        elif stored[0] != last.offset + 1 or last.kind != "record":
            problem(f"the stored position {stored[0]} does not follow the partition's last entry "
                    f"(offset {last.offset}, {last.kind})", last)
    for (topic, partition), (next_offset, _) in sorted(positions.items()):
        problem(f"offsets rows for {topic}[{partition}] (next {next_offset}) but no entries")


def check_heads(ledger: Ledger, heads: list[Head], problem: Callable[..., None]) -> None:
    """Each head written down earlier still lies on its chain."""
    for head in heads:
        entry = ledger.entry_at(head.topic, head.partition, head.offset)
        label = f"head written down earlier {head.line()}"
        if entry is None:
            problem(f"{label}: the ledger has no entry at that offset (truncated?)")
        elif entry["chain_hash"] != head.chain_hash:
            problem(f"{label}: the chain hash there is now {hex_or_repr(entry['chain_hash'])}")

