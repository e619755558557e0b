"""Open a report in a real headless Chromium (the Debian package) and say what a reader would see.

Driven through Selenium and chromedriver (Debian ``chromium-driver``), which
give the browser's console log, the page's images as the browser decoded them
and a screenshot. ``find_browser`` says what is missing when one is not there.
"""
from __future__ import annotations

import dataclasses
import io
import shutil
import tempfile
from pathlib import Path
from typing import Optional

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"


@dataclasses.dataclass
class BrowserCheck:
    console_errors: list[str]
    images: list[dict]                  # per <img>: complete, naturalWidth, naturalHeight
    screenshot_png: bytes
    screenshot_colours: int             # distinct colours in the screenshot
    screenshot_nonwhite_fraction: float
    browser_version: str

    @property
    def undecoded_images(self) -> list[dict]:
        return [i for i in self.images if not (i["complete"] and i["naturalWidth"] > 0 and i["naturalHeight"] > 0)]


def find_browser() -> tuple[Optional[str], Optional[str], Optional[str]]:
    """(chromium path, chromedriver path, why not) - the reason is None when both and selenium are there."""
    chrome = next((shutil.which(c) for c in CHROMIUM if shutil.which(c)), None)
    driver = shutil.which(DRIVER)
    try:
        import selenium  # noqa: F401
    except ImportError:
        return chrome, driver, "the selenium package is not installed (pip install 'llmaccel[report]')"
    if chrome is None:
        return None, driver, "Chromium is not installed (Debian: apt-get install chromium; scripts/setup.sh does)"
    if driver is None:
        return chrome, None, "chromedriver is not installed (Debian: apt-get install chromium-driver)"
    return chrome, driver, None


def check_html(path: str | Path, width: int = 1400, height: int = 1800) -> BrowserCheck:
    """Load ``path`` from disk (file://) in headless Chromium; collect console errors, images, a screenshot."""
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    chrome, driver_path, why = find_browser()
    if why:
        raise RuntimeError(why)
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    with tempfile.TemporaryDirectory() as profile:
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  f"--window-size={width},{height}", f"--user-data-dir={profile}", "--no-first-run"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        drv = webdriver.Chrome(service=Service(driver_path), options=opts)
        try:
            drv.get(Path(path).resolve().as_uri())
            drv.execute_script("return document.readyState")
            images = drv.execute_script(
                "return Array.from(document.images).map(i => ({complete: i.complete, "
                "naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight}))")
            png = drv.get_screenshot_as_png()
            logs = drv.get_log("browser")
            version = drv.capabilities.get("browserVersion", "")
        finally:
            drv.quit()
    errors = [f"{e.get('level')}: {e.get('message')}" for e in logs if e.get("level") in ("SEVERE", "ERROR")]
    import numpy as np
    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    n_colours = len(np.unique(px, axis=0))
    nonwhite = float((px.min(axis=1) < 245).mean())
    return BrowserCheck(errors, images, png, n_colours, nonwhite, version)
