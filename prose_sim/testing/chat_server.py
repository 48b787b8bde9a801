"""A real loopback chat-completions server (tests and the rate-limit benchmark).

``ChatServer`` runs the stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (a free
port) in a thread and speaks ``POST /v1/chat/completions`` in the OpenAI JSON
shape, with ``usage``. Tests can tell it to misbehave:

- ``faults``: a queue of actions for the next requests, one each:
  ``"429"`` (with ``Retry-After``), ``"500"``, ``"slow"`` (answer after
  ``slow_s``), ``"drop"`` (close the connection without answering), ``"401"``
  (an error body that echoes the Authorization header, as careless servers do),
  ``"empty"`` (``choices: []``), ``"null"`` (``content: null``), ``"huge"`` (an
  answer of ``huge_chars`` characters whatever ``max_tokens`` says), ``"hang"``
  (accept and never answer, until the client leaves), ``"drip"`` (send the headers,
  then one byte every ``slow_s`` seconds, until the client leaves);
- ``rpm`` / ``tpm``: its own budget per ``window_s`` seconds, enforced as a
  token bucket (capacity = budget, refilled continuously), answering 429 past it;
- ``latency_s``: a simulated generation time, slept before every answer it
  serves (200s; errors and 429s answer at once, as providers do). Default 0.

And it can behave as the real servers do (``docs/servers.md``), each switch on
its own:

- ``error_style``: ``"openai"`` (``{"error": {"message": ...}}``), ``"fastapi"``
  (``{"detail": ...}``, transformers serve and every FastAPI app) or ``"plain"``
  (a multi-line ``text/plain`` body, the cause on a later line);
- ``strict_fields``: answer 422 to a field outside the OpenAI chat schema
  (``top_k``, ``repetition_penalty``, ...), as transformers serve does;
- ``serves`` / ``other_models``: the one model it serves, and what it does when
  asked for another: ``"reject"`` (400 naming both, a pinned transformers serve) or
  ``"accept"`` (answer with its own name, as llama.cpp does);
- ``response_format``: ``"honour"`` (a JSON answer of the requested schema, from
  ``json_schema`` or ``json_object`` with ``schema``), ``"ignore"`` (free text, as
  transformers serve) or ``"json_object_only"`` (HTTP 500 with a multi-line
  message to ``json_schema``, ``json_object`` honoured: llama-cpp-python's server);
- ``finish_reason``: ``"length"`` whenever it trims an answer to ``max_tokens``;
- ``count_tokens``: the usage's token counts from a real tokenizer (a callable,
  text -> tokens), else the gateway's estimate (``prose_sim.models.tokens``);
- ``one_at_a_time``: a queue, one request generating at a time (``max_active``
  records the most that ever generated together);
- ``keep_working``: a request whose client left goes on generating to its end, as
  servers that do not watch the connection do (``abandoned`` counts the requests
  whose client was gone before their answer; ``client_left`` is set when one is seen).

It records every request (``requests``: arrival time, body, status and the
tokens it would be charged) and every answer's status
(``statuses``); ``budget_rejections`` counts the 429s the budget caused.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from prose_sim.models.tokens import estimate_tokens

# the fields of OpenAI's chat-completions request (a strict server answers 422 to any other)
OPENAI_CHAT_FIELDS = frozenset(
    {
        "messages", "model", "audio", "frequency_penalty", "function_call", "functions",
        "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata",
        "modalities", "n", "parallel_tool_calls", "prediction", "presence_penalty",
        "reasoning_effort", "response_format", "seed", "service_tier", "stop", "store",
        "stream", "stream_options", "temperature", "tool_choice", "tools", "top_logprobs",
        "top_p", "user", "web_search_options",
    }
)  # fmt: skip

ErrorStyle = Literal["openai", "fastapi", "plain"]


class _Bucket:
    def __init__(self, capacity: float, window_s: float):
        self.capacity = capacity
        self.rate = capacity / window_s
        self.level = capacity  # tokens available
        self.last = time.monotonic()

    def take(self, amount: float, now: float) -> bool:
        self.level = min(self.capacity, self.level + (now - self.last) * self.rate)
        self.last = now
        if amount <= self.level + 1e-9:
            self.level -= amount
            return True
        return False


class _Refused(Exception):
    """An error answer decided while reading the request: (status, message)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _client_gone(h: BaseHTTPRequestHandler) -> bool:
    """True when the client closed its connection (it is readable and reads as end of file)."""
    sock = h.connection
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def schema_instance(schema: dict) -> object:
    """A value that fits ``schema`` (the subset prose_sim sends: objects, enums, arrays)."""
    if "enum" in schema:
        return schema["enum"][0]
    match schema.get("type"):
        case "object":
            props = schema.get("properties", {})
            return {name: schema_instance(sub) for name, sub in props.items()}
        case "array":
            return [schema_instance(schema.get("items", {"type": "string"})) for _ in range(2)]
        case "integer" | "number":
            return 1
        case _:
            return "use short sentences"


