"""A mock OpenAI-compatible upstream that can be told to misbehave, and counts what it receives.

In-process (tests)::

    async with MockUpstream() as mock:          # 127.0.0.1, a free port
        spec = ModelSpec(name="a", base_url=mock.url, model="mock")
        mock.set(mode="rate_limit", retry_after_s=1, times=1)   # next request only

As a process (the benchmark's upstream)::

    python -m bench.mock_upstream --port 9000 --latency-ms 50
    curl -X POST localhost:9000/_control -d '{"mode": "error"}'     # flip it from elsewhere
    curl localhost:9000/_stats

Modes: ``ok`` (a deterministic "Mock answer about: <last user words>" with usage; right after
tool results "Mock answer from the tool: <their text>", as a model answers from what a tool
returned), ``slow_stream`` (ok, with ``chunk_delay_ms`` between streamed words, 200 ms unless
set), ``rate_limit`` (429 with Retry-After), ``error`` (500), ``context_too_long`` (400 naming
the context length), ``hang`` (never answers), ``drop`` (closes the connection mid-response),
``tool_call`` (calls ``tool_name``, else the request's first tool), ``ignore_stream`` (a
streaming request answered with one JSON completion, as some servers do), ``html`` (200 with an
HTML page, as a proxy's sign-in page). ``latency_ms`` delays every
answer; ``times`` applies the mode to that many requests, then reverts to ``ok``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import msgspec
from aiohttp import web

Mode = Literal["ok", "slow_stream", "rate_limit", "error", "context_too_long", "hang", "drop", "tool_call",
               "ignore_stream", "html"]
MODES: tuple[str, ...] = Mode.__args__  # type: ignore[attr-defined]


@dataclass
class Behaviour:
    mode: Mode = "ok"
    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    retry_after_s: float = 1.0
    tool_name: str = ""
    times: int | None = None


class _Body(msgspec.Struct):
    messages: list[dict[str, Any]] = msgspec.field(default_factory=list)
    model: str = "mock"
    stream: bool = False
    tools: list[dict[str, Any]] = msgspec.field(default_factory=list)


_decode_body = msgspec.json.Decoder(_Body).decode
_encode = msgspec.json.encode


class MockUpstream:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0.0,
                 chunk_delay_ms: float = 0.0, mode: Mode = "ok", keep_timestamps: int = 200_000) -> None:
        self.host, self.port = host, port
        self.behaviour = Behaviour(mode=mode, latency_ms=latency_ms, chunk_delay_ms=chunk_delay_ms)
        self.requests = 0
        self.by_mode: Counter[str] = Counter()
        self.images = 0
        self.timestamps: deque[float] = deque(maxlen=keep_timestamps)  # time.monotonic() of arrivals
        self._bodies: deque[bytes] = deque(maxlen=50)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The base URL an OpenAI client takes (``.../v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def set(self, **changes: Any) -> None:
        """Change behaviour at run time; unknown names raise, so a typo cannot pass silently."""
        known = {f.name for f in fields(Behaviour)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown behaviour {name!r}; known: {sorted(known)}")
            if name == "mode" and value not in MODES:
                raise ValueError(f"unknown mode {value!r}; known: {MODES}")
            setattr(self.behaviour, name, value)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The latest requests received (up to 50), decoded, oldest first."""
        return [msgspec.json.decode(raw) for raw in self._bodies]

    def reset_counts(self) -> None:
        self.requests, self.images = 0, 0
        self.by_mode.clear()
        self.timestamps.clear()
        self._bodies.clear()

    def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "by_mode": dict(self.by_mode), "images": self.images,
                "behaviour": asdict(self.behaviour)}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/_control", self._control)
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_reset", self._reset)
        return app

    async def start(self) -> MockUpstream:
        self._release = asyncio.Event()
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=4096)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> MockUpstream:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _take_mode(self) -> Behaviour:
        b = self.behaviour
        current = Behaviour(**asdict(b))
        if b.times is not None:
            b.times -= 1
            if b.times <= 0:
                b.mode, b.times = "ok", None
        return current

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.timestamps.append(time.monotonic())
        b = self._take_mode()
        self.by_mode[b.mode] += 1
        raw = await request.read()
        try:
            body = _decode_body(raw)
        except msgspec.DecodeError as exc:
            return _json({"error": {"message": f"bad JSON: {exc}", "type": "invalid_request_error"}}, 400)
        images = sum(1 for m in body.messages for p in _parts(m) if p.get("type") == "image_url")
        self.images += images
        self._bodies.append(raw)
        if b.latency_ms:
            await asyncio.sleep(b.latency_ms / 1000)
        if b.mode == "rate_limit":
            headers = {"Retry-After": f"{b.retry_after_s:g}"}
            error = {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}}
            return _json(error, 429, headers)
        if b.mode == "error":
            return _json({"error": {"message": "internal error", "type": "server_error"}}, 500)
        if b.mode == "context_too_long":
            limit = "This model's maximum context length is 4096 tokens"
            return _json({"error": {"message": limit, "code": "context_length_exceeded"}}, 400)
        if b.mode == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), timeout=3600)
            return _json({"error": {"message": "shutting down"}}, 503)
        if b.mode == "html":  # a proxy's login page, with 200
            return web.Response(text="<html><body>Please sign in to the gateway</body></html>",
                                content_type="text/html")
        tool = (b.tool_name or _first_tool(body.tools)) if b.mode == "tool_call" else ""
        text = _answer_text(body.messages, images)
        usage = {"prompt_tokens": _count_words(body.messages), "completion_tokens": len(text.split())}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if body.stream and b.mode != "ignore_stream":  # some servers send one JSON completion anyway
            delay = b.chunk_delay_ms or (200.0 if b.mode == "slow_stream" else 0.0)
            return await self._stream(request, body, text, tool, usage, delay / 1000, drop=b.mode == "drop")
        if b.mode == "drop":
            return await _drop_plain(request)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tool:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_mock_1", "type": "function",
                 "function": {"name": tool, "arguments": _tool_arguments(body.messages)}}]}
        return _json({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time()),
            "model": body.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}],
            "usage": usage,
        })

    async def _stream(self, request: web.Request, body: _Body, text: str, tool: str, usage: dict[str, int],
                      delay_s: float, *, drop: bool) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "model": body.model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return b"data: " + _encode(chunk) + b"\n\n"

        await resp.write(event({"role": "assistant", "content": ""}))
        if tool:
            args = _tool_arguments(body.messages)
            half = len(args) // 2
            await resp.write(event({"tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function",
                                                    "function": {"name": tool, "arguments": args[:half]}}]}))
            await resp.write(event({"tool_calls": [{"index": 0, "function": {"arguments": args[half:]}}]}))
            finish = "tool_calls"
        else:
            words = text.split(" ")
            for index, word in enumerate(words):
                if drop and index == 2:
                    assert request.transport is not None
                    request.transport.abort()  # the connection dies mid-answer
                    return resp
                if delay_s:
                    await asyncio.sleep(delay_s)
                await resp.write(event({"content": word if index == 0 else " " + word}))
            finish = "stop"
        await resp.write(event({}, finish))
        usage_chunk = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "choices": [],
                       "usage": usage}
        await resp.write(b"data: " + _encode(usage_chunk) + b"\n\ndata: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _models(self, request: web.Request) -> web.Response:
        return _json({"object": "list", "data": [{"id": "mock", "object": "model"}]})

    async def _control(self, request: web.Request) -> web.Response:
        try:
            self.set(**msgspec.json.decode(await request.read(), type=dict[str, Any]))
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(self.stats())

    async def _stats(self, request: web.Request) -> web.Response:
        return _json(self.stats())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset_counts()
        return _json(self.stats())


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_encode(payload), status=status, headers=headers,
                        content_type="application/json")


