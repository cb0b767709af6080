"""A small OpenAI-compatible HTTP server for tests and benchmarks: chat completions (plain, streamed,
json_schema) and embeddings, with injectable failures (and their ``Retry-After``), a fixed latency per
request, and a count of the requests in flight. Replies come from a ``responder`` function of the
request; :func:`ranking_responder` answers recai's ranking and retrieval prompts deterministically."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Responder = Callable[[dict[str, Any]], str]


def echo_responder(request: dict[str, Any]) -> str:
    last = next(m["content"] for m in reversed(request["messages"]) if m["role"] == "user")
    return f"You said: {last}"


def ranking_responder(request: dict[str, Any]) -> str:
    """A deterministic "model" for ranking and retrieval prompts: the candidates (or, for retrieval,
    the history's titles) ordered by a hash of the prompt and the title, as a JSON list of k titles."""
    prompt = request["messages"][-1]["content"]
    k = int(m.group(1)) if (m := re.search(r"JSON list of the (\d+)", prompt)) else 10
    if "candidate" in prompt and "Rank the following" in prompt:
        block = prompt.split("Rank the following", 1)[1].split("Answer with", 1)[0]
    else:
        block = prompt
    titles = [line[2:].strip() for line in block.splitlines() if line.startswith("- ")]
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    titles.sort(key=lambda t: hashlib.sha256((digest + t).encode()).hexdigest())
    return json.dumps(titles[:k], ensure_ascii=False)


@dataclass
class ServerState:
    responder: Responder = echo_responder
    fail_with: list[int] = field(default_factory=list)  # status codes to return before succeeding
    #: ``Retry-After`` (seconds) sent with each injected failure; None sends none.
    retry_after: float | None = None
    #: Seconds every chat completion takes (the server answers many at once, like a batching server).
    latency_s: float = 0.0
    reject_json_schema: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    embedding_dim: int = 8
    in_flight: int = 0
    peak_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def failure(self) -> int | None:
        with self.lock:
            return self.fail_with.pop(0) if self.fail_with else None


def _embedding(text: str, dim: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vec = np.random.default_rng(seed).normal(size=dim)
    return (vec / np.linalg.norm(vec) * 3.0).tolist()  # deliberately not unit length


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        """``/_stats`` (``?reset=1`` zeroes the peak): for a client in another process, such as a benchmark."""
        if not self.path.startswith("/_stats"):
            self._json(404, {"error": {"message": "not found"}})
            return
        state = self.state
        with state.lock:
            body = {"requests": len(state.requests), "peak_in_flight": state.peak_in_flight}
            if "reset=1" in self.path:
                state.peak_in_flight = 0
        self._json(200, body)

    def do_POST(self) -> None:
        state = self.state
        with state.lock:
            state.in_flight += 1
            state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            self._post()
        finally:
            with state.lock:
                state.in_flight -= 1

    def _post(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with self.state.lock:
            self.state.requests.append({"path": self.path, **request})
        status = self.state.failure()
        if status is not None:
            headers = {} if self.state.retry_after is None else {"Retry-After": f"{self.state.retry_after:g}"}
            self._json(status, {"error": {"message": f"injected {status}", "type": "server_error"}}, headers)
            return
        if self.path.endswith("/embeddings"):
            inputs = request["input"] if isinstance(request["input"], list) else [request["input"]]
            data = [
                {"object": "embedding", "index": i, "embedding": _embedding(t, self.state.embedding_dim)}
                for i, t in enumerate(inputs)
            ]
            self._json(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": request["model"],
                    "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
                },
            )
            return
        if not self.path.endswith("/chat/completions"):
            self._json(404, {"error": {"message": "not found"}})
            return
        if self.state.reject_json_schema and "response_format" in request:
            self._json(
                400, {"error": {"message": "response_format json_schema is not supported", "type": "invalid"}}
            )
            return
        if self.state.latency_s:
            time.sleep(self.state.latency_s)
        text = self.state.responder(request)
        finish = "stop"
        for s in request.get("stop") or []:
            if s in text:
                text = text[: text.index(s)]
        words = text.split(" ")
        if len(words) > request.get("max_tokens", 10**9):
            text, finish = " ".join(words[: request["max_tokens"]]), "length"
        prompt_tokens = sum(len(m["content"].split()) for m in request["messages"])
        completion_tokens = len(text.split())
        base = {"id": "chatcmpl-test", "created": int(time.time()), "model": request["model"]}
        if request.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
            for piece in pieces:
                chunk = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            end = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
            }
            self.wfile.write(f"data: {json.dumps(end)}\n\n".encode())
            if (request.get("stream_options") or {}).get("include_usage"):
                usage = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
                self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        self._json(
            200,
            {
                **base,
                "object": "chat.completion",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many clients connect at once; the default backlog of 5 drops some


@contextmanager
def openai_server(state: ServerState | None = None) -> Iterator[tuple[str, ServerState]]:
    """Serve on 127.0.0.1 (a free port) until the block ends; yields (base_url, state)."""
    state = state or ServerState()
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", state
    finally:
        httpd.shutdown()
        httpd.server_close()
