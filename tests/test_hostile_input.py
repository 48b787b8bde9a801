"""Hostile input (issue 24): templates, answers, files and run state from the outside world.

Each test reproduces one bullet of the issue's Security and Files lists: a template
that would run code or read the environment, a key a server echoes in a long error,
answers that hold escape sequences or spreadsheet formulas, labels that break
Markdown, a corrupt response cache, a model that does not load, a finished run
resumed, an interrupted run's summary, a full disk, and scenario values no run can
use. Exit code 2 and one line naming the file and key for every load error.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import signal
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jinja2
import pytest
from test_resume import SLOW, start, wait_for_lines

from prose_sim import scrub
from prose_sim.cli import main
from prose_sim.errors import describe_error
from prose_sim.eventlog import read_events
from prose_sim.events import ModelRequested, RunStarted
from prose_sim.testing.chat_server import ChatServer
from prose_sim.untrusted import csv_cell, markdown_cell, terminal_text

FAKE_KEY = "sk-hostile-KEYKEYKEY-0123456789abcdef"
KEY_ENV = "PROSE_SIM_HOSTILE_KEY"

SMALL = """
name = "small"
seeds = [1]
demonstrations_per_user = 2
{top}
[tasks.summarization]
personas = {personas}
[methods.no_learning]
[metrics]
bertscore = ""
{rest}
"""

PERSONA = """
[[persona]]
framework = "plume"
task = "summarization"
name = "{name}"
source = "imdb"
components = ["use bullet points"]
behaviour = {{template = "{template}"}}
"""


def run(*args) -> int:
    return main(["run", *map(str, args), "--progress", "off", "--no-report"])


def one_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def scenario(tmp_path, *, personas='["imdb"]', top="", rest="", name="s.toml") -> Path:
    path = tmp_path / name
    path.write_text(SMALL.format(personas=personas, top=top, rest=rest), encoding="utf-8")
    return path


def persona_scenario(tmp_path, template: str, source: str | None = None) -> Path:
    """A scenario whose persona ``mine`` (in folder people/) writes from ``template``."""
    folder = tmp_path / "people"
    folder.mkdir(exist_ok=True)
    if source is not None:
        (folder / template).write_text(source, encoding="utf-8")
    (folder / "people.toml").write_text(
        PERSONA.format(name="mine", template=template), encoding="utf-8"
    )
    return scenario(tmp_path, personas='["mine"]', top='persona_files = ["people"]')


# --- 1. templates cannot run code ----------------------------------------------------

# what the issue ran: a template reaching Python's globals through a jinja2 global
ESCAPES = {
    "popen": "{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}",
    "import": "{{{{ lipsum.__globals__['os'].system('touch {marker}') }}}}",
    "class walk": "{{{{ ''.__class__.__mro__[1].__subclasses__() }}}}{{{{ '{marker}' }}}}",
}


@pytest.mark.parametrize("escape", ESCAPES)
def test_a_persona_template_runs_no_code_in_run_or_replay(tmp_path, escape, capsys):
    marker = tmp_path / "PWNED"
    source = ESCAPES[escape].format(marker=marker)
    if escape != "class walk":  # the finding first: a plain environment runs it
        jinja2.Environment().from_string(source).render()
        assert marker.exists()
        marker.unlink()
    path = persona_scenario(tmp_path, "evil.j2", source)
    out = tmp_path / "run"
    assert run(path, "--out", out) == 1  # the user's step fails (a security error)
    assert not marker.exists()
    assert "SecurityError" in (out / "events.jsonl").read_text()
    assert main(["replay", str(out), "--out", str(tmp_path / "replayed"), "--progress", "off"]) == 0
    assert not marker.exists()  # nor when someone else's run folder is replayed


def test_a_template_cannot_read_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    path = persona_scenario(
        tmp_path,
        "env.j2",
        "{{ cycler.__init__.__globals__.os.environ['" + KEY_ENV + "'] }} {{ document }}",
    )
    out = tmp_path / "run"
    assert run(path, "--out", out) == 1
    for file in out.iterdir():
        assert FAKE_KEY[:8] not in file.read_text(errors="replace"), file


def test_a_relative_template_path_is_resolved_against_the_persona_file(
    tmp_path, monkeypatch, capsys
):
    path = persona_scenario(tmp_path, "mine.j2", "MINE {{ preferences }} {{ document }}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the persona file's folder
    out = tmp_path / "run"
    assert run(path, "--out", out) == 0
    prompts = [
        e.messages[-1]["content"]
        for e in read_events(out / "events.jsonl")
        if isinstance(e, ModelRequested) and e.purpose == "demonstrate"
    ]
    assert prompts and all(p.startswith("MINE use bullet points") for p in prompts)


@pytest.mark.parametrize(
    "template, source, reason",
    [
        ("missing.j2", None, "no such template file"),
        ("../outside.j2", None, "is outside"),
        ("broken.j2", "{{ document ", "template syntax error"),
        ("no_such_builtin", None, "no built-in template 'no_such_builtin'"),
    ],
)
def test_a_bad_template_is_a_load_error_and_writes_nothing(
    tmp_path, template, source, reason, capsys
):
    (tmp_path / "outside.j2").write_text("{{ document }}", encoding="utf-8")
    path = persona_scenario(tmp_path, template, source)
    out = tmp_path / "run"
    assert run(path, "--out", out) == 2
    line = one_line(capsys)
    assert "people.toml" in line and "behaviour.template" in line and reason in line
    assert not out.exists()


def test_a_template_cannot_include_a_file_outside_its_folder(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET", encoding="utf-8")
    folder = tmp_path / "people"
    folder.mkdir()
    (folder / "link.j2").symlink_to(secret)  # a link out of the folder
    path = persona_scenario(
        tmp_path, "inc.j2", '{% include "link.j2" %}{% include "../secret.txt" %}'
    )
    out = tmp_path / "run"
    assert run(path, "--out", out) == 1
    assert "TOP SECRET" not in (out / "events.jsonl").read_text()


# --- 1b. any text a run persists is scrubbed before it is cut -------------------------


class _Echoing(BaseHTTPRequestHandler):
    """Answers every request with ``status`` and a long error message ending in the key."""

    status = 401
    padding = 190
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait between

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        message = "x" * self.padding + f" your key {key} is not valid here"
        body = json.dumps({"error": {"message": message}}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def api_scenario(tmp_path, base_url: str, max_new_tokens: int = 512) -> Path:
    models = "\n".join(
        f'[models.{role}]\nbackend = "openai"\nmodel = "m"\nbase_url = "{base_url}"\n'
        f'api_key_env = "{KEY_ENV}"\nmax_new_tokens = {max_new_tokens}'
        for role in ("user", "agent", "judge")
    )
    rest = "[retry]\nattempts = 2\nbackoff_s = 0.01\nmax_backoff_s = 0.02\nbreaker_calls = 4\n"
    return scenario(tmp_path, rest=rest + models)


@pytest.mark.parametrize("status", [401, 400, 500])
@pytest.mark.parametrize("padding", [178, 235])  # the key across the old cut at 200, or at 300
def test_a_key_echoed_in_a_long_error_reaches_no_output_even_in_part(
    tmp_path, monkeypatch, capsys, status, padding
):
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    monkeypatch.setenv("PROSE_SIM_CACHE", str(tmp_path / "cache"))
    handler = type("H", (_Echoing,), {"status": status, "padding": padding})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base_url = f"http://127.0.0.1:{server.server_port}/v1"
        out = tmp_path / "run"
        assert run(api_scenario(tmp_path, base_url), "--out", out, "--no-cache") in (1, 2)
    finally:
        server.shutdown()
        server.server_close()
    captured = capsys.readouterr()
    assert "xxxx" in (out / "events.jsonl").read_text()  # the message itself is kept
    for where, text in (
        ("stderr", captured.err),
        ("stdout", captured.out),
        ("events.jsonl", (out / "events.jsonl").read_text()),
        ("summary.json", (out / "summary.json").read_text()),
    ):
        assert FAKE_KEY[:8] not in text, where


def test_describe_error_masks_a_key_before_cutting_the_line():
    scrub.remember(FAKE_KEY)
    for padding in range(250, 300):
        line = describe_error(RuntimeError("y" * padding + FAKE_KEY))
        assert FAKE_KEY[:6] not in line and len(line) <= 300


# --- 2. answers are untrusted -----------------------------------------------------------

ESC = "\x1b]0;owned\x07\x1b[2J\x1b[31m"


def test_prompts_show_prints_no_control_characters(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    with ChatServer(answer=f"{ESC}Preferences: short\x9b1m Verdict: yes") as server:
        out = tmp_path / "run"
        assert run(api_scenario(tmp_path, server.base_url), "--out", out, "--no-cache") == 0
    capsys.readouterr()
    assert "\\u001b]0;owned" in (out / "events.jsonl").read_text()  # the log keeps the answer
    episode = next(e.episode_id for e in read_events(out / "events.jsonl") if e.episode_id)
    assert main(["prompts", "show", "--run", str(out), "--episode", episode]) == 0
    shown = capsys.readouterr().out
    assert "Preferences: short" in shown
    assert not any(ch in shown for ch in "\x1b\x07\x9b")


def test_terminal_text_keeps_newlines_and_tabs_only():
    assert terminal_text("a\tb\nc\x1b[2J\x07\x9b\x00\r") == "a\tb\nc[2J"


def test_csv_cells_a_spreadsheet_would_evaluate_are_neutralised():
    for formula in ("=1+1", "+cmd", "-A1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("x")'):
        assert csv_cell(formula) == "'" + formula
    for plain in ("use bullet points", "-0.5", "+3", "1e-3", "", 3, -2.5, True):
        assert csv_cell(plain) == plain  # text and numbers as they were


def test_judge_qa_csv_holds_no_formula_from_answers_or_components(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    folder = tmp_path / "people"
    folder.mkdir()
    (folder / "p.toml").write_text(
        PERSONA.replace('behaviour = {{template = "{template}"}}\n', "")
        .format(name="mine")
        .replace('"use bullet points"', '"=HYPERLINK(\\"http://x\\")"'),
        encoding="utf-8",
    )
    with ChatServer(answer="=2+3 Preferences: short Verdict: yes") as server:
        path = api_scenario(tmp_path, server.base_url)
        text = path.read_text().replace('["imdb"]', '["mine"]')
        path.write_text('persona_files = ["people"]\n' + text)
        out = tmp_path / "run"
        assert main(["run", str(path), "--out", str(out), "--progress", "off", "--no-cache"]) == 0
    rows = list(csv.DictReader(io.StringIO((out / "judge_qa.csv").read_text())))
    assert rows and any(r["answer"].startswith("'=2+3") for r in rows)
    assert any(r["component"].startswith("'=HYPERLINK") for r in rows)
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), value


def test_method_labels_that_break_markdown_are_load_errors(tmp_path, capsys):
    for label in ('"a|b"', '"a\\nb"', '"<b>x</b>"', '"' + "m" * 65 + '"'):
        path = scenario(tmp_path, rest=f'[methods.{label}]\nmethod = "oracle"\n')
        assert run(path, "--out", tmp_path / "run") == 2
        line = one_line(capsys)
        assert "s.toml: methods." in line and "method label" in line


def test_markdown_cells_escape_pipes_newlines_and_html():
    assert markdown_cell("a|b\n<script>x</script> & c") == (
        "a\\|b &lt;script&gt;x&lt;/script&gt; &amp; c"
    )


def test_report_md_escapes_a_label_from_a_foreign_log(tmp_path):
    from prose_sim.report.tables import markdown_tables, summarize

    rows = [
        {
            "task": "summarization",
            "framework": "plume",
            "method": "x|y\n<img src=x onerror=alert(1)>",
            "agent_model": "m",
            "seed": 1,
            "status": "ok",
            "ppcm": 1.0,
            "calls": 3,
            "input_tokens": 10,
            "output_tokens": 5,
            "cost_usd": 0.0,
        }
    ]
    table = markdown_tables(summarize(rows))
    row = next(line for line in table.splitlines() if "x\\|y" in line)
    assert "<img" not in table and row.count(" | ") == row.replace("\\|", "").count(" | ")


# --- 4. files and run state --------------------------------------------------------------


def _cache_file(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PROSE_SIM_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    return tmp_path / "cache" / "responses.sqlite3"


@pytest.mark.parametrize("kind", ["corrupt", "foreign"])
def test_a_corrupt_or_foreign_cache_is_one_line_and_writes_no_folder(
    tmp_path, monkeypatch, capsys, kind
):
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    cache = _cache_file(tmp_path, monkeypatch)
    if kind == "corrupt":
        cache.write_bytes(b"this is not a database" * 100)
    else:
        with sqlite3.connect(cache) as db:
            db.execute("CREATE TABLE responses (id INTEGER, payload BLOB)")
    with ChatServer() as server:
        out = tmp_path / "run"
        assert run(api_scenario(tmp_path, server.base_url), "--out", out) == 2
        assert not server.requests
    line = one_line(capsys)
    assert str(cache) in line and "--no-cache" in line
    assert not out.exists()


def test_a_retrieval_model_that_does_not_load_fails_before_the_folder(tmp_path, capsys):
    path = scenario(
        tmp_path,
        rest='[methods.cipher1]\nretrieval_mode = "cosine_sim"\n'
        '[retrieval]\nmodel = "/no/such/model"\n',
    )
    out = tmp_path / "run"
    assert run(path, "--out", out) == 2
    assert "retrieval.model" in one_line(capsys)
    assert not out.exists()


def test_resuming_a_finished_run_changes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(scenario(tmp_path), "--out", out) == 0
    before = {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in out.iterdir()}
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--progress", "off"]) == 0
    assert "nothing to resume" in one_line(capsys)
    after = {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in out.iterdir()}
    assert after == before


def test_an_interrupted_runs_summary_reports_unfinished_instances_not_failed(tmp_path):
    path = tmp_path / "slow.toml"
    path.write_text(SLOW, encoding="utf-8")
    out = tmp_path / "run"
    proc = start("run", path, "--out", out, "--progress", "off", "--no-report")
    wait_for_lines(proc, out / "events.jsonl", 200)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["instances_failed"] == 0 and summary["instances_unfinished"] > 0
    assert f"(0 failed, {summary['instances_unfinished']} unfinished)" in stdout


def test_a_full_disk_while_writing_the_report_names_the_file_and_leaves_no_part(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "run"
    assert run(scenario(tmp_path), "--out", out) == 0
    real = Path.write_text

    def full(self, data, *args, **kwargs):
        if "judge_qa" in self.name:
            real(self, data[: len(data) // 2], *args, **kwargs)  # what fit
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    capsys.readouterr()
    assert main(["report", str(out)]) == 1
    line = one_line(capsys)
    assert str(out / "judge_qa.csv") in line and "No space left on device" in line
    assert not (out / "judge_qa.csv").exists() and not list(out.glob(".*.tmp"))


@pytest.mark.parametrize(
    "setting, key",
    [
        ("[models.user]\nlatency_s = inf", "models.user.latency_s"),
        ("[retry]\nbackoff_s = inf", "retry.backoff_s"),
        ("[retry]\nmax_backoff_s = nan", "retry.max_backoff_s"),
    ],
)
def test_non_finite_numbers_are_load_errors(tmp_path, capsys, setting, key):
    path = scenario(tmp_path, rest=setting)
    assert run(path, "--out", tmp_path / "run") == 2
    line = one_line(capsys)
    assert f"s.toml: {key}" in line and "finite" in line


@pytest.mark.parametrize("name", ['"small\\n"', '"' + "n" * 300 + '"', '"a/b"'])
def test_a_scenario_name_must_fully_match_and_fit_a_file_name(tmp_path, capsys, name):
    path = scenario(tmp_path)
    path.write_text(path.read_text().replace('name = "small"', f"name = {name}"))
    assert run(path, "--out", tmp_path / "run") == 2
    assert "s.toml: name" in one_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_persona_name_too_long_for_a_file_name_is_a_load_error(tmp_path, capsys):
    folder = tmp_path / "people"
    folder.mkdir()
    (folder / "p.toml").write_text(
        PERSONA.replace('behaviour = {{template = "{template}"}}\n', "").format(name="p" * 300)
    )
    path = scenario(tmp_path, personas='"files"', top='persona_files = ["people"]')
    assert run(path, "--out", tmp_path / "run") == 2
    assert "persona[0].name" in one_line(capsys)


def test_a_token_budget_smaller_than_one_request_is_a_load_error(tmp_path, capsys):
    path = scenario(tmp_path, rest="[models.agent]\ntpm = 100\nmax_new_tokens = 512\n")
    assert run(path, "--out", tmp_path / "run") == 2
    line = one_line(capsys)
    assert "models.agent.tpm" in line and "less than one request" in line


def test_a_persona_file_that_is_not_a_regular_file_is_a_load_error(tmp_path, capsys):
    path = scenario(tmp_path, top='persona_files = ["/dev/zero"]')
    assert run(path, "--out", tmp_path / "run") == 2
    assert "/dev/zero: not a regular file" in one_line(capsys)


# --- issue 23, item 5: a prompt folder of your own ---------------------------------------


def prompt_scenario(tmp_path, templates: dict[str, str]) -> Path:
    folder = tmp_path / "wording"
    folder.mkdir(exist_ok=True)
    for name, text in templates.items():
        (folder / f"{name}.j2").write_text(text, encoding="utf-8")
    return scenario(tmp_path, rest='[prompts]\ndir = "wording"\n')


def test_a_prompt_folder_overrides_a_template_by_name_and_is_recorded(tmp_path):
    from prose_sim.templating import template_dir

    builtin = (template_dir() / "judge_fpm.j2").read_text(encoding="utf-8")
    path = prompt_scenario(tmp_path, {"judge_fpm": "MY WORDING\n" + builtin})
    out = tmp_path / "run"
    assert run(path, "--out", out) == 0
    events = list(read_events(out / "events.jsonl"))
    fpm = [
        e.messages[-1]["content"]
        for e in events
        if isinstance(e, ModelRequested) and e.purpose == "judge_fpm"
    ]
    assert fpm and all(p.startswith("MY WORDING") for p in fpm)
    others = [e for e in events if isinstance(e, ModelRequested) and e.purpose == "judge_ppcm"]
    assert others and not any("MY WORDING" in e.messages[-1]["content"] for e in others)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.prompts_dir == str((tmp_path / "wording").resolve())
    assert list(started.templates) == [str((tmp_path / "wording" / "judge_fpm.j2").resolve())]


def test_a_prompt_folder_of_the_built_in_templates_gives_the_same_results(tmp_path):
    from prose_sim.templating import template_dir

    copies = {p.stem: p.read_text(encoding="utf-8") for p in template_dir().glob("*.j2")}
    plain, mine = tmp_path / "plain", tmp_path / "mine"
    assert run(scenario(tmp_path), "--out", plain) == 0
    assert run(prompt_scenario(tmp_path, copies), "--out", mine) == 0
    assert (plain / "results.csv").read_bytes() == (mine / "results.csv").read_bytes()


def test_resume_and_replay_refuse_a_template_changed_since_the_run(tmp_path, capsys):
    path = prompt_scenario(tmp_path, {"judge_fpm": "MINE {{ text }} {{ preferences }}"})
    out = tmp_path / "run"
    run(path, "--out", out)
    (out / "summary.json").unlink()  # as if interrupted
    (tmp_path / "wording" / "judge_fpm.j2").write_text("CHANGED {{ text }}")
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--progress", "off"]) == 2
    line = one_line(capsys)
    assert "judge_fpm.j2" in line and "changed since the run began" in line
    assert main(["replay", str(out), "--out", str(tmp_path / "again")]) == 2
    assert "judge_fpm.j2" in one_line(capsys)


@pytest.mark.parametrize(
    "templates, reason",
    [
        ({"not_a_prompt": "x"}, "no built-in template is named 'not_a_prompt'"),
        ({"judge_fpm": "{% if %}"}, "template syntax error"),
        ({}, "holds no .j2 template"),
    ],
)
def test_a_bad_prompt_folder_is_a_load_error(tmp_path, capsys, templates, reason):
    path = prompt_scenario(tmp_path, templates)
    assert run(path, "--out", tmp_path / "run") == 2
    line = one_line(capsys)
    assert "s.toml: prompts.dir" in line and reason in line


def test_a_log_from_before_prompt_folders_still_reads():
    import msgspec

    from prose_sim.events import AnyEvent

    old = b'{"kind":"run_started","scenario_name":"s","scenario_digest":"d","episodes":1,"version":"0"}'
    event = msgspec.json.decode(old, type=AnyEvent)
    assert isinstance(event, RunStarted) and event.templates == {} and event.prompts_dir == ""


# --- 5. the viewer on hostile sizes ----------------------------------------------------


def test_the_word_diff_of_a_megabyte_stays_within_its_budget_and_is_correct(monkeypatch):
    """Linear: the common head and tail are matched token by token, the quadratic LCS step
    only sees what lies between them, and only within LCS_BUDGET token pairs."""
    from prose_sim.view import diff

    compared: list[int] = []
    real = diff.Indel.opcodes

    def counted(a, b):
        compared.append(len(a) * len(b))
        return real(a, b)

    monkeypatch.setattr(diff.Indel, "opcodes", counted)
    words = " ".join(f"w{i % 997} and, " for i in range(95_000))  # about 1 MB
    assert len(words) > 1_000_000
    cases = [
        (words, words),  # identical
        (words, words.replace("w5 ", "changed ")),  # changes all along
        (words, words[:500_000] + " inserted words " + words[500_000:]),
        ("a short draft of ten words or so it is", words),
        (words, ""),
    ]
    for draft, user in cases:
        segments = diff.word_diff(draft, user)
        assert diff.sides(segments) == (draft, user)
    assert compared and max(compared) <= diff.LCS_BUDGET
    # an ordinary pair is still diffed word by word
    segments = diff.word_diff("the cat sat", "the dog sat")
    assert segments[0] == (0, "the ") and segments[-1] == (0, "sat")
    assert sorted(segments[1:-1]) == [(-1, "cat "), (1, "dog ")]


def test_a_very_long_answer_is_cut_in_the_viewer_and_prompts_show_prints_it_whole(
    tmp_path, monkeypatch, capsys
):
    import base64
    import gzip

    from prose_sim.view.build import TEXT_MAX, read_view_data

    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    answer = "Preferences: short Verdict: yes " + "endless " * 3_000  # 24,000 characters
    with ChatServer(answer=answer) as server:
        out = tmp_path / "run"
        path = api_scenario(tmp_path, server.base_url, max_new_tokens=8000)
        assert run(path, "--out", out, "--no-cache") == 0
    data = read_view_data(out)
    episodes: dict = {}
    for chunk in data.chunks:
        episodes.update(json.loads(gzip.decompress(base64.b64decode(chunk))))
    [episode] = episodes.values()
    answers = [c["answer"] for i in episode["instances"] for c in i["calls"]]
    assert answers and all(len(a) < TEXT_MAX + 300 for a in answers)
    assert all(
        f"prompts show --run RUN_DIR --episode {episode['id']}" in a and "more characters" in a
        for a in answers
    )
    capsys.readouterr()
    assert main(["prompts", "show", "--run", str(out), "--episode", episode["id"]]) == 0
    assert ("endless " * 3_000).strip() in capsys.readouterr().out  # whole there
