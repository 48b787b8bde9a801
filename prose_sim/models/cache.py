"""The response cache: model answers stored by content, shared between runs.

An entry is keyed by a hash of (backend identity, model, messages, sampling
parameters with the seed, response prefix); the backend identity is the
backend kind and its base URL, never the API key. Entries live in one SQLite
file (stdlib ``sqlite3``, WAL mode so concurrent runs can share it), by
default ``<cache dir>/responses.sqlite3``. With the cache, re-running a
scenario costs nothing for the requests already answered.
"""

from __future__ import annotations

import hashlib
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


def default_cache_path() -> Path:
    from prose_sim.models.local_loading import cache_dir

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
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Completion | None:
        row = self._db.execute(
            "SELECT text, input_tokens, output_tokens FROM responses WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return Completion(text=row[0], input_tokens=row[1], output_tokens=row[2])

    def put(self, key: str, completion: Completion) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
            (key, completion.text, completion.input_tokens, completion.output_tokens),
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()
