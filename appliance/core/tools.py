"""Tools the model may call: a name, a JSON schema of arguments, and an async handler.

Only the tools given to the engine (the config's ``[[tools]]``) exist for the model, and a call
runs only if its arguments match the tool's declared schema. A call to anything else, or with
arguments that do not fit, is refused: its handler never runs, the refusal is what the model
is told, and the trace records it (``error`` starts with ``refused:``).

The schema check covers what tool declarations use: ``type`` (one or a list), ``enum``,
``const``, ``properties``, ``required``, ``additionalProperties`` (allowed unless ``false`` or
a schema, as in JSON Schema), ``items``, ``minItems``/``maxItems``, ``minLength``/``maxLength``,
``pattern``, ``minimum``/``maximum``. Other keywords (``description``, ``format``...) are not
enforced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

ToolHandler = Callable[[dict[str, Any]], Awaitable[str]]

REFUSED = "refused: "
MAX_ARGUMENT_CHARS = 16_384


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


async def call_tool(tools: dict[str, Tool], name: str, arguments: str, *, check_schema: bool = True
                    ) -> tuple[str, str]:
    """(result, error) of one tool call; never raises, so a bad call cannot break a turn.

    ``check_schema=False`` is for the engine's own calls (a rule or intent passes the visitor's
    text as ``{"text": ...}``); a model's call is always checked.
    """
    tool = tools.get(name)
    if tool is None:
        allowed = ", ".join(sorted(tools)) or "none"
        return "", f"{REFUSED}{name!r} is not an allowed tool (allowed: {allowed})"
    if len(arguments) > MAX_ARGUMENT_CHARS:
        return "", f"{REFUSED}arguments are {len(arguments)} characters; the limit is {MAX_ARGUMENT_CHARS}"
    try:
        args = json.loads(arguments or "{}")
    except (json.JSONDecodeError, RecursionError) as exc:
        return "", f"{REFUSED}arguments are not JSON: {getattr(exc, 'msg', type(exc).__name__)}"
    if not isinstance(args, dict):
        return "", f"{REFUSED}arguments must be a JSON object"
    if check_schema and (problem := schema_problem(tool.parameters, args)):
        return "", f"{REFUSED}arguments do not match the schema of {name!r}: {problem}"
    try:
        return await tool.handler(args), ""
    except Exception as exc:
        return "", f"{type(exc).__name__}: {exc}"


def schema_problem(schema: dict[str, Any], value: Any, where: str = "$") -> str:
    """The first way ``value`` breaks ``schema`` ("$.order_id: expected string"), or ""."""
    if not isinstance(schema, dict):
        return ""
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, kind) for kind in kinds):
            return f"{where}: expected {' or '.join(map(str, kinds))}, got {_json_type(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: must be one of {json.dumps(schema['enum'], ensure_ascii=False)}"
    if "const" in schema and value != schema["const"]:
        return f"{where}: must be {json.dumps(schema['const'], ensure_ascii=False)}"
    if isinstance(value, dict):
        return _object_problem(schema, value, where)
    if isinstance(value, list):
        return _array_problem(schema, value, where)
    if isinstance(value, str):
        return _string_problem(schema, value, where)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{where}: must be at least {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{where}: must be at most {schema['maximum']}"
    return ""


def _object_problem(schema: dict[str, Any], value: dict[str, Any], where: str) -> str:
    properties = schema.get("properties") or {}
    for key in schema.get("required") or []:
        if key not in value:
            return f"{where}: {key!r} is required"
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            problem = schema_problem(properties[key], item, f"{where}.{key}")
        elif extra is False:
            problem = f"{where}: {key!r} is not an allowed argument"
        else:
            problem = schema_problem(extra, item, f"{where}.{key}") if isinstance(extra, dict) else ""
        if problem:
            return problem
    return ""


def _array_problem(schema: dict[str, Any], value: list[Any], where: str) -> str:
    if "minItems" in schema and len(value) < schema["minItems"]:
        return f"{where}: needs at least {schema['minItems']} items"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return f"{where}: takes at most {schema['maxItems']} items"
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            if problem := schema_problem(items, item, f"{where}[{index}]"):
                return problem
    return ""


def _string_problem(schema: dict[str, Any], value: str, where: str) -> str:
    if "minLength" in schema and len(value) < schema["minLength"]:
        return f"{where}: needs at least {schema['minLength']} characters"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"{where}: takes at most {schema['maxLength']} characters"
    if "pattern" in schema and re.search(str(schema["pattern"]), value) is None:
        return f"{where}: does not match {schema['pattern']!r}"
    return ""


def _is_type(value: Any, kind: Any) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return bool(kind == _json_type(value))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__
