"""The console and the portal in a real headless Chromium (Debian's chromium + chromium-driver, via selenium).

Skipped, saying why, only when chromium or its driver is not installed
(`make test` installs them where apt-get is available). Screenshots of each
page land in build/screenshots/.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the http extra is needed for `ledger serve`")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is needed for the browser tests (test extra)")

from fill import fill_ledger  # noqa: E402
from httpkit import ROOT, hostile_events, start_server  # noqa: E402

from ledger.dev.simulate import simulate  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or (Path("/usr/lib/chromium/chromedriver").exists()
                                          and "/usr/lib/chromium/chromedriver") or None
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason=(
    "headless Chromium not installed: apt-get install chromium chromium-driver (make test does it when it can)"))
SHOTS = ROOT / "build" / "screenshots"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    workload = simulate(seed=8, events=500, subjects=20)
    fill_ledger(tmp / "ledger.db", [*workload.events, *hostile_events()])
    server = start_server(tmp / "ledger.db", tmp)
    try:
        yield workload, server
    finally:
        server.stop()


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(driver.get_window_size()["width"], min(max(height, 600), 6000))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def login(driver, server, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server.url + "/login")
    shot(driver, "login")
    box = driver.find_element(By.ID, "token")
    assert driver.find_element(By.CSS_SELECTOR, "label[for=token]").text == "Access token"
    box.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button[type=submit]").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: not d.current_url.endswith("/login") or d.find_elements(By.CSS_SELECTOR, ".error"))


def test_console_search_shows_the_same_events_as_ledger_who_saw(world, browser):
    """Log in with an auditor token, search a customer by keyboard-reachable form: the table is `ledger who-saw`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    workload, server = world
    subject = workload.a_rich_subject()
    login(browser, server, server.token("audit:read", holder="emp-aud-3", organization="Internal Audit"))
    assert browser.current_url.endswith("/console"), browser.page_source[:2000]
    cookie = browser.get_cookie("ledger_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie").find("ledger_session") == -1
    shot(browser, "console")
    browser.find_element(By.ID, "id").send_keys(subject)
    why = browser.find_element(By.ID, "justification")
    why.send_keys("browser test: access review")
    why.send_keys(Keys.ENTER)  # submit from the keyboard
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(lambda d: "/console/subject" in d.current_url)
    assert "/console/subject" in browser.current_url
    shot(browser, "console-customer")
    shown = [row.get_attribute("data-event-id") for row in browser.find_elements(By.CSS_SELECTOR, "tr.event")]
    cli = subprocess.run([sys.executable, "-m", "ledger", "who-saw", subject, "--db", str(server.db), "--format",
                          "json"], capture_output=True, text=True, check=True)
    expected = [row["event_id"] for row in json.loads(cli.stdout)]
    assert shown == expected[: len(shown)] and len(shown) == min(100, len(expected)) and shown
    # The type filter narrows the timeline the same way `--type` does.
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "f-type")).select_by_value("DataShared")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 20).until(lambda d: "type=DataShared" in d.current_url)
    shared = [row.get_attribute("data-event-id") for row in browser.find_elements(By.CSS_SELECTOR, "tr.event")]
    cli = subprocess.run([sys.executable, "-m", "ledger", "who-saw", subject, "--db", str(server.db), "--format",
                          "json", "--type", "DataShared"], capture_output=True, text=True, check=True)
    assert shared == [row["event_id"] for row in json.loads(cli.stdout)][: len(shared)]
    browser.get(server.url + "/console/recipients")
    shot(browser, "console-recipients")
    browser.get(server.url + "/console/obligations?overdue=1&justification=browser+test")
    shot(browser, "console-obligations")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Overdue notices"


