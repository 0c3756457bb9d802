"""Reports with proofs, checked offline: canonical JSON, the signed statement, and every tamper case.

The tamper cases are data files (tests/data/tamper_report/, written by
tests/support/report_fixtures.py from a small real ledger): each must be accepted or rejected with
its named line and reason by ``ledger.tlog.report_check.verify_report``, which imports neither the
store nor Kafka.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import report_fixtures as rfx
from tlog_fixtures import LOG_KEY, WITNESS_KEY

from ledger.tlog import jcs
from ledger.tlog.errors import FormatError, SignatureError
from ledger.tlog.report_check import verify_report
from ledger.tlog.signed_report import CONTEXT, check_report_signature, report_digest, sign_report, statement

DATA = rfx.TAMPER_DIR
LOG_VKEY = (DATA / "log.vkey").read_text().strip()
REPORT_VKEY = (DATA / "report.vkey").read_text().strip()
WITNESS_VKEY = (DATA / "witness.vkey").read_text().strip()
CASES = json.loads((DATA / "cases.json").read_text())


def check(data, **keys):
    keys.setdefault("report_vkeys", [REPORT_VKEY])
    return verify_report(data, [LOG_VKEY], keys["report_vkeys"], [WITNESS_VKEY], 1)


# --- RFC 8785 ----------------------------------------------------------------------------------------


def test_jcs_matches_the_rfc_8785_example_of_section_3_2_2():
    """The RFC's example input canonicalises to the RFC's output, byte for byte."""
    text = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], '
            r'"string": "\u20ac$\u000F\u000aA' "'" r'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}')
    want = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
            '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    assert jcs.canonical(json.loads(text)) == want.encode("utf-8")


def test_jcs_sorts_members_by_utf16_code_units_as_section_3_2_3():
    """The RFC's sorting example: \\r, 1, U+0080, ö, €, 😀 (a surrogate pair), U+FB33."""
    value = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
             "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
             "\u00f6": "Latin Small Letter O With Diaeresis"}
    keys = [k for k in json.loads(jcs.canonical(value))]
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_jcs_utf8_and_unnormalised_text_as_section_3_2_4():
    """Strings are UTF-8 and never Unicode-normalised: A + combining ring stays two code points."""
    assert jcs.canonical({"Unnormalized Unicode": "A\u030a"}).hex() == (
        "7b22556e6e6f726d616c697a656420556e69636f6465223a2241cc8a227d")


