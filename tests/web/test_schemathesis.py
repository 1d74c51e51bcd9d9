"""Property-based fuzzing of every documented endpoint: no input may produce a 5xx.

Two runs over one server: the whole OpenAPI surface as an anonymous caller, then the desk,
admin and sign-in routes again with an admin's bearer token (``appliance token create``), so
the handlers behind authentication are fuzzed too, not only their 401s. What a run once found
is also probed directly, every time.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, init_node
from tests.desk.helpers import request
from tests.engine.harness import new_token


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    node = init_node(tmp_path_factory.mktemp("schemathesis") / "node")
    # A short turn budget keeps each chat quick: this test is about input handling, not answers.
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 0.3")
    server = Server(node).start(wait_ready=False)
    try:
        admin = {"Authorization": f"Bearer {new_token(node, 'admin', 'schemathesis')}"}
        server.wait_ready()
        yield server, admin
    finally:
        server.stop()


def schemathesis(server: Server, *options: str) -> None:
    command = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.url}/schema/openapi.json",
               "--checks", "not_a_server_error", "--workers", "2", "--request-timeout", "30",
               "--suppress-health-check", "all", *options]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    failures = result.stdout.partition("=== FAILURES ===")[2].partition("=== WARNINGS ===")[0]
    assert result.returncode == 0, (failures or result.stdout[-4000:]) + result.stderr[-2000:]


def test_no_generated_request_crashes_the_server(fuzzed: tuple[Server, dict[str, str]]) -> None:
    server, admin = fuzzed
    # The header the second run sends really opens the admin routes.
    status, body, _ = request(server, "GET", "/api/v1/admin/models", headers=admin)
    assert status == 200, body
    schemathesis(server, "--max-examples", "40", "--max-time", "60")
    schemathesis(server, "--max-examples", "25", "--max-time", "50", "--include-path-regex",
                 "^/api/v1/(desk|admin|auth)/", "-H", f"Authorization: {admin['Authorization']}")
    status, body, _ = request(server, "GET", "/healthz")
    assert status == 200, body


@pytest.mark.parametrize("value", [str(2**63), str(-(2**63) - 1), "1" + "0" * 30, "-1"])
def test_paging_numbers_out_of_range_are_a_4xx(fuzzed: tuple[Server, dict[str, str]], value: str) -> None:
    """Found by the authenticated run: ``?before=10000000000000000000`` on the inbox was a 500
    (SQLite takes 64-bit integers only)."""
    server, admin = fuzzed
    crashed = []
    for path in (f"/api/v1/desk/conversations?before={value}", f"/api/v1/desk/tickets?before={value}",
                 f"/api/v1/desk/conversations?limit={value}", f"/api/v1/desk/tickets?limit={value}",
                 f"/api/v1/admin/audit?limit={value}"):
        status, body, _ = request(server, "GET", path, headers=admin)
        if status >= 500:
            crashed.append(f"GET {path}: {status}")
        elif status >= 400:
            assert isinstance(body, dict) and body["message"], (path, body)
    assert not crashed, crashed