def test_the_portal_shows_a_customer_only_their_own_data(world, browser):
    """A subject token's portal names no other customer and no staff id; another customer's page is a 404."""
    from selenium.webdriver.common.by import By

    workload, server = world
    subject = workload.a_rich_subject()
    login(browser, server, server.token(f"subject:{subject}"))
    assert browser.current_url.endswith("/portal")
    shot(browser, "portal")
    source = browser.page_source
    others = {s for e in workload.events for s in e["subject_ids"]} - {subject}
    assert not [s for s in others if f"{s}<" in source or f"{s}\"" in source or f"{s} " in source]
    assert "emp-" not in source
    items = browser.find_elements(By.CSS_SELECTOR, "ol.timeline li")
    assert items and "Who has seen your data" in browser.find_element(By.TAG_NAME, "h1").text
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, ".downloads a")]
    assert len(links) == 3 and all(f"/v1/subjects/{subject}/report" in h for h in links)
    other = sorted(others)[0]
    browser.get(server.url + f"/v1/subjects/{other}/who-saw")
    assert '"not_found"' in browser.page_source
    browser.set_window_size(390, 844)  # a phone
    browser.get(server.url + "/portal")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 400, "the portal must not scroll sideways on a phone"
    shot(browser, "portal-phone")


def test_hostile_strings_run_no_script_in_the_browser(world, browser):
    """Pages listing <script> and onerror payloads raise no alert and create no injected element."""
    from selenium.webdriver.common.by import By

    _, server = world
    login(browser, server, server.token("audit:read"))
    browser.get(server.url + "/console/actor?id=emp-hostile&justification=hostile+check")
    shot(browser, "console-hostile")
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
    assert browser.find_elements(By.CSS_SELECTOR, "main script") == []
    assert "<script>alert(1)</script>" in browser.find_element(By.TAG_NAME, "main").text
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text


# -- verification in the browser (WebCrypto) ---------------------------------------------------------
MERKLE = ROOT / "tests" / "data" / "merkle"


@pytest.fixture(scope="module")
def signed_world(tmp_path_factory):
    """A signed ledger served with its log vkey and a report key, and one auditor receipt fetched over the API."""
    import httpx
    from signed import ORIGIN, report_key, signed_ledger

    tmp = tmp_path_factory.mktemp("browser-signed")
    workload, _, vkey = signed_ledger(tmp, events=300, subjects=12, seed=9)
    key, report_vkey = report_key(tmp)
    server = start_server(tmp / "ledger.db", tmp, extra=("--log-vkey", str(vkey), "--log-origin", ORIGIN,
                                                         "--report-key", str(key)))
    server.report_vkey = report_vkey.read_text().strip()
    subject = workload.a_rich_subject()
    try:
        audit = server.token("audit:read", holder="emp-aud-5", organization="Internal Audit")
        rows = httpx.get(server.url + f"/v1/subjects/{subject}/who-saw", headers=server.auth(audit), timeout=60)
        event_id = rows.json()["items"][0]["event_id"]
        receipt = httpx.get(server.url + f"/v1/events/{event_id}/receipt", headers=server.auth(audit), timeout=60)
        assert receipt.status_code == 200, receipt.text
        yield server, subject, receipt.text, vkey.read_text().strip(), tmp
    finally:
        server.stop()


