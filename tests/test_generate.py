"""Generated populations: component pools, distinct personas, the persona-file TOML."""

from __future__ import annotations

import tomllib
from collections import Counter

import msgspec
import pytest

from prose_sim.errors import UsageError
from prose_sim.metrics.verifiable import checker_for
from prose_sim.world.generate import (
    MAX_COMPONENTS,
    PERSONA_KEYS,
    generate_personas,
    load_pools,
    max_personas,
    to_toml,
    validate_pools,
)
from prose_sim.world.personas import _CatalogFile, builtin_catalog

TASKS = ("summarization", "email_writing")


def _category_of(task: str) -> dict[str, str]:
    return {c: cat for cat, comps in load_pools()[task].items() for c in comps}


# --- the pools ---------------------------------------------------------------------------


def test_pools_cover_both_tasks_with_the_expected_categories():
    pools = load_pools()
    assert set(TASKS) <= set(pools)
    base = {"structure", "figure_of_speech", "formatting", "style", "tone"}
    assert set(pools["summarization"]) == base
    assert set(pools["email_writing"]) == base | {"opening_closing"}


@pytest.mark.parametrize("task", TASKS)
def test_every_category_holds_at_least_ten_distinct_components(task):
    every = []
    for category, components in load_pools()[task].items():
        assert len(components) >= 10, category
        assert len(set(components)) == len(components), category
        assert all(isinstance(c, str) and c.strip() == c and c for c in components)
        every += components
    assert len(set(every)) == len(every)  # distinct across categories too


@pytest.mark.parametrize("task", TASKS)
def test_pools_hold_text_decidable_components_each_with_its_own_checker(task):
    checked = [
        checker_for(c).name for cats in load_pools()[task].values() for c in cats if checker_for(c)
    ]
    assert len(checked) >= 10
    # no component triggers a checker by accident (one component per checker per task)
    assert [name for name, k in Counter(checked).items() if k > 1] == []
    for name in (
        "emojis",
        "allcaps_emphasis",
        "semicolons",
        "ampersands",
        "bullet_points",
        "parenthetical_asides",
        "rhetorical_questions",
        "short_sentences",
        "second_person",
    ):
        assert name in checked, name
    if task == "email_writing":
        assert "epithet_signoff" in checked


def test_pools_are_cached_and_read_only():
    assert load_pools() is load_pools()
    with pytest.raises(TypeError):
        load_pools()["summarization"]["tone"] = ()  # type: ignore[index]


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"summarization": {}},
        {"summarization": {"tone": []}},
        {"summarization": {"tone": "be bold"}},
        {"summarization": {"tone": ["be bold", 3]}},
        {"summarization": {"tone": ["be bold", "  "]}},
        {"summarization": {"tone": ["be bold", "be bold"]}},
        {"summarization": {"tone": ["be bold"], "style": ["be bold"]}},
    ],
)
def test_validate_pools_rejects_malformed_pools(raw):
    with pytest.raises(ValueError):
        validate_pools(raw)


# --- generation --------------------------------------------------------------------------


def _check_population(personas, task, n, components):
    assert len(personas) == n
    category_of = _category_of(task)
    sources = {p.source for p in builtin_catalog().for_task("plume", task)}
    sets = set()
    for p in personas:
        assert tuple(p) == PERSONA_KEYS
        assert p["framework"] == "plume" and p["task"] == task
        assert p["source"] in sources
        comps = p["components"]
        assert 1 <= len(comps) <= components
        assert all(c in category_of for c in comps)
        categories = [category_of[c] for c in comps]
        assert len(set(categories)) == len(categories), comps  # never two of one category
        sets.add(frozenset(comps))
    assert len(sets) == n  # distinct personas
    assert len({p["name"] for p in personas}) == n  # unique names


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("components", [1, 2, 3, 4])
def test_generated_personas_are_distinct_well_formed_and_of_the_task(task, components):
    n = min(300, max_personas(task, components))
    personas = generate_personas(task, n, components, seed=11)
    _check_population(personas, task, n, components)
    counts = Counter(len(p["components"]) for p in personas)
    assert set(counts) == set(range(1, components + 1))  # every count in 1..components occurs


def test_generation_is_deterministic_and_depends_on_the_seed():
    a = generate_personas("email_writing", 50, 3, seed=5)
    assert a == generate_personas("email_writing", 50, 3, seed=5)
    b = generate_personas("email_writing", 50, 3, seed=6)
    assert [p["components"] for p in a] != [p["components"] for p in b]
    assert (
        a[0]["name"] == "gen-email_writing-5-00000" and b[0]["name"] == "gen-email_writing-6-00000"
    )
    # a smaller n draws the same first personas
    assert generate_personas("email_writing", 20, 3, seed=5) == a[:20]


