"""Verify a ledger file from its raw evidence: hashes, offsets, decoded columns, indexes.

    with Ledger.open("ledger.db") as ledger:
        report = verify_ledger(ledger, expected_heads=read_heads("heads.txt"))  # ledger.store.read_heads
    report.raise_if_bad()        # VerificationError listing each Problem

What is re-derived and compared, entry by entry in append order:

* every leaf hash (from topic, partition, offset, timestamp, key, headers,
  value) and every chain link; offsets contiguous per partition except for
  explicit gap entries; ``seq`` without holes;
* the fingerprint, event_id, type, occurred_at and JSON form (by decoding the
  raw value again), the time flag in ``reason`` (ledger.timecheck, with the
  limits in meta; every flagged record is listed in ``VerifyReport.flagged``)
  and the status: rejected iff it does not decode or is
  misrouted (routing.py; the routing reason re-derived too), first occurrence
  of an event_id ``entry``, a same-content repeat ``duplicate`` on the same
  topic-partition and ``conflict`` on another, a repeat with other content
  ``contradiction`` with its reason (repeats.py; checked against
  ``event_ids``, ``conflicts`` and ``earlier_copies``, in the order ingest and
  reprocess decided them);
* the side-table rows of each entry (index.side_rows), none missing or extra,
  each filed under its bucket (``seq >> bucket_bits``);
* the ``offsets`` rows (each names a real record and its chain hash; the last
  one per partition is the partition's last entry) and ``reprocess_log``;
* optionally, that heads written down earlier (``ledger head``) still lie on
  the chains.

Preconditions: the codec knows every schema version that ingest used (schema
files are never deleted). A rejected entry that decodes now is a notice
(``ledger reprocess`` will index it) unless an earlier entry with the same
writer schema decoded, which means it should not have been rejected.

Reading guide: ``verifier.py`` is the pass over the entries (decoded columns, statuses, table
counts); ``chain.py`` the offsets, leaves and links; ``trees.py`` the Merkle tiles;
``side_rows.py`` the side tables; ``positions.py`` the ``offsets`` rows and written-down heads;
``report.py`` the :class:`~.report.VerifyReport` and its problems.
"""

from __future__ import annotations

from .verifier import verify_ledger

__all__ = ["verify_ledger"]
