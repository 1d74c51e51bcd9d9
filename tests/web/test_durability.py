"""Kill the server with SIGKILL under concurrent chats: every answered message survives."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pysqlite3.dbapi2 as sqlite3

from tests.conftest import Node, Server


def _post(url: str, body: dict[str, str]) -> dict[str, object] | None:
    request = urllib.request.Request(f"{url}/api/v1/chat", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read()) if response.status == 200 else None
    except (OSError, urllib.error.URLError):
        return None


def test_sigkill_mid_load_loses_no_answered_message(node: Node) -> None:
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 0.5")  # keep turns short: more writes in flight
    server = Server(node).start()
    answered: list[tuple[str, dict[str, object]]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def visitor(worker: int) -> None:
        n = 0
        while not stop.is_set():
            text = f"worker {worker} message {n}: where is my card?"
            body = _post(server.url, {"text": text})
            if body is not None:
                with lock:
                    answered.append((text, body))
            n += 1

    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(answered) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(answered) >= 40, "the load never got going"

    restarted = Server(node).start()
    try:
        for text, body in answered:
            request = urllib.request.Request(
                f"{restarted.url}/api/v1/conversations/{body['conversation_id']}/messages",
                headers={"Authorization": f"Bearer {body['visitor_token']}"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                messages = json.loads(response.read())["messages"]
            assert messages[0]["text"] == text
            assert body["message_id"] in {m["id"] for m in messages}
    finally:
        restarted.stop()
    conn = sqlite3.connect(str(node.dir / "appliance.db"))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