def test_sources_come_from_the_builtin_personas_of_the_task_in_turn():
    for task in TASKS:
        sources = [p.source for p in builtin_catalog().for_task("plume", task)]
        personas = generate_personas(task, 3 * len(sources), 2, seed=0)
        assert [p["source"] for p in personas] == sources * 3


def test_framework_is_recorded():
    personas = generate_personas("summarization", 5, 2, seed=0, framework="prelude")
    assert {p["framework"] for p in personas} == {"prelude"}


def test_two_thousand_summarization_personas_of_up_to_four_components_are_distinct():
    personas = generate_personas("summarization", 2000, 4, seed=2024)
    _check_population(personas, "summarization", 2000, 4)


@pytest.mark.parametrize("task", TASKS)
def test_every_distinct_persona_can_be_drawn(task):
    capacity = max_personas(task, 2)
    sizes = [len(c) for c in load_pools()[task].values()]
    pairs = sum(a * b for i, a in enumerate(sizes) for b in sizes[i + 1 :])
    assert capacity == sum(sizes) + pairs
    personas = generate_personas(task, capacity, 2, seed=3)
    _check_population(personas, task, capacity, 2)
    with pytest.raises(UsageError, match="distinct personas"):
        generate_personas(task, capacity + 1, 2, seed=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"components": 0}, "between 1 and 4"),
        ({"components": 5}, "between 1 and 4"),
        ({"components": -1}, "between 1 and 4"),
        ({"n": 0}, "at least 1"),
        ({"n": -3}, "at least 1"),
        ({"n": 10**9}, "distinct personas"),
        ({"n": 67, "components": 1}, "distinct personas"),
        ({"task": "poetry"}, "no component pools"),
        ({"framework": "nope"}, "unknown framework"),
        ({"n": 2.5}, "integer"),
        ({"components": True}, "integer"),
        ({"seed": "7"}, "integer"),
    ],
)
def test_bad_arguments_are_usage_errors(kwargs, message):
    args = {"task": "summarization", "n": 10, "components": 2, "seed": 1} | kwargs
    with pytest.raises(UsageError, match=message):
        generate_personas(**args)


def test_max_components_is_four():
    assert MAX_COMPONENTS == 4
    assert max_personas("summarization", 1) == sum(
        len(c) for c in load_pools()["summarization"].values()
    )
    assert max_personas("summarization", 4) > 100_000


# --- the TOML file -----------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_to_toml_round_trips_through_tomllib_and_the_catalog_format(task):
    personas = generate_personas(task, 200, 4, seed=9)
    text = to_toml(personas, components=4, seed=9)
    assert tomllib.loads(text) == {"persona": personas}
    decoded = msgspec.toml.decode(text.encode(), type=_CatalogFile).persona
    # compare the keys of the persona format (the struct may carry more, defaulted fields)
    assert [{k: getattr(p, k) for k in PERSONA_KEYS} for p in decoded] == personas


def test_to_toml_has_the_personas_toml_layout_and_a_header():
    personas = generate_personas("summarization", 3, 4, seed=9)
    text = to_toml(personas, components=4, seed=9)
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any(
        "task = summarization" in line
        and "n = 3" in line
        and "components = 4" in line
        and "seed = 9" in line
        for line in header
    )
    assert text.count("[[persona]]\n") == 3
    assert 'components = ["' in text  # one line per array, as in personas.toml
    # without components/seed given, the header still names the seed read from the names
    assert "seed = 9" in to_toml(personas)


def test_to_toml_escapes_quotes_and_keeps_special_components():
    personas = [
        {
            "framework": "plume",
            "task": "email_writing",
            "name": "x",
            "source": "ccby",
            "components": ['write ampersands (&) in place of the word "and"', "it's \\ fine"],
        }
    ]
    assert tomllib.loads(to_toml(personas))["persona"] == personas


def test_to_toml_of_no_personas_still_decodes():
    text = to_toml([])
    assert tomllib.loads(text) == {"persona": []}
    assert msgspec.toml.decode(text.encode(), type=_CatalogFile).persona == []


def test_to_toml_rejects_personas_with_other_keys():
    with pytest.raises(ValueError, match="exactly the keys"):
        to_toml([{"framework": "plume", "task": "t", "name": "n", "source": "s"}])
