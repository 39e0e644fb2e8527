"""The chat page at / in headless Chromium (Debian chromium + chromium-driver, selenium from PyPI): type a
message, press Send, and see the streamed answer appear."""
import os
import shutil
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, args, check, skip_or_fail  # noqa: E402

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    skip_or_fail("selenium is not installed in .venv (run scripts/setup.sh)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def main():
    a = args()
    if not CHROMIUM or not DRIVER:
        skip_or_fail("chromium and chromium-driver are not installed (Debian packages; run scripts/setup.sh)")
    with Server(a.tern) as server:
        page = urllib.request.urlopen(server.url("/"), timeout=10).read().decode()
        check("<textarea" in page and "/v1/chat/completions" in page, "the page is served at /")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
        try:
            driver.set_page_load_timeout(60)
            driver.get(server.url("/"))
            driver.find_element(By.TAG_NAME, "summary").click()  # opens the settings
            driver.find_element(By.ID, "max").clear()
            driver.find_element(By.ID, "max").send_keys("24")
            driver.find_element(By.ID, "input").send_keys("Say hello to the world.")
            driver.find_element(By.ID, "send").click()
            wait = WebDriverWait(driver, 120)
            # The answer streams: text appears before the reply is complete.
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".assistant") and
                       d.find_elements(By.CSS_SELECTOR, ".assistant")[-1].text.strip() != "")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".assistant")[-1].get_attribute("data-done") == "true")
            reply = driver.find_elements(By.CSS_SELECTOR, ".assistant")[-1]
            check("error" not in reply.get_attribute("class"), f"the page shows an error: {reply.text}")
            check(len(reply.text.strip()) > 0, "a reply appeared")
            users = driver.find_elements(By.CSS_SELECTOR, ".user")
            check(users and users[-1].text == "Say hello to the world.", "the user's message is shown")
            print("reply:", reply.text)
        finally:
            driver.quit()
        m = server.wait_idle()
        check(m["tern_kv_blocks_in_use"] == 0, "no KV blocks left in use")
        check(server.stop() == 0, "clean exit")
    print("server.webchat: passed")


if __name__ == "__main__":
    main()
