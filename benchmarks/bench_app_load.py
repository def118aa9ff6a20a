"""The demo under eight visitors at once: ``python benchmarks/bench_app_load.py``.

Starts ``streamlit run app/streamlit_app.py`` on a free local port and opens ``--visitors``
concurrent Playwright sessions (headless system Chromium, one browser context each). Each
visitor opens the first screen with a different gallery image (``?image=<i>``), with the
defaults (standard and RAT, PGD-20 at 8/255, EOT-10, seed 0) and presses **Attack** at the
same moment. Checked per session: the page shows its own image's verdict and L2 norms, equal
to ``ratzoo.run_attack`` on that image computed here (no cross-talk between sessions), no
session errors, the server stays up, and a visitor who had to wait was told so ("You waited
... for a free worker"). Reported: page-ready and press-to-result times (p50 / p95), how many
waited, and the server's peak resident memory (VmHWM). One visitor alone is timed first, on
the warmed-up server, for comparison.

Needs Playwright and Chromium (``apt-get install chromium``; ``pip install -e '.[dev]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import torch  # noqa: E402

import browser_util as bu  # noqa: E402
from app import images, logic  # noqa: E402

# gallery positions with different verdicts (seed 0): both fooled, standard fooled and RAT held,
# RAT wrong before the attack, both wrong, both held; a mix, so that a cross-talk shows
IMAGES = (0, 8, 5, 6, 14, 38, 12, 24)


def expected(position: int) -> tuple[str, list[str]]:
    """The verdict heading and the L2 norms (as shown) that ratzoo gives for this image."""
    torch.set_num_threads(1)
    spec = logic.validate_spec("pgd-linf", 8, 20, 10, 0)
    image = images.gallery_image(position)
    labels, words, norms = {"standard": "Standard", "rat": "RAT"}, [], []
    for name in logic.DEFAULT_MODELS:
        r = logic.attack_image(logic.load_model(name), image, spec)
        words.append(f"{labels[name]} {r.verdict}")
        norms.append(logic.norms_text(r)["total change (L2)"])
    return "Verdict: " + " · ".join(words), norms


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


async def visitor(browser, url: str, position: int, ready: list[int], start: asyncio.Event) -> dict:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    out: dict = {"image": position}
    try:
        t0 = time.perf_counter()
        await page.goto(f"{url}/?image={position}")
        button = page.get_by_role("button", name="Attack", exact=True)
        await button.wait_for(state="visible", timeout=180_000)
        await page.wait_for_function("""() => { const b = [...document.querySelectorAll('button')]
            .find(b => b.innerText.trim() === 'Attack'); return b && !b.disabled; }""", timeout=180_000)
        out["ready_s"] = time.perf_counter() - t0
        ready.append(position)
        await start.wait()
        t1 = time.perf_counter()
        await button.click()
        heading = page.locator("h4", has_text="Verdict:")
        await heading.wait_for(state="visible", timeout=600_000)
        await page.wait_for_function(bu.RESULT_DONE, arg=len(logic.DEFAULT_MODELS), timeout=600_000)
        out["result_s"] = time.perf_counter() - t1
        out["verdict"] = (await heading.inner_text()).strip()
        body = await page.inner_text("body")
        out["body"] = body
        waited = re.search(r"You waited (\d+) s for a free worker \(number (\d+)", body)
        out["waited"] = (int(waited.group(1)), int(waited.group(2))) if waited else None
        out["error"] = "exception on the page" if await page.locator('[data-testid="stException"]').count() else None
        await page.screenshot(path=str(bu.ARTIFACTS / f"load-visitor-image{position}.png"))
    except Exception as e:  # a failed session is a result, not a crash of the benchmark
        out["error"] = f"{type(e).__name__}: {e}"[:300]
    finally:
        await context.close()
    return out


async def run(url: str, positions: list[int]) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=bu.chromium(), headless=True,
                                          args=["--no-sandbox", "--disable-dev-shm-usage"])
        start, ready = asyncio.Event(), []
        tasks = [asyncio.create_task(visitor(browser, url, i, ready, start)) for i in positions]
        # everyone presses Attack at once, when every page is ready (or one session has failed)
        while len(ready) < len(tasks) and not any(t.done() for t in tasks):
            await asyncio.sleep(0.1)
        start.set()
        results = await asyncio.gather(*tasks)
        await browser.close()
        return list(results)


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of the server process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--visitors", type=int, default=8)
    p.add_argument("--workers", type=int, default=0, help="the server's $RATZOO_APP_WORKERS (0 = one per core)")
    args = p.parse_args()
    why = bu.missing()
    if why:
        print(f"cannot run: {why}")
        return 1
    positions = [IMAGES[i % len(IMAGES)] for i in range(args.visitors)]
    truth = {i: expected(i) for i in sorted(set(positions))}
    env = {"RATZOO_APP_WORKERS": str(args.workers)} if args.workers else {}
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs ({platform.machine()}), load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"server workers: {args.workers or logic.default_workers()}; {args.visitors} visitors, PGD-20 8/255 "
          "EOT-10 on standard and RAT, seed 0")
    with bu.streamlit_server(env=env) as (url, proc):
        asyncio.run(run(url, [positions[0]]))  # warm-up: models loaded, caches filled
        solo = asyncio.run(run(url, [positions[0]]))[0]
        results = asyncio.run(run(url, positions))
        alive = proc.poll() is None
        rss = peak_rss_mb(proc.pid)
    print(f"one visitor alone: page ready {solo.get('ready_s', float('nan')):.1f} s, "
          f"press-to-result {solo.get('result_s', float('nan')):.1f} s")
    print(f"{'image':>5} {'ready (s)':>9} {'result (s)':>10} {'waited':>12}  correct  verdict")
    ok = 0
    for r in results:
        want_verdict, want_norms = truth[r["image"]]
        # its own image's verdict and both models' L2 norms (3 decimals: another image's would differ)
        correct = (r.get("verdict") == want_verdict and not r.get("error")
                   and all(n in r.get("body", "") for n in want_norms))
        ok += correct
        waited = f"{r['waited'][0]} s (#{r['waited'][1]})" if r.get("waited") else "-"
        print(f"{r['image']:>5} {r.get('ready_s', float('nan')):>9.1f} {r.get('result_s', float('nan')):>10.1f} "
              f"{waited:>12}  {'yes' if correct else 'NO':>7}  {r.get('verdict') or r.get('error')}")
    times = [r["result_s"] for r in results if "result_s" in r]
    ready = [r["ready_s"] for r in results if "ready_s" in r]
    print(f"press-to-result: p50 {statistics.median(times):.1f} s, p95 {percentile(times, 0.95):.1f} s; "
          f"page ready: p50 {statistics.median(ready):.1f} s, p95 {percentile(ready, 0.95):.1f} s")
    print(f"sessions correct {ok}/{len(results)}, errors {sum(bool(r.get('error')) for r in results)}, "
          f"told they waited {sum(bool(r.get('waited')) for r in results)}, server up: {alive}, "
          f"server peak RSS {rss:.0f} MB")
    return 0 if ok == len(results) and alive else 1


if __name__ == "__main__":
    sys.exit(main())