class ChatServer:
    def __init__(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        window_s: float = 60.0,
        retry_after_s: float = 0.05,
        slow_s: float = 0.5,
        answer: str | None = None,
        latency_s: float = 0.0,
        error_style: ErrorStyle = "openai",
        strict_fields: bool = False,
        serves: str | None = None,
        other_models: Literal["reject", "accept"] = "reject",
        response_format: Literal["honour", "ignore", "json_object_only"] = "honour",
        count_tokens: Callable[[str], int] | None = None,
        one_at_a_time: bool = False,
        keep_working: bool = True,
        huge_chars: int = 1_000_000,
    ):
        self.rpm, self.tpm, self.window_s = rpm, tpm, window_s
        self.latency_s = latency_s
        self.retry_after_s = retry_after_s
        self.slow_s = slow_s
        self.answer = answer
        self.error_style: ErrorStyle = error_style
        self.strict_fields = strict_fields
        self.serves = serves
        self.other_models = other_models
        self.response_format = response_format
        self.count_tokens = count_tokens or estimate_tokens
        self.one_at_a_time = one_at_a_time
        self.keep_working = keep_working
        self.huge_chars = huge_chars
        self.faults: deque[str] = deque()
        self.requests: list[dict] = []  # {"t", "body", "authorization", "status", "tokens"}
        self.statuses: list[int] = []
        self.budget_rejections = 0
        self.served = 0
        self.abandoned = 0  # requests whose client left before their answer
        self.client_left = threading.Event()  # set when a client is seen leaving
        self.generating = threading.Event()  # set when a request starts generating
        self.active = 0
        self.max_active = 0  # the most requests generating at once
        self._lock = threading.Lock()
        self._queue = threading.Lock()  # one_at_a_time: held while generating
        self._closing = threading.Event()
        self._rpm = _Bucket(rpm, window_s) if rpm else None
        self._tpm = _Bucket(tpm, window_s) if tpm else None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> ChatServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # TCP_NODELAY, as real servers set it: an answer's headers and body are two writes,
            # and Nagle held the body until the client's delayed ACK, 40 ms a request
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                server._handle(self)

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # the default backlog (5) resets bursts of new connections

            def handle_error(self, request, client_address) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hung up: quiet
                    super().handle_error(request, client_address)

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- serving ---------------------------------------------------------------

    def _check(self, body: dict) -> str:
        """The model it answers as; raises ``_Refused`` for what a real server refuses."""
        if self.strict_fields:
            unexpected = set(body) - OPENAI_CHAT_FIELDS
            if unexpected:  # transformers serve's words
                raise _Refused(422, f"Unexpected fields in the request: {unexpected}")
        asked = str(body.get("model", ""))
        if self.serves is None or asked == self.serves:
            return asked
        if self.other_models == "accept":
            return self.serves
        raise _Refused(400, f"Server is pinned to '{self.serves}'; requested '{asked}'.")

    def _structured(self, body: dict) -> str | None:
        """The JSON answer ``response_format`` asks for, when this server honours it."""
        fmt = body.get("response_format")
        if not isinstance(fmt, dict) or self.response_format == "ignore":
            return None
        if fmt.get("type") == "json_schema":
            if self.response_format == "json_object_only":
                raise _Refused(
                    500,
                    "Internal Server Error\nTraceback (most recent call last):\n"
                    '  File "llama_cpp/server/app.py", line 512, in create_chat_completion\n'
                    "ValueError: response_format type 'json_schema' is not supported; "
                    "use 'json_object' with a 'schema'",
                )
            schema = fmt.get("json_schema", {}).get("schema", {})
        elif fmt.get("type") == "json_object":
            schema = fmt.get("schema", {"type": "object"})
        else:
            return None
        return json.dumps(schema_instance(schema))

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length)
        now = time.monotonic()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        if h.path.rstrip("/") != "/v1/chat/completions":
            self._error(h, 404, "not found")
            return
        messages = body.get("messages", [])
        prompt_tokens = sum(self.count_tokens(str(m.get("content", ""))) for m in messages)
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 512)
        record = {
            "t": now,
            "body": body,
            "authorization": h.headers.get("Authorization", ""),
            "status": 200,
            "tokens": prompt_tokens,
        }
        with self._lock:
            self.requests.append(record)
            fault = self.faults.popleft() if self.faults else None
        try:
            model = self._check(body)
            structured = self._structured(body)
        except _Refused as refused:
            record["status"] = refused.status
            self._error(h, refused.status, str(refused))
            return
        text = structured or (self.answer if self.answer is not None else self._reply(messages))
        finish = "stop"
        if fault == "huge":
            text = ("word " * (self.huge_chars // 5 + 1))[: self.huge_chars]
        else:
            words = text.split(" ")
            if self.count_tokens(text) > max_tokens:
                finish = "length"
                while words and self.count_tokens(" ".join(words)) > max_tokens:
                    words.pop()
                text = " ".join(words)
        completion_tokens = self.count_tokens(text)
        record["tokens"] = prompt_tokens + completion_tokens
        with self._lock:
            status = 200
            if fault is None:
                ok = self._rpm.take(1, now) if self._rpm else True
                if ok and self._tpm:
                    ok = self._tpm.take(prompt_tokens + completion_tokens, now)
                    if not ok and self._rpm:  # give the request slot back
                        self._rpm.level += 1
                if not ok:
                    self.budget_rejections += 1
                    status = 429
            record["status"] = status
        match fault:
            case "drop":
                record["status"] = -1
                h.close_connection = True
                with contextlib.suppress(OSError):
                    h.connection.shutdown(2)
                return
            case "429":
                record["status"] = 429
                self._error(h, 429, "rate limited", {"Retry-After": f"{self.retry_after_s}"})
                return
            case "500":
                record["status"] = 500
                self._error(h, 500, "internal error")
                return
            case "401":
                record["status"] = 401
                self._error(h, 401, f"bad key: {h.headers.get('Authorization')}")
                return
            case "hang" | "drip":
                record["status"] = -1
                self._hold(h, drip=fault == "drip")
                return
        if status == 429:
            self._error(h, 429, "budget exceeded", {"Retry-After": f"{self.retry_after_s}"})
            return
        self._generate(h, fault)
        with self._lock:
            self.served += 1
        choices: list[dict] = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None if fault == "null" else text},
                "finish_reason": finish,
            }
        ]
        self._send(
            h,
            200,
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [] if fault == "empty" else choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def _generate(self, h: BaseHTTPRequestHandler, fault: str | None) -> None:
        """The simulated generation: its latency, in the queue when there is one; a client
        that leaves meanwhile is noticed (and the work stops unless ``keep_working``)."""
        seconds = (self.slow_s if fault == "slow" else 0.0) + self.latency_s
        with self._queue if self.one_at_a_time else contextlib.nullcontext():
            with self._lock:
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            self.generating.set()
            try:
                end = time.monotonic() + seconds
                while time.monotonic() < end and not self._closing.is_set():
                    time.sleep(min(0.01, max(0.0, end - time.monotonic())))
                    if self._noticed_leaving(h) and not self.keep_working:
                        return
                self._noticed_leaving(h)
            finally:
                with self._lock:
                    self.active -= 1

    def _noticed_leaving(self, h: BaseHTTPRequestHandler) -> bool:
        if getattr(h, "_left", False):
            return True
        if _client_gone(h):
            h._left = True  # type: ignore[attr-defined]
            with self._lock:
                self.abandoned += 1
            self.client_left.set()
            return True
        return False

    def _hold(self, h: BaseHTTPRequestHandler, *, drip: bool) -> None:
        """Never answer: wait (or drip one byte at a time) until the client leaves."""
        if drip:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "1000000")
            h.end_headers()
        while not self._closing.is_set():
            if drip:
                try:
                    h.wfile.write(b" ")
                    h.wfile.flush()
                except OSError:
                    self._noticed_leaving(h)
                    break
            if self._noticed_leaving(h):
                break
            time.sleep(self.slow_s if drip else 0.01)
        h.close_connection = True

    @staticmethod
    def _reply(messages: list[dict]) -> str:
        """A short answer in the formats the prompts ask for, drawn from the prompt."""
        last = str(messages[-1].get("content", "")) if messages else ""
        words = last.split()[:40]
        return (
            "Preferences: use short sentences; adopt a playful tone\nVerdict: yes\nScore: 5\n"
            + " ".join(words)
        )

    def _error(
        self, h: BaseHTTPRequestHandler, status: int, message: str, headers: dict | None = None
    ) -> None:
        """An error answer in this server's ``error_style``."""
        match self.error_style:
            case "fastapi":
                self._send(h, status, {"detail": message}, headers)
            case "plain":
                text = f"{status} error\n{message}\n"
                self._send(h, status, text, headers)
            case _:
                self._send(h, status, {"error": {"message": message, "code": status}}, headers)

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        payload: dict | str,
        headers: dict | None = None,
    ) -> None:
        plain = isinstance(payload, str)
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        with self._lock:
            self.statuses.append(status)
        try:
            h.send_response(status)
            h.send_header("Content-Type", "text/plain" if plain else "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            pass

    # --- observations ------------------------------------------------------------

    def count(self, status: int) -> int:
        return sum(r["status"] == status for r in self.requests)

    def timeline(self) -> list[tuple[float, int]]:
        """(seconds since the first request, status) of every request, by arrival."""
        if not self.requests:
            return []
        t0 = min(r["t"] for r in self.requests)
        return [
            (round(r["t"] - t0, 3), r["status"])
            for r in sorted(self.requests, key=lambda r: r["t"])
        ]

    def max_in_window(self, window_s: float) -> int:
        """The most requests that arrived within any ``window_s`` seconds."""
        times = sorted(r["t"] for r in self.requests)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] > window_s:
                start += 1
            best = max(best, end - start + 1)
        return best
