"""ledger.tlog.receipt: receipts verified offline, tamper cases, strict parsing, the leaf data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import tlog_fixtures as fx
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.tlog import receipt as rc
from ledger.tlog.chain import leaf_bytes
from ledger.tlog.errors import FormatError, ReceiptError
from ledger.wire.record import Record

DATA = fx.TAMPER_DIR
LOG_VKEY = (DATA / "log.vkey").read_text().strip()
WITNESS_VKEY = (DATA / "witness.vkey").read_text().strip()
GOOD = (DATA / "good.tlog-proof").read_text()
CASES = json.loads((DATA / "cases.json").read_text())


def verify(text, **kwargs):
    kwargs.setdefault("witness_vkeys", [WITNESS_VKEY])
    kwargs.setdefault("min_witnesses", 1)
    return rc.verify_receipt(text, [LOG_VKEY], **kwargs)


def test_data_files_are_reproducible():
    """tests/tlog_fixtures.py rewrites the committed tamper files byte for byte."""
    for name, text in fx.tamper_files().items():
        assert (DATA / name).read_text() == text, name
    assert json.loads((DATA / "cases.json").read_text()) == fx.CASES


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["file"])
def test_tamper_case(case):
    """Each case is accepted (the good receipt) or rejected at the step it names, with its reason."""
    text = (DATA / case["file"]).read_text()
    if case["step"] is None:
        facts = verify(text)
        assert facts.index == 3 and facts.tree_size == 7 and facts.witnesses == ("witness.example.org/w1",)
        return
    with pytest.raises(ReceiptError) as info:
        verify(text)
    assert info.value.step == case["step"] and case["match"] in str(info.value), str(info.value)


def test_good_receipt_says_what_the_entry_says():
    """A verified receipt returns the entry's type, times, actor, subjects, purpose and log position."""
    summary = verify(GOOD).summary()
    assert summary["type"] == "DataAccessed" and summary["subject_ids"] == ["cust-000005"]
    assert summary["actor"]["id"] == "emp-1012" and summary["purpose"] == "essential.service.operations.support"
    assert summary["occurred_at"] == "2026-01-18T00:00:00+00:00"
    assert summary["log"] == {"origin": "ledger.example.com/audit/ledger.access/0", "index": 3, "tree_size": 7,
                              "topic": "ledger.access", "partition": 0, "offset": 3}


def test_every_flipped_bit_is_rejected():
    """Flipping any single bit anywhere in a receipt makes verification fail with a named step."""
    data = GOOD.encode()
    steps = {}
    for i in range(len(data)):
        for bit in range(8):
            tampered = bytearray(data)
            tampered[i] ^= 1 << bit
            with pytest.raises(ReceiptError) as info:
                verify(bytes(tampered))
            steps[info.value.step] = steps.get(info.value.step, 0) + 1
    assert set(steps) <= {"format", "signature", "cosignature", "inclusion", "record"}
    assert {"format", "signature", "cosignature", "inclusion"} <= set(steps)


def test_witness_policy():
    """Without witness keys the log signature suffices; more witnesses than keys or cosignatures fail."""
    assert verify(GOOD, witness_vkeys=[], min_witnesses=0).witnesses == ()
    with pytest.raises(ReceiptError, match="cosignature: 2 witness cosignature"):
        verify(GOOD, min_witnesses=2)
    other = fx.OTHER_WITNESS_KEY.verifier().vkey
    with pytest.raises(ReceiptError, match=r"1 valid witness cosignature\(s\) \(witness.example.org/w1\), 2 required"):
        verify(GOOD, witness_vkeys=[WITNESS_VKEY, other], min_witnesses=2)
    with pytest.raises(ReceiptError, match="0 valid witness cosignature"):
        verify(GOOD, witness_vkeys=[other], min_witnesses=1)


def test_keys_of_the_wrong_kind_are_refused():
    """A cosigner key given as the log key, or a log key as a witness key, is a format error."""
    with pytest.raises(ReceiptError, match="log key witness.example.org/w1.*type 04"):
        rc.verify_receipt(GOOD, [WITNESS_VKEY])
    with pytest.raises(ReceiptError, match="witness key .* type 01"):
        rc.verify_receipt(GOOD, [LOG_VKEY], [LOG_VKEY])
    with pytest.raises(ReceiptError, match="bad verifier key"):
        rc.verify_receipt(GOOD, ["nonsense"])


