"""Order, duplication, clock skew and restores from backup: every node ends in the same state."""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
from pathlib import Path

from appliance.core import events as ev
from appliance.core.hlc import HybridClock
from appliance.store import Store
from appliance.store.log import EPOCH_BITS, events_after, highest, marks
from appliance.sync.session import receive
from tests.sync import workload
from tests.sync.helpers import digest, make_node, pair_all, table_digests, wait_converged


def log_of(store: Store) -> list[ev.Event]:
    def work(conn) -> list[ev.Event]:  # type: ignore[no-untyped-def]
        return [e for stream in marks(conn) for e in events_after(conn, stream, 0, 1_000_000)]

    return store.read_sync(work)


def exchange(source: Store, target: Store) -> None:
    events = log_of(source)
    target.write_sync(lambda txn: receive(txn, events, source.origin))


def test_any_order_and_duplication_of_the_same_events_gives_the_same_state(tmp_path: Path) -> None:
    """Three sites working on shared conversations; their events delivered to fresh nodes in
    random interleavings (each origin in its own order, as the protocol ships them), in random
    batches, some twice: every node ends with the same digest of every replicated table."""
    a, b, c = (make_node(tmp_path, n) for n in "abc")
    try:
        shared = [workload.conversation(a.store, f"question {i} 周末营业吗", replies=1) for i in range(6)]
        workload.mixed(a.store, "a", 4)
        exchange(a.store, b.store)
        exchange(a.store, c.store)
        for i, cid in enumerate(shared):  # b and c take over and answer a's conversations
            workload.hand_to(b.store if i % 2 else c.store, cid, f"agent{i}")
            workload.conversation(b.store if i % 2 else c.store, f"reply {i}", replies=0, conversation_id=cid)
        c.store.append_sync(ev.ConversationClosed(conversation_id=shared[0]))
        b.store.append_sync(ev.ConversationReopened(conversation_id=shared[0], owner="bot"))
        workload.setting(b.store, "greeting.a", "from b")  # b and c both change a's setting
        workload.setting(c.store, "greeting.a", "from c")
        workload.mixed(b.store, "b", 3)
        workload.mixed(c.store, "c", 3)
        by_origin: dict[str, list[ev.Event]] = {}
        for store in (a.store, b.store, c.store):
            for event in log_of(store):
                by_origin.setdefault(event.origin, [])
                if event not in by_origin[event.origin]:
                    by_origin[event.origin].append(event)
        digests: dict[str, dict[str, str]] = {}
        for seed in range(6):
            rng = random.Random(seed)
            queues = {o: list(es) for o, es in by_origin.items()}
            stream: list[ev.Event] = []
            while any(queues.values()):
                origin = rng.choice([o for o, q in queues.items() if q])
                take = rng.randint(1, 5)
                chunk, queues[origin] = queues[origin][:take], queues[origin][take:]
                stream += chunk
                if rng.random() < 0.3:
                    stream += chunk  # delivered again (two peers, a resent batch)
            fresh = Store.open(tmp_path / f"fresh{seed}" / "appliance.db", f"fresh-{seed}")
            try:
                while stream:
                    size = rng.randint(1, 40)
                    batch, stream = stream[:size], stream[size:]
                    fresh.write_sync(lambda txn, batch=batch: receive(txn, batch, "test"))
                digests[digest(fresh)] = table_digests(fresh)
            finally:
                fresh.close()
        differing = {t for d in digests.values() for t, h in d.items() if h != next(iter(digests.values()))[t]}
        assert len(digests) == 1, f"tables that differ: {differing}"
    finally:
        for n in (a, b, c):
            n.store.close()


