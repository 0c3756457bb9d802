"""Chain heads: what ``ledger head`` prints and an auditor writes down, and reading them back.

One line per topic-partition, ``topic partition offset chain_hash``, or the
``--json`` form; ``ledger verify --from-head FILE`` checks the ledger still
extends them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import StoreError


@dataclass(frozen=True, slots=True)
class Head:
    """Latest entry of one topic-partition: what an auditor writes down."""

    topic: str
    partition: int
    offset: int
    chain_hash: bytes

    def line(self) -> str:
        return f"{self.topic} {self.partition} {self.offset} {self.chain_hash.hex()}"


def read_heads(path: Path) -> list[Head]:
    """Heads written down earlier: the text or ``--json`` output of ``ledger head``."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise StoreError(f"cannot read heads file {path}: {err}") from err
    try:
        if text.lstrip().startswith(("{", "[")):
            doc = json.loads(text)
            items = doc["heads"] if isinstance(doc, dict) else doc
            return [Head(h["topic"], int(h["partition"]), int(h["offset"]), bytes.fromhex(h["chain_hash"]))
                    for h in items]
        heads = []
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                topic, partition, offset, chain = line.split()
                heads.append(Head(topic, int(partition), int(offset), bytes.fromhex(chain)))
        return heads
    except (ValueError, KeyError, TypeError) as err:
        raise StoreError(
            f"{path} is not the output of `ledger head` (lines 'topic partition offset chain_hash' "
            f"or its --json form): {err}"
        ) from err
