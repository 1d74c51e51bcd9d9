"""``appliance blame CONVERSATION_ID``: each bot turn beside the decisions that produced it."""

from __future__ import annotations

import argparse
import shutil
import textwrap

from appliance.commands._context import node
from appliance.core.trace import decision_path
from appliance.core.types import Message, Trace
from appliance.store import Connection, desk


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("blame", help="show why the bot said what it said, turn by turn")
    parser.add_argument("conversation_id")
    parser.add_argument("--width", type=int, default=0, help="output width (default: the terminal's)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    def read(conn: Connection) -> tuple[str, list[Message], dict[str, Trace]]:
        owner = desk.row(conn, args.conversation_id).owner
        return owner, desk.messages(conn, args.conversation_id), desk.traces_for(conn, args.conversation_id)

    with node(args) as (_, _, store):
        owner, history, traces = store.read_sync(read)
    width = args.width or shutil.get_terminal_size((140, 40)).columns
    print(f"conversation {args.conversation_id} · owner {owner} · {len(history)} messages")
    print(render(history, traces, width))
    return 0


def render(history: list[Message], traces: dict[str, Trace], width: int = 140) -> str:
    """Left: trace id, speaker and text; right of the bar: the decision path of that turn."""
    text_width = max(30, (width - 22) // 2)
    out: list[str] = []
    for message in history:
        trace = traces.get(message.trace_id)
        left = textwrap.wrap(message.text, text_width) or [""]
        right = decision_path(trace) if trace else []
        label = (message.trace_id[3:11] if message.trace_id else "").ljust(8)
        who = message.role if message.role != "agent" else f"agent:{message.author}"
        for row in range(max(len(left), len(right))):
            head = f"{label} {who:<10}" if row == 0 else " " * 19
            body = left[row] if row < len(left) else ""
            side = f" │ {right[row]}" if row < len(right) else ""
            out.append(f"{head} {body:<{text_width}}{side}".rstrip())
    return "\n".join(out)
