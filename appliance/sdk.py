"""Ready-made parts for embedding the engine in your own service (see ``AgentBuilder``)."""

from __future__ import annotations

from pathlib import Path

from appliance.core.routing import ModelSpec
from appliance.local_model.chat import LocalChat
from appliance.local_model.paths import builtin_chat_path
from appliance.local_model.provider import BuiltinChatProvider
from appliance.providers.openai import OpenAIProvider, make_session


def openai_model(
    base_url: str, model: str, *, api_key: str | None = None, name: str = "", vision: bool = False,
    timeout_s: float = 30.0,
) -> OpenAIProvider:
    """An OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, OpenAI, DeepSeek, Qwen...).

    Call it inside a running event loop: it opens a pooled HTTP session.
    """
    spec = ModelSpec(name=name or model.replace("/", "-")[:64], base_url=base_url, model=model, vision=vision,
                     timeout_s=timeout_s)
    return OpenAIProvider(spec, make_session(), api_key, owns_session=True)


def builtin_model(path: Path | None = None, *, threads: int = 2, n_ctx: int = 2048) -> BuiltinChatProvider:
    """The built-in Qwen2.5-Coder-1.5B-Instruct (or any GGUF chat model), on its own worker thread."""
    return BuiltinChatProvider(LocalChat.load(path or builtin_chat_path(), threads=threads, n_ctx=n_ctx))
