"""What the live-desk tests share: console sign-in with a cookie session, the two WebSockets,
accounts made with the real CLI, and a look into the node's event log.

Everything goes over real HTTP/WebSocket to a real ``appliance serve`` subprocess; accounts are
created with ``appliance user add --password-stdin`` exactly as an operator would.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.conftest import CLI, ROOT, Node, Server, init_node
from tests.engine.harness import wait_for  # noqa: F401  (the desk tests poll with it)

Frame = dict[str, Any]
COOKIE = "appliance_session"
JOINED_EN = "has joined the conversation"


def make_node(directory: Path, **settings: str) -> Node:
    """A node made by ``appliance init``; ``settings`` replace config lines, e.g.
    ``{"offline_grace_s = 15": "offline_grace_s = 0"}`` is passed as ``old=new`` pairs."""
    node = init_node(directory)
    # Many sign-ins come from 127.0.0.1 in one minute in these tests; the per-address limit is
    # not what they are about.
    node.edit_config("login_per_ip_per_minute = 20", "login_per_ip_per_minute = 10000")
    for old, new in settings.items():
        node.edit_config(old, new)
    return node


@contextmanager
def starting(node: Node) -> Iterator[Server]:
    """``appliance serve`` started at once, without waiting for it to be ready: the caller does
    its CLI set-up meanwhile (a CLI run and the server start-up overlap), then ``wait_ready()``."""
    server = Server(node).start(wait_ready=False)
    try:
        yield server
    finally:
        server.stop()


def user_cli(node: Node, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``appliance --config <node> user ...`` with ``stdin`` fed to it; never raises."""
    return subprocess.run([*CLI, "--config", str(node.config), "user", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ), cwd=ROOT)


def add_user(node: Node, name: str, role: str = "agent", password: str | None = None, *extra: str) -> str:
    """Create an account with the real CLI (password from standard input); returns the password."""
    password = password or f"{name}-secret-pw"
    result = user_cli(node, "add", name, "--role", role, "--password-stdin", *extra, stdin=password + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"added {role} {name}", result.stdout
    return password


def add_users(node: Node, accounts: dict[str, str], *extra: str) -> dict[str, str]:
    """Several accounts ``{name: role}`` at once (the CLI processes run side by side; the store
    takes concurrent writers); returns ``{name: password}``."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(add_user, node, name, role, None, *extra) for name, role in accounts.items()}
        return {name: future.result() for name, future in futures.items()}


def request(server: Server, method: str, path: str, body: dict[str, Any] | bytes | None = None, *,
            headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, Any, Any]:
    """One HTTP request: (status, decoded JSON or text, response headers). Never raises for 4xx/5xx."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(f"{server.url}{path}", data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw, status, got = response.read(), response.status, response.headers
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, exc.headers
    try:
        decoded: Any = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):  # text, or an image's bytes
        decoded = raw.decode(errors="replace")
    return status, decoded, got


def login(server: Server, username: str, password: str) -> tuple[int, Any, Any]:
    return request(server, "POST", "/api/v1/auth/login", {"username": username, "password": password})


