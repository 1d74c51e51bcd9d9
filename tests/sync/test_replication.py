"""Two and three nodes over real QUIC on loopback converge, and refuse whoever is not paired."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from appliance.store.log import highest
from tests.sync import workload
from tests.sync.helpers import SyncNode, UdpRelay, digest, make_node, pair_all, wait_converged


@pytest.fixture
async def nodes(tmp_path: Path):  # type: ignore[no-untyped-def]
    made: list[SyncNode] = []

    def new(name: str) -> SyncNode:
        made.append(make_node(tmp_path, name))
        return made[-1]

    yield new
    for n in made:
        await n.stop()
        n.store.close()


async def test_two_nodes_writing_at_once_converge(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = nodes("a"), nodes("b")
    pair_all([a, b])
    workload.mixed(a.store, "a", 20)
    workload.mixed(b.store, "b", 20)
    await a.start()
    await b.start()
    await wait_converged([a, b])
    # Live push while connected: a new conversation on one side shows up on the other.
    cid = workload.conversation(b.store, "周末营业吗")
    await wait_converged([a, b], timeout=5)
    texts = a.store.read_sync(lambda c: [r[0] for r in c.execute(
        "SELECT text FROM messages WHERE conversation_id = ? ORDER BY hlc", (cid,))])
    assert texts[0] == "周末营业吗"
    docs = a.store.read_sync(lambda c: sorted(r[0] for r in c.execute("SELECT source FROM kb_documents")))
    assert docs == ["a.md", "b.md"]


async def test_three_nodes_converge_through_any_link(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b, c = nodes("a"), nodes("b"), nodes("c")
    # A chain: a <-> b <-> c. c's events reach a only through b.
    a.pair(b)
    b.pair(a)
    b.pair(c)
    c.pair(b)
    for n in (a, b, c):
        workload.mixed(n.store, n.name, 10)
    for n in (a, b, c):
        await n.start()
    await wait_converged([a, b, c])
    assert set(a.store.read_sync(highest)) == {a.node_id, b.node_id, c.node_id}


async def test_conversation_continued_at_the_other_site(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = nodes("a"), nodes("b")
    pair_all([a, b])
    await a.start()
    await b.start()
    cid = workload.conversation(a.store, "I want a person", replies=0)
    await wait_converged([a, b], timeout=5)
    workload.hand_to(b.store, cid, "lena")
    workload.conversation(b.store, "Lena here, how can I help?", replies=0, conversation_id=cid)
    await wait_converged([a, b], timeout=5)
    row = a.store.read_sync(lambda c: c.execute(
        "SELECT owner, last_text, subject FROM conversations WHERE id = ?", (cid,)).fetchone())
    assert tuple(row) == ("agent:lena", "Lena here, how can I help?", "I want a person")


async def test_unpaired_node_gets_nothing(nodes) -> None:  # type: ignore[no-untyped-def]
    a, stranger = nodes("a"), nodes("stranger")
    stranger.pair(a)  # one-sided: a never added it
    workload.mixed(a.store, "a", 3)
    await a.start()
    await stranger.start()
    await asyncio.sleep(3)
    assert a.node_id not in stranger.store.read_sync(highest)
    assert stranger.node_id not in a.store.read_sync(highest)
    assert a.service is not None and a.service.refused["not-paired"] >= 1
    assert stranger.service is not None
    link = stranger.service.links[a.node_id]
    assert not link.connected and "not-paired" in link.last_error


async def test_one_sided_pairing_moves_nothing_either_way(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = nodes("a"), nodes("b")
    a.pair(b)  # b has not paired a
    workload.mixed(a.store, "a", 3)
    workload.mixed(b.store, "b", 3)
    await a.start()
    await b.start()
    await asyncio.sleep(3)
    assert b.node_id not in a.store.read_sync(highest)
    assert a.node_id not in b.store.read_sync(highest)


async def test_wrong_key_at_the_paired_address_is_refused(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b, impostor = nodes("a"), nodes("b"), nodes("impostor")
    a.pair(b, address=impostor.address)  # b's id, but the impostor answers there
    impostor.pair(a)
    workload.mixed(a.store, "a", 3)
    await a.start()
    await impostor.start()
    await asyncio.sleep(3)
    assert a.node_id not in impostor.store.read_sync(highest)
    assert a.service is not None
    assert "wrong-key" in a.service.links[b.node_id].last_error


async def test_peer_behind_a_relay_connects_from_another_address(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = nodes("a"), nodes("b")
    relay = await UdpRelay(("127.0.0.1", a.port)).start()
    b.pair(a, address=relay.address)  # b reaches a only through the relay
    a.pair(b, address="")  # a cannot reach b: b dials
    workload.mixed(a.store, "a", 5)
    workload.mixed(b.store, "b", 5)
    try:
        await a.start()
        await b.start(port=0)
        await wait_converged([a, b])
        assert relay.forwarded > 0
    finally:
        relay.close()


async def test_partition_then_heal_loses_nothing(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = nodes("a"), nodes("b")
    relay = await UdpRelay(("127.0.0.1", b.port)).start()
    a.pair(b, address=relay.address)
    b.pair(a, address="")
    try:
        await a.start()
        await b.start(port=b.port)
        workload.mixed(a.store, "a", 2)
        await wait_converged([a, b])
        relay.drop_all = True  # the link between the sites goes down; both keep working
        workload.mixed(a.store, "a2", 2000)
        workload.mixed(b.store, "b2", 2000)
        await asyncio.sleep(2)
        assert a.store.read_sync(highest) != b.store.read_sync(highest)
        relay.drop_all = False
        seconds = await wait_converged([a, b], timeout=30)
        assert seconds < 30
    finally:
        relay.close()


async def test_progress_through_loss_and_delay(nodes) -> None:  # type: ignore[no-untyped-def]
    """20 % of datagrams lost each way and 200 ms added each way: batches keep landing (slowly:
    loss-based congestion control keeps a small window), and once the link is clean again the
    rest arrives at once."""
    a, b = nodes("a"), nodes("b")
    relay = await UdpRelay(("127.0.0.1", b.port), loss=0.2, delay_s=0.2).start()
    a.pair(b, address=relay.address)
    b.pair(a, address="")
    workload.mixed(a.store, "a", 200)
    try:
        await a.start(idle_timeout_s=30.0, connect_timeout_s=10.0, batch_events=20)
        await b.start(idle_timeout_s=30.0)
        seen: list[int] = []
        for _ in range(60):
            await asyncio.sleep(1)
            held = b.store.read_sync(highest).get(a.node_id, 0)
            if not seen or held > seen[-1]:
                seen.append(held)
            if len(seen) >= 4:
                break
        assert len(seen) >= 4, f"no steady progress through the lossy link: {seen}"
        relay.loss, relay.delay_s = 0.0, 0.0
        await wait_converged([a, b], timeout=60)
    finally:
        relay.close()


async def test_replayed_handshake_is_refused(nodes) -> None:  # type: ignore[no-untyped-def]
    """A recorded proof from one connection does not open another: the nonce differs."""
    from aioquic.asyncio import connect

    from appliance.sync import wire

    a, b = nodes("a"), nodes("b")
    pair_all([a, b])
    workload.mixed(a.store, "a", 2)
    await a.start()
    service_b = await b.start(port=0)
    client_config = service_b._quic_config(client=True)
    recorded: list[wire.Frame] = []
    original = wire.encode

    def recording(frame: wire.Frame) -> bytes:
        recorded.append(frame)
        return original(frame)

    wire.encode = recording  # type: ignore[assignment]
    try:
        await wait_converged([a, b])
    finally:
        wire.encode = original  # type: ignore[assignment]
    hello = next(f for f in recorded if isinstance(f, wire.Hello))
    proof = next(f for f in recorded if isinstance(f, wire.Proof))
    await b.stop()
    before = a.store.read_sync(highest)
    async with connect("127.0.0.1", a.port, configuration=client_config) as protocol:
        reader, writer = await protocol.create_stream()
        writer.write(wire.encode(hello))
        buffer = wire.FrameBuffer()
        frames: list[wire.AnyFrame] = []
        while len(frames) < 1:
            frames += buffer.feed(await reader.read(65536))
        assert isinstance(frames[0], wire.Challenge)
        writer.write(wire.encode(proof))
        while len(frames) < 2:
            data = await asyncio.wait_for(reader.read(65536), 5)
            if not data:
                break
            frames += buffer.feed(data)
    assert isinstance(frames[-1], wire.Refused) and frames[-1].reason == "bad-proof"
    assert a.service is not None and a.service.refused["bad-proof"] == 1
    assert a.store.read_sync(highest) == before


async def test_status_reports_backlog_and_connection(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = nodes("a"), nodes("b")
    pair_all([a, b])
    workload.mixed(a.store, "a", 50)
    service = await a.start()
    await asyncio.sleep(1.5)
    offline = service.last_status["peers"][0]
    assert offline["connected"] is False and offline["backlog"] is None  # b never said what it holds
    await b.start()
    await wait_converged([a, b])
    await asyncio.sleep(1.5)
    online = service.last_status["peers"][0]
    assert online["connected"] is True
    assert online["backlog"] == 0 and online["events_out"] >= 100
    assert digest(a.store) == digest(b.store)
