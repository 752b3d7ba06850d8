"""Headless Chromium driven by Selenium, for the console's screenshot tool, its bench and its browser tests.

Selenium is a development dependency (`pip install -e '.[dev]'`); Debian's `chromium` and `chromium-driver`
provide the browser and the driver. `missing()` says what is absent, so callers can skip or explain.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _find(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_path() -> str | None:
    return os.environ.get("IVR_CHROMIUM") or _find("chromium", "chromium-browser", "google-chrome")


def chromedriver_path() -> str | None:
    return os.environ.get("IVR_CHROMEDRIVER") or _find("chromedriver")


def missing() -> str | None:
    """Why a browser cannot be started here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "chromium is not installed (Debian package chromium)"
    if chromedriver_path() is None:
        return "chromedriver is not installed (Debian package chromium-driver)"
    return None


class Browser:
    """A headless Chromium with a fresh profile directory, removed on close."""

    def __init__(self, *, width: int = 1440, height: int = 900, language: str = "en-US") -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        reason = missing()
        if reason is not None:
            raise RuntimeError(reason)
        self.profile = tempfile.mkdtemp(prefix="ivr-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium_path() or ""
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.add_argument(f"--lang={language}")
        options.add_experimental_option("prefs", {"intl.accept_languages": language})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, for tests
        self.driver: Any = webdriver.Chrome(service=Service(chromedriver_path() or ""), options=options)

    def page_errors(self) -> list[str]:
        """Errors the page logged (script errors, failed module loads), without refused API calls (4xx/5xx)."""
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE" and "Failed to load resource: the server responded" not in entry["message"]
        ]

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
