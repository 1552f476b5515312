"""A test helper: an OpenAI-compatible chat server on 127.0.0.1 (http.server in a thread) that misbehaves
on purpose, for the shared LLM client and the raters built on it.

`FaultyJudge(faults=[...], answer=fn)`: each incoming chat request takes the next fault from `faults`
("429" with a Retry-After header, any other status code such as "500" or "401", "timeout" = answer only
after `slow_s` seconds, "close" = drop the connection) until the list is empty; then it answers `answer(messages)` with a `usage` block. The server
records what it saw (`chat_requests`, `auth`, `bodies`, `times`) so tests count requests server-side.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FaultyJudge:
    def __init__(
        self,
        faults: list[str] | None = None,
        answer: Callable[[list[dict[str, Any]]], str] | None = None,
        *,
        retry_after: str = "0",
        slow_s: float = 2.0,
        model: str = "faulty",
    ) -> None:
        self.faults = list(faults or [])
        self.answer = answer or (lambda messages: "4")
        self.retry_after = retry_after
        self.slow_s = slow_s
        self.model = model
        self.lock = threading.Lock()
        self.chat_requests = 0
        self.auth: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        # A client that gave up on a slow answer closed the socket; the late write is expected to fail.
        self.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FaultyJudge:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next_fault(self, body: dict[str, Any], auth: str) -> str | None:
        with self.lock:
            self.chat_requests += 1
            self.auth.append(auth)
            self.bodies.append(body)
            self.times.append(time.monotonic())
            return self.faults.pop(0) if self.faults else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        judge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": judge.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                fault = judge._next_fault(body, self.headers.get("Authorization", ""))
                if fault == "429":
                    self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": judge.retry_after})
                    return
                if fault is not None and fault.isdigit():
                    self._send(int(fault), {"error": {"message": f"status {fault} on purpose"}})
                    return
                if fault == "close":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "timeout":
                    time.sleep(judge.slow_s)
                text = judge.answer(body.get("messages") or [])
                prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
                self._send(200, {
                    "id": f"cmpl-{judge.chat_requests}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": judge.model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1,
                              "total_tokens": prompt_tokens + 1},
                })

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