def _flip(b64_text: str, bit: int = 0) -> str:
    """The base64 of the same bytes with one bit flipped (byte bit // 8)."""
    import base64

    raw = bytearray(base64.b64decode(b64_text))
    raw[bit // 8 % len(raw)] ^= 1 << (bit % 8)
    return base64.b64encode(bytes(raw)).decode()


def tampered_receipts(receipt: str) -> dict[str, tuple[str, str]]:
    """name → (receipt text, the step that must fail)."""
    head, _, checkpoint = receipt.partition("\n\n")
    lines = head.split("\n")
    extra = lines[1][len("extra "):]
    flipped_proof = lines[:]
    flipped_proof[3] = _flip(lines[3], 77)
    bad_extra = lines[:]
    bad_extra[1] = "extra " + _flip(extra, 8 * 30 + 2)
    cp_lines = checkpoint.split("\n")
    cp_lines[1] = str(int(cp_lines[1]) + 1)  # the signed size changed
    return {
        "bit-flip-in-proof": ("\n".join(flipped_proof) + "\n\n" + checkpoint, "inclusion"),
        "bit-flip-in-extra": ("\n".join(bad_extra) + "\n\n" + checkpoint, "inclusion"),
        "changed-checkpoint-size": (head + "\n\n" + "\n".join(cp_lines), "signature"),
        "not-a-receipt": ("hello\n\nworld\n", "format"),
    }


def verify_in_page(driver, receipt: str, vkey: str) -> tuple[str, str]:
    """Paste the key and the receipt, press the button; (data-result, status text) once it has answered."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("document.getElementById('vkey').value = arguments[0];"
                          "document.getElementById('receipt').value = arguments[1];"
                          "delete document.getElementById('verify-status').dataset.result;", vkey, receipt)
    driver.find_element(By.CSS_SELECTOR, "#receipt-form button[type=submit]").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "verify-status").get_attribute("data-result"))
    status = driver.find_element(By.ID, "verify-status")
    return status.get_attribute("data-result"), status.text


def test_a_pasted_receipt_verifies_in_the_browser_and_tampered_ones_do_not(signed_world, browser):
    """A valid receipt verifies (signature, inclusion, record); a flipped bit or a wrong key fails, named."""
    from selenium.webdriver.common.by import By

    from ledger.tlog.note import generate_signer

    server, _, receipt, vkey, _ = signed_world
    login(browser, server, server.token("audit:read", holder="emp-aud-5"))
    browser.get(server.url + "/console/receipt")
    assert browser.find_element(By.ID, "vkey").get_attribute("value") == vkey  # filled in, to be compared
    assert "published elsewhere" in browser.find_element(By.ID, "proves").text
    assert browser.execute_script("return typeof window.ledgerVerify") == "object"
    result, text = verify_in_page(browser, receipt, vkey)
    assert result == "verified", text
    facts = browser.find_element(By.ID, "verify-facts").text
    head = receipt.split("\n")
    assert f"entry {head[2][len('index '):]} of" in facts and "ledger.example.com/audit/" in facts
    shot(browser, "console-receipt-verified")
    for name, (bad, step) in tampered_receipts(receipt).items():
        result, text = verify_in_page(browser, bad, vkey)
        assert result == step, (name, text)
        assert text.startswith(f"Not verified ({step})"), (name, text)
        shot(browser, f"console-receipt-{name}")
    impostor = generate_signer("ledger.example.com/audit").verifier().vkey  # the log's name, another key
    result, text = verify_in_page(browser, receipt, impostor)
    assert result == "signature" and "not signed by the given log key" in text, text
    shot(browser, "console-receipt-wrong-key")
    other_log = generate_signer("other.example.org/log").verifier().vkey
    result, text = verify_in_page(browser, receipt, other_log)
    assert result == "signature" and "covers origin" in text, text


def test_the_portal_checks_each_checkpoints_signature_in_the_browser(signed_world, browser):
    """A customer sees every checkpoint, its signature verified by WebCrypto, a download link, and the caveat."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, subject, _, vkey, _ = signed_world
    login(browser, server, server.token(f"subject:{subject}"))
    assert browser.current_url.endswith("/portal")
    rows = browser.find_elements(By.CSS_SELECTOR, "#checkpoints tbody tr")
    assert len(rows) >= 4
    WebDriverWait(browser, 20).until(lambda d: all(
        c.get_attribute("data-result") != "unchecked" for c in d.find_elements(By.CSS_SELECTOR, ".sig-status")))
    cells = browser.find_elements(By.CSS_SELECTOR, ".sig-status")
    assert {c.get_attribute("data-result") for c in cells} == {"verified"}, [c.text for c in cells]
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#checkpoints a[download]")]
    assert len(links) == len(rows) and all("/v1/checkpoints/ledger.example.com/audit/" in h for h in links)
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "Compare that key with the one the company publishes elsewhere" in page and vkey in page
    browser.set_window_size(1280, 1000)  # the timeline above is long: show the checkpoints themselves
    browser.execute_script("document.getElementById('c').scrollIntoView()")
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "portal-checkpoints.png"))
    # A note whose text was changed after signing shows as not verified, with the reason.
    browser.execute_script("const r = document.querySelector('#checkpoints tr[data-note]');"
                           "r.dataset.note = r.dataset.note.replace(/\\n(\\d+)\\n/, (m, n) => '\\n' + (+n + 1) + '\\n');"
                           "r.querySelector('.sig-status').dataset.result = 'unchecked';"
                           "window.ledgerVerify.openCheckpoint(r.dataset.note, []).catch(e => {"
                           "  r.querySelector('.sig-status').dataset.result = e.step; });")
    first = browser.find_element(By.CSS_SELECTOR, "#checkpoints tr[data-note] .sig-status")
    WebDriverWait(browser, 10).until(lambda d: first.get_attribute("data-result") != "unchecked")
    assert first.get_attribute("data-result") == "signature"


