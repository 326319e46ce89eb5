"""A real headless Chromium (Debian's, driven by its chromedriver through
python3-selenium) for the web page's tests: started with a fresh profile
and the flags that keep it off the network, its console watched for
script errors, screenshots kept under the build's test-artefacts/web/."""
import os
import pathlib
import shutil
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import (StaleElementReferenceException,
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import BUILD

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTEFACTS = BUILD / "test-artefacts" / "web"

# Chromium as the machine's notes say it must run here: headless, as root
# without the sandbox, nothing fetched from the network (no component
# updates, no sync, no background requests), a profile of its own.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions",
         "--mute-audio", "--autoplay-policy=no-user-gesture-required",
         "--disable-dev-shm-usage"]


def missing():
    """What the browser tests need and this machine lacks ("" if none)."""
    need = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    return ", ".join(need)


class Browser:
    def __init__(self, base, width=1280, height=900):
        self.base = base
        self.profile = tempfile.mkdtemp(prefix="sfs-chromium-")
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        for f in FLAGS:
            o.add_argument(f)
        o.add_argument(f"--user-data-dir={self.profile}")
        o.add_argument(f"--window-size={width},{height}")
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
        self.d.set_page_load_timeout(60)
        self.d.set_script_timeout(60)
        self.console = []

    def quit(self):
        try:
            self.d.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def open(self, path="/"):
        self.d.get(self.base + path)

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def js_async(self, script, *args):
        return self.d.execute_async_script(script, *args)

    def by_id(self, i):
        return self.d.find_element(By.ID, i)

    def css(self, sel):
        return self.d.find_elements(By.CSS_SELECTOR, sel)

    def wait(self, cond, timeout=30, what="a condition"):
        """Wait for cond(browser) to be truthy; its value. Fails with what
        it waited for and the page's console."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                v = cond(self)
                if v:
                    return v
            except (StaleElementReferenceException, WebDriverException) as e:
                last = e
            time.sleep(0.05)
        self.logs()
        raise AssertionError(f"timed out waiting for {what}; last error "
                             f"{last!r}; console: {self.console[-10:]}")

    def visible(self, i):
        el = self.by_id(i)
        return el.is_displayed()

    def wait_visible(self, i, timeout=30):
        return self.wait(lambda b: b.visible(i), timeout, f"#{i} shown")

    def text(self, i):
        return self.by_id(i).text

    def logs(self):
        """The console since the last call (kept in self.console)."""
        new = self.d.get_log("browser")
        self.console += new
        return new

    def script_errors(self):
        """Uncaught exceptions and errors the page logged, leaving out the
        network's own lines (a 401 before sign-in is expected)."""
        self.logs()
        return [e["message"] for e in self.console
                if e["level"] == "SEVERE" and
                "Failed to load resource" not in e["message"]]

    def shot(self, name):
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTEFACTS / f"{name}.png"
        self.d.save_screenshot(str(path))
        return path

    def sign_in(self, key):
        self.open("/")
        self.wait_visible("signin")
        k = self.by_id("signin-key")
        k.clear()
        k.send_keys(key)
        self.by_id("signin-form").submit()
        self.wait_visible("files")
        self.wait_rows()

    def wait_rows(self, timeout=30):
        """Wait until the list has finished loading."""
        return self.wait(lambda b: b.text("list-status") and
                         "Loading" not in b.text("list-status"),
                         timeout, "the list to load")

    def row_names(self):
        return [e.text for e in self.css("#rows tr:not(.dir) .name-btn")]

    def dir_names(self):
        return [e.text.replace("\U0001F4C1", "").strip()
                for e in self.css("#rows tr.dir a")]

    def row(self, name):
        for tr in self.css("#rows tr"):
            btns = tr.find_elements(By.CSS_SELECTOR, ".name-btn")
            if btns and btns[0].text == name:
                return tr
        return None

    def wait_row(self, name, timeout=30):
        return self.wait(lambda b: b.row(name), timeout, f"a row '{name}'")


def fetch_json(browser, path, method="GET", body=None):
    """A request from inside the page (its cookie, its CSRF token)."""
    return browser.js_async("""
        const [path, method, body, done] = arguments;
        const h = {};
        if (body !== null) h["Content-Type"] = "application/json";
        fetch(path, {method, headers: h, credentials: "same-origin",
                     body: body === null ? undefined : JSON.stringify(body)})
          .then(async r => done({status: r.status,
                                 body: r.status === 204 ? null : await r.json()}))
          .catch(e => done({status: 0, body: String(e)}));
    """, path, method, body)


def screenshot_path(name):
    return pathlib.Path(ARTEFACTS) / f"{name}.png"
