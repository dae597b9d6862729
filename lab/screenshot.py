"""A screenshot of the real app showing a result, for the README (and the helpers the browser tests
share): `streamlit run` on a free port, Debian's Chromium driven by Playwright, an example X-ray
uploaded through the page's file input.

    python -m lab.screenshot            # -> docs/screenshot.png

Needs Debian's chromium (apt-get install chromium) and Playwright (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from pneumo.bundle import REPO_ROOT

SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts"
EXAMPLE = REPO_ROOT / "examples" / "PNEUMONIA" / "person101_virus_187.jpeg"
# Chromium on a closed network: no background fetches, no sandbox as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """`streamlit run` on a free port: the project's command by default, or `command` (its port
    filled in with {port}) in `cwd`, with `env` on top of the test environment, optionally as
    another user (uid, gid)."""

    def __init__(self, env: dict | None = None, command: list[str] | None = None, cwd: Path = REPO_ROOT,
                 user: tuple[int, int] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = command or [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "streamlit_app.py"), "--server.port", "{port}",
                              "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        identity = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [part.replace("{port}", str(self.port)) for part in command],
            cwd=cwd, env={**SUBPROCESS_ENV, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **identity,
        )

    def wait_until_healthy(self, timeout: float = 60) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("streamlit exited:\n" + self.process.stdout.read())
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("streamlit did not become healthy")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()



RESULT_METRIC = re.compile("Chance of pneumonia|The network's probability")  # the reading's number, however the page words it


def wait_for_result(page, timeout_ms: int = 90_000) -> None:
    page.locator("[data-testid='stMetricLabel']").filter(has_text=RESULT_METRIC).first.wait_for(timeout=timeout_ms)


def warm_upload_seconds(browser, url: str, xray: Path, until=None) -> float:
    """In a new session of a running server: upload `xray` and wait until its name heads the result
    and the probability is shown (and `until(page)`, if given); the seconds from the upload."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url)
        page.locator("input[type=file]").first.wait_for(state="attached", timeout=60_000)
        started = time.monotonic()
        page.locator("input[type=file]").first.set_input_files(str(xray))
        page.locator("h4").filter(has_text=xray.name).wait_for(timeout=60_000)
        wait_for_result(page)
        if until is not None:
            until(page)
        return time.monotonic() - started
    finally:
        page.close()


EXAMPLE = REPO_ROOT / "examples" / "PNEUMONIA" / "person101_virus_187.jpeg"
SCREENSHOT = REPO_ROOT / "docs" / "screenshot.png"


def take(out: Path = SCREENSHOT, example: Path = EXAMPLE) -> Path:
    """The page with one example X-ray's result (label, probability, X-ray and overlay), as a PNG."""
    from playwright.sync_api import sync_playwright

    server = StreamlitServer()
    try:
        server.wait_until_healthy()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1380})
            page.goto(server.url)
            page.locator("input[type=file]").first.set_input_files(str(example))
            wait_for_result(page)
            page.locator("[data-testid='stImage'] img").nth(1).wait_for(timeout=60_000)  # the overlay
            page.get_by_text("Outline the lungs").click()  # the viewer's lung outline, on both pictures
            time.sleep(4.0)  # the fragment reruns; let the images finish painting
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=False)
            browser.close()
    finally:
        server.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.screenshot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(SCREENSHOT))
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: Chromium not found at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    print(take(Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
