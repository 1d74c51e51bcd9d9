"""Command groups of the ``appliance`` CLI, one module each."""

from appliance.commands import (
    audit,
    blame,
    eval,
    export,
    init,
    kb,
    model,
    privacy,
    serve,
    sync,
    token,
    user,
    visitor,
    webhook,
)

COMMAND_MODULES = [init, serve, user, token, model, blame, audit, kb, eval, visitor, privacy, sync, webhook, export]
