"""What every benchmark suite returns, and how it is written and shown."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import msgspec


def machine() -> dict[str, object]:
    """The facts that make a figure comparable: CPU count, platform, Python, torch if loaded."""
    facts: dict[str, object] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "python": platform.python_version(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        facts["torch"] = str(torch.__version__)
        if torch.cuda.is_available():
            facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


class Check(msgspec.Struct, kw_only=True):
    """One headline figure next to its target."""

    name: str
    measured: float | int | str
    target: str  # e.g. ">= 10000 calls/s"
    met: bool | None  # None: no target to meet (information)


class SuiteResult(msgspec.Struct, kw_only=True):
    suite: str
    command: str
    date: str = msgspec.field(
        default_factory=lambda: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    )
    machine: dict[str, object] = msgspec.field(default_factory=machine)
    columns: list[str] = []  # the table's columns, in order (keys of each row)
    rows: list[dict[str, object]] = []
    checks: list[Check] = []
    notes: list[str] = []

    def markdown(self) -> str:
        lines = [
            f"## bench {self.suite}",
            "",
            f"`{self.command}` on {self.date}; machine: "
            + ", ".join(f"{k} {v}" for k, v in self.machine.items()),
            "",
        ]
        if self.rows:
            columns = self.columns or list(self.rows[0])
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("|" + "|".join("---" for _ in columns) + "|")
            for row in self.rows:
                lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
            lines.append("")
        if self.checks:
            lines += ["| figure | measured | target | met |", "|---|--:|---|---|"]
            for c in self.checks:
                met = "" if c.met is None else ("yes" if c.met else "**no**")
                lines.append(f"| {c.name} | {_fmt(c.measured)} | {c.target} | {met} |")
            lines.append("")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, md_path = (
            out_dir / f"bench_{self.suite}.json",
            out_dir / f"bench_{self.suite}.md",
        )
        json_path.write_text(
            json.dumps(msgspec.to_builtins(self), indent=2) + "\n", encoding="utf-8"
        )
        md_path.write_text(self.markdown(), encoding="utf-8")
        return json_path, md_path


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


SUITE_ORDER = ("overhead", "ratelimits", "variants", "local")


def write_results_index(results_dir: Path, target: Path) -> Path:
    """``RESULTS.md``: the latest Markdown of every suite in ``results_dir``, in one page."""
    parts = [
        "# Benchmark results",
        "",
        "The latest figures of `python -m benchmarks SUITE`, each with its command, date and "
        "machine. Every suite measures its comparisons side by side in one run; compare ratios, not "
        "absolute figures across machines. JSON with every row is beside each suite's Markdown in "
        f"`{results_dir.name}/`.",
        "",
    ]
    for suite in SUITE_ORDER:
        md = results_dir / f"bench_{suite}.md"
        if md.exists():
            parts.append(md.read_text(encoding="utf-8").replace("## bench", "## bench", 1))
    extra = sorted(p for p in results_dir.glob("*.md") if not p.name.startswith("bench_"))
    for md in extra:
        parts.append(md.read_text(encoding="utf-8"))
    target.write_text("\n".join(parts).rstrip() + "\n", encoding="utf-8")
    return target
