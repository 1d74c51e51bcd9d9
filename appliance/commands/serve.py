"""``appliance serve``: HTTP, WebSocket and admin API on one port."""

from __future__ import annotations

import argparse
import logging

from appliance.commands._context import load_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="serve the visitor API, console and admin API")
    parser.add_argument("--host", default=None, help="listen address (default: server.host from the config)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default: server.port; 0 = any)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from appliance.runtime import Runtime
    from appliance.web.app import create_app
    from appliance.web.connections import with_header_deadline

    config = load_config(args)
    level = config.server.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config.privacy.redact_pii:
        from appliance.core.redaction import install_log_redaction

        install_log_redaction()  # after uvicorn's import: its loggers exist and get the filter too
    runtime = Runtime.open(config)
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    server = config.server
    uvicorn.run(
        create_app(runtime), host=host, port=port, loop="uvloop", http=with_header_deadline(server.header_timeout_s),
        ws="websockets-sansio", ws_max_size=server.max_ws_message_bytes,
        timeout_keep_alive=server.keep_alive_s, server_header=False, access_log=False,
        proxy_headers=bool(server.forwarded_allow_ips), forwarded_allow_ips=server.forwarded_allow_ips or None,
        log_level=config.server.log_level, lifespan="on", timeout_graceful_shutdown=10,
    )
    return 0
