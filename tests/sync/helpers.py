"""Nodes, a lossy UDP relay and table digests for the replication tests."""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from appliance.core.config import SyncConfig
from appliance.node import NodeIdentity
from appliance.store import Store
from appliance.store.log import marks
from appliance.sync import SyncService
from appliance.sync.peers import add_peer

# Every table whose rows replicate (the event log and what it materializes), with the columns
# that must agree; node-local tables (peers, sessions, caches, review tables) are left out.
REPLICATED = {
    "events": "origin, seq, hlc, type, payload",
    "conversations": "*",
    "messages": "*",
    "traces": "*",
    "users": "*",
    "api_tokens": "*",
    "settings": "*",
    "audit": "*",
    "feedback": "*",
    "tickets": "*",
    "attachments": "*",
    "attachment_visitors": "*",
    "erasures": "*",
    "kb_documents": "*",
    "kb_chunks": "id, document_id, ordinal, section, text, is_qa, answer, embedding",
}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def table_digests(store: Store) -> dict[str, str]:
    def work(conn) -> dict[str, str]:  # type: ignore[no-untyped-def]
        found = {}
        for table, columns in REPLICATED.items():
            rows = sorted(repr(tuple(r)) for r in conn.execute(f"SELECT {columns} FROM {table}"))
            found[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        return found

    return store.read_sync(work)


def digest(store: Store) -> str:
    """One SHA-256 over every replicated table's rows (sorted): equal on nodes that converged."""
    return hashlib.sha256(repr(sorted(table_digests(store).items())).encode()).hexdigest()


@dataclass
class SyncNode:
    name: str
    directory: Path
    identity: NodeIdentity
    store: Store
    port: int
    service: SyncService | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def node_id(self) -> str:
        return self.identity.node_id

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pair(self, other: SyncNode, address: str | None = None) -> None:
        self.store.write_sync(add_peer(other.node_id, other.address if address is None else address, other.name,
                                       own_id=self.node_id, actor="test"))

    async def start(self, **config: object) -> SyncService:
        settings = {"host": "127.0.0.1", "port": self.port, "anti_entropy_s": 1.0, "idle_timeout_s": 5.0,
                    "connect_timeout_s": 1.0, "max_backoff_s": 1.0, **config}
        self.service = SyncService(self.store, self.identity, SyncConfig(**settings),  # type: ignore[arg-type]
                                   name=self.name, data_dir=self.directory)
        await self.service.start()
        return self.service

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
            self.service = None

    def reopen(self) -> None:
        self.store.close()
        self.store = Store.open(self.directory / "appliance.db", self.node_id)


def make_node(root: Path, name: str) -> SyncNode:
    directory = root / name
    identity = NodeIdentity.create(directory, name)
    store = Store.open(directory / "appliance.db", identity.node_id)
    return SyncNode(name, directory, identity, store, free_udp_port())


def pair_all(nodes: list[SyncNode]) -> None:
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.pair(b)


async def wait_converged(nodes: list[SyncNode], timeout: float = 20.0) -> float:
    """Seconds until every node holds the same marks and the same digest; fails after ``timeout``."""
    started = time.monotonic()
    while True:
        found = [n.store.read_sync(marks) for n in nodes]
        if all(f == found[0] for f in found):
            digests = {digest(n.store) for n in nodes}
            if len(digests) == 1:
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            held = [f"{n.name}: " + ", ".join(f"{o[:6]}/{e}={s}" for (o, e), s in sorted(f.items()))
                    for n, f in zip(nodes, found, strict=True)]
            tables = [table_digests(n.store) for n in nodes]
            differ = sorted({t for d in tables for t in d if d[t] != tables[0][t]})
            raise AssertionError(f"not converged after {timeout}s: " + "; ".join(held) + f"; tables differ: {differ}")
        await asyncio.sleep(0.1)


class UdpRelay:
    """A UDP relay in front of ``target``: clients talk to ``port``; the relay talks to the target
    from its own sockets (so the target sees another address, as behind NAT). ``drop_all`` cuts
    the link (a partition); ``loss`` drops that share of datagrams each way; ``delay_s`` holds
    each one back."""

    def __init__(self, target: tuple[str, int], *, loss: float = 0.0, delay_s: float = 0.0, seed: int = 7) -> None:
        self.target = target
        self.loss = loss
        self.delay_s = delay_s
        self.drop_all = False
        self.port = 0
        self.forwarded = 0
        self._random = random.Random(seed)
        self._front: asyncio.DatagramTransport | None = None
        self._backs: dict[tuple[str, int], asyncio.DatagramTransport] = {}

    async def start(self) -> UdpRelay:
        loop = asyncio.get_running_loop()
        self._front, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_client), local_addr=("127.0.0.1", 0))
        self.port = self._front.get_extra_info("sockname")[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _passes(self) -> bool:
        return not self.drop_all and self._random.random() >= self.loss

    def _later(self, send) -> None:  # type: ignore[no-untyped-def]
        self.forwarded += 1
        if self.delay_s:
            asyncio.get_running_loop().call_later(self.delay_s, send)
        else:
            send()

    def _from_client(self, data: bytes, client: tuple[str, int]) -> None:
        if not self._passes():
            return
        back = self._backs.get(client)
        if back is None:
            asyncio.get_running_loop().create_task(self._open_back(client, data))
            return
        self._later(lambda: back.sendto(data))

    async def _open_back(self, client: tuple[str, int], first: bytes) -> None:
        loop = asyncio.get_running_loop()
        if client not in self._backs:
            back, _ = await loop.create_datagram_endpoint(
                lambda: _Side(lambda data, _addr: self._from_target(data, client)), remote_addr=self.target)
            self._backs[client] = back
        back = self._backs[client]
        self._later(lambda: back.sendto(first))

    def _from_target(self, data: bytes, client: tuple[str, int]) -> None:
        if self._passes() and self._front is not None:
            front = self._front
            self._later(lambda: front.sendto(data, client))

    def close(self) -> None:
        for transport in [self._front, *self._backs.values()]:
            if transport is not None:
                transport.close()


class _Side(asyncio.DatagramProtocol):
    def __init__(self, received) -> None:  # type: ignore[no-untyped-def]
        self._received = received

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._received(data, addr)
