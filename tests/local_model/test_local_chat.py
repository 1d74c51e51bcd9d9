from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import pytest

from appliance.core.errors import ProviderError
from appliance.local_model import LocalChat

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one short sentence."}]
LONG = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]


async def wait_idle(chat: LocalChat, timeout_s: float = 60.0) -> None:
    started = time.perf_counter()
    while chat.pending:
        assert time.perf_counter() - started < timeout_s, "the worker did not stop"
        await asyncio.sleep(0.005)


async def test_stream_yields_pieces_that_add_up_to_the_answer(chat: LocalChat) -> None:
    pieces = [piece async for piece in chat.stream(CAPITAL, max_tokens=32, temperature=0.0)]
    text, tokens = await chat.complete(CAPITAL, max_tokens=32, temperature=0.0)
    assert len(pieces) > 1
    assert "".join(pieces) == text
    assert "Paris" in text
    assert 1 < tokens <= 32


async def test_max_tokens_bounds_the_answer(chat: LocalChat) -> None:
    _, tokens = await chat.complete(LONG, max_tokens=12)
    assert tokens <= 12


async def test_other_tasks_run_while_the_model_generates(chat: LocalChat) -> None:
    """Generation happens on the worker thread: between one streamed piece and the next, the event
    loop runs other tasks. A generation that held the loop would deliver its pieces in one burst
    once it finished, with no other task run in between. (How long the loop waits at most is
    measured by ``python -m bench.latency``.)"""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    seen: list[int] = []  # the ticker's count when each piece arrived
    try:
        async for _ in chat.stream(LONG, max_tokens=64):
            seen.append(ticks)
    finally:
        task.cancel()
    assert len(seen) > 16
    assert seen[-1] > seen[0]
    ran_between = sum(later > earlier for earlier, later in itertools.pairwise(seen))
    assert ran_between >= (len(seen) - 1) // 2, seen


# In both cancellation tests the worker may have a few pieces queued that the consumer never read,
# and finishes the token it is computing; without cancellation it would go on to 1000 tokens.


async def test_closing_the_stream_stops_generation(chat: LocalChat) -> None:
    before = chat.tokens_generated
    async with contextlib.aclosing(chat.stream(LONG, max_tokens=1000)) as stream:
        got = 0
        async for _ in stream:
            got += 1
            if got == 3:
                break
    await wait_idle(chat)
    assert 3 <= chat.tokens_generated - before <= 12


async def test_cancelling_the_consumer_stops_generation(chat: LocalChat) -> None:
    got: list[str] = []

    async def consume() -> None:
        async for piece in chat.stream(LONG, max_tokens=1000):
            got.append(piece)

    before = chat.tokens_generated
    task = asyncio.create_task(consume())
    while len(got) < 3:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(chat)
    assert 3 <= chat.tokens_generated - before <= 12


async def test_requests_queue_one_at_a_time_and_the_wait_estimate_grows(chat: LocalChat) -> None:
    idle_estimate = chat.estimated_wait_s(64)
    tasks = [asyncio.create_task(chat.complete(CAPITAL, max_tokens=64)) for _ in range(3)]
    await asyncio.sleep(0)  # let the tasks submit
    assert chat.pending == 3
    assert chat.estimated_wait_s(64) > 3 * idle_estimate
    first = await tasks[0]
    assert chat.pending <= 2
    results = [first, *await asyncio.gather(*tasks[1:])]
    assert all("Paris" in text for text, _ in results)
    assert chat.pending == 0


async def test_generation_speed_is_measured(chat: LocalChat) -> None:
    chat.tokens_per_s = 1e6  # an absurd prior that the measurement must pull down
    await chat.complete(LONG, max_tokens=48)
    assert chat.tokens_per_s < 1e6


async def test_a_prompt_longer_than_the_context_is_a_provider_error(chat: LocalChat) -> None:
    huge = [{"role": "user", "content": "refund policy " * 3000}]
    with pytest.raises(ProviderError) as caught:
        await chat.complete(huge, max_tokens=8)
    assert caught.value.kind == "context_too_long"
    assert chat.pending == 0