class Console:
    """A person signed in to the console: the session cookie and its CSRF token, like the page."""

    def __init__(self, server: Server, username: str, password: str) -> None:
        self.server = server
        self.name = username
        status, body, headers = login(server, username, password)
        assert status == 200, (username, status, body)
        self.user: dict[str, Any] = body["user"]
        self.csrf: str = body["csrf_token"]
        self.set_cookie: str = headers.get("Set-Cookie", "")
        self.cookie = session_cookie(self.set_cookie)
        assert self.cookie, self.set_cookie

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *, csrf: bool = True,
             cookie: str | None = None) -> tuple[int, Any]:
        headers = {"Cookie": f"{COOKIE}={cookie or self.cookie}"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        status, decoded, _ = request(self.server, method, path, body, headers=headers)
        return status, decoded

    def desk(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """``/api/v1/desk/conversations<path>``."""
        return self.call(method, f"/api/v1/desk/conversations{path}", body)

    def detail(self, conversation_id: str) -> dict[str, Any]:
        status, body = self.desk("GET", f"/{conversation_id}")
        assert status == 200, body
        return dict(body)

    def inbox(self, which: str) -> list[dict[str, Any]]:
        status, body = self.desk("GET", f"?filter={which}&limit=200")
        assert status == 200, body
        return list(body["conversations"])

    @contextmanager
    def socket(self) -> Iterator[ClientConnection]:
        """The console's live socket (``/ws/agent``); while it is open this account is online."""
        with connect(f"ws://127.0.0.1:{self.server.port}/ws/agent",
                     additional_headers={"Cookie": f"{COOKIE}={self.cookie}"}, open_timeout=10) as ws:
            hello = next_frame(ws, lambda f: f["type"] == "hello", "hello")
            assert hello["user"]["name"] == self.name, hello
            yield ws


def session_cookie(set_cookie: str) -> str:
    name, _, rest = set_cookie.partition("=")
    return rest.split(";", 1)[0] if name.strip() == COOKIE else ""


def next_frame(ws: ClientConnection, wanted: Callable[[Frame], bool], what: str, timeout: float = 10) -> Frame:
    """The next frame ``wanted`` accepts (others are passed over); fails naming ``what``."""
    seen: list[Frame] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            frame: Frame = json.loads(ws.recv(timeout=max(left, 0.01)))
        except TimeoutError:
            raise AssertionError(f"no {what} frame within {timeout}s; got {seen}") from None
        if wanted(frame):
            return frame
        seen.append(frame)


def drain(ws: ClientConnection, quiet_s: float = 0.3) -> list[Frame]:
    """Every frame that arrives until the socket has been quiet for ``quiet_s``."""
    frames = []
    while True:
        try:
            frames.append(json.loads(ws.recv(timeout=quiet_s)))
        except TimeoutError:
            return frames


def visitor_socket(server: Server) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{server.port}/ws/visitor", open_timeout=10)


def resume(ws: ClientConnection, visitor: dict[str, Any]) -> tuple[Frame, Frame]:
    """Send ``resume`` for a visitor's conversation; returns its (history, status) frames."""
    ws.send(json.dumps({"type": "resume", "conversation_id": visitor["conversation_id"],
                        "visitor_token": visitor["visitor_token"]}))
    history = next_frame(ws, lambda f: f["type"] in ("history", "error"), "history")
    assert history["type"] == "history", history
    status = next_frame(ws, lambda f: f["type"] == "status", "status")
    return history, status


def handoff(server: Server, visitor: dict[str, Any] | None = None, language: str | None = None) -> dict[str, Any]:
    """The "Talk to a person" button over HTTP (no model involved). Asserts 200."""
    body: dict[str, Any] = {}
    if visitor is not None:
        body = {"conversation_id": visitor["conversation_id"], "visitor_token": visitor["visitor_token"]}
    if language:
        body["language"] = language
    status, answer, _ = request(server, "POST", "/api/v1/conversations/handoff", body)
    assert status == 200, answer
    return dict(answer)


def chat(server: Server, text: str, visitor: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text, **extra}
    if visitor is not None:
        body["conversation_id"] = visitor["conversation_id"]
        body["visitor_token"] = visitor["visitor_token"]
    status, answer, _ = request(server, "POST", "/api/v1/chat", body)
    assert status == 200, answer
    return dict(answer)


def visitor_messages(server: Server, visitor: dict[str, Any]) -> list[dict[str, Any]]:
    status, body, _ = request(server, "GET", f"/api/v1/conversations/{visitor['conversation_id']}/messages",
                              headers={"Authorization": f"Bearer {visitor['visitor_token']}"})
    assert status == 200, body
    return list(body["messages"])


def upload_image(server: Server, visitor: dict[str, Any], rgb: tuple[int, int, int]) -> str:
    """A small PNG of one colour uploaded as ``visitor``; returns its attachment id. Uploads are
    content-addressed: pick a colour no other visitor of the test uses unless sharing is the point."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), rgb).save(out, "PNG")
    headers = {"Content-Type": "image/png", "Authorization": f"Bearer {visitor['visitor_token']}"}
    status, body, _ = request(server, "POST", "/api/v1/attachments", out.getvalue(), headers=headers)
    assert status == 201, body
    return str(body["attachment_id"])


def events(node: Node, *kinds: str) -> list[dict[str, Any]]:
    """The payloads of the node's event log entries of the types ``kinds``, in log order (the
    log's hybrid clock), read straight from its SQLite file."""
    import msgspec

    conn = sqlite3.connect(f"file:{node.dir / 'appliance.db'}?mode=ro", uri=True, timeout=10)
    try:
        marks = ", ".join("?" * len(kinds))
        rows = conn.execute(f"SELECT payload FROM events WHERE type IN ({marks}) ORDER BY hlc, origin, seq",
                            kinds).fetchall()
    finally:
        conn.close()
    return [msgspec.msgpack.decode(r[0]) for r in rows]


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def has_latin_words(text: str) -> bool:
    """Two or more ASCII letters in a row: an English word (names like 'alice' are checked apart)."""
    run = 0
    for c in text:
        run = run + 1 if c.isascii() and c.isalpha() else 0
        if run >= 2:
            return True
    return False
