"""The running classifier adopts console changes: its own at once (``refresh``), a paired node's
(replicated into its store) within a second (``watch``), embedding only the new texts; the real
built-in embedding model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.core.config import IntentConfig, IntentsConfig
from appliance.knowledge import IntentService
from appliance.store import Store
from appliance.store import intents as stored
from tests.knowledge.conftest import CountingEmbedder
from tests.store.test_privacy_tombstones import ship

CONFIG = IntentsConfig(intents=[
    IntentConfig(name="human", action="handoff", examples=[
        "I want to talk to a person", "connect me to an agent", "real person please", "转人工", "人工客服"]),
    IntentConfig(name="greeting", action="answer", answer="Hello!", examples=["hello", "hi there", "你好", "您好"]),
])
COMPLAINT = "I would like to file a complaint with your manager"


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    a, b = Store.open(tmp_path / "a.db", "node-a"), Store.open(tmp_path / "b.db", "node-b")
    yield a, b
    a.close()
    b.close()


async def test_a_change_made_here_or_at_a_paired_node_is_adopted_without_a_restart(
    stores: tuple[Store, Store], counting: CountingEmbedder,
) -> None:
    a, b = stores
    here = IntentService(counting, CONFIG, store=a, model_id="e5")
    there = IntentService(counting, CONFIG, store=b, model_id="e5")
    await here.start()
    await there.start()
    there.watch(interval_s=0.1)
    try:
        assert not (await here.classify(COMPLAINT)).in_scope
        version = here.version
        counting.texts = 0
        await a.write(stored.add_example(here.configured, "human", "I want to complain to your manager",
                                         actor="admin:admin", ip="127.0.0.1"))
        assert await here.refresh() is True
        assert counting.texts == 1  # only the new example was embedded
        assert (await here.classify(COMPLAINT)).name == "human" and (await here.classify(COMPLAINT)).in_scope
        assert here.version != version  # answers cached before it are not served
        assert await here.refresh() is False  # nothing new: no retraining

        ship(a, b)  # replication applies the events to the paired node's store
        for _ in range(100):
            if (await there.classify(COMPLAINT)).in_scope:
                break
            await asyncio.sleep(0.05)
        assert (await there.classify(COMPLAINT)).name == "human" and there.version == here.version
    finally:
        await there.stop()
