"""Benchmark: the viewer of a large run, generated and then opened in headless Chromium.

    python -m prose_sim run benchmarks/view_large.toml --out runs/view-large --no-report   # 10,017 episodes
    python benchmarks/view_large.py runs/view-large [--json benchmarks/results/view_large.json] [--shots DIR]

It times `prose_sim view` (generation) and reports the file size; then, in
Chromium driven by Playwright (``pip install playwright``; it uses the
system's Chromium, nothing is downloaded), the page's load time (navigation
start to the page's script being done: DOMContentLoaded and the script's own
ready mark), a search and a method filter over every episode, clearing them,
and unpacking and drawing the last episode. Screenshots go to --shots.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--shots", type=Path)
    parser.add_argument("--query", default="prose")
    parser.add_argument("--method", default="cipher1")
    args = parser.parse_args()
    out = args.run_dir / "view.html"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "prose_sim", "view", str(args.run_dir), "--out", str(out)],
        check=True,
    )
    generation_s = time.perf_counter() - started
    result: dict[str, object] = {
        "run": str(args.run_dir),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine meanwhile
        "generation_s": round(generation_s, 2),
        "file_mb": round(out.stat().st_size / 1e6, 2),
    }
    from playwright.sync_api import sync_playwright

    browser_path = next(p for name in BROWSERS if (p := shutil.which(name)))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        t0 = time.perf_counter()
        page.goto(out.resolve().as_uri() + "#episodes")
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        result["open_wall_s"] = round(time.perf_counter() - t0, 2)
        nav = page.evaluate(
            "(() => { const n = performance.getEntriesByType('navigation')[0];"
            " return {dom_content_loaded_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd}; })()"
        )
        result.update({k: round(v, 1) for k, v in nav.items()})
        result["script_ready_ms"] = float(page.evaluate("document.body.dataset.readyMs"))
        result["episodes"] = page.evaluate("window.proseSimViewer.rows()")
        timings = page.evaluate(
            f"window.proseSimViewer.measure({json.dumps(args.query)}, {json.dumps(args.method)})"
        )
        result.update({k: round(v, 1) for k, v in timings.items()})
        if args.shots:
            args.shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.shots / "viewer_large_episode.png"))
            page.fill("#search", args.query)
            page.wait_for_timeout(400)
            page.screenshot(path=str(args.shots / "viewer_large_search.png"))
        browser.close()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
