"""prose_sim's cache folder, and the response cache: model answers stored by content.

An entry is keyed by a hash of (backend identity, model, messages, sampling
parameters with the seed, response prefix); the backend identity is the
backend kind and its base URL, never the API key. Entries live in one SQLite
file (stdlib ``sqlite3``, WAL mode so concurrent runs can share it), by
default ``<cache dir>/responses.sqlite3``. With the cache, re-running a
scenario costs nothing for the requests already answered.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import msgspec

from prose_sim.errors import UsageError
from prose_sim.models.protocol import Completion, ModelRequest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL
)
"""


def cache_dir() -> Path:
    """``$PROSE_SIM_CACHE`` if set, else ``~/.cache/prose_sim`` (``$XDG_CACHE_HOME`` honoured).

    It holds the response cache and the converted embedded models.
    """
    env = os.environ.get("PROSE_SIM_CACHE")
    if env:
        return Path(os.path.expanduser(env))
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(os.path.expanduser(xdg)) if xdg else Path(os.path.expanduser("~")) / ".cache"
    return base / "prose_sim"


def default_cache_path() -> Path:
    return cache_dir() / "responses.sqlite3"


def cache_key(identity: str, request: ModelRequest) -> str:
    seen = (identity, request.model, request.messages, request.params, request.response_prefix)
    # a constrained answer is another answer; unconstrained keys are those they always were
    payload = msgspec.json.encode(seen if request.answer is None else (*seen, request.answer))
    return hashlib.blake2b(payload, digest_size=20).hexdigest()


_COLUMNS = ["key", "text", "input_tokens", "output_tokens"]


class ResponseCache:
    """The response cache at ``path``, opened and checked: a file that is not one (corrupt,
    or another program's database) is a ``UsageError`` naming it and ``--no-cache``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise self._unusable(exc) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            columns = [row[1] for row in self._db.execute("PRAGMA table_info(responses)")]
            if columns != _COLUMNS:
                raise sqlite3.DatabaseError(
                    f"its responses table has columns {', '.join(columns)}, not {', '.join(_COLUMNS)}"
                )
            self._db.execute("SELECT key, text, input_tokens, output_tokens FROM responses LIMIT 1")
            self._db.commit()
        except sqlite3.Error as exc:
            self._db.close()
            raise self._unusable(exc) from None

    def _unusable(self, exc: BaseException) -> UsageError:
        return UsageError(
            f"{self.path}: not a usable response cache ({exc}); move it away, or run with --no-cache"
        )

    def get(self, key: str) -> Completion | None:
        row = self._db.execute(
            "SELECT text, input_tokens, output_tokens FROM responses WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return Completion(text=row[0], input_tokens=row[1], output_tokens=row[2])

    def put(self, key: str, completion: Completion) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
            (key, completion.text, completion.input_tokens, completion.output_tokens),
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()
