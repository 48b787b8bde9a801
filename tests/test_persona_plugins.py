"""Personas from files and plugins, and persona behaviour (templates, editing, noise)."""

from __future__ import annotations

from importlib.metadata import entry_points

import anyio
import pytest

from prose_sim.cli import main
from prose_sim.config import RunOptions
from prose_sim.eventlog import read_events
from prose_sim.events import ModelRequested
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.runner import execute
from prose_sim.scenario import ScenarioError, load_scenario

PERSONAS = """
[[persona]]
framework = "plume"
task = "summarization"
name = "tidy"
source = "imdb"
components = ["use bullet points", "use emojis"]

[[persona]]
framework = "plume"
task = "email_writing"
name = "own_docs"
documents = ["first document about the harbour", "second document about the pier", "third one about boats"]
components = ["be brief"]
"""

SCENARIO = """
name = "files"
demonstrations_per_user = 2
persona_files = ["people.toml"]
[tasks.summarization]
personas = ["tidy", "imdb"]
[tasks.email_writing]
personas = ["own_docs"]
[methods.no_learning]
[metrics]
bertscore = ""
"""


def write(tmp_path, personas=PERSONAS, scenario=SCENARIO):
    (tmp_path / "people.toml").write_text(personas, encoding="utf-8")
    path = tmp_path / "s.toml"
    path.write_text(scenario, encoding="utf-8")
    return path


def run(scenario, out):
    outcome = anyio.run(lambda: execute(prepare(scenario, out, RunOptions(progress="off"))))
    assert outcome.status == "completed"
    return outcome, list(read_events(out / "events.jsonl"))


def prompts(events, purpose):
    return [
        e.messages[-1]["content"]
        for e in events
        if isinstance(e, ModelRequested) and e.purpose == purpose
    ]


def test_personas_from_a_file_run_with_their_own_documents(tmp_path):
    scenario = load_scenario(write(tmp_path))
    assert scenario.persona_files == [str((tmp_path / "people.toml").resolve())]
    outcome, events = run(scenario, tmp_path / "run")
    assert outcome.instances == 6
    demonstrations = prompts(events, "demonstrate")
    assert any(
        "about the harbour" in p or "about the pier" in p or "about boats" in p
        for p in demonstrations
    )
    assert any("use bullet points, use emojis" in p for p in demonstrations)


def test_a_folder_of_persona_files(tmp_path):
    folder = tmp_path / "people"
    folder.mkdir()
    (folder / "a.toml").write_text(PERSONAS, encoding="utf-8")
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.replace('["people.toml"]', '["people"]'), encoding="utf-8")
    assert load_scenario(path).tasks["email_writing"].personas == ["own_docs"]


@pytest.mark.parametrize(
    "change, key",
    [
        (('task = "summarization"', 'task = "poetry"'), "persona[0].task"),
        (
            ('components = ["use bullet points", "use emojis"]', "components = []"),
            "persona[0].components",
        ),
        (('source = "imdb"', 'source = "imdb"\ndocuments = ["x"]'), "persona[0].source"),
        (('name = "tidy"', 'name = "tidy"\nmood = "sunny"'), "persona[0].mood"),
        (
            ('name = "tidy"', 'name = "tidy"\nbehaviour = {ignore_probability = 2.0}'),
            "persona[0].behaviour.ignore_probability",
        ),
    ],
)
def test_a_bad_persona_file_names_the_file_and_key(tmp_path, change, key):
    path = write(tmp_path, personas=PERSONAS.replace(*change, 1))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "people.toml" in message and key in message


def test_a_name_defined_twice_is_an_error_naming_both(tmp_path):
    path = write(tmp_path, personas=PERSONAS.replace('name = "tidy"', 'name = "imdb"'))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert "already defined by built-in" in str(info.value)


def test_behaviour_edit_makes_a_plume_user_edit_drafts(tmp_path):
    personas = PERSONAS.replace(
        'components = ["be brief"]', 'components = ["be brief"]\nbehaviour = {edit = true}'
    )
    _outcome, events = run(load_scenario(write(tmp_path, personas)), tmp_path / "run")
    # own_docs: 2 instances, each draft judged first, edited unless accepted
    assert len(prompts(events, "accept")) == 2 and len(prompts(events, "edit")) <= 2
    assert len(prompts(events, "demonstrate")) == 4


