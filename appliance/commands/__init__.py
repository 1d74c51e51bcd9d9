"""Command groups of the ``appliance`` CLI, one module each."""

from appliance.commands import audit, blame, eval, init, kb, model, serve, token, user

COMMAND_MODULES = [init, serve, user, token, model, blame, audit, kb, eval]
