"""A node's replication alone, as a process the SIGKILL tests can kill: ``python -m
tests.sync.sync_process CONFIG``. It runs exactly what ``appliance serve`` runs for sync (the
store and the SyncService from the node's config), without the models, so it restarts in a
fraction of a second."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from appliance.commands._context import read_config
from appliance.node import NodeIdentity
from appliance.store import Store
from appliance.sync import SyncService


async def main(config_path: Path) -> None:
    config = read_config(config_path)
    identity = NodeIdentity.load(config.data_dir)
    store = Store.from_config(config, identity.node_id)
    service = SyncService(store, identity, config.sync, name=config.node.name, data_dir=config.data_dir)
    await service.start()
    print("sync running", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await service.stop()
    store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