def test_behaviour_template_is_the_users_prompt(tmp_path):
    (tmp_path / "mine.j2").write_text(
        "MY TEMPLATE for {{ document }} with {{ preferences }}", encoding="utf-8"
    )
    personas = PERSONAS.replace(
        'components = ["use bullet points", "use emojis"]',
        f'components = ["use bullet points", "use emojis"]\nbehaviour = {{template = "{tmp_path / "mine.j2"}"}}',
    )
    _outcome, events = run(load_scenario(write(tmp_path, personas)), tmp_path / "run")
    mine = [p for p in prompts(events, "demonstrate") if p.startswith("MY TEMPLATE")]
    assert len(mine) == 2 and all("use bullet points; use emojis" in p for p in mine)


@pytest.mark.parametrize("probability, shown", [(1.0, 0), (0.0, 2)])
def test_a_noisy_user_leaves_components_out(tmp_path, probability, shown):
    personas = PERSONAS.replace(
        'components = ["use bullet points", "use emojis"]',
        f'components = ["use bullet points", "use emojis"]\nbehaviour = {{ignore_probability = {probability}}}',
    )
    _outcome, events = run(load_scenario(write(tmp_path, personas)), tmp_path / "run")
    tidy = [p for p in prompts(events, "demonstrate") if "imdb" not in p and "harbour" not in p]
    for prompt in prompts(events, "demonstrate"):
        if "use bullet points" in prompt or "use emojis" in prompt:
            assert shown > 0
    counts = [sum(c in p for c in ("use bullet points", "use emojis")) for p in tidy]
    assert tidy and (max(counts) == shown if shown else True)


def test_the_installed_example_plugin_is_listed_and_runs(tmp_path, capsys):
    """Install it as the README's test command does: pip install -e examples/prose_sim_example_personas."""
    names = [ep.name for ep in entry_points(group="prose_sim.personas")]
    assert "seafarers" in names, (
        "install the example plugin: pip install -e examples/prose_sim_example_personas"
    )
    assert main(["personas", "list", "--task", "summarization"]) == 0
    out = capsys.readouterr().out
    assert "captains_log" in out and "plugin seafarers" in out
    assert main(["personas", "show", "harbour_master"]) == 0
    assert "edit=True" in capsys.readouterr().out
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "p"\ndemonstrations_per_user = 2\n[tasks.summarization]\npersonas = ["captains_log"]\n'
        '[methods.no_learning]\n[metrics]\nbertscore = ""\n',
        encoding="utf-8",
    )
    _outcome, events = run(load_scenario(path), tmp_path / "run")
    assert all(p.startswith("You are a ship's captain") for p in prompts(events, "demonstrate"))


def test_a_generated_population_of_2000_runs_on_the_scripted_backend(tmp_path):
    assert (
        main(
            [
                "personas",
                "generate",
                "--task",
                "summarization",
                "--n",
                "2000",
                "--components",
                "4",
                "--seed",
                "7",
                "--out",
                str(tmp_path / "population.toml"),
            ]
        )
        == 0
    )
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "population"\ndemonstrations_per_user = 1\npersona_files = ["population.toml"]\n'
        '[tasks.summarization]\npersonas = "files"\n[methods.no_learning]\n'
        '[metrics]\nbertscore = ""\njudge = false\n',
        encoding="utf-8",
    )
    scenario = load_scenario(path)
    assert len(scenario.tasks["summarization"].personas) == 2000
    outcome = anyio.run(
        lambda: execute(prepare(scenario, tmp_path / "run", RunOptions(progress="off")))
    )
    assert outcome.status == "completed" and outcome.episodes == outcome.instances == 2000
    users = {
        e.messages[-1]["content"].split("Your writing preferences are:\n")[1].split("\n")[0]
        for e in read_events(tmp_path / "run" / "events.jsonl")
        if isinstance(e, ModelRequested) and e.purpose == "demonstrate"
    }
    assert len(users) == 2000  # 2,000 distinct users wrote


def test_resume_refuses_when_a_persona_file_changed(tmp_path, capsys):
    path = write(tmp_path)
    scenario = load_scenario(path)
    run(scenario, tmp_path / "run")
    people = tmp_path / "people.toml"
    people.write_text(
        PERSONAS.replace('"use emojis"', '"use semicolons (;) when possible"'), encoding="utf-8"
    )
    assert main(["run", "--resume", str(tmp_path / "run")]) == 2
    assert "personas the run uses changed" in capsys.readouterr().err