def test_the_browser_verifier_passes_the_rfc6962_inclusion_vectors(signed_world, browser):
    """Every inclusion vector in tests/data/merkle/ (positive and negative) through verify.js in Chromium."""
    server, _, _, _, _ = signed_world
    vectors = []
    for path in sorted((MERKLE / "inclusion").rglob("*.json")):
        v = json.loads(path.read_text())
        vectors.append({"name": str(path.relative_to(MERKLE)), "leafIdx": v["leafIdx"], "treeSize": v["treeSize"],
                        "root": v["root"] or "", "leafHash": v["leafHash"] or "", "proof": v["proof"] or [],
                        "wantErr": v["wantErr"]})
    assert len(vectors) > 90
    login(browser, server, server.token("audit:read"))
    browser.get(server.url + "/console/receipt")
    browser.set_script_timeout(60)
    failures = browser.execute_async_script("""
        const [vectors, done] = arguments;
        const V = window.ledgerVerify;
        (async () => {
          const bad = [];
          for (const v of vectors) {
            let err = null;
            try {
              const b = (t) => V.b64decode(t, v.name);
              await V.verifyInclusion(BigInt(v.leafIdx), BigInt(v.treeSize), b(v.leafHash), v.proof.map(b), b(v.root));
            } catch (e) { err = e; }
            if ((err !== null) !== v.wantErr) bad.push(v.name + ': ' + (err ? err.message : 'accepted'));
            if (err !== null && !(err instanceof V.VerifyError)) bad.push(v.name + ': not a VerifyError: ' + err);
          }
          done(bad);
        })().catch((e) => done(['crashed: ' + e]));
    """, vectors)
    assert failures == []
    # And the hashing primitives themselves: RFC 6962's empty-tree and leaf hashes.
    got = browser.execute_async_script("""
        const done = arguments[0];
        const V = window.ledgerVerify;
        (async () => done([V.hex(await V.sha256(new Uint8Array())), V.hex(await V.leafHash(new Uint8Array()))]))();
    """)
    assert got == ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                   "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]


def test_the_browser_verifier_accepts_the_signed_note_spec_examples(signed_world, browser):
    """signed-note.md's example vkey and note (and its checkpoint example) verify in Chromium; a changed
    text, a wrong key ID and an unknown signer are refused."""
    from note_examples import SPEC_CHECKPOINT, SPEC_NOTE, SPEC_VKEY

    server, _, _, _, _ = signed_world
    login(browser, server, server.token("audit:read"))
    browser.get(server.url + "/console/receipt")
    results = browser.execute_async_script("""
        const [vkey, noteText, checkpoint, done] = arguments;
        const V = window.ledgerVerify;
        const outcome = async (f) => { try { await f(); return "ok"; } catch (e) { return e.step || String(e); } };
        (async () => {
          const key = await V.parseVkey(vkey);
          const sofa = "example.com/behind-the-sofa";
          done({
            note: await outcome(() => V.openNote(noteText, [key])),
            changed: await outcome(() => V.openNote(noteText.replace("example message", "example massage"), [key])),
            badId: await outcome(() => V.parseVkey(vkey.replace("530d903a", "530d903b"))),
            unknown: await outcome(() => V.openNote(noteText.replace("example.com/foo", "example.com/bar"), [key])),
            keyId: key.keyId.toString(16),
            checkpointFormat: await outcome(() => V.parseCheckpoint(checkpoint.split("\\n\\n")[0] + "\\n", 1)),
          });
        })().catch((e) => done({crashed: String(e)}));
    """, SPEC_VKEY, SPEC_NOTE, SPEC_CHECKPOINT)
    assert results == {"note": "ok", "changed": "signature", "badId": "format", "unknown": "signature",
                       "keyId": "530d903a", "checkpointFormat": "ok"}


