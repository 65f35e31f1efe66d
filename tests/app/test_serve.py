"""`overcommit serve` in a real browser: headless Chromium (Debian's, installed by .ci/run)
driven by Playwright opens the page, waits for the overview, presses keys and reads the
screen; a screenshot is saved beside the test's files. Only loopback traffic: every
request to another address (the page's web font) is refused inside the browser."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# textual-serve keeps its xterm.js Terminal in a closure; the test's copy of the page
# script also hands it to `window`, so the test can read the screen's text.
_TERMINAL = re.compile(rb"this\.terminal=new (\w+)\.Terminal\(")
SCREEN_TEXT = """() => {
    const t = window.__overcommitTerminal;
    if (!t) return "";
    const b = t.buffer.active, rows = [];
    for (let i = 0; i < b.length; i++) rows.push(b.getLine(i).translateToString(true));
    return rows.join("\\n");
}"""

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "tutorial/first-night",
                             "--port", str(port)], cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "the server did not listen within 30 s"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _route(route: Any) -> None:
    host = urlparse(route.request.url).hostname
    if host not in ("127.0.0.1", "localhost"):
        route.abort()  # no traffic off this machine
        return
    if route.request.url.endswith("/static/js/textual.js"):
        response = route.fetch()
        body = response.body()
        assert _TERMINAL.search(body), "textual-serve's page script changed: update the test"
        route.fulfill(response=response, body=_TERMINAL.sub(
            rb"this.terminal=window.__overcommitTerminal=new \1.Terminal(", body, count=1))
        return
    route.continue_()


def _wait_for(page: Any, pattern: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = page.evaluate(SCREEN_TEXT)
        if re.search(pattern, text):
            return str(text)
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} on the screen within {timeout_s} s:\n{text}")


def test_the_console_plays_in_a_browser(server: str, tmp_path: Path) -> None:
    if os.environ.get("CI"):  # CI has it (the test extra): a missing one is a failure
        import playwright.sync_api as sync_api
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.route("**/*", _route)
            page.goto(server)
            # The overview: both hosts, the queued customer and the clock.
            screen = _wait_for(page, r"(?s)h1.*h2.*web3")
            assert "First night" in screen
            page.locator(".xterm-helper-textarea").focus()
            # The tutorial opens with its briefing card, which holds the clock until Enter.
            _wait_for(page, r"Your first night on call")
            page.keyboard.press("Enter")
            _wait_for(page, r"(?s)^(?!.*Your first night on call).*web3")
            page.keyboard.press("?")  # the help screen, over the overview
            _wait_for(page, r"Each VM is configured with memory")
            page.keyboard.press("Escape")
            _wait_for(page, r"(?s)^(?!.*Each VM is configured).*web3")
            page.keyboard.press("p")  # place the queued VM: its dialog asks where
            dialog = _wait_for(page, r"(?i)place web3")
            assert "h1" in dialog and "h2" in dialog
            shot = tmp_path / "serve-place-dialog.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
            page.keyboard.press("Enter")  # on the highlighted host: web3 leaves the queue
            _wait_for(page, r"web3 +h[12] ")
        finally:
            browser.close()
