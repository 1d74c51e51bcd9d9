"""The permission table, in one place: what each role of the desk may do.

An agent works the queue, unassigned conversations and their own; a supervisor sees and moves
every conversation and reads reports; an admin also manages models, knowledge, users and
settings. The web layer asks :func:`allowed` and :func:`may_see`; nothing else decides.
"""

from __future__ import annotations

from typing import Literal

Action = Literal[
    "desk.view", "desk.view_all", "desk.take", "desk.take_any", "desk.reply", "desk.note", "desk.transfer",
    "desk.transfer_any", "desk.close", "desk.reopen", "desk.tickets", "reports.read", "traces.read",
    "models.manage", "knowledge.manage", "intents.manage", "users.manage", "settings.manage", "audit.read",
    "webhooks.manage", "openai.chat",
]

_AGENT: set[Action] = {
    "desk.view", "desk.take", "desk.reply", "desk.note", "desk.transfer", "desk.close", "desk.reopen",
    "desk.tickets", "traces.read",
}
_SUPERVISOR: set[Action] = _AGENT | {"desk.view_all", "desk.take_any", "desk.transfer_any", "reports.read"}
_ADMIN: set[Action] = _SUPERVISOR | {
    "models.manage", "knowledge.manage", "intents.manage", "users.manage", "settings.manage", "audit.read",
    "webhooks.manage",
}
# An ``api`` token (``appliance token create --role api``) talks to the OpenAI-compatible
# endpoint as a visitor would, and does nothing at the desk.
_API: set[Action] = {"openai.chat"}
TABLE: dict[str, set[Action]] = {"agent": _AGENT, "supervisor": _SUPERVISOR, "admin": _ADMIN, "api": _API}
# The roles a console account may have (``appliance user``), and a bearer token (``appliance
# token``); the CLI's choices and the admin console's pickers both come from here.
ACCOUNT_ROLES: tuple[str, ...] = ("admin", "supervisor", "agent")
TOKEN_ROLES: tuple[str, ...] = (*ACCOUNT_ROLES, "api")  # no one signs in to the console as ``api``


def allowed(role: str, action: Action) -> bool:
    return action in TABLE.get(role, set())


def may_see(role: str, user: str, owner: str, assignee: str) -> bool:
    """An agent sees bot and queued conversations that are unassigned or theirs, and their own."""
    if allowed(role, "desk.view_all"):
        return True
    if owner == f"agent:{user}":
        return True
    if owner in ("bot", "queue"):
        return assignee in ("", user)
    return False


def may_act(role: str, user: str, owner: str, assignee: str) -> bool:
    """Reply, transfer, hand back, close: the owner, or a supervisor/admin."""
    return owner == f"agent:{user}" or allowed(role, "desk.take_any")
