"""Command groups of the ``appliance`` CLI, one module each."""

from appliance.commands import init, serve, token

COMMAND_MODULES = [init, serve, token]
