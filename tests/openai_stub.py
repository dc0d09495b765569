"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It speaks `POST /v1/chat/completions` (and `GET /v1/models`) over a real socket, so the real
`openai` client, with its retries and timeouts, talks to it. Two modes:

    with OpenAIStub(script=["reply 1", Reply(status=429, headers={"Retry-After": "0.1"}), ...]) as stub:
        client = LLMClient(base_url=stub.base_url, ...)
        ...
        stub.requests      # the JSON bodies received, in order

    with OpenAIStub(handler=lambda body: "reply", delay_s=0.05) as stub: ...   # every request

A script entry is a string (the assistant content) or a `Reply` (status, headers, delay, a raw
body, usage). When the script runs out the stub answers 400 (not retried), naming the request.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering (longer than the client timeout = a timeout)
    raw_body: str | None = None  # sent as is (e.g. malformed JSON)
    usage: tuple[int, int] | None = None  # (prompt, completion); default: word counts
    model: str | None = None


Handler = Callable[[dict[str, Any]], "str | Reply"]


def _words(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in messages)


class OpenAIStub:
    """A loopback chat-completions server; a context manager that starts and stops it."""

    def __init__(
        self,
        script: list[str | Reply] | None = None,
        *,
        handler: Handler | None = None,
        delay_s: float = 0.0,
    ):
        if (script is None) == (handler is None):
            raise ValueError("OpenAIStub needs exactly one of script=[...] or handler=callable")
        self._script: list[str | Reply] = list(script or [])
        self._handler = handler
        self._delay_s = delay_s
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.request_times: list[float] = []
        self.headers: list[dict[str, str]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def remaining(self) -> int:
        return len(self._script)

    def _next(self, body: dict[str, Any]) -> Reply:
        if self._handler is not None:
            out = self._handler(body)
            if isinstance(out, Reply):
                return out if out.delay_s else replace(out, delay_s=self._delay_s)
            return Reply(content=out, delay_s=self._delay_s)
        with self._lock:
            if not self._script:
                return Reply(
                    status=400,
                    headers={"x-should-retry": "false"},
                    raw_body=json.dumps(
                        {
                            "error": {
                                "message": f"stub script exhausted at request {len(self.requests)}"
                            }
                        }
                    ),
                )
            item = self._script.pop(0)
        return item if isinstance(item, Reply) else Reply(content=item)

    async def _chat(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "body is not JSON"}}, status=400)
        with self._lock:
            self.requests.append(body)
            self.request_times.append(time.monotonic())
            self.headers.append(dict(request.headers))
        reply = self._next(body)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        headers = dict(reply.headers)
        if reply.raw_body is not None:
            headers.setdefault("Content-Type", "application/json")
            return web.Response(text=reply.raw_body, status=reply.status, headers=headers)
        if reply.status != 200:
            payload = {"error": {"message": f"stub error {reply.status}", "type": "stub"}}
            return web.json_response(payload, status=reply.status, headers=headers)
        p_tok, c_tok = reply.usage or (_words(body.get("messages", [])), len(reply.content.split()))
        payload = {
            "id": f"chatcmpl-stub-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or body.get("model", "stub"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": p_tok,
                "completion_tokens": c_tok,
                "total_tokens": p_tok + c_tok,
            },
        }
        return web.json_response(payload, headers=headers)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self._start())
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())  # type: ignore[union-attr]
        loop.close()

    def start(self) -> OpenAIStub:
        self._thread = threading.Thread(target=self._serve, name="openai-stub", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the OpenAI stub server did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
