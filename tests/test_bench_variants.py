"""``bench variants`` (calls and tokens per demonstration, the paper-grid projection) and ``bench local``."""

from __future__ import annotations

import json

import pytest

from benchmarks import variants
from benchmarks.common import SuiteResult
from prose_sim.scenario import scenario_from_dict

TINY = {
    "name": "tiny",
    "seeds": [1235],
    "demonstrations_per_user": 2,
    "tasks": {"summarization": {"framework": "plume", "personas": ["imdb"]}},
    "methods": {
        "no_learning": {},
        "cipherN": {},
        "prose_full": {"method": "prose", "variant": "full"},
        "prose_nv": {"method": "prose", "variant": "nv"},
        "prose_1sc": {"method": "prose", "variant": "1sc"},
        "prose_1sc_ap_nv": {"method": "prose", "variant": "1sc_ap_nv"},
    },
    "models": {"agent": {"backend": "scripted", "model": "gpt-4o"}},
    "metrics": {"bertscore": ""},
}
VALIDATING = {"prose_full", "prose_1sc"}


def tiny_scenario():
    import copy

    return scenario_from_dict(copy.deepcopy(TINY), "tiny")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    work = tmp_path_factory.mktemp("variants")
    scenario = tiny_scenario()
    result = variants.run(
        quick=True, methods_scenario=scenario, paper_scenario=scenario, workdir=work
    )
    return result, work


def test_one_row_per_method_with_calls_and_tokens_per_demonstration(suite):
    result, _ = suite
    rows = {r["method"]: r for r in result.rows}
    assert set(TINY["methods"]) <= set(rows)
    for label in TINY["methods"]:
        row = rows[label]
        assert row["demos"] == 2
        # the writer drafts; the agent model only infers (none for no_learning)
        assert row["calls_per_demo"] > 0 and row["purposes"]["writer/draft"]["calls"] == 1
        assert (row["agent_calls_per_demo"] >= 1) is (label != "no_learning")
        assert row["input_tokens_per_demo"] > 0 and row["output_tokens_per_demo"] > 0
        # the critical path is at least draft -> user text -> judge, and never more than all calls
        assert 3 <= row["sequential_calls_per_demo"] <= row["calls_per_demo"]
        assert row["agent_sequential_calls_per_demo"] <= row["agent_calls_per_demo"]
        assert isinstance(row["purposes"], dict) and row["top_purposes"]
        assert set(variants.COLUMNS) <= set(row)
    for label in ("prose_full", "prose_nv", "prose_1sc", "prose_1sc_ap_nv"):
        assert ("agent/validate" in rows[label]["purposes"]) == (label in VALIDATING), label
    assert "agent/infer" in rows["cipherN"]["purposes"]
    # validation runs across components at once: fewer sequential calls than calls
    assert rows["prose_full"]["sequential_calls_per_demo"] < rows["prose_full"]["calls_per_demo"]


def test_per_demonstration_figures_match_the_runs_summary(suite):
    result, work = suite
    summary = json.loads((work / "methods" / "summary.json").read_text())
    expected: dict[str, float] = {}
    for u in summary["method_usage"]:
        expected[u["method"]] = expected.get(u["method"], 0.0) + u["calls_per_instance"]
    for row in result.rows:
        if row["method"] in expected:
            assert row["calls_per_demo"] == pytest.approx(expected[row["method"]], abs=0.02)


