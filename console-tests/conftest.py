"""Fixtures of the console's browser tests (scripts/test-console starts hms-act serve and sets the environment)."""
import os
import pathlib
import time
import uuid

import pytest
import requests
from axe_selenium_python import Axe
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

API = os.environ["HMS_API_URL"]
TOKENS = {name: os.environ[f"HMS_TOKEN_{name.upper()}"] for name in ("alice", "bob", "reader", "ops")}
SCREENSHOTS = pathlib.Path(os.environ.get("HMS_CONSOLE_SCREENSHOTS", "screenshots"))


def api(method, path, token="ops", **kwargs):
    """A call to the HTTP API with one of the test tokens."""
    response = requests.request(method, API + path, headers={"Authorization": f"Bearer {TOKENS[token]}"},
                                timeout=30, **kwargs)
    response.raise_for_status()
    return response.json()


def start_desk_check(address="12 Elm St"):
    """Starts a run of console-tests/playbooks/desk_check.yaml; answers its id."""
    body = api("POST", "/v1/runs", json={"playbook": "desk_check", "id": str(uuid.uuid4()),
                                          "payload": {"address": address}})
    return body["runs"][0]


class Console:
    """One signed-in browser."""

    def __init__(self, driver):
        self.driver = driver

    def open(self, path):
        self.driver.get(API + path)

    def find(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def finds(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait_for(self, selector, seconds=15):
        return WebDriverWait(self.driver, seconds).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)))

    def wait_until(self, condition, seconds=15, message=""):
        return WebDriverWait(self.driver, seconds, poll_frequency=0.25).until(lambda _: condition(), message)

    def submit(self, selector):
        """Clicks a form's button and waits for the page it leads to."""
        old = self.find("html")
        button = self.find(selector)
        try:
            button.click()
        except WebDriverException:
            # chromedriver may report an error when the click's own navigation replaced the document during
            # the call; whether the page changed is what the wait below decides.
            pass
        WebDriverWait(self.driver, 15).until(expected_conditions.staleness_of(old))
        WebDriverWait(self.driver, 15).until(
            lambda driver: driver.execute_script("return document.readyState") == "complete")

    def sign_in(self, name):
        self.open("/ui/login")
        self.find("#token").send_keys(TOKENS[name])
        self.submit("form button[type=submit]")
        self.wait_for("#user")
        assert self.find("#user").text == name

    def text(self, selector):
        """The text of an element; read again when the live script swapped it out meanwhile."""
        for _ in range(20):
            try:
                return self.find(selector).text
            except StaleElementReferenceException:
                time.sleep(0.05)
        return self.find(selector).text

    def attribute(self, selector, name):
        for _ in range(20):
            try:
                return self.find(selector).get_attribute(name)
            except StaleElementReferenceException:
                time.sleep(0.05)
        return self.find(selector).get_attribute(name)

    def notice(self):
        return self.text(".notice") if self.finds(".notice") else ""

    def post(self, path, fields):
        """Posts a form from this page's own origin with fetch (what a user could do without the buttons);
        answers the status code."""
        return self.driver.execute_async_script(
            """
            const [path, fields, done] = arguments;
            const body = new URLSearchParams(fields);
            body.set("_csrf", document.querySelector("input[name=_csrf]").value);
            fetch(path, {method: "POST", body, credentials: "same-origin", redirect: "manual"})
              .then(r => done(r.status)).catch(e => done(String(e)));
            """, path, fields)

    def check_accessibility(self, page):
        """axe-core on the current page: no serious or critical violation."""
        axe = Axe(self.driver)
        axe.inject()
        results = axe.run()
        bad = [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]
        assert not bad, f"{page}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at " + ", ".join(n["target"][0] for n in v["nodes"][:3])
            for v in bad)

    def screenshot(self, name, width=1280):
        """The whole page (up to 2,400 pixels high) at `width` (390: a phone), as SCREENSHOTS/name.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.execute_script("window.scrollTo(0, 0)")
        self.driver.set_window_size(width, 900)
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(width, max(800, min(height + 40, 2400)))
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        self.driver.set_window_size(1280, 900)


@pytest.fixture
def browser():
    """A factory of headless chromium sessions, each with its own cookies; all quit at the end."""
    drivers = []

    def make():
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--disable-gpu", "--lang=en-US"):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.set_script_timeout(30)
        drivers.append(driver)
        return Console(driver)

    yield make
    for driver in drivers:
        driver.quit()
