"""``appliance``: the single entry point. Each command group lives in ``appliance.commands``.

Every command module exposes ``register(subparsers)``, adding its parsers with
``set_defaults(run=function)``; ``function(args)`` returns the exit code. Errors the operator
can fix (``ApplianceError``) print one line on stderr and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from appliance.core.errors import ApplianceError


def build_parser() -> argparse.ArgumentParser:
    from appliance.commands import COMMAND_MODULES

    parser = argparse.ArgumentParser(
        prog="appliance", description="On-premises AI customer-service appliance."
    )
    parser.add_argument(
        "--config", type=Path, default=None,
        help="config file (default: $APPLIANCE_CONFIG, then ./config.toml)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def config_path(args: argparse.Namespace) -> Path:
    if args.config is not None:
        return Path(args.config)
    env = os.environ.get("APPLIANCE_CONFIG")
    return Path(env) if env else Path("config.toml")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except ApplianceError as exc:
        print(f"appliance: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
