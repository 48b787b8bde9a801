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


class ResponseCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

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