async def test_clock_skew_both_sites_pick_the_same_winner(tmp_path: Path) -> None:
    """One site's clock runs 5 minutes ahead, the other's 5 minutes behind; both change the same
    setting while apart. After they meet both hold the same value (the later hlc), the loser is
    kept for review, and the next change on the slow site still wins: its clock has moved past
    every timestamp it has seen."""
    import time

    a, b = make_node(tmp_path, "a"), make_node(tmp_path, "b")
    a.store.clock = HybridClock(now_ms=lambda: time.time_ns() // 1_000_000 + 300_000)
    b.store.clock = HybridClock(now_ms=lambda: time.time_ns() // 1_000_000 - 300_000)
    a.store._writer._clock = a.store.clock
    b.store._writer._clock = b.store.clock
    pair_all([a, b])
    try:
        workload.setting(b.store, "hours", "b: 9-17")  # later in real time, but b's clock is behind
        workload.setting(a.store, "hours", "a: 8-16")
        await a.start()
        await b.start()
        await wait_converged([a, b])
        values = [n.store.read_sync(lambda c: c.execute("SELECT value FROM settings WHERE key = 'hours'").fetchone()[0])
                  for n in (a, b)]
        assert values == [b"a: 8-16", b"a: 8-16"]
        losers = [n.store.read_sync(lambda c: c.execute("SELECT count(*) FROM lww_losers WHERE key = 'hours'")
                                    .fetchone()[0]) for n in (a, b)]
        assert sum(losers) >= 1
        workload.setting(b.store, "hours", "b: 10-18")
        await wait_converged([a, b])
        values = [n.store.read_sync(lambda c: c.execute("SELECT value FROM settings WHERE key = 'hours'").fetchone()[0])
                  for n in (a, b)]
        assert values == [b"b: 10-18", b"b: 10-18"]
    finally:
        for n in (a, b):
            await n.stop()
            n.store.close()


async def test_node_restored_from_an_old_backup_gets_its_events_back(tmp_path: Path) -> None:
    """a's database is replaced by an older copy. It notices at start (its audit head outside
    the database names a newer record), starts a new epoch so new events never reuse the lost
    numbers, and its peer sends the lost events back: nothing is lost, nothing collides."""
    a, b = make_node(tmp_path, "a"), make_node(tmp_path, "b")
    pair_all([a, b])
    try:
        workload.mixed(a.store, "before", 5)
        await a.start()
        await b.start()
        await wait_converged([a, b])
        await a.stop()
        backup = tmp_path / "backup.db"
        with sqlite3.connect(a.directory / "appliance.db") as source, sqlite3.connect(backup) as copy:
            source.backup(copy)
        await a.start()
        workload.mixed(a.store, "after-backup", 5)  # only b will still have these
        await wait_converged([a, b])
        lost = a.store.read_sync(highest)[a.node_id]
        await a.stop()
        a.store.close()
        for suffix in ("", "-wal", "-shm"):
            (a.directory / f"appliance.db{suffix}").unlink(missing_ok=True)
        shutil.copy(backup, a.directory / "appliance.db")
        a.store = Store.open(a.directory / "appliance.db", a.node_id)
        assert a.store.read_sync(highest)[a.node_id] < lost
        workload.mixed(a.store, "after-restore", 2)  # written before the peer is reachable again
        newest = a.store.read_sync(highest)[a.node_id]
        assert newest >> EPOCH_BITS == 1, "new events after the restore start a new epoch"
        await a.start()
        await wait_converged([a, b])
        texts = a.store.read_sync(lambda c: {r[0] for r in c.execute("SELECT text FROM messages")})
        assert any(t.startswith("after-backup") for t in texts)
        assert any(t.startswith("after-restore") for t in texts)
        collisions = [n.store.read_sync(lambda c: c.execute("SELECT count(*) FROM sync_collisions").fetchone()[0])
                      for n in (a, b)]
        assert collisions == [0, 0]
    finally:
        for n in (a, b):
            await n.stop()
            n.store.close()


async def test_restore_without_an_audit_trace_is_noticed_by_the_peer(tmp_path: Path) -> None:
    """With the audit head gone too, the peer's marks tell a that it lost events: it starts a new
    epoch on the spot and takes its lost events back."""
    a, b = make_node(tmp_path, "a"), make_node(tmp_path, "b")
    pair_all([a, b])
    try:
        await a.start()
        await b.start()
        backup = tmp_path / "backup.db"
        await wait_converged([a, b])
        with sqlite3.connect(a.directory / "appliance.db") as source, sqlite3.connect(backup) as copy:
            source.backup(copy)
        workload.mixed(a.store, "lost", 3)
        await wait_converged([a, b])
        await a.stop()
        a.store.close()
        for name in ("appliance.db", "appliance.db-wal", "appliance.db-shm", "audit.head"):
            (a.directory / name).unlink(missing_ok=True)
        shutil.copy(backup, a.directory / "appliance.db")
        a.store = Store.open(a.directory / "appliance.db", a.node_id)
        service = await a.start()
        await wait_converged([a, b])
        await asyncio.sleep(0.2)
        assert "restored from a backup" in service.links[b.node_id].notice
        workload.mixed(a.store, "new", 1)
        assert a.store.read_sync(highest)[a.node_id] >> EPOCH_BITS == 1
        await wait_converged([a, b])
    finally:
        for n in (a, b):
            await n.stop()
            n.store.close()
