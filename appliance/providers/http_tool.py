"""Tools declared in the config: an internal system's HTTP endpoint the LLM may call."""

from __future__ import annotations

from typing import Any

import aiohttp

from appliance.core.config import ToolConfig
from appliance.core.tools import Tool

_MAX_RESULT_CHARS = 4000


def http_tool(config: ToolConfig, session: aiohttp.ClientSession) -> Tool:
    timeout = aiohttp.ClientTimeout(total=config.timeout_s)

    async def call(arguments: dict[str, Any]) -> str:
        if config.method == "GET":
            params = {k: str(v) for k, v in arguments.items()}
            request = session.get(config.url, params=params, headers=config.headers, timeout=timeout)
        else:
            request = session.post(config.url, json=arguments, headers=config.headers, timeout=timeout)
        async with request as response:
            body = await response.text()
            if response.status >= 400:
                raise RuntimeError(f"{config.name}: HTTP {response.status}: {body[:200]}")
            return body[:_MAX_RESULT_CHARS]

    return Tool(name=config.name, description=config.description, parameters=config.parameters, handler=call)
