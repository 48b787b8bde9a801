"""Arbitrary input to the scenario loader, the log reader and the checkers:
a clear error (UsageError) or a result, never an unhandled exception.
(The output parsers have their own property tests in test_parsing.py.)"""

from __future__ import annotations

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prose_sim.errors import UsageError
from prose_sim.eventlog import read_events, read_log
from prose_sim.metrics.verifiable import CHECKERS
from prose_sim.scenario import Scenario, load_scenario, scenario_from_dict

# keys the loader knows, so generated tables reach past the top level
KEYS = [
    "name",
    "seeds",
    "demonstrations_per_user",
    "tasks",
    "methods",
    "models",
    "metrics",
    "retry",
    "summarization",
    "email_writing",
    "framework",
    "personas",
    "prose",
    "icl",
    "no_learning",
    "method",
    "variant",
    "agent",
    "user",
    "judge",
    "backend",
    "latency_s",
    "faults",
    "failure_rate",
    "bertscore",
    "judge",
    "attempts",
    "corpus",
    "concurrency",
    "rpm",
    "model",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "plume",
            "prelude",
            "scripted",
            "local",
            "openai",
            "prose",
            "cnn_dailymail",
            "1sc",
            "bundled",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=25,
)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=8)
fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz
@given(documents)
def test_the_scenario_loader_accepts_or_names_the_problem(raw):
    try:
        scenario = scenario_from_dict(raw, "fuzz.toml")
    except UsageError as exc:
        assert str(exc).startswith("fuzz.toml")
    else:
        assert isinstance(scenario, Scenario)


@fuzz
@given(st.text(max_size=300))
def test_any_scenario_text_loads_or_fails_clearly(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "s.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_scenario(path)
    except UsageError as exc:
        assert str(path) in str(exc)


@fuzz
@given(documents.filter(lambda d: True))
def test_any_toml_document_loads_or_fails_clearly(tmp_path_factory, raw):
    clean = _toml_safe(raw)
    path = tmp_path_factory.mktemp("fuzz") / "s.toml"
    path.write_text(tomli_w.dumps(clean), encoding="utf-8")
    try:
        load_scenario(path)
    except UsageError as exc:
        assert str(path) in str(exc)


def _toml_safe(value):
    """TOML has no null and no NaN-free guarantee; drop what it cannot hold."""
    if isinstance(value, dict):
        return {str(k): _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        items = [_toml_safe(v) for v in value if v is not None]
        return items
    return value


@fuzz
@given(st.lists(st.binary(max_size=120), max_size=6))
def test_the_log_reader_reads_or_rejects_arbitrary_bytes(tmp_path_factory, chunks):
    path = tmp_path_factory.mktemp("log") / "events.jsonl"
    data = b"\n".join(chunks)
    path.write_bytes(data)
    try:
        _events, torn = read_log(path)
    except UsageError as exc:
        assert str(path) in str(exc)
    else:
        assert (
            torn is None or torn.lineno == data.count(b"\n") + 1
        )  # only the last line may be torn
    try:
        list(read_events(path))
    except UsageError as exc:
        assert str(path) in str(exc)


@fuzz
@given(st.text(max_size=400))
def test_every_checker_decides_any_text(text):
    for checker in CHECKERS:
        assert checker.check(text) in (True, False)