def test_projection_is_positive_and_linear_in_price(suite):
    result, _ = suite
    rows = {r["method"]: r for r in result.rows}
    total = rows["paper grid (total)"]
    assert total["grid_usd"] > 0 and total["grid_hours"] > 0 and total["grid_demos"] > 0
    assert all(rows[m]["grid_usd"] > 0 for m in TINY["methods"])
    usage = {
        "agent": {"calls": 10.0, "input_tokens": 5000.0, "output_tokens": 400.0},
        "user": {"calls": 1.0, "input_tokens": 600.0, "output_tokens": 80.0},
        "judge": {"calls": 6.0, "input_tokens": 1200.0, "output_tokens": 60.0},
    }
    base = variants.Assumptions(prices={r: (2.5, 10.0) for r in variants.ROLES})
    one, two = variants.project(usage, base), variants.project(usage, base.scaled_prices(2))
    assert one["usd"] > 0 and two["usd"] == pytest.approx(2 * one["usd"])
    assert two["hours"] == one["hours"] > 0  # time does not depend on price
    # ten times the work: ten times the dollars and the hours
    big = variants.project(variants.scale(usage, 10), base)
    assert big["usd"] == pytest.approx(10 * one["usd"]) and big["hours"] == pytest.approx(
        10 * one["hours"]
    )


def test_the_suite_doubles_its_dollars_with_doubled_prices(tmp_path):
    scenario = tiny_scenario()
    paper = variants.paper_assumptions(
        variants.load_scenario(
            variants.scenarios_dir() / "paper.toml",
            ["corpus=bundled"],
            catalog=variants.builtin_catalog(),
        )
    )
    doubled = variants.run(
        quick=True,
        methods_scenario=scenario,
        paper_scenario=scenario,
        assumptions=paper.scaled_prices(2),
    )
    single = variants.run(
        quick=True, methods_scenario=scenario, paper_scenario=scenario, assumptions=paper
    )
    for a, b in zip(single.rows, doubled.rows):
        if a["grid_usd"] != "":
            assert b["grid_usd"] == pytest.approx(2 * a["grid_usd"], rel=0.01, abs=0.02)
            assert b["grid_hours"] == a["grid_hours"]


def test_the_result_is_written_as_json_and_markdown(suite, tmp_path):
    result, _ = suite
    json_path, md_path = result.write(tmp_path)
    data = json.loads(json_path.read_text())
    assert data["suite"] == "variants" and data["rows"][0]["method"]
    assert "paper grid (total)" in md_path.read_text()
    assert all(c.met is None for c in result.checks)


# --- bench local ------------------------------------------------------------------


def test_local_rows_have_the_ratios(tmp_path):
    pytest.importorskip("transformers")
    from benchmarks import local
    from prose_sim.models.local_loading import load_local_model
    from prose_sim.testing.tiny_model import tiny_test_model

    path = tiny_test_model(tmp_path / "tiny")
    model, tokenizer, device, _ = load_local_model(str(path), dtype="float32", device="cpu")
    rows = local.measure(model, tokenizer, device, [1, 2], 2, warmup_rounds=1, log=None)
    assert [r["n"] for r in rows] == [1, 2]
    for row in rows:
        for key in (
            "n",
            "ratio_vs_sequential",
            "ratio_vs_ideal_batch",
            "tokens_per_s_sequential",
            "tokens_per_s_ideal_batch",
            "tokens_per_s_server",
        ):
            assert key in row
        assert row["ratio_vs_sequential"] > 0 and row["ratio_vs_ideal_batch"] > 0
    names = [c.name for c in local.checks(rows)]
    assert names == ["server vs sequential at N=2", "server vs ideal padded batch at N=2"]


def test_local_suite_on_the_tiny_model(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from benchmarks import local
    from prose_sim.testing.tiny_model import tiny_test_model

    path = tiny_test_model(tmp_path / "tiny")
    monkeypatch.setattr(
        local,
        "QUICK",
        local.Plan(
            sizes=(1, 2),
            new_tokens=2,
            sequential_sample=1,
            warmup_rounds=0,
            trace_episodes=None,
            trace_repeats=0,
        ),
    )
    result = local.run(quick=True, model=str(path), log=None)
    assert isinstance(result, SuiteResult) and result.suite == "local"
    assert [r["n"] for r in result.rows] == [1, 2]
    assert {"n", "ratio_vs_sequential", "ratio_vs_ideal_batch"} <= set(result.rows[0])
    json_path, _ = result.write(tmp_path / "out")
    assert json.loads(json_path.read_text())["rows"][1]["n"] == 2
