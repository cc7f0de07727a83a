"""A local OpenAI-compatible HTTP server for the assistant's tests: the real
`openai` client talks to it over loopback. The first path segment picks the
behaviour: /answer/v1, /error500/v1, /ratelimit/v1, /hang/v1, /echo/v1."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = ["Photosynthesis ", "turns light ", "into sugar."]


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                scenario = self.path.strip("/").split("/")[0]
                fake.requests.append({"scenario": scenario, "path": self.path, "body": body})
                fake.headers.append(dict(self.headers))
                if not self.path.endswith("/chat/completions"):
                    return self._json(404, {"error": {"message": "not found"}})
                if scenario == "error500":
                    return self._json(500, {"error": {"message": "boom", "type": "server_error"}})
                if scenario == "ratelimit":
                    return self._json(429, {"error": {"message": "slow down", "type": "rate_limit"}})
                if scenario == "hang":
                    time.sleep(30)
                    return self._json(500, {"error": {"message": "late"}})
                parts = ANSWER
                if scenario == "echo":
                    # Repeats the user turn: what the assistant was given is what leaks.
                    parts = [m["content"] for m in body["messages"] if m["role"] == "user"]
                if body.get("stream"):
                    return self._stream(parts, body)
                return self._json(200, _completion("".join(parts), body))

            def _json(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, parts: list[str], body: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for part in parts:
                    chunk = {
                        "id": "chatcmpl-1",
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": body.get("model", "m"),
                        "choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(0.15)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.port}/{scenario}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _completion(text: str, body: dict) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "m"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
