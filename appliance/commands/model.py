"""``appliance model ...``: live model routing. Changes are stored in the node's database, then the
server running on this node applies them before the command returns (no restart; see
``appliance.control``); in-flight turns finish on the model they started with."""

from __future__ import annotations

import argparse

from appliance.commands._context import node
from appliance.commands._live import apply_live
from appliance.core import routing
from appliance.core.routing import ModelSpec, RoutingTable
from appliance.store.routing import TableChange, change_table, load_table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("model", help="manage LLM providers and routing (live)")
    actions = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="add (or replace) a model endpoint")
    add.add_argument("name")
    add.add_argument("--kind", choices=["openai", "local"], default="openai")
    add.add_argument("--base-url", default="", help="OpenAI-compatible base URL, e.g. http://10.0.0.5:8000/v1")
    add.add_argument("--model", default="", help="model id sent to the endpoint")
    add.add_argument("--api-key-env", default="", help="environment variable holding the API key")
    add.add_argument("--rpm", type=int, default=0, help="requests per minute (0 = unlimited)")
    add.add_argument("--tpm", type=int, default=0, help="tokens per minute (0 = unlimited)")
    add.add_argument("--max-concurrency", type=int, default=64)
    add.add_argument("--timeout", type=float, default=30.0, help="seconds per upstream call")
    add.add_argument("--retries", type=int, default=2, help="retries on 5xx/connection errors")
    add.add_argument("--vision", action="store_true", help="the model accepts images")
    add.set_defaults(run=run_add)

    actions.add_parser("list", help="show models and routing").set_defaults(run=run_list)
    remove = actions.add_parser("remove", help="remove a model")
    remove.add_argument("name")
    remove.set_defaults(run=lambda a: _change(a, lambda t: routing.remove_model(t, a.name), "remove", a.name))
    use = actions.add_parser("use", help="switch the active model")
    use.add_argument("name")
    use.set_defaults(run=lambda a: _change(a, lambda t: routing.use(t, a.name), "use", a.name))
    canary = actions.add_parser("canary", help="route PERCENT of conversations (sticky) to a canary model")
    canary.add_argument("name")
    canary.add_argument("--percent", type=float, required=True)
    canary.set_defaults(run=lambda a: _change(
        a, lambda t: routing.set_canary(t, a.name, a.percent), "canary", f"{a.name} {a.percent:g}%"))
    actions.add_parser("promote", help="make the canary the active model").set_defaults(
        run=lambda a: _change(a, routing.promote, "promote"))
    actions.add_parser("rollback", help="drop the canary, or go back to the previous active model").set_defaults(
        run=lambda a: _change(a, routing.rollback, "rollback"))
    fallback = actions.add_parser("fallback", help="set the fallback order after the active model")
    fallback.add_argument("names", nargs="*")
    fallback.set_defaults(run=lambda a: _change(
        a, lambda t: routing.set_fallback(t, a.names), "fallback", " ".join(a.names)))


def run_add(args: argparse.Namespace) -> int:
    spec = ModelSpec(
        name=args.name, kind=args.kind, base_url=args.base_url, model=args.model, api_key_env=args.api_key_env,
        rpm=args.rpm, tpm=args.tpm, max_concurrency=args.max_concurrency, timeout_s=args.timeout,
        max_retries=args.retries, vision=args.vision,
    )
    return _change(args, lambda t: routing.add_model(t, spec, replace=True), "add", spec.name)


def _change(args: argparse.Namespace, change: TableChange, action: str, detail: str = "") -> int:
    with node(args) as (config, _, store):
        table = store.write_sync(change_table(change, "cli", action, detail))
    print(describe(table))
    apply_live(config, "routing")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with node(args) as (_, _, store):
        table, _ = store.read_sync(load_table)
    print(describe(table))
    return 0


def describe(table: RoutingTable) -> str:
    if not table.models:
        return "no models: the built-in model answers (add one with `appliance model add`)"
    lines = [f"{'NAME':<20} {'ROLE':<14} {'KIND':<7} {'MODEL':<24} ENDPOINT"]
    for name, spec in table.models.items():
        role = "active" if name == table.active else ""
        if name == table.canary:
            role = f"canary {table.canary_percent:g}%"
        elif name in table.fallback:
            role = f"fallback {table.fallback.index(name) + 1}"
        lines.append(f"{name:<20} {role:<14} {spec.kind:<7} {spec.model:<24} {spec.base_url}")
    if table.active is None:
        lines.append("no active model yet: the built-in model answers until `appliance model use NAME`")
    return "\n".join(lines)
