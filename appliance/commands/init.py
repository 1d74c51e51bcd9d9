"""``appliance init DIR``: config, database, node identity and an admin account."""

from __future__ import annotations

import argparse
import secrets
from importlib import resources
from pathlib import Path

from appliance.commands._context import read_config
from appliance.core import events as ev
from appliance.core.errors import ConfigError, Conflict
from appliance.core.tokens import hash_password, new_id
from appliance.desk.agents import STARTER_CANNED, canned_setting
from appliance.node import NodeIdentity
from appliance.store import Store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("init", help="create a node: config, database, identity, admin account")
    parser.add_argument("dir", type=Path, help="directory for config.toml and the node's data")
    parser.add_argument("--name", default="node-1", help="node name (default: node-1)")
    parser.add_argument("--admin", default="admin", help="admin account name (default: admin)")
    parser.add_argument("--port", type=int, default=None, help="HTTP port written to the config")
    parser.add_argument("--sync-port", type=int, default=None,
                        help="UDP port sync listens on, written to the config (default 7443; 0: don't listen)")
    parser.set_defaults(run=run)


def config_template() -> str:
    return resources.files("appliance").joinpath("config.example.toml").read_text(encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    config_file = directory / "config.toml"
    if config_file.exists():
        raise Conflict(f"{config_file}: already exists; refusing to overwrite an initialised node")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot create directory ({exc.strerror})") from None
    text = config_template().replace('name = "node-1"', f'name = "{_toml_string(args.name)}"', 1)
    if args.port is not None:
        text = text.replace("port = 8080", f"port = {args.port}", 1)
    if args.sync_port is not None:
        text = text.replace("port = 7443", f"port = {args.sync_port}", 1)
    config_file.write_text(text, encoding="utf-8")
    config = read_config(config_file)
    identity = NodeIdentity.create(config.data_dir, config.node.name)
    password = secrets.token_urlsafe(12)
    store = Store.from_config(config, identity.node_id)
    try:
        store.append_sync(
            ev.UserUpserted(user_id=new_id("usr"), name=args.admin, role="admin",
                            password_hash=hash_password(password), capacity=config.desk.default_capacity),
            canned_setting(STARTER_CANNED),
            ev.AuditRecorded(actor="cli", action="node.init", target=identity.node_id, ip="local",
                             after=f"admin {args.admin}"),
        )
    finally:
        store.close()
    print(f"initialised node {config.node.name} ({identity.node_id[:16]}…) in {directory}")
    print(f"config:   {config_file}")
    print(f"database: {config.resolve(config.store.file)}")
    print(f"admin account: {args.admin}  password: {password}  (shown once)")
    print(f"sync:     udp port {config.sync.port or '(off)'}; pair with `appliance node id` and `appliance pair add`")
    print(f"next: appliance --config {config_file} serve")
    print(f"then: sign in at http://{config.server.host}:{config.server.port}/console as {args.admin};"
          f" visitors chat at /chat")
    return 0


def _toml_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
