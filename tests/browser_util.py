"""A real demo server and a real browser, for tests/test_browser.py and benchmarks/bench_app_load.py.

``streamlit run app/streamlit_app.py`` on a free local port, and Playwright driving the
system's Chromium through ``executable_path`` (Debian's ``chromium`` package; Playwright's
own browser download is not needed). :func:`missing` says why either is unavailable.
"""

from __future__ import annotations

import contextlib
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

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts" / "browser"


def chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def missing() -> str | None:
    """Why the browser cannot run here, or ``None`` when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if chromium() is None:
        return "no Chromium found (install Debian's `chromium` package: apt-get install chromium)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[tuple[str, subprocess.Popen]]:
    """The demo on ``http://127.0.0.1:<free port>``; yields the URL and the server process."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "streamlit_app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / f"streamlit-{port}.log", "w")
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read().strip() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not come up on {url} (exit {proc.poll()}); see {log.name}")
            time.sleep(0.3)
        yield url, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def launch(playwright):
    """Headless system Chromium."""
    return playwright.chromium.launch(executable_path=chromium(), headless=True,
                                      args=["--no-sandbox", "--disable-dev-shm-usage"])


def wait_ready(page, timeout_ms: float = 90_000) -> None:
    """Until the page has its title and an enabled Attack button."""
    page.get_by_role("button", name="Attack", exact=True).wait_for(state="visible", timeout=timeout_ms)
    page.wait_for_function("""() => { const b = [...document.querySelectorAll('button')]
        .find(b => b.innerText.trim() === 'Attack'); return b && !b.disabled; }""", timeout=timeout_ms)


VISIBLE_TEXTS = """el => [...el.querySelectorAll('text')].filter(t => {
    for (let n = t; n && n !== el; n = n.parentElement) {
        const s = getComputedStyle(n);
        if (s.opacity === '0' || s.visibility === 'hidden' || s.display === 'none') return false;
    }
    return true;
}).map(t => t.textContent)"""
"""A chart's SVG texts that are drawn (Vega keeps labels hidden for overlap, at opacity 0)."""

RESULT_DONE = """n => (document.body.innerText.match(/Class probabilities:/g) || []).length >= n"""


def verdict(page, models: int = 2, timeout_ms: float = 120_000) -> str:
    """Press nothing; wait until the verdict heading and all ``models`` results are on the page
    (Streamlit streams elements in, the verdict first), and return the heading."""
    h = page.locator("h4", has_text="Verdict:")
    h.wait_for(state="visible", timeout=timeout_ms)
    page.wait_for_function(RESULT_DONE, arg=models, timeout=timeout_ms)
    return h.inner_text().strip()
