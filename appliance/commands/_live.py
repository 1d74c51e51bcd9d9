"""After a command has committed a change: have the running server apply it, and say so.

Every command that changes what a running node does calls :func:`apply_live` once its write
has committed (a failed command never gets here). The line goes to standard error, so what a
command prints on standard output (a new token, a table) stays machine-readable.
"""

from __future__ import annotations

import sys

from appliance.control import Outcome, Topic, tell_server
from appliance.core.config import Config

ANSWER_TIMEOUT_S = 10.0


def apply_live(config: Config, *topics: Topic) -> Outcome:
    """Ask the server on this node to reload ``topics``; print what happened; return it."""
    outcome = tell_server(config.data_dir, list(topics), timeout_s=ANSWER_TIMEOUT_S)
    print(describe(outcome), file=sys.stderr)
    return outcome


def describe(outcome: Outcome) -> str:
    if outcome.state == "applied":
        return f"applied by the running server (pid {outcome.pid})"
    if outcome.state == "no_server":
        return "no server running: takes effect when it starts"
    if outcome.state == "no_answer":
        return (f"warning: the running server (pid {outcome.pid}) did not answer within {ANSWER_TIMEOUT_S:g} s;"
                " the change is stored and applies when it catches up")
    return (f"warning: the running server (pid {outcome.pid}) could not apply the change now ({outcome.detail});"
            " it is stored and applies within its next poll or restart")
