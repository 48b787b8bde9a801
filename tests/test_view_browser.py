"""The viewer in a real browser: headless Chromium renders a scripted run's page.

Chromium comes from the Debian packages (`.ci/run` installs it); where no
browser exists the test is skipped with a message. Set PROSE_SIM_SCREENSHOTS to
a folder to keep the screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from prose_sim.cli import main

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((path for name in BROWSERS if (path := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium here (install it: apt-get install -y chromium); the viewer's browser test is skipped",
)

SCENARIO = """
name = "browsed"
seeds = [1235]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["imdb", "ml_arxiv"]
[tasks.email_writing]
personas = ["ccby"]
[methods.no_learning]
[methods.prose]
variant = "1sc"
[metrics]
bertscore = ""
"""
EPISODE = "summarization/plume/prose/1235/imdb"


def _chromium(*args: str) -> str:
    command = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--virtual-time-budget=10000",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    (tmp / "s.toml").write_text(SCENARIO, encoding="utf-8")
    assert main(["run", str(tmp / "s.toml"), "--out", str(tmp / "run"), "--progress", "off"]) == 0
    assert main(["view", str(tmp / "run"), "--out", str(tmp / "view.html")]) == 0
    return tmp / "view.html"


def _url(page: Path, hash_: str) -> str:
    return page.resolve().as_uri() + "#" + hash_


def test_the_page_lists_the_episodes_and_opens_one_with_its_diff_and_prompts(page):
    dom = _chromium("--dump-dom", _url(page, "e=" + urllib.parse.quote(EPISODE, safe="")))
    assert 'data-ready="1"' in dom, "the page's script did not finish"
    assert f'data-open-episode="{EPISODE}"' in dom
    assert "6 of 6 episodes" in dom  # 3 users x 2 methods
    assert len(re.findall(r'class="row[^"]*" style="top:', dom)) == 6
    detail = dom[dom.index('id="detail"') :]
    assert "<del>" in detail and "<ins>" in detail  # the word diff
    assert (
        'class="msg prompt"' in detail and "Put the summary between triple quotes" in detail
    )  # a prompt
    assert "agent/validate" in detail and "Preferences over time" in detail


def test_an_instance_opens_side_by_side_with_every_methods_draft_and_verdicts(page):
    dom = _chromium("--dump-dom", _url(page, "c=0"))
    assert 'data-ready="1"' in dom and 'data-open-compare="0"' in dom
    block = dom[dom.index('class="block compare"') :]
    assert 'data-methods="2"' in dom
    for method in ("no_learning", "prose"):
        assert f'class="compare-col" data-method="{method}"' in block
    assert block.count('class="text compare-draft"') == 2
    assert block.count('class="grid verdicts"') == 2 and block.count('class="grid metrics"') == 2
    assert "PPCM ↑" in block and "Lev. norm ↓" in block
    # an episode's instance links to it
    episode = _chromium("--dump-dom", _url(page, "e=" + urllib.parse.quote(EPISODE, safe="")))
    assert 'class="calllink compare-link" href="#c=' in episode


def test_the_summary_shows_the_report_and_a_screenshot_is_saved(page, tmp_path):
    dom = _chromium("--dump-dom", _url(page, "summary"))
    assert "smoke test: " in dom and "<table" in dom and "ppcm_by_method.png" in dom
    keep = os.environ.get("PROSE_SIM_SCREENSHOTS")
    folder = Path(keep) if keep else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    for name, hash_ in (
        ("viewer_summary.png", "summary"),
        ("viewer_episode.png", "e=" + urllib.parse.quote(EPISODE, safe="")),
        ("viewer_compare.png", "c=0"),
    ):
        shot = folder / name
        _chromium(f"--screenshot={shot}", "--window-size=1400,1000", _url(page, hash_))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
