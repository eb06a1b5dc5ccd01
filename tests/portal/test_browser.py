"""The portal in a real browser: Debian's headless Chromium through its chromedriver (Selenium),
with JavaScript switched off, against `mtctl serve` on a free loopback port.

Screenshots of every page go to $MTCTL_TEST_ARTIFACTS (default: a pytest temporary directory);
MTCTL_UPDATE_DOCS=1 also refreshes docs/portal.png, the README's picture.

Without chromium/chromedriver the tests skip, naming the Debian packages; with
MTCTL_E2E_REQUIRED=1 (CI) a missing one fails them instead."""

from __future__ import annotations

import io
import json
import os
import shutil
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mtctl.domain import provisioning
from tests.portal.conftest import link_for
from tests.portal.test_portal_http import SEED_COLUMNS

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DOCS = Path(__file__).parents[2] / "docs"
# This page proves JavaScript is off: with it on, the script would change the text.
JS_PROBE = ("data:text/html,<p id='probe'>off</p>"
            "<script>document.getElementById('probe').textContent='on'</script>")


def _require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return
    message = (f"{', '.join(missing)} not installed; on Debian/Ubuntu: apt-get install "
               "chromium chromium-driver")
    if os.environ.get("MTCTL_E2E_REQUIRED") == "1":
        pytest.fail(f"MTCTL_E2E_REQUIRED=1 but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("MTCTL_TEST_ARTIFACTS")
    path = Path(where) / "portal" if where else tmp_path_factory.mktemp("portal-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Headless Chromium, JavaScript off, Spanish first: started and quit by the test."""
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def never(*_: Any) -> Any:
        raise AssertionError("Selenium Manager ran: it would download a driver")

    monkeypatch.setattr(SeleniumManager, "binary_paths", never)

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1100,1000", "--lang=es-ES",
                     f"--user-data-dir={tmp_path / 'chromium-profile'}",
                     "--disable-background-networking", "--disable-component-update",
                     "--no-first-run"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "intl.accept_languages": "es-ES,es",
        "profile.managed_default_content_settings.javascript": 2,
    })
    # The driver's path is given, so Selenium Manager never runs (nothing is downloaded).
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: Any, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 1000
    return path


