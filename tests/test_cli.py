"""The command line: help everywhere, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import MINIMAL, ROOT

from prose_sim.cli import main


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "prose_sim", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["run"],
        ["personas"],
        ["personas", "list"],
        ["personas", "show"],
        ["corpus"],
        ["corpus", "list"],
        ["corpus", "show"],
    ],
)
def test_every_command_has_help(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([*args, "--help"])
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_run_succeeds_with_exit_0(write_scenario, tmp_path):
    done = cli(
        "run",
        write_scenario(MINIMAL),
        "--out",
        tmp_path / "run",
        "--set",
        "demonstrations_per_user=1",
        "--set",  # a process of its own: conftest's fake BERTScore does not reach it
        'metrics.bertscore=""',
    )
    assert done.returncode == 0, done.stderr
    assert "no_learning" in done.stdout and (tmp_path / "run" / "results.csv").exists()


@pytest.mark.parametrize(
    "text, key",
    [
        ("bogus = 1\n" + MINIMAL, "bogus"),
        (MINIMAL.replace("seeds = [1235]", 'seeds = "x"'), "seeds"),
        (MINIMAL.replace('"imdb"', '"nobody"'), "tasks.summarization.personas[1]"),
        (MINIMAL + "[methods.magic]\n", "methods.magic"),
    ],
)
def test_bad_scenario_exits_2_with_one_line_naming_the_key(write_scenario, tmp_path, text, key):
    path = write_scenario(text)
    done = cli("run", path, "--out", tmp_path / "run")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert f"{path}: {key}:" in lines[0]


def test_existing_run_folder_is_refused(write_scenario, tmp_path):
    path = write_scenario(MINIMAL)
    assert (
        main(
            [
                "run",
                str(path),
                "--out",
                str(tmp_path / "r"),
                "--progress",
                "off",
                "--set",
                "demonstrations_per_user=1",
            ]
        )
        == 0
    )
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--progress", "off"]) == 2


def test_bad_concurrency_exits_2(write_scenario, tmp_path):
    assert main(["run", str(write_scenario(MINIMAL)), "--concurrency", "0"]) == 2


def test_personas_and_corpus_commands(capsys):
    assert main(["personas", "list"]) == 0
    assert "adopt a step-by-step structure" in capsys.readouterr().out
    assert main(["personas", "show", "slf5k", "--framework", "plume"]) == 0
    out = capsys.readouterr().out
    assert "summarization" in out and "email_writing" in out
    assert main(["corpus", "list"]) == 0
    assert "wikipedia" in capsys.readouterr().out
    assert main(["corpus", "show", "imdb", "imdb-01"]) == 0
    assert "imdb-01" in capsys.readouterr().out
    assert main(["corpus", "show", "nope"]) == 2
    assert main(["personas", "show", "nobody"]) == 2


def test_prompts_show_from_a_fresh_scripted_episode(capsys):
    assert (
        main(["prompts", "show", "--method", "prose", "--variant", "1sc", "--demonstrations", "2"])
        == 0
    )
    out = capsys.readouterr().out
    for purpose in (
        "writer/draft",
        "user/demonstrate",
        "agent/refine",
        "agent/validate",
        "agent/coalesce",
    ):
        assert f"[{purpose}]" in out
    assert "scripted backend" in out


def test_prompts_show_from_a_run(write_scenario, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert (
        main(["run", str(write_scenario(MINIMAL)), "--out", str(run_dir), "--progress", "off"]) == 0
    )
    capsys.readouterr()
    assert main(["prompts", "show", "--run", str(run_dir)]) == 0
    listed = capsys.readouterr().out
    assert "summarization/plume/oracle/1235/imdb" in listed
    assert (
        main(
            [
                "prompts",
                "show",
                "--run",
                str(run_dir),
                "--episode",
                "summarization/plume/oracle/1235/imdb",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "instance 1: user imdb" in out and "[writer/draft]" in out
    assert main(["prompts", "show", "--run", str(run_dir), "--episode", "nope"]) == 2


def test_tables_wrap_names_on_a_narrow_terminal_instead_of_cutting_them(monkeypatch, capsys):
    import io

    from rich.console import Console

    from prose_sim.cli import common

    out = io.StringIO()
    monkeypatch.setattr(common, "console", lambda: Console(file=out, width=40))
    assert main(["methods", "list"]) == 0
    text = out.getvalue()
    assert "…" not in text  # rich's mark of a cut cell
    assert "no_learn" in text
