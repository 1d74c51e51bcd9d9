"""The permission table (``core/permissions.py``), walked action by action and role by role
against what its docstring promises: an agent works the queue, unassigned conversations and
their own; a supervisor sees and moves every conversation and reads reports; an admin also
manages models, knowledge, users and settings."""

from __future__ import annotations

import itertools
from typing import get_args

import pytest

from appliance.core import permissions
from appliance.core.permissions import allowed, may_act, may_see

# Working a conversation, the agent's whole job (the console shows traces beside bot turns).
AGENT = {"desk.view", "desk.take", "desk.reply", "desk.note", "desk.transfer", "desk.close", "desk.reopen",
         "desk.tickets", "traces.read"}
# Sees and moves every conversation, reads reports.
SUPERVISOR = AGENT | {"desk.view_all", "desk.take_any", "desk.transfer_any", "reports.read"}
# Also manages models, knowledge, intents, users, settings and webhooks (and reads the audit log).
ADMIN = SUPERVISOR | {"models.manage", "knowledge.manage", "intents.manage", "users.manage", "settings.manage",
                      "audit.read", "webhooks.manage"}
# An api token talks to the OpenAI-compatible endpoint and does nothing at the desk.
API = {"openai.chat"}
EXPECTED = {"agent": AGENT, "supervisor": SUPERVISOR, "admin": ADMIN, "api": API}
ACTIONS = sorted(get_args(permissions.Action))
ROLES = ["agent", "supervisor", "admin"]


def test_the_table_covers_exactly_the_known_actions() -> None:
    assert set(ACTIONS) == ADMIN | API  # an action nobody may do, or one this test does not know, fails here


@pytest.mark.parametrize("role", [*ROLES, "api"])
def test_every_action_for_every_role(role: str) -> None:
    wrong = [(action, allowed(role, action)) for action in ACTIONS
             if allowed(role, action) != (action in EXPECTED[role])]
    assert not wrong, f"{role}: {wrong}"


def test_each_role_may_do_everything_the_one_below_may() -> None:
    for lower, higher in (("agent", "supervisor"), ("supervisor", "admin")):
        assert {a for a in ACTIONS if allowed(lower, a)} < {a for a in ACTIONS if allowed(higher, a)}


def test_an_unknown_role_may_do_nothing() -> None:
    for role, action in itertools.product(["", "guest", "Admin", "visitor"], ACTIONS):
        assert not allowed(role, action), (role, action)


OWNERS = ["bot", "queue", "agent:me", "agent:other"]
ASSIGNEES = ["", "me", "other"]


@pytest.mark.parametrize("role", ROLES)
def test_who_sees_which_conversation(role: str) -> None:
    for owner, assignee in itertools.product(OWNERS, ASSIGNEES):
        if role == "agent":
            # The queue and the bot's conversations that are unassigned or assigned to me, and my own.
            expected = owner == "agent:me" or (owner in ("bot", "queue") and assignee in ("", "me"))
        else:
            expected = True
        assert may_see(role, "me", owner, assignee) == expected, (role, owner, assignee)


@pytest.mark.parametrize("role", ROLES)
def test_who_may_reply_transfer_hand_back_and_close(role: str) -> None:
    for owner, assignee in itertools.product(OWNERS, ASSIGNEES):
        expected = owner == "agent:me" or role != "agent"
        assert may_act(role, "me", owner, assignee) == expected, (role, owner, assignee)


def test_names_are_not_matched_by_prefix() -> None:
    assert not may_see("agent", "me", "agent:meg", "")
    assert not may_act("agent", "me", "agent:meg", "")
    assert not may_see("agent", "me", "queue", "meg")
