"""Write a run's viewer: one HTML file that needs nothing but a browser.

The run summary (scenario, models, methods, the report's tables and plots,
the smoke-test notice) is rendered here with jinja2; the episode browser is
drawn by the inlined JavaScript from the embedded data: the episode index as
JSON, the documents once, and the episode details as gzipped chunks that the
page unpacks (the browser's own DecompressionStream) only when an episode is
opened.
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import msgspec
from markdown_it import MarkdownIt

from prose_sim.errors import UsageError
from prose_sim.metrics.registry import BY_NAME, METRICS, headline_metrics
from prose_sim.report.plots import PLOTS
from prose_sim.results.notice import table_notice
from prose_sim.runfolder import RunFolder
from prose_sim.view.build import DOC_CLOSE, DOC_OPEN, TrueComponents, ViewData, read_view_data
from prose_sim.view.model import RunSummary
from prose_sim.world.tasks import persona_framework


def _template(name: str) -> str:
    return resources.files("prose_sim.view").joinpath("templates", name).read_text(encoding="utf-8")


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element (no '<' to end it early)."""
    return msgspec.json.encode(value).decode("utf-8").replace("<", "\\u003c")


def _scenario(run_dir: Path) -> dict[str, Any]:
    """The run's resolved scenario (its log's, else its ``scenario.toml``; {} without either)."""
    folder = RunFolder(run_dir)
    started = folder.started()
    if started is not None and started.scenario:
        return started.scenario
    if not folder.scenario_path.exists():
        return {}
    return folder.scenario_tables()


def _true_components(run_dir: Path) -> TrueComponents | None:
    """(framework, task, user) -> true components: from the personas the log's ``RunStarted``
    holds, else (a log of an earlier version) from the run's scenario, loaded again; None when
    they cannot be had any more (moved persona files, an uninstalled plugin): the viewer then
    shows the components the judge asked about."""
    folder = RunFolder(run_dir)
    started = folder.started()
    known: dict[tuple[str, str, str], tuple[str, ...]] = {}
    if started is not None and started.personas:
        for persona in started.personas:
            key = (
                str(persona.get("framework")),
                str(persona.get("task")),
                str(persona.get("name")),
            )
            known[key] = tuple(str(c) for c in persona.get("components", []))
    else:
        try:
            catalog = folder.load_run().catalog
        except UsageError:  # the scenario or its personas cannot be loaded any more
            return None
        known = {(p.framework, p.task, p.name): tuple(p.components) for p in catalog}

    def components(framework: str, task: str, user: str) -> tuple[str, ...] | None:
        return known.get((persona_framework(framework), task, user))

    return components


def _summary(run_dir: Path, data: ViewData, scenario: dict[str, Any]) -> RunSummary:
    models = {
        role: spec for role, spec in scenario.get("models", {}).items() if isinstance(spec, dict)
    }
    methods: dict[str, str] = {}
    for label, settings in scenario.get("methods", {}).items():
        given = (
            ", ".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
            if isinstance(settings, dict)
            else ""
        )
        methods[label] = given or "(defaults)"
    started, finished = data.run_started, data.run_finished
    stats: dict[str, str] = {}
    summary_path = RunFolder(run_dir).summary_path
    if summary_path.exists():
        try:
            s = RunFolder(run_dir).summary()
            if s is None:
                raise ValueError("not a JSON object")
            stats = {
                "model calls": f"{s['model_calls']:,} ({s['model_failures']} failed, {s.get('cached_calls', 0):,} cached)",
                "tokens": f"{s['input_tokens'] + s['output_tokens']:,} ({s['input_tokens']:,} in, {s['output_tokens']:,} out)",
                "wall time": f"{s['wall_s']:,.1f} s ({s['model_calls_per_s']:,.1f} calls/s)",
                "cost": f"${s.get('cost_usd', 0.0):,.4f}",
                "events": f"{s['events']:,}",
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{summary_path}: not a run summary: {exc}") from None
    return RunSummary(
        run=run_dir.name,
        scenario=started.scenario_name if started else scenario.get("name", "?"),
        version=started.version if started else "",
        status=finished.status if finished else "unfinished (no run_finished event)",
        wall_s=finished.wall_s if finished else None,
        episodes=len(data.rows),
        instances=sum(r.instances for r in data.rows),
        models={
            role: f"{spec.get('backend', '?')}: {spec.get('model') or data.models.get(role, '')}"
            for role, spec in models.items()
        },
        methods=methods,
        notices=[notice] if (notice := table_notice(scenario.get("models"))) else [],
        stats=stats,
    )


def _report_html(run_dir: Path) -> tuple[str, list[tuple[str, str]]]:
    """The report's tables as HTML, and its plots as data URIs (made now when the run has none:
    ``run --no-report``, into a temporary folder; the run folder is left as it is)."""
    if (run_dir / "report.md").exists():
        return _report_from(run_dir)
    import tempfile

    from prose_sim.report.build import Report

    with tempfile.TemporaryDirectory(prefix="prose-sim-view-") as tmp:
        Report([run_dir]).write(Path(tmp))
        return _report_from(Path(tmp))


def _report_from(plot_dir: Path) -> tuple[str, list[tuple[str, str]]]:
    markdown = (plot_dir / "report.md").read_text(encoding="utf-8")
    # the page has its own title and run line
    body = "\n".join(
        line
        for line in markdown.splitlines()
        if not line.startswith("# ") and not line.startswith("Runs: ")
    )
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(body)
    plots: list[tuple[str, str]] = []
    for name in PLOTS:
        path = plot_dir / name
        if path.exists():
            plots.append(
                (
                    name,
                    "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii"),
                )
            )
    return html, plots


def render_view(run_dir: Path) -> str:
    """The viewer of ``run_dir`` as one HTML document."""
    if not RunFolder(run_dir).log_path.is_file():
        raise UsageError(f"{run_dir}: not a run folder (no events.jsonl)")
    scenario = _scenario(run_dir)
    data = read_view_data(run_dir, _true_components(run_dir))
    if data.run_started is None and not data.rows:
        raise UsageError(f"{run_dir}/events.jsonl: holds no run (no run_started event)")
    summary = _summary(run_dir, data, scenario)
    tables, plots = _report_html(run_dir)
    # the metrics an episode row shows, labelled as the metric registry labels them
    labels = {name: BY_NAME[name].label for name in ("ppcm", "fpm", "levenshtein_norm")}
    # the side-by-side view's metrics: the headline ones first, as the registry labels them
    metric_labels = [
        (m.name, m.label, m.direction)
        for m in [*headline_metrics(), *(m for m in METRICS if m not in headline_metrics())]
    ]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(_template("viewer.html.j2"))
    return page.render(
        summary=summary,
        tables=tables,
        plots=plots,
        css=_template("viewer.css"),
        js=_template("viewer.js"),
        labels=labels,
        index_json=_script_json(
            {
                "rows": data.rows,
                "doc_open": DOC_OPEN,
                "doc_close": DOC_CLOSE,
                "labels": labels,
                "compare": data.compare,
                "metric_labels": metric_labels,
            }
        ),
        documents_json=_script_json(data.documents),
        chunks=data.chunks,
    )


def write_view(run_dir: Path, out: Path | None = None) -> Path:
    out = out or run_dir / "view.html"
    html = render_view(run_dir)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{out}: cannot write the viewer: {exc}") from None
    return out
