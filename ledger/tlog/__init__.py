"""A verifiable log beside the hash chain: RFC 6962 Merkle trees and the C2SP formats.

Reading order:

- ``merkle/``       hashing, the tile layout, the append-only tree, proofs from tiles, pure verifiers
                     (one module each; its ``__init__`` is the reading guide);
- ``note.py``        signed notes (c2sp.org/signed-note) and Ed25519 keys, timestamped cosignatures
                     (c2sp.org/tlog-cosignature, type 0x04);
- ``checkpoint.py``  the checkpoint note body (c2sp.org/tlog-checkpoint);
- ``receipt.py``     offline receipts (c2sp.org/tlog-proof@v1) and :func:`~.receipt.verify_receipt`;
- ``keyfile.py``     key files on disk (mode 0600, refused when readable by others);
- ``jcs.py``         RFC 8785 canonical JSON and strict JSON reading (repeated keys refused);
- ``signed_report.py`` a report's ``ledger.report/v1`` statement, signed with a report key of its own;
- ``report_check.py`` checking a report with proofs offline (``ledger verify-report``);
- ``witness.py``     a witness's add-checkpoint logic (c2sp.org/tlog-witness), state in its own SQLite
                     file; its HTTP binding is ledger/http/witness_app.py;
- ``witness_client.py`` asking a witness to cosign (stdlib HTTP), verifying what it returns;
- ``errors.py``      the error tree.

Nothing here imports the store or Kafka: a verifier needs only this package, ledger/errors.py
and, to decode a receipt's record, the codec.
"""