def test_the_browser_verifier_rejects_every_tamper_case_with_its_step(signed_world, browser):
    """tests/data/tamper_tlog/: the good receipt verifies with its witness required; each tampered one fails
    at the step `ledger verify-receipt` names (witness cosignatures checked in the browser too)."""
    from selenium.webdriver.common.by import By

    server, _, _, _, _ = signed_world
    tamper = ROOT / "tests" / "data" / "tamper_tlog"
    cases = json.loads((tamper / "cases.json").read_text())
    log_vkey = (tamper / "log.vkey").read_text().strip()
    witness_vkey = (tamper / "witness.vkey").read_text().strip()
    login(browser, server, server.token("audit:read"))
    browser.get(server.url + "/console/receipt")
    browser.execute_script("document.getElementById('witness-vkeys').value = arguments[0];"
                           "document.getElementById('min-witnesses').value = '1';", witness_vkey)
    for case in cases:
        result, text = verify_in_page(browser, (tamper / case["file"]).read_text(), log_vkey)
        assert result == (case["step"] or "verified"), (case["file"], text)
        shot(browser, f"console-receipt-tamper-{case['file'].removesuffix('.tlog-proof')}")
    good = (tamper / "good.tlog-proof").read_text()
    facts = browser.find_element(By.ID, "verify-facts").text
    assert "witness.example.org/w1" not in facts  # the last case failed: no facts shown
    result, _ = verify_in_page(browser, good, log_vkey)
    assert result == "verified" and "witness.example.org/w1" in browser.find_element(By.ID, "verify-facts").text
    browser.execute_script("document.getElementById('min-witnesses').value = '2';")
    result, text = verify_in_page(browser, good, log_vkey)
    assert result == "cosignature" and "2 required" in text, text


def _fetch_signed_report(browser, subject: str) -> str:
    """The signed report as the portal's own script fetches it (the login cookie, same origin)."""
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text()).then(done, e => done('ERR ' + e));",
        f"/v1/subjects/{subject}/report?format=json&signed=true")


def _verify_in_browser(browser, text: str, report_vkey: str, log_vkey: str) -> tuple[str, str]:
    """(step or "verified", message) of window.ledgerReport.verifySignedReport on ``text``."""
    return tuple(browser.execute_async_script(
        "const [text, rk, lk, done] = arguments;"
        "window.ledgerReport.verifySignedReport(text, [rk], [lk])"
        "  .then(r => done(['verified', r.reportKey]), e => done([e.step || 'error', e.message]));",
        text, report_vkey, log_vkey))


