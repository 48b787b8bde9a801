"""A real loopback chat-completions server (tests and the rate-limit benchmark).

``ChatServer`` runs the stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (a free
port) in a thread and speaks ``POST /v1/chat/completions`` in the OpenAI JSON
shape, with ``usage``. Tests can tell it to misbehave:

- ``faults``: a queue of actions for the next requests, one each:
  ``"429"`` (with ``Retry-After``), ``"500"``, ``"slow"`` (answer after
  ``slow_s``), ``"drop"`` (close the connection without answering), ``"401"``
  (an error body that echoes the Authorization header, as careless servers do);
- ``rpm`` / ``tpm``: its own budget per ``window_s`` seconds, enforced as a
  token bucket (capacity = budget, refilled continuously), answering 429 past it;
- ``latency_s``: a simulated generation time, slept before every answer it
  serves (200s; errors and 429s answer at once, as providers do). Default 0.

It records every request (``requests``: arrival time, body, status and the
tokens it would be charged) and every answer's status
(``statuses``); ``budget_rejections`` counts the 429s the budget caused.
Token counts are the gateway's estimate (``prose_sim.models.tokens``) of the
message contents.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prose_sim.models.tokens import estimate_tokens


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
    ):
        self.rpm, self.tpm, self.window_s = rpm, tpm, window_s
        self.latency_s = latency_s
        self.retry_after_s = retry_after_s
        self.slow_s = slow_s
        self.answer = answer
        self.faults: deque[str] = deque()
        self.requests: list[dict] = []  # {"t", "body", "authorization", "status", "tokens"}
        self.statuses: list[int] = []
        self.budget_rejections = 0
        self.served = 0
        self._lock = threading.Lock()
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
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- serving ---------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length)
        now = time.monotonic()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        if h.path.rstrip("/") != "/v1/chat/completions":
            self._send(h, 404, {"error": {"message": "not found"}})
            return
        messages = body.get("messages", [])
        prompt_tokens = sum(estimate_tokens(str(m.get("content", ""))) for m in messages)
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 512)
        text = self.answer if self.answer is not None else self._reply(messages)
        words = text.split()
        while words and estimate_tokens(" ".join(words)) > max_tokens:
            words.pop()
        text = " ".join(words)
        completion_tokens = estimate_tokens(text)
        record = {
            "t": now,
            "body": body,
            "authorization": h.headers.get("Authorization", ""),
            "status": 200,
            "tokens": prompt_tokens + completion_tokens,
        }
        with self._lock:
            self.requests.append(record)
            fault = self.faults.popleft() if self.faults else None
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
        if fault == "drop":
            record["status"] = -1
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(2)
            return
        if fault == "429":
            record["status"] = 429
            self._send(
                h,
                429,
                {"error": {"message": "rate limited", "type": "rate_limit"}},
                {"Retry-After": f"{self.retry_after_s}"},
            )
            return
        if fault == "500":
            record["status"] = 500
            self._send(h, 500, {"error": {"message": "internal error"}})
            return
        if fault == "401":
            record["status"] = 401
            self._send(h, 401, {"error": {"message": f"bad key: {h.headers.get('Authorization')}"}})
            return
        if status == 429:
            self._send(
                h,
                429,
                {"error": {"message": "budget exceeded", "type": "rate_limit"}},
                {"Retry-After": f"{self.retry_after_s}"},
            )
            return
        if fault == "slow":
            time.sleep(self.slow_s)
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        with self._lock:
            self.served += 1
        self._send(
            h,
            200,
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    @staticmethod
    def _reply(messages: list[dict]) -> str:
        """A short answer in the formats the prompts ask for, drawn from the prompt."""
        last = str(messages[-1].get("content", "")) if messages else ""
        words = last.split()[:40]
        return (
            "Preferences: use short sentences; adopt a playful tone\nVerdict: yes\nScore: 5\n"
            + " ".join(words)
        )

    def _send(
        self, h: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        with self._lock:
            self.statuses.append(status)
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
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
