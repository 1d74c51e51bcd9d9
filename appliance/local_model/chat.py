"""The built-in chat model (Qwen2.5-Coder-1.5B-Instruct by default), streamed from a llama.cpp worker thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import llama_cpp

from appliance.core.errors import ProviderError, ProviderErrorKind
from appliance.local_model.paths import ModelCorrupt, ModelMissing

Messages = list[dict[str, Any]]

_SMOOTHING = 0.3  # weight of the newest measurement in the moving averages


@dataclass
class _End:
    error: ProviderError | None = None


@dataclass(eq=False)
class _Job:
    """One generation request, shared by the event loop (consumer) and the worker thread.

    The worker only touches ``cancelled`` (reads), ``completion_tokens`` and the rates (writes, before
    it posts ``_End``), and reaches the queue only through ``loop.call_soon_threadsafe``.
    """

    messages: Messages
    max_tokens: int
    temperature: float
    prompt_chars: int
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[str | _End] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    completion_tokens: int = 0
    tokens_per_s: float | None = None
    prompt_chars_per_s: float | None = None

    def post(self, piece: str) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, piece)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancelled.set()

    async def next_piece(self) -> str | None:
        item = await self.queue.get()
        if isinstance(item, _End):
            if item.error is not None:
                raise item.error
            return None
        return item


class LocalChat:
    """A llama.cpp chat model behind one worker thread.

    Invariants: only the worker thread touches the llama context, so generations run one at a time
    in submission order; the event loop only enqueues and awaits. A consumer that stops reading
    (cancelled task, closed stream) sets the job's ``cancelled`` event, and the worker stops at the
    next token (or skips the job if it has not started). A job is retired (``pending``,
    ``tokens_generated`` and the moving averages updated) on the event loop thread just before its
    consumer sees the end, so they are current once ``complete`` returns or ``stream`` is exhausted.

    llama-cpp-python reuses the KV cache of the longest common prompt prefix between requests, which
    saves prompt processing (~350 prompt tokens/s on two cores) but means a greedy (temperature 0)
    answer can differ in rare near-ties depending on the previous request.
    """

    def __init__(
        self, llm: llama_cpp.Llama, *, tokens_per_s: float = 60.0, prompt_chars_per_s: float = 700.0,
    ) -> None:
        self._llm = llm
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-chat")
        self._jobs: set[_Job] = set()
        self.tokens_generated = 0
        self.tokens_per_s = tokens_per_s
        self.prompt_chars_per_s = prompt_chars_per_s
        # How long answers and prompts have lately been (moving averages, like the speeds).
        self.answer_tokens = 48.0
        self.prompt_chars = 2000.0

    @classmethod
    def load(cls, path: Path, threads: int = 2, n_ctx: int = 2048) -> LocalChat:
        """Blocking (a few hundred milliseconds): run it in a thread from async code."""
        if not path.is_file():
            raise ModelMissing(path)
        try:
            llm = llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False,
            )
        except ValueError as exc:  # llama-cpp-python's "Failed to load model from file"
            raise ModelCorrupt(path, f"cannot be loaded as a chat model ({exc})") from exc
        return cls(llm)

    @property
    def pending(self) -> int:
        """Requests queued or running."""
        return len(self._jobs)

    def estimated_wait_s(self, max_tokens: int, prompt_chars: int = 0) -> float:
        """Seconds until a request submitted now would finish: the jobs queued or running, then it.

        Each job is expected to write as many tokens as answers have lately (at most its
        ``max_tokens``: a budget is a ceiling, and a built-in answer of two sentences stops far
        below it) at the recent speed, after processing its prompt (``prompt_chars``, or as long
        as prompts have lately been) at the recent prompt speed.
        """
        def tokens(job_max: int) -> float:
            return min(float(job_max), self.answer_tokens)

        chars = (prompt_chars or self.prompt_chars) + sum(job.prompt_chars for job in self._jobs)
        written = tokens(max_tokens) + sum(tokens(job.max_tokens) for job in self._jobs)
        return chars / self.prompt_chars_per_s + written / self.tokens_per_s

    async def stream(
        self, messages: Messages, max_tokens: int, temperature: float = 0.2,
    ) -> AsyncIterator[str]:
        """Yield the answer's text pieces (about one token each) as the worker produces them.

        Raises ``ProviderError`` (``context_too_long``, ``bad_request``, ``server_error``). Closing it or
        cancelling the consuming task stops the generation.
        """
        job = self._submit(messages, max_tokens, temperature)
        try:
            while (piece := await job.next_piece()) is not None:
                yield piece
        finally:
            job.cancelled.set()

    async def complete(
        self, messages: Messages, max_tokens: int, temperature: float = 0.2,
    ) -> tuple[str, int]:
        """The whole answer and its number of completion tokens."""
        job = self._submit(messages, max_tokens, temperature)
        pieces: list[str] = []
        try:
            while (piece := await job.next_piece()) is not None:
                pieces.append(piece)
        finally:
            job.cancelled.set()
        return "".join(pieces), job.completion_tokens

    def close(self) -> None:
        """Stop queued and running generations, wait for the worker, free the model. Blocking."""
        for job in self._jobs:
            job.cancelled.set()
        self._executor.shutdown(wait=True)
        self._llm.close()

    def _submit(self, messages: Messages, max_tokens: int, temperature: float) -> _Job:
        loop = asyncio.get_running_loop()
        prompt_chars = sum(len(str(m.get("content") or "")) for m in messages)
        job = _Job(list(messages), max_tokens, temperature, prompt_chars, loop)
        self._jobs.add(job)
        self._executor.submit(self._generate, job)
        return job

    def _retire(self, job: _Job) -> None:
        self._jobs.discard(job)
        self.tokens_generated += job.completion_tokens
        if job.tokens_per_s is not None:
            self.tokens_per_s += _SMOOTHING * (job.tokens_per_s - self.tokens_per_s)
        if job.prompt_chars_per_s is not None:
            self.prompt_chars_per_s += _SMOOTHING * (job.prompt_chars_per_s - self.prompt_chars_per_s)
        if job.completion_tokens and not job.cancelled.is_set():  # a cut answer says nothing of lengths
            self.answer_tokens += _SMOOTHING * (job.completion_tokens - self.answer_tokens)
        self.prompt_chars += _SMOOTHING * (job.prompt_chars - self.prompt_chars)

    def _finish(self, job: _Job, end: _End) -> None:
        """Loop thread: retire the job before its consumer can see the end."""
        self._retire(job)
        job.queue.put_nowait(end)

    def _generate(self, job: _Job) -> None:
        """Worker thread: run one generation; always ends by handing one ``_End`` to ``_finish``."""
        end = _End()
        try:
            if not job.cancelled.is_set():
                end = _End(self._run(job))
        finally:
            try:
                job.loop.call_soon_threadsafe(self._finish, job, end)
            except RuntimeError:  # the loop is closed and nobody awaits the job: still free its slot
                self._retire(job)

    def _run(self, job: _Job) -> ProviderError | None:
        pieces: list[str] = []
        started = time.perf_counter()
        first_at: float | None = None
        error: ProviderError | None = None
        try:
            chunks = cast(Generator[dict[str, Any], None, None], self._llm.create_chat_completion(
                messages=cast(Any, job.messages), max_tokens=job.max_tokens, temperature=job.temperature,
                stream=True,
            ))
            try:
                for chunk in chunks:
                    if job.cancelled.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        if first_at is None:
                            first_at = time.perf_counter()
                        pieces.append(piece)
                        job.post(piece)
            finally:
                chunks.close()
        except ValueError as exc:
            too_long = "exceed context window" in str(exc)
            kind: ProviderErrorKind = "context_too_long" if too_long else "bad_request"
            error = ProviderError(kind, f"local model: {exc}")
        except Exception as exc:
            error = ProviderError("server_error", f"local model failed: {exc}")
        finished = time.perf_counter()
        if pieces:
            # llama-cpp-python reports no usage when streaming: count the answer's tokens instead.
            text = "".join(pieces).encode()
            job.completion_tokens = len(self._llm.tokenize(text, add_bos=False, special=True))
        if first_at is not None:
            if job.prompt_chars and first_at > started:
                job.prompt_chars_per_s = job.prompt_chars / (first_at - started)
            if job.completion_tokens >= 8 and finished > first_at:
                job.tokens_per_s = (job.completion_tokens - 1) / (finished - first_at)
        return error
