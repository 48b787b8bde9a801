"""What a scenario can name: ``personas``, ``methods`` and ``corpus`` (list, show, generate)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.table import Table

from prose_sim.cli import common
from prose_sim.cli.common import EXIT_OK
from prose_sim.errors import UsageError


def add_personas(commands) -> None:
    personas = commands.add_parser("personas", help="the simulated users")
    persona_cmds = personas.add_subparsers(dest="personas_command", metavar="ACTION", required=True)
    p_list = persona_cmds.add_parser(
        "list", help="list the personas: built-in, installed plugins', and --file ones"
    )
    p_list.add_argument(
        "--file",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="also a persona TOML file or folder (repeatable)",
    )
    p_list.add_argument("--task", help="only this task's")
    p_list.set_defaults(handler=_cmd_personas_list)
    p_show = persona_cmds.add_parser("show", help="show one persona's preferences")
    p_show.add_argument("name", help="persona name, e.g. cnn_dailymail")
    p_show.add_argument("--task", help="summarization or email_writing")
    p_show.add_argument("--framework", help="plume or prelude")
    p_show.add_argument(
        "--file",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="also a persona TOML file or folder (repeatable)",
    )
    p_show.set_defaults(handler=_cmd_personas_show)
    p_gen = persona_cmds.add_parser(
        "generate",
        help="compose a population of distinct personas from per-task component pools",
        description="Write N distinct personas (1 to K components each, at most one per category) "
        "as a TOML file a scenario can name in persona_files.",
    )
    p_gen.add_argument("--task", required=True, choices=["summarization", "email_writing"])
    p_gen.add_argument("--n", type=int, required=True, help="how many personas")
    p_gen.add_argument(
        "--components", type=int, default=4, help="at most this many components each (1-4)"
    )
    p_gen.add_argument("--seed", type=int, default=0)
    p_gen.add_argument("--framework", default="plume", choices=["plume", "prelude"])
    p_gen.add_argument("--out", type=Path, help="TOML file to write (default: stdout)")
    p_gen.set_defaults(handler=_cmd_personas_generate)


def add_methods(commands) -> None:
    methods = commands.add_parser("methods", help="the inference methods")
    method_cmds = methods.add_subparsers(dest="methods_command", metavar="ACTION", required=True)
    m_list = method_cmds.add_parser(
        "list", help="list the methods: built-in and installed plugins', with their knobs"
    )
    m_list.set_defaults(handler=_cmd_methods_list)


def add_corpus(commands) -> None:
    corpus = commands.add_parser("corpus", help="the bundled documents")
    corpus_cmds = corpus.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    c_list = corpus_cmds.add_parser("list", help="documents per source, with word-length ranges")
    c_list.set_defaults(handler=_cmd_corpus_list)
    c_show = corpus_cmds.add_parser("show", help="list a source's documents, or print one")
    c_show.add_argument("source")
    c_show.add_argument("id", nargs="?", help="document id (default: list the source's ids)")
    c_show.set_defaults(handler=_cmd_corpus_show)


def _cmd_methods_list(args: argparse.Namespace) -> int:
    from prose_sim.actors.inferrers import method_origins

    table = Table(title="methods")
    for column in ["name", "from", "knobs"]:
        table.add_column(column, overflow="fold")
    for name, origin, cls in method_origins():
        table.add_row(name, origin, ", ".join(sorted(cls.allowed_knobs())) or "-")
    common.console().print(table)
    return EXIT_OK


def _catalog(files: list[Path]):
    from prose_sim.world.personas import catalog_with

    return catalog_with(tuple(str(f.resolve()) for f in files))


def _cmd_personas_list(args: argparse.Namespace) -> int:
    catalog = _catalog(args.file)
    table = Table(title="personas")
    for column in ["framework", "task", "name", "documents", "preferences", "from"]:
        table.add_column(column, overflow="fold")
    for p in catalog:
        if args.task is None or p.task == args.task:
            documents = p.source or f"{len(p.documents)} of its own"
            table.add_row(p.framework, p.task, p.name, documents, p.preferences, catalog.origin(p))
    common.console().print(table)
    return EXIT_OK


def _cmd_personas_show(args: argparse.Namespace) -> int:
    catalog = _catalog(args.file)
    found = [
        p
        for p in catalog
        if p.name == args.name
        and (args.task is None or p.task == args.task)
        and (args.framework is None or p.framework == args.framework)
    ]
    if not found:
        raise UsageError(f"no persona named {args.name!r} (see `prose-sim personas list`)")
    for p in found:
        documents = p.source or f"{len(p.documents)} of its own"
        print(
            f"{p.framework} / {p.task} / {p.name}  (documents: {documents}; from {catalog.origin(p)})"
        )
        for component in p.components:
            print(f"  - {component}")
        b = p.behaviour
        if b.template or b.edit is not None or b.ignore_probability:
            print(
                f"  behaviour: template={b.template or 'default'} edit={b.edit} "
                f"ignore_probability={b.ignore_probability}"
            )
    return EXIT_OK


def _cmd_personas_generate(args: argparse.Namespace) -> int:
    from prose_sim.world.generate import generate_personas, to_toml

    personas = generate_personas(
        args.task, args.n, args.components, args.seed, framework=args.framework
    )
    text = to_toml(personas, components=args.components, seed=args.seed)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(
            f'wrote {len(personas)} personas to {args.out} (use it with persona_files = ["{args.out}"])',
            file=sys.stderr,
        )
    return EXIT_OK


def _cmd_corpus_list(args: argparse.Namespace) -> int:
    from prose_sim.world.corpus import SOURCES, bundled_corpus

    corpus = bundled_corpus()
    table = Table(title="bundled corpus")
    for column in ["source", "genre", "documents", "words (min-max)", "paper's dataset"]:
        table.add_column(column, overflow="fold")
    for name in corpus.sources():
        docs = corpus.documents(name)
        words = [d.words for d in docs]
        info = SOURCES.get(name)
        table.add_row(
            name,
            info.genre if info else "",
            str(len(docs)),
            f"{min(words)}-{max(words)}",
            info.hf_dataset if info else "",
        )
    common.console().print(table)
    return EXIT_OK


def _cmd_corpus_show(args: argparse.Namespace) -> int:
    from prose_sim.world.corpus import bundled_corpus

    corpus = bundled_corpus()
    if args.source not in corpus.sources():
        raise UsageError(f"unknown source {args.source!r} (known: {', '.join(corpus.sources())})")
    if args.id is None:
        for doc in corpus.documents(args.source):
            first = doc.text.strip().splitlines()[0]
            print(f"{doc.id}\t{doc.words} words\t{first[:70]}")
        return EXIT_OK
    doc = corpus.get(args.source, args.id)
    print(f"# {doc.id} ({doc.source}, {doc.words} words)\n")
    print(doc.text)
    return EXIT_OK