def _submit(driver: Any, element: Any, *keys: str) -> None:
    """Click ELEMENT (or type KEYS into it) and wait until the next page has replaced this one."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    if keys:  # typed into the focused field, as a person does
        element.click()
        ActionChains(driver).send_keys(*keys).perform()
    else:
        element.click()

    def gone(_: Any) -> bool:
        try:
            page.is_enabled()
        except (StaleElementReferenceException, WebDriverException):
            # chromedriver says "does not belong to the document" for a replaced page too
            return True
        return False

    WebDriverWait(driver, 15).until(gone)
    # Every portal page ends with its <main>: there, the page is whole.
    WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.ID, "main")))


def _decode_qr(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, "one QR code on the page"
    text: str = found[0].text
    return text


def test_javascript_is_off_in_the_test_browser(browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(JS_PROBE)
    assert browser.find_element(By.ID, "probe").text == "off"


def test_a_user_logs_in_changes_disables_provisions_and_logs_out(
        served: Any, browser: Any, artifacts: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    mtctl, server = served
    browser.get(JS_PROBE)
    assert browser.find_element(By.ID, "probe").text == "off", "JavaScript is off"

    link = link_for(mtctl, "ana")
    browser.get(link)
    _shot(browser, artifacts, "1-login-link")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
    _submit(browser, browser.find_element(By.ID, "login-button"))

    # My extensions: number and type OWNER, in the seed's words.
    assert browser.current_url == server.base + "/portal/"
    rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert rows == ["40710 PROPIETARIO Ver los teléfonos de 40710"]
    _shot(browser, artifacts, "2-extensions")
    _submit(browser, browser.find_element(By.ID, "ext-40710"))

    # The seed's table for the portal example.
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table.phones th")]
    assert headers == SEED_COLUMNS

    def row(position: int) -> list[str]:
        cells = browser.find_elements(By.CSS_SELECTOR, f"#phone-{position} td")
        return [cell.text.split("\n")[0].strip() for cell in cells]

    def order(position: int) -> str:
        value: str = browser.find_element(By.ID, f"order-{position}").get_attribute("value")
        return value

    assert row(0)[:4] == ["Linphone (no proxy)", "40710", "", "0"]
    assert row(1)[:4] == ["VIVAit Call Business iOS", "40710", "", "1"]
    assert row(2)[:4] == ["VIVAit Call Business Android", "40710", "", "2"]
    assert [order(p) for p in range(3)] == ["0", "0", "3"]
    assert [browser.find_element(By.ID, f"enabled-{p}").text for p in range(3)] == \
        ["NO", "NO", "SÍ"]
    assert browser.find_elements(By.ID, "provision-2")
    assert not browser.find_elements(By.ID, "provision-0")
    shot = _shot(browser, artifacts, "3-phones")
    if os.environ.get("MTCTL_UPDATE_DOCS") == "1":
        shutil.copyfile(shot, DOCS / "portal.png")

    # Change an order with the keyboard alone: type into the field, Enter submits its form.
    field = browser.find_element(By.ID, "order-1")
    _submit(browser, field, Keys.END, Keys.BACKSPACE, "2", Keys.ENTER)
    assert "?saved=1" in browser.current_url
    assert order(1) == "2"
    assert "Guardado: el teléfono de la posición 1." in browser.page_source
    _shot(browser, artifacts, "4-order-saved")
    phone = json.loads(mtctl.ok("phone", "show", "40710", "1", "--json").stdout)
    assert phone["order"] == 2

    # Disable a phone.
    _submit(browser, browser.find_element(By.ID, "toggle-2"))
    assert browser.find_element(By.ID, "enabled-2").text == "NO"
    _shot(browser, artifacts, "5-disabled")
    assert json.loads(mtctl.ok("phone", "show", "40710", "2", "--json").stdout)["enabled"] \
        is False

    # Provision one: the QR on the page is a working provisioning URL.
    _submit(browser, browser.find_element(By.ID, "provision-2"))
    qr = browser.find_element(By.CSS_SELECTOR, "#qr svg")
    _shot(browser, artifacts, "6-provision")
    url = _decode_qr(qr.screenshot_as_png)
    assert url.startswith(server.base + "/")
    request = urllib.request.Request(url, headers={
        "User-Agent": "LinphoneAndroid/5.2.5 (belle-sip/5.2.0)"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        root = ET.fromstring(response.read())
    ns = {"lp": provisioning.LPCONFIG_NS}
    section = root.find("lp:section[@name='auth_info_0']", ns)
    assert section is not None
    auth = {e.get("name"): e.text for e in section}
    assert auth["username"] == "40710-2"
    assert auth["domain"] == "pbx.example.com"

    # Log out: the session is gone, the phones are out of reach.
    _submit(browser, browser.find_element(By.CSS_SELECTOR, "form.logout button"))
    assert "Ha cerrado la sesión." in browser.page_source
    _shot(browser, artifacts, "7-logged-out")
    browser.get(server.base + "/portal/ext/40710")
    assert not browser.find_elements(By.CSS_SELECTOR, "table.phones")
    assert browser.find_elements(By.ID, "password"), "the login page"

    # Nothing secret reached the server's log.
    log = server.stop()
    assert link.rsplit("/", 1)[1] not in log and url.rsplit("/", 1)[1] not in log


def test_the_pages_read_in_english_with_lang_override(served: Any, browser: Any,
                                                      artifacts: Path) -> None:
    from selenium.webdriver.common.by import By

    mtctl, server = served
    browser.get(link_for(mtctl, "ana") + "?lang=en")
    _submit(browser, browser.find_element(By.ID, "login-button"))
    browser.get(server.base + "/portal/ext/40710")
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table.phones th")]
    assert headers == ["Phone model", "Extension", "Location", "Device position", "Order",
                       "Enabled", "Provision"]
    _shot(browser, artifacts, "8-phones-english")


def test_the_keyboard_reaches_every_control_in_reading_order(served: Any, browser: Any) -> None:
    """Tab walks the page as it reads: skip link, header, then the table row by row, each
    row's order field, its save button, its enable/disable button and its provision button."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    mtctl, server = served
    browser.get(link_for(mtctl, "ana"))
    _submit(browser, browser.find_element(By.ID, "login-button"))
    browser.get(server.base + "/portal/ext/40710")
    seen = []
    for _ in range(17):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        active = browser.switch_to.active_element
        seen.append(active.get_attribute("id") or active.text.split("\n")[0])
    assert seen[0] == "Saltar al contenido", seen
    table = [name for name in seen if name[:1] in ("o", "s", "t", "p") and "-" in name]
    assert table == ["order-0", "save-order-0", "toggle-0", "order-1", "save-order-1",
                     "toggle-1", "order-2", "save-order-2", "toggle-2", "provision-2"], seen
    # Every field has a label a screen reader announces.
    for position in range(3):
        label = browser.find_element(By.CSS_SELECTOR, f"label[for='order-{position}']")
        assert label.get_attribute("textContent") == \
            f"Orden del teléfono en la posición {position}"


def test_the_phone_table_fits_a_phone_screen(served: Any, browser: Any,
                                             artifacts: Path) -> None:
    """On a 375 px wide phone, every control of the table is on screen, with its column's
    name beside it, and the page never scrolls sideways."""
    from selenium.webdriver.common.by import By

    mtctl, server = served
    width = 375
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": True})
    browser.get(link_for(mtctl, "ana"))
    _submit(browser, browser.find_element(By.ID, "login-button"))
    for path in ("/portal/", "/portal/ext/40710"):
        browser.get(server.base + path)
        _shot(browser, artifacts, f"9-narrow-{path.strip('/').replace('/', '-')}")
        scrolls = browser.execute_script("return document.documentElement.scrollWidth")
        assert scrolls <= width, f"{path} is {scrolls} px wide on a {width} px screen"
    controls = [f"{kind}-{p}" for p in range(3) for kind in ("order", "save-order", "toggle")]
    for control in [*controls, "provision-2"]:
        box = browser.find_element(By.ID, control).rect
        assert 0 <= box["x"] and box["x"] + box["width"] <= width, (control, box)
    shown = [browser.execute_script(
        "return getComputedStyle(arguments[0], '::before').content", cell)
        for cell in browser.find_elements(By.CSS_SELECTOR, "#phone-2 td")]
    assert shown == [f'"{column}"' for column in SEED_COLUMNS]
