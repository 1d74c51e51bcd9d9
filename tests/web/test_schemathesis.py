"""Property-based fuzzing of every documented endpoint: no input may produce a 5xx."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import Node, Server


def test_no_generated_request_crashes_the_server(node: Node) -> None:
    # A short turn budget keeps each chat quick: this test is about input handling, not answers.
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 0.3")
    server = Server(node).start()
    try:
        schemathesis = Path(sys.executable).with_name("schemathesis")
        result = subprocess.run(
            [str(schemathesis), "run", f"{server.url}/schema/openapi.json",
             "--checks", "not_a_server_error", "--max-examples", "40", "--workers", "2",
             "--request-timeout", "30", "--max-time", "60", "--suppress-health-check", "all"],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:
            assert response.status == 200
    finally:
        server.stop()
