"""What most commands need: the decoded config, the node identity, an open store."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from appliance.cli import config_path
from appliance.core.config import Config, decode_config
from appliance.core.errors import ConfigError
from appliance.node import NodeIdentity
from appliance.store import Store


def read_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (create one with `appliance init DIR`)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not valid UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    return decode_config(text, str(path))


def load_config(args: argparse.Namespace) -> Config:
    return read_config(config_path(args))


@contextmanager
def node(args: argparse.Namespace) -> Iterator[tuple[Config, NodeIdentity, Store]]:
    """Config, identity and an open store for a command that works on the database directly."""
    config = load_config(args)
    identity = NodeIdentity.load(config.data_dir)
    store = Store.from_config(config, identity.node_id)
    try:
        yield config, identity, store
    finally:
        store.close()
