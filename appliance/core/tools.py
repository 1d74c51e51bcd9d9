"""Tools the model may call: a name, a JSON schema of arguments, and an async handler."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

ToolHandler = Callable[[dict[str, Any]], Awaitable[str]]


class Tool(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    parameters: dict[str, Any]
    handler: ToolHandler

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


async def call_tool(tools: dict[str, Tool], name: str, arguments: str) -> tuple[str, str]:
    """(result, error) of one tool call; never raises, so a bad call cannot break a turn."""
    tool = tools.get(name)
    if tool is None:
        return "", f"unknown tool {name!r}"
    try:
        args = json.loads(arguments or "{}")
        if not isinstance(args, dict):
            return "", "arguments must be a JSON object"
        return await tool.handler(args), ""
    except json.JSONDecodeError as exc:
        return "", f"arguments are not JSON: {exc.msg}"
    except Exception as exc:
        return "", f"{type(exc).__name__}: {exc}"