@pytest.mark.parametrize("number, text", [
    (0.0, "0"), (-0.0, "0"), (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    (9007199254740992.0, "9007199254740992"), (295147905179352830000.0, "295147905179352830000"),
    (1e21, "1e+21"), (1e-7, "1e-7"), (0.000001, "0.000001"), (333333333.3333333, "333333333.3333333"),
])
def test_jcs_numbers_as_ecmascript_prints_them(number, text):
    """Numbers of RFC 8785 appendix B serialise as ECMAScript's Number.prototype.toString."""
    assert jcs.canonical(number) == text.encode()


def test_jcs_refuses_what_json_cannot_say_exactly():
    """NaN and integers beyond 2^53 have no canonical form: a clear FormatError, not a wrong digest."""
    for value in (float("nan"), 2**53 + 1, {"x": object()}):
        with pytest.raises(FormatError, match="canonical JSON"):
            jcs.canonical(value)


def test_strict_json_refuses_repeated_keys_and_nan():
    """Two parsers may resolve a repeated key differently; a verifier refuses it, naming the key."""
    with pytest.raises(FormatError, match="'a' appears twice"):
        jcs.loads_strict('{"a": 1, "a": 2}')
    with pytest.raises(FormatError, match="NaN is not a JSON number"):
        jcs.loads_strict('{"a": NaN}')
    with pytest.raises(FormatError, match="report line 2: not JSON"):
        jcs.loads_strict('{\n"a": }', "report")


# --- the signed statement ----------------------------------------------------------------------------


def test_report_signature_round_trip_survives_any_formatting():
    """A signed report verifies after re-indenting and reordering its keys: the digest is over JCS."""
    doc = {"kind": "subject-access-report", "subject": "cust-1", "generated_at": "2026-01-01T00:00:00.000000Z",
           "timeline": [{"b": 1, "a": "x\u2028"}], "parameters": {"rules": (1, 2)}}
    signed = sign_report(doc, rfx.REPORT_KEY)
    assert list(signed)[-1] == "report_signature"
    assert signed["report_signature"].startswith(f"{CONTEXT}\ncust-1\n2026-01-01T00:00:00.000000Z\n"
                                                 f"{report_digest(doc)}\n\n")
    reread = json.loads(json.dumps(dict(reversed(list(signed.items()))), indent=7))
    assert check_report_signature(reread, [rfx.REPORT_KEY.verifier()]).key.startswith("reports.example.com/2026+")
    reread["timeline"][0]["b"] = 2
    with pytest.raises(SignatureError, match="changed after signing"):
        check_report_signature(reread, [rfx.REPORT_KEY.verifier()])


def test_report_signature_binds_subject_and_time_and_refuses_a_log_key():
    """The statement's subject and time must be the report's; a key covering a log origin is refused."""
    doc = {"subject": "cust-1", "generated_at": "2026-01-01T00:00:00Z", "timeline": []}
    signed = sign_report(doc, rfx.REPORT_KEY)
    with pytest.raises(SignatureError, match="for subject 'cust-1', the report is about 'cust-2'"):
        check_report_signature({**signed, "subject": "cust-2"}, [rfx.REPORT_KEY.verifier()])
    with pytest.raises(SignatureError, match="also covers the log origin"):
        check_report_signature(sign_report(doc, LOG_KEY), [LOG_KEY.verifier()],
                               ["ledger.example.com/audit/ledger.access/0"])
    with pytest.raises(FormatError, match="report subject"):
        statement("cust\n1", "t", "00")


def test_a_checkpoint_note_is_not_a_report_statement():
    """A note signed by the report key that is not a ledger.report/v1 statement is refused as such."""
    doc = {"subject": "cust-1", "generated_at": "t", "timeline": []}
    from ledger.tlog.note import sign_note

    doc["report_signature"] = sign_note(f"ledger.example.com/audit\n1\n{report_digest(doc)}\n", [rfx.REPORT_KEY])
    with pytest.raises(SignatureError, match="not a ledger.report/v1 statement"):
        check_report_signature(doc, [rfx.REPORT_KEY.verifier()])


# --- the tamper cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["file"])
def test_tamper_case(case):
    """Each data file is accepted (the good reports) or rejected naming its line and the reason."""
    text = (DATA / case["file"]).read_text()
    audience = json.loads(text)["audience"]
    result = check(text, report_vkeys=[REPORT_VKEY] if audience == "subject" else [])
    if case["match"] is None:
        assert result.ok, result.problems
        assert result.proved == result.lines > 0 and result.witnesses == {"witness.example.org/w1"}
        return
    assert not result.ok
    assert any(p.startswith(case["match"]) and case["reason"] in p for p in result.problems), result.problems


def test_fresh_reports_verify_and_the_same_tampering_is_caught(tmp_path):
    """Reports built now by the real builder verify, and the generator's tampering of them is rejected alike."""
    made = rfx.build_reports(tmp_path)
    files = rfx.tamper_files(made)
    assert set(files) | {"cases.json"} == {p.name for p in DATA.iterdir() if p.name != "README.md"}
    for case in CASES:
        audience = json.loads(files[case["file"]])["audience"]
        result = check(files[case["file"]], report_vkeys=[REPORT_VKEY] if audience == "subject" else [])
        assert result.ok is (case["match"] is None), (case, result.problems)


def test_subject_report_hands_out_no_leaf_data():
    """No receipt, no leaf hash, no leaf data: the subject report shows positions and checkpoints only."""
    text = (DATA / "subject-good.json").read_text()
    doc = json.loads(text)
    assert "c2sp.org/tlog-proof" not in text and "extra " not in text
    assert all(set(line["log"]) == {"origin", "index"} for line in doc["timeline"])
    auditor = json.loads((DATA / "auditor-good.json").read_text())
    extras = {r["receipt"].split("\n")[1][6:] for r in auditor["timeline"]}
    assert not any(extra[:40] in text for extra in extras)


def test_subject_report_needs_the_report_key():
    """A subject report is proved by its signature: without --report-vkey it is not accepted."""
    result = check((DATA / "subject-good.json").read_text(), report_vkeys=[])
    assert not result.ok and "give the report key's vkey" in result.problems[0]


def test_a_report_key_that_is_the_log_key_is_refused():
    """Giving the log's vkey as the report vkey fails: one key, one kind of statement."""
    result = check((DATA / "subject-good.json").read_text(), report_vkeys=[LOG_VKEY])
    assert any("log's key material" in p for p in result.problems)


def test_witness_policy_applies_to_every_checkpoint():
    """With two witnesses required and one known, each checkpoint of a subject report fails by name."""
    text = (DATA / "subject-good.json").read_text()
    other = rfx.fixed_signer("witness.example.net/w2", 3, cosigner=True).verifier().vkey
    result = verify_report(text, [LOG_VKEY], [REPORT_VKEY], [WITNESS_VKEY, other], 2)
    assert result.problems and all("cosignature" in p for p in result.problems if p.startswith("checkpoints["))


@pytest.mark.parametrize("text, reason", [
    ("[]", "is not a JSON object"),
    ('{"kind": "other"}', "is not a ledger report"),
    ('{"kind": "subject-access-report", "subject": "c", "audience": "x", "generated_at": "t", "timeline": []}',
     "neither auditor nor subject"),
    ('{"kind": "subject-access-report", "subject": "c", "audience": "auditor", "generated_at": "t"}',
     "report timeline: missing"),
    ("\xff", "not JSON"),
])
def test_malformed_reports_are_named(text, reason):
    """A file that is not a report is a FormatError naming what is wrong, never a traceback."""
    with pytest.raises(FormatError, match=reason):
        check(text)


def test_a_line_without_its_receipt_is_named():
    """An auditor line stripped of its receipt is named: the report must be made with --proofs."""
    doc = json.loads((DATA / "auditor-good.json").read_text())
    del doc["timeline"][2]["receipt"]
    result = check(doc, report_vkeys=[])
    assert [p for p in result.problems if p.startswith("timeline[2]")] == [
        f"timeline[2] (event {doc['timeline'][2]['event_id']}): no receipt (make the report with --proofs)"]


@pytest.mark.parametrize("change, reason", [
    (lambda v: v.update(own_action=not v["own_action"]), "own_action is"),
    (lambda v: v.update(labels={"purpose": "Something else"}), "labels are"),
    (lambda v: v.update(recorded_at="2020-01-01T00:00:00.000000Z"), "recorded_at is"),
    (lambda v: v.update(extra_field=1), "field extra_field is in the line but not in the record"),
    (lambda v: v.pop("data_categories"), "field data_categories of the record is missing"),
])
def test_every_shown_field_is_checked_against_the_record(change, reason):
    """What a line shows beside the record's fields (labels, own_action, recorded_at) is checked too."""
    doc = json.loads((DATA / "auditor-good.json").read_text())
    change(doc["timeline"][4])
    result = check(doc, report_vkeys=[])
    assert any(p.startswith("timeline[4]") and reason in p for p in result.problems), result.problems


def test_a_line_repeated_is_named():
    """Two lines proving one entry: the second is named with the first."""
    doc = json.loads((DATA / "auditor-good.json").read_text())
    doc["timeline"].append(doc["timeline"][0])
    result = check(doc, report_vkeys=[])
    assert any("as timeline[0]" in p for p in result.problems)


def test_the_checker_imports_neither_store_nor_kafka():
    """ledger/tlog/report_check.py and what it imports of ledger stay below the store and Kafka."""
    root = Path(__file__).resolve().parents[2] / "ledger" / "tlog"
    for name in ("report_check.py", "signed_report.py", "jcs.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("ledger.store", "ledger.kafka", "kafka", "confluent")), name
                assert not (node.level == 2 and node.module.startswith(("store", "kafka"))), name


def test_witness_key_is_type_04():
    """The fixtures' witness is a cosigner: its vkey is of type 04 (so it is never taken for the log)."""
    assert WITNESS_KEY.verifier().sig_type == 0x04


# --- opening a customer's report with receipts ---------------------------------------------------------


def test_opening_a_subject_report_with_the_auditors_receipts():
    """Every line of the customer's report equals what the customer may see of the record its position holds."""
    from ledger.audit.report.opened import open_lines, receipts_in

    subject = json.loads((DATA / "subject-good.json").read_text())
    receipts = receipts_in(json.loads((DATA / "auditor-good.json").read_text()))
    problems, notes, opened = open_lines(subject, receipts, [LOG_VKEY], [WITNESS_VKEY], 1)
    assert problems == [] and opened == len(subject["timeline"])
    assert len(notes) == len(receipts) - len(subject["timeline"])  # lines only the auditor sees


def test_opening_names_a_line_that_is_not_its_record():
    """A customer's line that differs from its record (under a valid position) is named with the field."""
    from ledger.audit.report.opened import open_lines, receipts_in

    subject = json.loads((DATA / "subject-line-edited.json").read_text())
    receipts = receipts_in(json.loads((DATA / "auditor-good.json").read_text()))
    problems, _, opened = open_lines(subject, receipts, [LOG_VKEY])
    assert opened == len(subject["timeline"]) - 1
    assert len(problems) == 1 and problems[0].startswith("timeline[0]")
    assert "purpose is 'marketing.advertising'" in problems[0]


def test_opening_imports_neither_store_nor_kafka():
    """The opener and the subject allow-list it reuses load without the store (the report model is lazy)."""
    import subprocess
    import sys

    code = ("import sys\nimport ledger.audit.report.opened\n"
            "print(sorted(m for m in sys.modules if m.startswith(('ledger.store', 'kafka', 'confluent_kafka'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# --- properties -----------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8)
    # Integral floats of 2^53 and above print as integers a parser then reads as ints beyond JCS's domain.
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_json)
def test_canonical_json_is_the_same_after_any_reserialisation(value):
    """Re-encoding a value (indent, key order, escapes) and reading it back never changes its canonical bytes."""
    once = jcs.canonical(value)
    text = json.dumps(value, indent=3, ensure_ascii=True, sort_keys=False)
    assert jcs.canonical(jcs.loads_strict(text)) == once
    assert jcs.canonical(json.loads(once)) == once


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: k != "report_signature"), _json,
                       min_size=1, max_size=5), st.data())
def test_any_change_to_a_signed_report_breaks_its_signature(extra, data):
    """Changing, adding or removing any member of a signed report is caught by the signature check."""
    doc = {"subject": "cust-1", "generated_at": "2026-01-01T00:00:00Z", **extra}
    signed = sign_report(doc, rfx.REPORT_KEY)
    check_report_signature(json.loads(json.dumps(signed)), [rfx.REPORT_KEY.verifier()])
    key = data.draw(st.sampled_from(sorted(extra)))
    changed = dict(signed)
    if data.draw(st.booleans()):
        del changed[key]
    else:
        changed[key] = [changed[key]]
    with pytest.raises(SignatureError):
        check_report_signature(changed, [rfx.REPORT_KEY.verifier()])
