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
        browser.switch_to.alert.text