async def _drop_plain(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "400"})
    await resp.prepare(request)
    await resp.write(b'{"id": "chatcmpl-mock", "choices": [{"index": 0, "mess')
    assert request.transport is not None
    request.transport.abort()
    return resp


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return " ".join(str(p.get("text", "")) for p in _parts(message) if p.get("type") == "text")


def _answer_text(messages: list[dict[str, Any]], images: int) -> str:
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, _text_of(message))
    if results:
        return "Mock answer from the tool: " + " | ".join(" ".join(r.split()) for r in results)[:400]
    user = next((_text_of(m) for m in reversed(messages) if m.get("role") == "user"), "")
    words = " ".join(user.split()[-8:]) or "nothing"
    seen = f" (I see {images} image{'s' if images != 1 else ''})" if images else ""
    return f"Mock answer about: {words}{seen}"


def _count_words(messages: list[dict[str, Any]]) -> int:
    return sum(len(_text_of(m).split()) for m in messages) + 4 * len(messages)


def _first_tool(tools: list[dict[str, Any]]) -> str:
    for tool in tools:
        function = tool.get("function", tool)
        if isinstance(function, dict) and function.get("name"):
            return str(function["name"])
    return "lookup"


def _tool_arguments(messages: list[dict[str, Any]]) -> str:
    user = next((_text_of(m) for m in reversed(messages) if m.get("role") == "user"), "")
    return _encode({"query": user}).decode()


async def _serve(args: argparse.Namespace) -> None:
    mock = MockUpstream(host=args.host, port=args.port, latency_ms=args.latency_ms,
                        chunk_delay_ms=args.chunk_delay_ms, mode=args.mode)
    async with mock:
        print(f"mock upstream on {mock.url} (mode {args.mode}); POST /_control to change it", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mock_upstream", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    parser.add_argument("--mode", choices=MODES, default="ok")
    args = parser.parse_args(argv)
    try:
        import uvloop
        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(_serve(args))


if __name__ == "__main__":
    main()
