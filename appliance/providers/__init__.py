"""Chat providers that speak to upstream LLM endpoints (the I/O side of ``core.ports.ChatProvider``)."""

from appliance.providers.openai import OpenAIProvider, make_session

__all__ = ["OpenAIProvider", "make_session"]