def test_receipt_round_trips():
    """parse_receipt and Receipt.format are inverse on a well-formed receipt."""
    parsed = rc.parse_receipt(GOOD)
    assert parsed.index == 3 and len(parsed.proof) == 3 and parsed.checkpoint_line == 8
    assert parsed.format() == GOOD


@pytest.mark.parametrize("edit, line, match", [
    (lambda t: t.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"), 1, "first line"),
    (lambda t: t.replace("extra ", "extra: "), 2, "standard base64|extra line"),
    (lambda t: t.replace("index 3", "index 03"), 3, "leading zeroes"),
    (lambda t: t.replace("index 3", "idx 3"), 3, "expected 'index"),
    (lambda t: "\n".join(line if i != 3 else "BnGUhgdD" for i, line in enumerate(t.split("\n"))), 4, "not 32"),
    (lambda t: t.replace("\n\n", "\n", 1).replace("\n\n", "\n"), None, "no empty line"),
])
def test_malformed_receipts_name_the_line(edit, line, match):
    """A malformed receipt is a FormatError naming its line."""
    with pytest.raises(FormatError, match=match) as info:
        rc.parse_receipt(edit(GOOD))
    assert info.value.line == line


def test_checkpoint_errors_use_receipt_line_numbers():
    """A problem inside the embedded checkpoint is reported at its line in the receipt."""
    with pytest.raises(ReceiptError, match="checkpoint size line 9"):
        verify(GOOD.replace("\n7\n", "\n07\n"))


def test_receipt_without_extra_or_with_an_undecodable_record():
    """No extra line, or a logged value that is not an event, fails at the record step."""
    parsed = rc.parse_receipt(GOOD)
    no_extra = rc.Receipt(None, parsed.index, parsed.proof, parsed.checkpoint).format()
    with pytest.raises(ReceiptError, match="record: the receipt has no extra line"):
        verify(no_extra)
    junk = fx.PartitionLog("ledger.access", 0, [Record("ledger.access", 0, 0, 1, None, b"junk")])
    with pytest.raises(ReceiptError, match=r"record: ledger.access\[0\]@0 does not decode"):
        verify(junk.receipt(0))


records = st.builds(
    Record,
    topic=st.text(min_size=1, max_size=20),
    partition=st.integers(min_value=0, max_value=2**31 - 1),
    offset=st.integers(min_value=0, max_value=2**63 - 1),
    timestamp=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    key=st.none() | st.binary(max_size=20),
    value=st.none() | st.binary(max_size=50),
    headers=st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=8)), max_size=4).map(tuple),
)


@settings(max_examples=200)
@given(record=records)
def test_leaf_data_decodes_to_the_record(record):
    """decode_leaf_data inverts ledger/chain.py's leaf encoding (after its 00 prefix) for any record."""
    decoded = rc.decode_leaf_data(leaf_bytes(record)[1:])
    assert (decoded.topic, decoded.partition, decoded.offset, decoded.timestamp, decoded.key,
            decoded.headers, decoded.value) == (record.topic, record.partition, record.offset,
                                                record.timestamp, record.key, record.headers, record.value)


@pytest.mark.parametrize("data, match", [
    (b"\x00\x00\x00\x05abc", "ends inside the topic"),
    (b"\xff\xff\xff\xff", "the topic is null"),
    (leaf_bytes(Record("t", 0, 0, 0, None, b"v"))[1:] + b"x", "1 trailing byte"),
    (leaf_bytes(Record("t", 0, 0, 0, None, b"v"))[1:-5], "ends inside"),
])
def test_malformed_leaf_data(data, match):
    """Leaf data that is not the chain's encoding names where it breaks."""
    with pytest.raises(FormatError, match=match):
        rc.decode_leaf_data(data)


def test_receipt_module_imports_neither_store_nor_kafka():
    """Verifying a receipt loads no store module and no Kafka client."""
    code = ("import sys; from ledger.tlog.receipt import verify_receipt; "
            f"verify_receipt(open({str(DATA / 'good.tlog-proof')!r}).read(), [{LOG_VKEY!r}]); "
            "bad = [m for m in sys.modules if m.startswith(('ledger.store', 'kafka', 'sqlite3', 'confluent_kafka'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
