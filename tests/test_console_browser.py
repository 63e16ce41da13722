"""The web console in a real browser: Debian's headless Chromium, driven by Selenium.

A person's path end to end: the link from /console in Telegram, the overview
with its charts, a transcript on a phone-sized screen. Screenshots go to the
test's temporary folder, or to CONSOLE_SCREENSHOTS (a folder) when that is set,
which is how docs/console-*.png are made.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import CONSOLE_ADMIN, ask_for_link, console_traffic, link_in

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:  # the browser extra is not installed
    webdriver = None

pytestmark = pytest.mark.skipif(
    webdriver is None or CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and its driver (apt-get install chromium chromium-driver) "
    "and Selenium (pip install -e '.[browser]')",
)


def open_browser(width: int, height: int):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    # An explicit driver path: Selenium then never tries to download one.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def browse(login_url: str, base: str, shots: Path) -> dict:
    """Everything a person does in the browser, run in a thread beside the bot's event loop."""
    seen: dict = {}
    shots.mkdir(parents=True, exist_ok=True)
    driver = open_browser(1000, 1300)
    try:
        driver.set_page_load_timeout(60)
        driver.get(login_url)
        seen["landed"] = driver.current_url
        seen["svgs"] = len(driver.find_elements(By.CSS_SELECTOR, "svg.chart"))
        seen["bars"] = len(driver.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar"))
        seen["lines"] = len(driver.find_elements(By.CSS_SELECTOR, "svg.chart polyline, circle"))
        seen["overview"] = driver.find_element(By.TAG_NAME, "h1").text
        seen["cookies"] = driver.get_cookies()
        driver.save_screenshot(str(shots / "console-overview.png"))
        driver.set_window_size(412, 900)  # a phone
        driver.get(f"{base}/console/tickets/1")
        seen["transcript"] = driver.find_element(By.TAG_NAME, "main").text
        seen["scroll_width"] = driver.execute_script("return document.body.scrollWidth")
        driver.save_screenshot(str(shots / "console-transcript.png"))
    finally:
        driver.quit()
    return seen


async def test_log_in_and_read_the_overview_and_a_transcript_in_chromium(
    fake_telegram, console_bot, tmp_path
):
    bot = await console_bot()
    await console_traffic(fake_telegram)
    url = link_in(await ask_for_link(fake_telegram, CONSOLE_ADMIN))
    base = f"http://127.0.0.1:{bot.settings.env.http_port}"
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    seen = await asyncio.to_thread(browse, url, base, shots)

    assert seen["landed"] == f"{base}/console"  # the token is gone from the address bar
    assert seen["overview"] == "Overview, last 30 days"
    assert seen["svgs"] >= 9 and seen["bars"] >= 3 and seen["lines"] >= 1
    (cookie,) = seen["cookies"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert "How long does a refund take for order 4711?" in seen["transcript"]
    assert "I want to talk to a person" in seen["transcript"]
    assert f"knowledge {bot.services.knowledge.current.version}" in seen["transcript"]
    assert seen["scroll_width"] <= 412  # no sideways scrolling on a phone
    for name in ("console-overview.png", "console-transcript.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
