"""The public surface: what `ledger` exports, and that importing it stays cheap."""

import subprocess
import sys

import ledger


def test_exported_names_are_pinned():
    """__all__ lists exactly the public names, and each resolves."""
    assert sorted(ledger.__all__) == sorted([
        "Settings", "AuditProducer", "Delivery", "Codec", "Ledger", "who_saw", "disclosures", "accesses",
        "obligations", "build_report", "verify_ledger", "replay", "diff_ledgers", "simulate",
        "LedgerError", "ConfigError", "ValidationError", "SchemaError", "DecodeError", "BrokerError",
        "StoreError", "VerificationError",
    ])
    for name in ledger.__all__:
        assert getattr(ledger, name) is not None


def test_every_error_derives_from_the_root():
    """Every exported error is a LedgerError."""
    for name in ledger.__all__:
        value = getattr(ledger, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, ledger.LedgerError)


def test_importing_the_package_loads_neither_kafka_nor_avro():
    """`import ledger` (and so every read-only command) does not import kafka or fastavro."""
    code = "import sys, ledger, ledger.cli; print(any(m.split('.')[0] in ('kafka', 'fastavro') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