def test_the_portal_verifies_the_customers_signed_report_in_the_browser(signed_world, browser):
    """The portal offers the signed report for download and, on request, checks it with WebCrypto: verified,
    in words, with what that proves and does not prove."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, subject, _, _, _ = signed_world
    login(browser, server, server.token(f"subject:{subject}"))
    section = browser.find_element(By.ID, "signed-report")
    link = section.find_element(By.CSS_SELECTOR, "a[download]")
    assert link.get_attribute("href").endswith(f"/v1/subjects/{subject}/report?format=json&signed=true")
    assert "Download my signed report" in link.text
    text = section.text
    assert server.report_vkey in text and "compare the keys above with the ones the company publishes elsewhere" in text
    assert "ledger verify-report FILE --vkey LOG.vkey --report-vkey REPORT.vkey" in text
    section.find_element(By.ID, "report-check").click()
    status = browser.find_element(By.ID, "report-status")
    WebDriverWait(browser, 30).until(lambda d: status.get_attribute("data-result") not in ("unchecked", "pending"))
    assert status.get_attribute("data-result") == "verified", status.text
    assert status.text.startswith(f"Verified in your browser: this report about {subject}")
    assert "reports.example.com/2026+" in status.text and "ledger.example.com/audit/" in status.text
    browser.set_window_size(1280, 1000)
    browser.execute_script("document.getElementById('signed-report').scrollIntoView()")
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "portal-signed-report.png"))


def test_the_browser_refuses_a_tampered_signed_report_naming_the_reason(signed_world, browser):
    """Run the portal's verifier on changed copies of the real signed report: each fails at its named step."""
    from ledger.tlog.note import generate_signer

    server, subject, _, vkey, _ = signed_world
    login(browser, server, server.token(f"subject:{subject}"))
    text = _fetch_signed_report(browser, subject)
    assert _verify_in_browser(browser, text, server.report_vkey, vkey)[0] == "verified"
    good = json.loads(text)

    def changed(edit) -> str:
        copy = json.loads(text)
        edit(copy)
        return json.dumps(copy, indent=1)

    def later_checkpoint(r):
        lines = r["checkpoints"][0].split("\n")
        lines[1] = str(int(lines[1]) + 1)
        r["checkpoints"][0] = "\n".join(lines)

    cases = {
        "a changed line": (changed(lambda r: r["timeline"][0].update(occurred_at="2001-01-01T00:00:00.000Z")),
                           "content", "changed after signing"),
        "a line removed": (changed(lambda r: r["timeline"].pop()), "content", "changed after signing"),
        "another subject": (changed(lambda r: r.update(subject="cust-999999")), "statement", "cust-999999"),
        "a re-signed checkpoint": (changed(later_checkpoint), "checkpoint", "does not verify"),
        "no signature": (changed(lambda r: r.pop("report_signature")), "format", "not signed"),
        "not JSON": ("{" + text, "format", "not JSON"),
        # JSON.parse would keep the second "subject" and verify; `ledger verify-report` refuses both.
        "a repeated key": ('{"subject": "cust-999999", ' + text.lstrip()[1:], "format", "appears twice"),
    }
    for name, (bad, step, words) in cases.items():
        result, message = _verify_in_browser(browser, bad, server.report_vkey, vkey)
        assert (result, words in message) == (step, True), (name, result, message)
    impostor = generate_signer("reports.example.com/2026").verifier().vkey  # the report key's name, another key
    result, message = _verify_in_browser(browser, text, impostor, vkey)
    assert result == "signature" and "not signed by the given report key" in message, message
    assert _verify_in_browser(browser, text, vkey, vkey)[0] == "signature"  # the log's key as report key: refused
    # Signed, but wrong: a report key that signs a line beyond its checkpoint, or a line with no position.
    from ledger.tlog.signed_report import sign_report

    rogue = generate_signer("reports.example.com/2026")
    beyond = json.loads(text)
    origin = beyond["timeline"][0]["log"]["origin"]
    size = next(int(n.split("\n")[1]) for n in beyond["checkpoints"] if n.startswith(origin + "\n"))
    beyond["timeline"][0]["log"]["index"] = size
    result, message = _verify_in_browser(browser, json.dumps(sign_report(beyond, rogue)), rogue.verifier().vkey, vkey)
    assert result == "position" and f"index {size} is not under the checkpoint" in message, message
    unplaced = json.loads(text)
    del unplaced["timeline"][-1]["log"]
    result, message = _verify_in_browser(browser, json.dumps(sign_report(unplaced, rogue)), rogue.verifier().vkey, vkey)
    assert result == "position" and "no log position" in message, message
    # Key order and whitespace are not content: a re-serialised copy still verifies.
    reordered = json.dumps(dict(reversed(list(good.items()))), ensure_ascii=True, indent=4)
    assert _verify_in_browser(browser, reordered, server.report_vkey, vkey)[0] == "verified"


def test_the_browsers_canonical_json_is_rfc8785_as_ledger_tlog_jcs_makes_it(signed_world, browser):
    """Numbers, escapes and key order of the RFC's hard cases come out byte for byte as the Python signer's."""
    from ledger.tlog.jcs import canonical

    server, subject, _, _, _ = signed_world
    login(browser, server, server.token(f"subject:{subject}"))
    value = {"numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000001, 1e-7, 1e21, 1e20, -0.0, 0, -1,
                         9007199254740991, 0.1, 5e-324, 1.7976931348623157e308, 123456789.125],
             "string": "\u20ac$\u000f\nA'B\"\\\\\"/\u0007\u001f\u007f\u2028 é 😀",
             "literals": [None, True, False], "\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5,
             "\u0080": 6, "\u00f6": 7, "a": {"b": [], "a": {}}, "": ""}
    js = browser.execute_script("return window.ledgerReport.canonical(window.ledgerReport.parseStrict(arguments[0]));",
                                json.dumps(value, indent=2))
    assert js.encode("utf-8") == canonical(value)
    proto = browser.execute_script("return window.ledgerReport.canonical(window.ledgerReport.parseStrict(arguments[0]));",
                                   '{"__proto__": {"x": 1}, "a": 2}')
    assert proto.encode("utf-8") == canonical({"__proto__": {"x": 1}, "a": 2})  # a member, not a prototype
