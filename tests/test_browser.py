"""The demo in a real browser: `streamlit run` on a free local port, headless Chromium.

Chromium's one-shot ``--screenshot`` fires at the page's load event, before Streamlit's
websocket has delivered any element (the shot shows the loading skeleton), so the test
drives Chromium through the DevTools protocol instead (``--remote-debugging-port`` on
127.0.0.1, spoken to with ``websockets``, a Streamlit dependency): it waits until the
title and an image are rendered, takes a screenshot, presses **Attack** like a visitor
and waits for the result. Screenshots go to ``artifacts/browser/`` (git-ignored).

Skipped, with the reason, when no Chromium is installed (``apt-get install chromium``).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import ratzoo

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts" / "browser"
TITLE = "ratzoo: attack a randomized classifier"
CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no headless Chromium found (install Debian's `chromium` package to run the browser test)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def stop(proc: subprocess.Popen) -> None:
    """Stop a process this test started, and its children (it leads its own session)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path) -> Iterator[str]:
    """`streamlit run app/streamlit_app.py` on 127.0.0.1 with a tiny noisy 'rat' checkpoint."""
    zoo = tmp_path / "zoo"
    torch.manual_seed(0)
    ratzoo.save_checkpoint(ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.4).eval(), zoo / "rat")
    port = free_port()
    env = {**os.environ, "RATZOO_CHECKPOINTS": str(zoo), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "streamlit_app.py"),
         "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited with {proc.returncode}: {(tmp_path / 'streamlit.log').read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                return r.read().strip() == b"ok"
        except OSError:
            return False

    try:
        wait_for(healthy, 60, "the Streamlit server's health check")
        yield url
    finally:
        stop(proc)
        log.close()


class DevTools:
    """A minimal Chrome DevTools Protocol client on one page target's websocket."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def js(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JS error: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data



@pytest.fixture
def browser(tmp_path) -> Iterator[DevTools]:
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,2400",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        active = profile / "DevToolsActivePort"
        wait_for(lambda: active.is_file() and len(active.read_text().split()) >= 2, 30, "Chromium's DevTools port")
        port = int(active.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.loads(r.read()) if t["type"] == "page")
        from websockets.sync.client import connect

        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=20) as ws:
            dt = DevTools(ws)
            dt.call("Emulation.setDeviceMetricsOverride", width=1400, height=2400, deviceScaleFactor=1, mobile=False)
            yield dt
    finally:
        stop(proc)


PAGE_STATE = """JSON.stringify({
  h1: Array.from(document.querySelectorAll('h1')).map(e => e.innerText.trim()),
  images: Array.from(document.querySelectorAll('img')).filter(i => i.complete && i.naturalWidth > 0).length,
  text: document.body ? document.body.innerText : '',
})"""


def state(dt: DevTools) -> dict:
    return json.loads(dt.js(PAGE_STATE))


def test_app_renders_and_attacks_in_a_real_browser(server, browser) -> None:
    from PIL import Image

    browser.call("Page.enable")
    browser.call("Page.navigate", url=server)
    first = wait_for(lambda: (s := state(browser))["images"] >= 1 and TITLE in s["h1"] and s, 60,
                     "the title and an image")
    assert "Traceback" not in first["text"] and "Error" not in first["h1"]
    shot = browser.screenshot(ARTIFACTS / "app.png")
    im = Image.open(io.BytesIO(shot))
    assert im.size == (1400, 2400)
    assert im.convert("L").getextrema()[0] < 100  # not a blank page: dark text is drawn

    clicked = browser.js("""(() => {
      const b = Array.from(document.querySelectorAll('button')).find(b => b.innerText.trim() === 'Attack');
      if (!b || b.disabled) return false; b.click(); return true; })()""")
    assert clicked, "no enabled Attack button"
    # the download button is the result's last element: once it is there the run is complete
    done = wait_for(lambda: "Download the adversarial image" in (s := state(browser))["text"] and s["images"] >= 4
                    and s, 120, "the attack's result")
    (ARTIFACTS / "app-attacked.txt").write_text(done["text"])
    assert "perturbation, amplified" in done["text"] and "adversarial prediction" in done["text"]
    assert "L0 (values changed)" in done["text"] and "within the Linf budget 8/255" in done["text"]
    assert "The attack failed" not in done["text"] and "Traceback" not in done["text"]
    time.sleep(1.0)  # let the charts finish drawing before the picture
    browser.screenshot(ARTIFACTS / "app-attacked.png")
