"""The asyncio shell of replication: a QUIC listener, one dialer per paired peer, the status.

Each node listens on its ``[sync]`` UDP port and dials every paired peer that has an address;
whichever connection authenticates first carries the session. When both directions connect at
once, both nodes keep the one dialed by the lower node id, so exactly one session per pair
survives. The client checks that the server's TLS certificate is the paired node's before it
proves its own identity (``identity.py``); the server refuses an unpaired, wrong-key or replayed
client before any event moves. Dialers reconnect with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import QuicConfiguration
from cryptography.hazmat.primitives import serialization

from appliance.core import events as ev
from appliance.core.config import SyncConfig
from appliance.node import NodeIdentity
from appliance.store import Store
from appliance.sync import wire
from appliance.sync.identity import certificate_der, certificate_id, sign_proof, verify_proof
from appliance.sync.peers import Peer, list_peers, parse_address
from appliance.sync.session import PeerLink, Session, SessionClosed
from appliance.sync.status import StatusFile, snapshot

log = logging.getLogger("appliance.sync")
HANDSHAKE_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0


class Refusal(Exception):
    """The handshake failed; ``reason`` is what the status and the counters say."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SyncService:
    def __init__(self, store: Store, identity: NodeIdentity, config: SyncConfig, *, name: str,
                 data_dir: Path, on_applied: Callable[[list[ev.Event]], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.identity = identity
        self.node_id = identity.node_id
        self.name = name
        self.config = config
        self.on_applied = on_applied  # shown what replication applied (the runtime's live desk)
        self.links: dict[str, PeerLink] = {}
        self.refused: Counter[str] = Counter()
        self.rate_base: dict[str, tuple[int, tuple[int, ...]]] = {}  # per peer: when, and the counters then
        self.last_status: dict[str, Any] = {}
        self.listening = ""
        self.listen_error = ""
        self.status_file = StatusFile(data_dir)
        self._certificate = certificate_der(identity.cert_path)
        self._server: QuicServer | None = None
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting: set[asyncio.Task[None]] = set()

    def _quic_config(self, *, client: bool) -> QuicConfiguration:
        config = QuicConfiguration(
            is_client=client, alpn_protocols=[wire.ALPN], idle_timeout=self.config.idle_timeout_s,
            max_data=self.config.flow_window_bytes, max_stream_data=self.config.flow_window_bytes,
        )
        if client:
            config.verify_mode = ssl.CERT_NONE  # self-signed: the certificate's hash is checked instead
            config.server_name = "appliance-sync"
        else:
            config.load_cert_chain(self.identity.cert_path, self.identity.key_path)
        return config

    async def start(self) -> None:
        logging.getLogger("quic").setLevel(max(logging.WARNING, logging.getLogger("quic").getEffectiveLevel()))
        if self.config.port:
            try:
                self._server = await serve(
                    self.config.host, self.config.port, configuration=self._quic_config(client=False),
                    stream_handler=self._on_stream,
                )
                sock = self._server._transport.get_extra_info("sockname") if self._server._transport else None
                port = sock[1] if sock else self.config.port
                self.listening = f"{self.config.host}:{port}"
                log.info("sync listening on udp %s (node %s)", self.listening, self.node_id[:16])
            except OSError as exc:
                self.listen_error = f"cannot listen on udp {self.config.host}:{self.config.port}: {exc.strerror}"
                log.error("sync: %s", self.listen_error)
        await self.reload_peers()
        self._tasks = [asyncio.create_task(self._watch_peers()), asyncio.create_task(self._watch_commits()),
                       asyncio.create_task(self._write_status())]

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._dialers.values(), *self._accepting]
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: a connection that will not close must not hold up the shutdown
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S + 1)
            if pending:
                log.warning("sync: %d tasks still closing at shutdown", len(pending))
        if self._server is not None:
            self._server.close()
        for link in self.links.values():
            link.connected = False
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.status_file.write, await snapshot(self, running=False))

    # -- peers --------------------------------------------------------------------------------

    async def reload_peers(self) -> None:
        peers = {p.node_id: p for p in await self.store.read(list_peers)}
        for node_id, peer in peers.items():
            link = self.links.setdefault(node_id, PeerLink(node_id=node_id))
            link.name = peer.name
            if link.address != peer.address and node_id in self._dialers:
                self._dialers.pop(node_id).cancel()
            link.address = peer.address
            if peer.address and node_id not in self._dialers:
                self._dialers[node_id] = asyncio.create_task(self._dial_forever(peer))
        for node_id in set(self.links) - set(peers):  # unpaired: stop talking to it
            link = self.links.pop(node_id)
            dialer = self._dialers.pop(node_id, None)
            if dialer is not None:
                dialer.cancel()
            if link.session is not None:
                link.session.close()

    async def _watch_peers(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            try:
                await self.reload_peers()
            except Exception:
                log.exception("sync: could not read the paired peers")

    async def _watch_commits(self) -> None:
        """Wake the sessions when this process committed something: live push within ~20 ms.
        Writes of other processes (the CLI) are found by the sessions' own 1-second look."""
        seen = self.store.write_stats[0]
        while True:
            await asyncio.sleep(0.02)
            now = self.store.write_stats[0]
            if now != seen:
                seen = now
                for link in self.links.values():
                    if link.session is not None:
                        link.session.wake()

    async def _write_status(self) -> None:
        while True:
            try:
                self.last_status = await snapshot(self, running=True)
                await asyncio.to_thread(self.status_file.write, self.last_status)
            except Exception:
                log.exception("sync: could not write the status file")
            await asyncio.sleep(1.0)

    # -- sessions -----------------------------------------------------------------------------

    async def _run_session(self, session: Session, protocol: QuicConnectionProtocol, remote: str) -> None:
        link = session.link
        current = link.session
        if current is not None:
            # A second connection with the same peer: the old one is dead if it does not answer
            # a ping (the peer restarted); two live ones (both nodes dialed at once) keep the one
            # the lower node id dialed, on both nodes alike.
            preferred = session.dialer == min(self.node_id, link.node_id) and current.dialer != session.dialer
            if not preferred and await current.alive(self.config.connect_timeout_s):
                raise Refusal("duplicate")
            current.close()
        link.session = session
        session.on_close = protocol.close
        session.ping = protocol.ping
        session.on_applied = self.on_applied
        link.connected, link.remote = True, remote
        link.connected_since_ms = time.time_ns() // 1_000_000
        link.last_error = ""
        log.info("sync: connected with %s (%s) at %s", link.name or link.node_id[:12], link.node_id[:12], remote)
        try:
            await session.run()
        finally:
            if link.session is session:
                link.session = None
                link.connected = False

    def _on_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._accept(reader, writer))
        self._accepting.add(task)
        task.add_done_callback(self._accepting.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        protocol: QuicConnectionProtocol = writer.transport.protocol  # type: ignore[attr-defined]
        remote = _remote_address(protocol)
        handshake = Session(self.store, PeerLink(node_id="?"), reader, writer, dialer="?", config=self.config)
        try:
            session = await asyncio.wait_for(self._server_handshake(handshake, remote), HANDSHAKE_TIMEOUT_S)
            await self._run_session(session, protocol, remote)
        except Refusal as exc:
            if exc.reason == "duplicate":  # both nodes dialed at once: the other connection carries on
                log.info("sync: closed a second connection from %s", remote)
            else:
                self.refused[exc.reason] += 1
                log.warning("sync: refused a connection from %s: %s", remote, exc.reason)
            with contextlib.suppress(Exception):
                handshake.send(wire.Refused(reason=exc.reason))
                await asyncio.sleep(0.05)
        except (TimeoutError, SessionClosed, ConnectionError) as exc:
            log.info("sync: connection from %s ended: %s", remote, exc or type(exc).__name__)
        except Exception:
            log.exception("sync: connection from %s failed", remote)
        finally:
            protocol.close()

    async def _server_handshake(self, handshake: Session, remote: str) -> Session:
        hello = await handshake.next_frame()
        if not isinstance(hello, wire.Hello):
            raise Refusal("protocol")
        nonce = secrets.token_bytes(32)
        handshake.send(wire.Challenge(version=wire.PROTOCOL_VERSION, node_id=self.node_id, nonce=nonce))
        proof = await handshake.next_frame()
        if not isinstance(proof, wire.Proof):
            raise Refusal("protocol")
        client_id = verify_proof(proof.certificate, proof.signature, nonce, hello.nonce, self.node_id)
        if client_id is None:
            raise Refusal("bad-proof")
        if client_id != hello.node_id:
            raise Refusal("wrong-key")
        link = self.links.get(client_id)
        if link is None:
            raise Refusal("not-paired")
        handshake.send(wire.Accepted(name=self.name))
        handshake.link, handshake.dialer = link, client_id
        return handshake

    async def _dial_forever(self, peer: Peer) -> None:
        failures = 0
        while True:
            link = self.links.get(peer.node_id)
            if link is None:
                return
            if link.session is not None:  # the peer dialed us: nothing to do while that lasts
                await asyncio.sleep(1.0)
                continue
            started = time.monotonic()
            try:
                await self._dial(peer, link)
            except asyncio.CancelledError:
                raise
            except Refusal as exc:
                if exc.reason != "duplicate":
                    link.failed(f"refused: {exc.reason}")
                    log.warning("sync: %s refused us: %s", peer.address, exc.reason)
            except (TimeoutError, SessionClosed, ConnectionError, OSError) as exc:
                link.failed(str(exc) or type(exc).__name__)
                log.info("sync: %s: %s", peer.address, link.last_error)
            except Exception as exc:
                link.failed(f"{type(exc).__name__}: {exc}")
                log.exception("sync: session with %s failed", peer.address)
            failures = 0 if time.monotonic() - started > 10 else failures + 1
            delay = min(self.config.max_backoff_s, 0.5 * 2 ** min(failures, 10))
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))

    async def _dial(self, peer: Peer, link: PeerLink) -> None:
        host, port = parse_address(peer.address)
        connecting = connect(host, port, configuration=self._quic_config(client=True))
        try:
            protocol = await asyncio.wait_for(connecting.__aenter__(), self.config.connect_timeout_s)
        except (TimeoutError, ConnectionError) as exc:
            raise ConnectionError(f"no answer from udp {peer.address}") from exc
        try:
            presented = _server_certificate(protocol)
            if presented is None or certificate_id(presented) != peer.node_id:
                raise Refusal("wrong-key")  # not the node we paired with: prove nothing to it
            reader, writer = await protocol.create_stream()
            session = await asyncio.wait_for(self._client_handshake(peer, link, reader, writer), HANDSHAKE_TIMEOUT_S)
            await self._run_session(session, protocol, peer.address)
        finally:
            try:  # aioquic waits for the peer to acknowledge the close: not forever
                await asyncio.wait_for(connecting.__aexit__(None, None, None), CLOSE_TIMEOUT_S)
            except TimeoutError:
                if protocol._transport is not None:
                    protocol._transport.close()

    async def _client_handshake(self, peer: Peer, link: PeerLink, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> Session:
        session = Session(self.store, link, reader, writer, dialer=self.node_id, config=self.config)
        nonce = secrets.token_bytes(32)
        session.send(wire.Hello(version=wire.PROTOCOL_VERSION, node_id=self.node_id, nonce=nonce))
        challenge = await session.next_frame()
        if isinstance(challenge, wire.Refused):
            raise Refusal(challenge.reason)
        if not isinstance(challenge, wire.Challenge) or challenge.node_id != peer.node_id:
            raise Refusal("wrong-key")
        signature = await asyncio.to_thread(sign_proof, self.identity.key_path, challenge.nonce, nonce,
                                            peer.node_id, self.node_id)
        session.send(wire.Proof(certificate=self._certificate, signature=signature))
        answer = await session.next_frame()
        if isinstance(answer, wire.Refused):
            raise Refusal(answer.reason)
        if not isinstance(answer, wire.Accepted):
            raise Refusal("protocol")
        return session


def _server_certificate(protocol: QuicConnectionProtocol) -> bytes | None:
    """The DER certificate the server presented in the TLS handshake (aioquic keeps it on the TLS
    context; there is no public accessor)."""
    cert = getattr(getattr(protocol._quic, "tls", None), "_peer_certificate", None)
    return None if cert is None else cert.public_bytes(serialization.Encoding.DER)


def _remote_address(protocol: QuicConnectionProtocol) -> str:
    paths = getattr(protocol._quic, "_network_paths", None)
    if not paths:
        return "?"
    host, port = paths[0].addr[:2]
    return f"{host.removeprefix('::ffff:')}:{port}"

