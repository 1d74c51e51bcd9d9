"""The configuration tree: frozen msgspec Structs decoded once from TOML.

Every field has a default, so an empty file is a valid config; ``config.example.toml``
documents every key (a test keeps the two in step). Relative paths are resolved against the
directory of the config file by :func:`Config.resolve`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Literal

import msgspec

from appliance.core.errors import ConfigError
from appliance.core.rules import Rule

log = logging.getLogger(__name__)


class NodeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str = "node-1"
    data_dir: str = "."


class ServerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    max_text_chars: int = 4000
    max_body_bytes: int = 1_048_576
    max_image_bytes: int = 5_242_880
    max_document_bytes: int = 20_971_520
    max_image_pixels: int = 25_000_000
    max_image_side: int = 2048
    max_ws_message_bytes: int = 65_536
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    forwarded_allow_ips: str = ""
    widget_frame_ancestors: list[str] = msgspec.field(default_factory=lambda: ["*"])
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def __post_init__(self) -> None:
        for source in self.widget_frame_ancestors:
            if not source or any(c in source for c in " ;,'\"\n"):
                raise ValueError(f"widget_frame_ancestors: {source!r} is not one CSP source such as"
                                 " https://www.example.com")


class SecurityConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    visitor_token_ttl_s: int = 30 * 24 * 3600
    session_ttl_s: int = 12 * 3600
    login_max_failures: int = 5
    lockout_s: int = 300
    login_per_ip_per_minute: int = 20
    cookie_secure: bool = False


class LimitsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Each field ``<action>_per_<key>_per_<minute|hour>``; 0 turns that limit off."""

    chat_per_visitor_per_minute: int = 20
    chat_per_conversation_per_minute: int = 20
    chat_per_ip_per_minute: int = 120
    new_conversations_per_ip_per_hour: int = 60
    uploads_per_visitor_per_hour: int = 30
    uploads_per_ip_per_hour: int = 120
    tickets_per_ip_per_hour: int = 10
    ws_frames_per_socket_per_minute: int = 300


class PrivacyConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    retention_days: int = 0
    redact_pii: bool = False


class DeskConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    timezone: str = "UTC"
    hours: list[str] = msgspec.field(default_factory=list)
    holidays: list[str] = msgspec.field(default_factory=list)
    default_capacity: int = 3
    away_after_s: int = 300
    offline_grace_s: int = 15
    handle_time_s: int = 300


class ModelsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # The built-in chat model when chat_path is empty: "standard" (Qwen2.5-Coder-1.5B) or "small" (SmolLM2-135M).
    builtin_chat: Literal["standard", "small"] = "standard"
    chat_path: str = ""
    embedding_path: str = ""
    chat_threads: int = 2
    chat_preload: bool = False
    embedding_threads: int = 1
    chat_context: int = 2048
    reply_max_tokens: int = 160
    temperature: float = 0.2


class StoreConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    file: str = "appliance.db"
    read_connections: int = 4
    group_commit_max: int = 512
    synchronous: Literal["NORMAL", "FULL"] = "FULL"


class CacheConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    l1_entries: int = 10_000
    redis_url: str = ""
    ttl_s: int = 24 * 3600


class EngineConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    turn_budget_s: float = 8.0
    low_confidence_handoffs: int = 2
    redact_pii: bool = False
    local_min_support: float = 0.6


class KnowledgeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    chunk_chars: int = 800
    chunk_overlap_chars: int = 120
    top_k: int = 4
    qa_direct_threshold: float = 0.86
    min_relevance: float = 0.35
    # A hit is also relevant when it holds at least this share of the query's content terms.
    min_term_coverage: float = 0.5
    # Candidates taken from each index (BM25, vector) before fusion, and the weight of BM25 in it
    # (the vector side gets the rest).
    candidates: int = 40
    lexical_weight: float = 0.35
    # Texts per embedding call when ingesting.
    embed_batch: int = 32


class IntentConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str
    examples: list[str] = msgspec.field(default_factory=list)
    action: Literal["none", "handoff", "answer", "tool"] = "none"
    answer: str = ""
    answers: dict[str, str] = msgspec.field(default_factory=dict)
    tool: str = ""


class IntentsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    examples_csv: str = ""
    intents: list[IntentConfig] = msgspec.field(default_factory=list)


class ToolConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str
    description: str
    url: str
    method: Literal["POST", "GET"] = "POST"
    parameters: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object", "properties": {}})
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeout_s: float = 5.0


class SyncConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    host: str = "0.0.0.0"
    port: int = 7443
    anti_entropy_s: float = 5.0
    batch_events: int = 2000
    batch_bytes: int = 4_194_304
    window_batches: int = 4
    flow_window_bytes: int = 16_777_216
    idle_timeout_s: float = 15.0
    connect_timeout_s: float = 5.0
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"port: {self.port} is not a UDP port (0 turns listening off)")
        if self.batch_events < 1 or self.window_batches < 1 or self.batch_bytes < 1024:
            raise ValueError("batch_events and window_batches must be at least 1, batch_bytes at least 1024")
        if self.anti_entropy_s <= 0 or self.idle_timeout_s <= self.anti_entropy_s:
            raise ValueError("anti_entropy_s must be positive and shorter than idle_timeout_s")


class WebhooksConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    timeout_s: float = 10.0
    retry_base_s: float = 10.0
    retry_max_s: float = 3600.0
    give_up_after_s: float = 86400.0
    poll_s: float = 0.5
    batch: int = 32

    def __post_init__(self) -> None:
        if min(self.timeout_s, self.retry_base_s, self.poll_s) <= 0 or self.retry_max_s < self.retry_base_s:
            raise ValueError("timeout_s, retry_base_s and poll_s must be positive, retry_max_s at least retry_base_s")
        if self.batch < 1:
            raise ValueError("batch must be at least 1")


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    node: NodeConfig = NodeConfig()
    server: ServerConfig = ServerConfig()
    security: SecurityConfig = SecurityConfig()
    desk: DeskConfig = DeskConfig()
    limits: LimitsConfig = LimitsConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    models: ModelsConfig = ModelsConfig()
    store: StoreConfig = StoreConfig()
    cache: CacheConfig = CacheConfig()
    engine: EngineConfig = EngineConfig()
    knowledge: KnowledgeConfig = KnowledgeConfig()
    intents: IntentsConfig = IntentsConfig()
    sync: SyncConfig = SyncConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    rules: list[Rule] = msgspec.field(default_factory=list)
    tools: list[ToolConfig] = msgspec.field(default_factory=list)
    # Directory of the config file; set by decode_config, not read from TOML.
    base_dir: str = ""

    def resolve(self, path: str) -> Path:
        """A path from the config, absolute, relative paths taken from the data directory."""
        data_dir = Path(self.base_dir or ".") / self.node.data_dir
        return (data_dir / path).resolve()

    @property
    def data_dir(self) -> Path:
        return (Path(self.base_dir or ".") / self.node.data_dir).resolve()


_PATH_RE = re.compile(r"at `\$\.?([^`]*)`")

# Keys earlier versions wrote into config.toml that no longer mean anything: ignored with a
# warning, so a node upgraded in place still starts. (section, key): what replaced it.
RETIRED_KEYS: dict[tuple[str, str], str] = {
    ("knowledge", "rrf_k"): "knowledge.lexical_weight",
    ("knowledge", "cjk_vector_weight"): "nothing: vectors are trusted in every language",
    ("intents", "oos_threshold"): "thresholds learned from held-out examples",
    ("intents", "min_similarity"): "thresholds learned from held-out examples",
}


def decode_config(text: str, source: str) -> Config:
    """Decode TOML text into a Config; errors name the file and the key."""
    try:
        raw = msgspec.toml.decode(text.encode())
        if "base_dir" in raw:
            raise ConfigError(f"{source}: unknown key 'base_dir'")
        for (section, key), replacement in RETIRED_KEYS.items():
            if isinstance(raw.get(section), dict) and raw[section].pop(key, None) is not None:
                log.warning("%s: key '%s.%s' is no longer used (replaced by %s); ignored", source, section, key,
                            replacement)
        config = msgspec.convert(raw, type=Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(str(exc))}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    base_dir = str(Path(source).resolve().parent)
    return msgspec.structs.replace(config, base_dir=base_dir)


def _describe(message: str) -> str:
    """Turn msgspec's ``... - at `$.server.port``` into ``key 'server.port': ...``."""
    match = _PATH_RE.search(message)
    if message.startswith("Object contains unknown field"):
        field = message.split("`")[1]
        where = match.group(1) if match else ""
        key = f"{where}.{field}" if where else field
        return f"unknown key '{key}'"
    if match:
        return f"key '{match.group(1)}': {message[: match.start()].rstrip(' -')}"
    return message
