"""Command groups of the ``appliance`` CLI, one module each."""

from appliance.commands import audit, blame, init, model, serve, token

COMMAND_MODULES = [init, serve, token, model, blame, audit]
