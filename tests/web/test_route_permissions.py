"""Every route of the application, called by every kind of caller, against one table of who may.

The route list comes from the real application (``create_app`` over the node's own config, the
way ``appliance serve`` builds it), WebSockets included; a route that :data:`TABLE` does not list
fails :func:`test_every_route_of_the_app_is_in_the_table`, so no route slips in unreviewed.

Each route is then called on a real server by nobody, a visitor (their token), a console session
of an agent, a supervisor and an admin (cookie + ``X-CSRF-Token``), and bearer tokens of each role
(``appliance token create``). Path ids are real (a conversation, a message, an attachment, a
ticket, a trace, a model) and bodies plausible, so an allowed caller really runs the handler and
gets its 2xx; a refused one gets 401 when it lacks the kind of credential the route takes, 403
when its role is too low, each in the one error format with a reason.

The table follows ``appliance/core/permissions.py`` and the README's role table.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import Node, Server
from tests.desk.helpers import (
    COOKIE,
    Console,
    add_users,
    chat,
    handoff,
    make_node,
    request,
    starting,
    upload_image,
)
from tests.engine.harness import new_token, wait_for

ANONYMOUS, VISITOR = "anonymous", "visitor"
SESSIONS = ("agent", "supervisor", "admin")
TOKENS = ("agent-token", "supervisor-token", "admin-token")
API_TOKEN = "api-token"  # `token create --role api`: the OpenAI-compatible API and nothing else
ALL_TOKENS = (*TOKENS, API_TOKEN)
CALLERS = (ANONYMOUS, VISITOR, *SESSIONS, *ALL_TOKENS)

ANYONE = frozenset(CALLERS)
VISITOR_ONLY = frozenset({VISITOR})  # the visitor whose conversation, message or image it is
STAFF = frozenset(SESSIONS + TOKENS)
CONSOLE = frozenset(SESSIONS)  # a console session; a script's token has none
ADMINS = frozenset({"admin", "admin-token"})
REPORTS = frozenset({"supervisor", "admin", "supervisor-token", "admin-token"})  # reports.read
# Starting a conversation needs nothing, but a bearer sent there is taken for a visitor token, and
# a script's token is not one: 401.
NO_BEARER = ANYONE - frozenset(ALL_TOKENS)
OPENAI = frozenset({API_TOKEN})


class Call(NamedTuple):
    path: str
    body: dict[str, Any] | bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] | None = None  # instead of the caller's own credentials
    extra: dict[str, str] | None = None  # beside them (an upload's X-Filename)


class Rule(NamedTuple):
    who: frozenset[str]
    call: Callable[[World, Caller], Call] | None  # None: a WebSocket, walked by its own test
    ok: tuple[int, ...] = (200,)


class Caller:
    """One kind of caller and its credentials."""

    def __init__(self, kind: str, server: Server, *, console: Console | None = None, token: str = "") -> None:
        self.kind, self.server, self.console, self.token = kind, server, console, token

    def headers(self) -> dict[str, str]:
        if self.console is not None:
            return {"Cookie": f"{COOKIE}={self.console.cookie}", "X-CSRF-Token": self.console.csrf}
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def send(self, method: str, call: Call) -> tuple[int, Any]:
        headers = {**(self.headers() if call.headers is None else call.headers), **(call.extra or {}),
                   "Content-Type": call.content_type}
        status, body, _ = request(self.server, method, call.path, call.body, headers=headers)
        return status, body

    def must(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        status, answer = self.send(method, Call(path, body))
        assert 200 <= status < 300, (self.kind, method, path, status, answer)
        return answer


class World:
    """The server, every caller, and real ids to put in the paths."""

    def __init__(self, node: Node, server: Server, passwords: dict[str, str], tokens: dict[str, str]) -> None:
        self.node, self.server, self.passwords = node, server, passwords
        self.consoles = {"agent": Console(server, "alice", passwords["alice"]),
                         "supervisor": Console(server, "sue", passwords["sue"]),
                         "admin": Console(server, "admin", node.admin_password)}
        self.visitor = chat(server, "hello")  # a bot conversation every agent may see
        self.callers = {ANONYMOUS: Caller(ANONYMOUS, server),
                        VISITOR: Caller(VISITOR, server, token=self.visitor["visitor_token"])}
        self.callers |= {kind: Caller(kind, server, console=self.consoles[kind]) for kind in SESSIONS}
        self.callers |= {f"{role}-token": Caller(f"{role}-token", server, token=tokens[role]) for role in SESSIONS}
        self.callers[API_TOKEN] = Caller(API_TOKEN, server, token=tokens["api"])
        self.boss = self.callers["admin-token"]
        for kind in SESSIONS:  # never "online": nothing is assigned to them behind the walk's back
            self.callers[kind].must("POST", "/api/v1/desk/presence", {"status": "offline"})
        self.conversation = self.visitor["conversation_id"]
        self.bot_message = self.visitor["message_id"]
        self.trace = self.visitor["trace_id"]
        assert self.trace and self.visitor["reply"], self.visitor
        self.attachment = upload_image(server, self.visitor, (180, 40, 40))
        # Staff see an image through a conversation it was sent in: send it in one of its own.
        status, sent, _ = request(server, "POST", "/api/v1/chat", {
            "text": "my card photo", "visitor_token": self.visitor["visitor_token"],
            "attachments": [self.attachment]})
        assert status == 200, sent
        status, second, _ = request(server, "POST", "/api/v1/conversations/handoff",
                                    {"visitor_token": self.visitor["visitor_token"]})
        assert status == 200, second
        self.resolved = second["conversation_id"]  # the visitor's, resolved: the one they may rate
        self.boss.must("POST", f"/api/v1/desk/conversations/{self.resolved}/take")
        self.boss.must("POST", f"/api/v1/desk/conversations/{self.resolved}/close")
        self.canned = self.boss.must("GET", "/api/v1/desk/canned")["replies"]
        for name in ("walk-a", "walk-b"):
            self.boss.must("POST", "/api/v1/admin/models", model(name))
        self.serial = itertools.count()

    def queued(self) -> str:
        return str(handoff(self.server)["conversation_id"])

    def owned(self, caller: Caller) -> str:
        """A new conversation taken over by ``caller`` (by the admin token when it can't take)."""
        conversation = self.queued()
        (caller if caller.kind in STAFF else self.boss).must("POST", f"/api/v1/desk/conversations/{conversation}/take")
        return conversation

    def resolved_by(self, caller: Caller) -> str:
        conversation = self.owned(caller)
        (caller if caller.kind in STAFF else self.boss).must("POST", f"/api/v1/desk/conversations/{conversation}/close")
        return conversation

    def ticket(self) -> str:
        status, body, _ = request(self.server, "POST", "/api/v1/tickets", {
            "name": "王芳", "contact": "wang@example.com", "message": "请给我回电话"})
        assert status == 201, body
        return str(body["ticket_id"])

    def canary(self) -> None:
        self.boss.must("POST", "/api/v1/admin/models/use", {"name": "walk-a"})
        self.boss.must("POST", "/api/v1/admin/models/canary", {"name": "walk-b", "percent": 10})

    def disposable_model(self) -> str:
        name = f"walk-gone-{next(self.serial)}"
        self.boss.must("POST", "/api/v1/admin/models", model(name))
        return name

    def visitor_id(self, conversation: str) -> str:
        return str(self.boss.must("GET", f"/api/v1/desk/conversations/{conversation}")["conversation"]["visitor_id"])

    def fresh_session(self, caller: Caller) -> dict[str, str] | None:
        """Signing out ends the session it is sent with: a session caller signs out a new one."""
        if caller.console is None:
            return None
        console = Console(self.server, caller.console.name, self.password(caller.console.name))
        return {"Cookie": f"{COOKIE}={console.cookie}", "X-CSRF-Token": console.csrf}

    def password(self, name: str) -> str:
        return self.node.admin_password if name == "admin" else self.passwords[name]


def model(name: str) -> dict[str, Any]:
    return {"name": name, "base_url": "http://127.0.0.1:9/v1", "model": "walk"}


def desk(path: str, body: dict[str, Any] | None = None, *, of: Callable[[World, Caller], str]
         ) -> Callable[[World, Caller], Call]:
    return lambda w, c: Call(f"/api/v1/desk/conversations/{of(w, c)}{path}", body)


def fixed(path: str, body: dict[str, Any] | bytes | None = None) -> Callable[[World, Caller], Call]:
    return lambda w, c: Call(path, body)


def _visitors_chat(w: World, c: Caller) -> Call:
    if c.kind == VISITOR:  # continues their own conversation, token in the header
        return Call("/api/v1/chat", {"text": "hello", "conversation_id": w.conversation})
    return Call("/api/v1/chat", {"text": "hello"})


def _png(w: World, c: Caller) -> Call:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20 + next(w.serial) % 200, 30)).save(out, "PNG")
    return Call("/api/v1/attachments", out.getvalue(), "image/png")


def _canary(w: World, c: Caller) -> Call:
    w.boss.must("POST", "/api/v1/admin/models/use", {"name": "walk-a"})
    return Call("/api/v1/admin/models/canary", {"name": "walk-b", "percent": 10})


def _after_canary(action: str) -> Callable[[World, Caller], Call]:
    def call(w: World, c: Caller) -> Call:
        w.canary()
        return Call(f"/api/v1/admin/models/{action}")

    return call


def _webhook(w: World) -> str:
    """A receiver nobody listens at (its deliveries just retry), made for the call."""
    made = w.boss.must("POST", "/api/v1/admin/webhooks",
                       {"url": "http://127.0.0.1:9/walk", "events": ["csat.submitted"]})
    return str(made["webhook"]["id"])


def _kb_upload(w: World, c: Caller) -> Call:
    return Call("/api/v1/admin/kb/documents", f"# Walk {next(w.serial)}\n\nA page of the walk.\n".encode(),
                "text/markdown", extra={"X-Filename": f"walk/page-{next(w.serial)}.md"})


def _kb_document(w: World, c: Caller) -> str:
    """A document ingested for an admin's call (removed or re-indexed by it); for the others an id
    that was never there, since they are refused before it is looked up."""
    if c.kind not in ADMINS:
        return "doc_walk_never_there"
    job = w.boss.send("POST", _kb_upload(w, c))[1]
    done = wait_for(lambda: next((j for j in w.boss.must("GET", "/api/v1/admin/kb/jobs")["jobs"]
                                  if j["job_id"] == job["job_id"] and j["status"] in ("done", "failed")), None),
                    "the walk's document to be ingested", timeout=60)
    assert done["status"] == "done", done
    return str(done["document_id"])


def _intent_example(w: World, c: Caller) -> Call:
    """An example taught for an admin's call (removed by it); for the others one never there,
    since they are refused before it is looked up."""
    if c.kind not in ADMINS:
        return Call("/api/v1/admin/intents/walk/examples/never_there")
    made = w.boss.must("POST", "/api/v1/admin/intents/walk/examples", {"text": f"walk sentence {next(w.serial)}"})
    return Call(f"/api/v1/admin/intents/walk/examples/{made['example']['id']}")


def _account(w: World, c: Caller) -> str:
    """An agent account made for an admin's call (changed by it); for the others a name never
    there, since they are refused before it is looked up."""
    if c.kind not in ADMINS:
        return "walk-never-there"
    name = f"walk-agent-{next(w.serial)}"
    w.boss.must("POST", "/api/v1/admin/users", {"name": name, "role": "agent"})
    return name


def _api_token(w: World, c: Caller) -> str:
    """A token issued for an admin's call (revoked by it); for the others an id never there."""
    if c.kind not in ADMINS:
        return "tok_walk_never_there"
    made = w.boss.must("POST", "/api/v1/admin/tokens", {"name": f"walk-{next(w.serial)}", "role": "api"})
    return str(made["token"]["token_id"])


def _visible(w: World, c: Caller) -> str:
    return w.conversation


def _owned(w: World, c: Caller) -> str:
    return w.owned(c)


def _queued(w: World, c: Caller) -> str:
    return w.queued()


def _resolved(w: World, c: Caller) -> str:
    return w.resolved_by(c)


SCHEMA_PAGES = ("/schema", "/schema/openapi.json", "/schema/openapi.yaml", "/schema/openapi.yml", "/schema/swagger",
                "/schema/redoc", "/schema/elements", "/schema/rapidoc", "/schema/oauth2-redirect.html")

TABLE: dict[tuple[str, str], Rule] = {
    # Pages, their assets, health and the API description: anyone.
    ("GET", "/"): Rule(ANYONE, fixed("/")),
    ("GET", "/chat"): Rule(ANYONE, fixed("/chat")),
    ("GET", "/console"): Rule(ANYONE, fixed("/console")),
    ("GET", "/widget.js"): Rule(ANYONE, fixed("/widget.js")),
    ("GET", "/static/{file_path}"): Rule(ANYONE, fixed("/static/console/console.js")),
    ("HEAD", "/static/{file_path}"): Rule(ANYONE, fixed("/static/chat/chat.css")),
    ("GET", "/healthz"): Rule(ANYONE, fixed("/healthz")),
    ("GET", "/readyz"): Rule(ANYONE, fixed("/readyz")),
    ("GET", "/metrics"): Rule(ANYONE, fixed("/metrics")),
    **{("GET", page): Rule(ANYONE, fixed(page)) for page in SCHEMA_PAGES},
    ("GET", "/schema/{path}"): Rule(ANYONE, fixed("/schema/no-such-page"), ok=(404,)),
    # The visitor API: anyone starts a conversation; what is in one is its visitor's alone.
    ("POST", "/api/v1/chat"): Rule(NO_BEARER, _visitors_chat),
    ("POST", "/api/v1/conversations/handoff"): Rule(NO_BEARER, fixed("/api/v1/conversations/handoff",
                                                                  {"language": "en"})),
    ("POST", "/api/v1/tickets"): Rule(NO_BEARER, fixed("/api/v1/tickets", {
        "name": "Walker", "contact": "walker@example.com", "message": "Please call me back"}), ok=(201,)),
    ("GET", "/api/v1/conversations/{conversation_id}/messages"): Rule(
        VISITOR_ONLY, lambda w, c: Call(f"/api/v1/conversations/{w.conversation}/messages")),
    ("POST", "/api/v1/conversations/{conversation_id}/rating"): Rule(
        VISITOR_ONLY, lambda w, c: Call(f"/api/v1/conversations/{w.resolved}/rating", {"score": 5, "comment": "好"})),
    ("POST", "/api/v1/attachments"): Rule(VISITOR_ONLY, _png, ok=(201,)),
    ("GET", "/api/v1/attachments/{attachment_id}"): Rule(
        VISITOR_ONLY, lambda w, c: Call(f"/api/v1/attachments/{w.attachment}")),
    ("POST", "/api/v1/messages/{message_id}/feedback"): Rule(
        VISITOR_ONLY, lambda w, c: Call(f"/api/v1/messages/{w.bot_message}/feedback", {"rating": "up"})),
    ("WS", "/ws/visitor"): Rule(ANYONE, None),
    # Console sign-in.
    ("POST", "/api/v1/auth/login"): Rule(ANYONE, lambda w, c: Call("/api/v1/auth/login", {
        "username": "walker", "password": w.passwords["walker"]})),
    ("POST", "/api/v1/auth/logout"): Rule(STAFF, lambda w, c: Call("/api/v1/auth/logout", headers=w.fresh_session(c)),
                                          ok=(204,)),
    ("GET", "/api/v1/auth/me"): Rule(CONSOLE, fixed("/api/v1/auth/me")),
    # The desk: every role works it (which conversations, permissions.may_see / may_act decide).
    ("GET", "/api/v1/desk/conversations"): Rule(STAFF, fixed("/api/v1/desk/conversations?filter=open")),
    ("GET", "/api/v1/desk/conversations/{conversation_id}"): Rule(STAFF, desk("", of=_visible)),
    ("POST", "/api/v1/desk/conversations/{conversation_id}/read"): Rule(STAFF, desk("/read", of=_visible), ok=(204,)),
    ("POST", "/api/v1/desk/conversations/{conversation_id}/note"): Rule(
        STAFF, desk("/note", {"text": "Checked the card limit / 已核实额度"}, of=_visible)),
    ("POST", "/api/v1/desk/conversations/{conversation_id}/take"): Rule(STAFF, desk("/take", of=_queued)),
    ("POST", "/api/v1/desk/conversations/{conversation_id}/reply"): Rule(
        STAFF, desk("/reply", {"text": "Hello, I am looking into it."}, of=_owned)),
    ("POST", "/api/v1/desk/conversations/{conversation_id}/handback"): Rule(STAFF, desk("/handback", of=_owned)),
    ("POST", "/api/v1/desk/conversations/{conversation_id}/transfer"): Rule(
        STAFF, desk("/transfer", {"to": "queue"}, of=_owned)),
    ("POST", "/api/v1/desk/conversations/{conversation_id}/close"): Rule(STAFF, desk("/close", of=_owned)),
    ("POST", "/api/v1/desk/conversations/{conversation_id}/reopen"): Rule(STAFF, desk("/reopen", of=_resolved)),
    ("GET", "/api/v1/desk/agents"): Rule(STAFF, fixed("/api/v1/desk/agents")),
    ("POST", "/api/v1/desk/presence"): Rule(STAFF, fixed("/api/v1/desk/presence", {"status": "offline"})),
    ("GET", "/api/v1/desk/canned"): Rule(STAFF, fixed("/api/v1/desk/canned")),
    ("PUT", "/api/v1/desk/canned"): Rule(ADMINS, lambda w, c: Call("/api/v1/desk/canned", {"replies": w.canned})),
    ("GET", "/api/v1/desk/tickets"): Rule(STAFF, fixed("/api/v1/desk/tickets?status=open")),
    ("POST", "/api/v1/desk/tickets/{ticket_id}/answer"): Rule(
        STAFF, lambda w, c: Call(f"/api/v1/desk/tickets/{w.ticket()}/answer", {"text": "我们已经给您回电话了。"})),
    ("GET", "/api/v1/desk/attachments/{attachment_id}"): Rule(
        STAFF, lambda w, c: Call(f"/api/v1/desk/attachments/{w.attachment}")),
    ("WS", "/ws/agent"): Rule(STAFF, None),
    # Decision traces: every desk role (traces.read); routing and the audit log: admins.
    ("GET", "/api/v1/admin/traces/{trace_id}"): Rule(STAFF, lambda w, c: Call(f"/api/v1/admin/traces/{w.trace}")),
    ("GET", "/api/v1/admin/models"): Rule(ADMINS, fixed("/api/v1/admin/models")),
    ("GET", "/api/v1/admin/models/series"): Rule(ADMINS, fixed("/api/v1/admin/models/series?bucket=minute")),
    ("POST", "/api/v1/admin/models"): Rule(ADMINS, fixed("/api/v1/admin/models", model("walk-a"))),
    ("DELETE", "/api/v1/admin/models/{name}"): Rule(
        ADMINS, lambda w, c: Call(f"/api/v1/admin/models/{w.disposable_model()}")),
    ("POST", "/api/v1/admin/models/use"): Rule(ADMINS, fixed("/api/v1/admin/models/use", {"name": "walk-a"})),
    ("POST", "/api/v1/admin/models/canary"): Rule(ADMINS, _canary),
    ("POST", "/api/v1/admin/models/promote"): Rule(ADMINS, _after_canary("promote")),
    ("POST", "/api/v1/admin/models/rollback"): Rule(ADMINS, _after_canary("rollback")),
    ("POST", "/api/v1/admin/models/fallback"): Rule(ADMINS, fixed("/api/v1/admin/models/fallback",
                                                                  {"names": ["walk-b"]})),
    ("GET", "/api/v1/admin/audit"): Rule(ADMINS, fixed("/api/v1/admin/audit?limit=5")),
    ("GET", "/api/v1/admin/audit/verify"): Rule(ADMINS, fixed("/api/v1/admin/audit/verify")),
    ("GET", "/api/v1/admin/sync"): Rule(ADMINS, fixed("/api/v1/admin/sync")),
    # Webhooks: admins.
    ("GET", "/api/v1/admin/webhooks"): Rule(ADMINS, fixed("/api/v1/admin/webhooks")),
    ("POST", "/api/v1/admin/webhooks"): Rule(ADMINS, fixed("/api/v1/admin/webhooks", {
        "url": "http://127.0.0.1:9/hooks", "events": ["csat.submitted"]}), ok=(201,)),
    ("DELETE", "/api/v1/admin/webhooks/{webhook_id}"): Rule(
        ADMINS, lambda w, c: Call(f"/api/v1/admin/webhooks/{_webhook(w)}")),
    ("POST", "/api/v1/admin/webhooks/{webhook_id}/test"): Rule(
        ADMINS, lambda w, c: Call(f"/api/v1/admin/webhooks/{_webhook(w)}/test"), ok=(202,)),
    ("GET", "/api/v1/admin/webhooks/deliveries"): Rule(ADMINS, fixed("/api/v1/admin/webhooks/deliveries?limit=5")),
    # Accounts and API tokens: admins (users.manage).
    ("GET", "/api/v1/admin/users"): Rule(ADMINS, fixed("/api/v1/admin/users")),
    ("POST", "/api/v1/admin/users"): Rule(ADMINS, lambda w, c: Call("/api/v1/admin/users", {
        "name": f"walk-new-{next(w.serial)}", "role": "agent"}), ok=(201,)),
    ("PATCH", "/api/v1/admin/users/{name}"): Rule(
        ADMINS, lambda w, c: Call(f"/api/v1/admin/users/{_account(w, c)}", {"capacity": 2})),
    ("POST", "/api/v1/admin/users/{name}/password"): Rule(
        ADMINS, lambda w, c: Call(f"/api/v1/admin/users/{_account(w, c)}/password", {})),
    ("GET", "/api/v1/admin/tokens"): Rule(ADMINS, fixed("/api/v1/admin/tokens")),
    ("POST", "/api/v1/admin/tokens"): Rule(ADMINS, lambda w, c: Call("/api/v1/admin/tokens", {
        "name": f"walk-script-{next(w.serial)}", "role": "api"}), ok=(201,)),
    ("DELETE", "/api/v1/admin/tokens/{token_id}"): Rule(
        ADMINS, lambda w, c: Call(f"/api/v1/admin/tokens/{_api_token(w, c)}")),
    # Business hours and the widget look: admins (settings.manage); the look itself, anyone.
    ("GET", "/api/v1/admin/settings"): Rule(ADMINS, fixed("/api/v1/admin/settings")),
    ("PUT", "/api/v1/admin/settings"): Rule(ADMINS, fixed("/api/v1/admin/settings", {"widget": {"title": "Walk"}})),
    ("GET", "/api/v1/widget/settings"): Rule(ANYONE, fixed("/api/v1/widget/settings")),
    # The knowledge base: admins (knowledge.manage).
    ("GET", "/api/v1/admin/kb/documents"): Rule(ADMINS, fixed("/api/v1/admin/kb/documents")),
    ("POST", "/api/v1/admin/kb/documents"): Rule(ADMINS, _kb_upload, ok=(202,)),
    ("GET", "/api/v1/admin/kb/jobs"): Rule(ADMINS, fixed("/api/v1/admin/kb/jobs")),
    ("DELETE", "/api/v1/admin/kb/documents/{document_id}"): Rule(
        ADMINS, lambda w, c: Call(f"/api/v1/admin/kb/documents/{_kb_document(w, c)}")),
    ("POST", "/api/v1/admin/kb/documents/{document_id}/reindex"): Rule(
        ADMINS, lambda w, c: Call(f"/api/v1/admin/kb/documents/{_kb_document(w, c)}/reindex"), ok=(202,)),
    ("POST", "/api/v1/admin/kb/reindex"): Rule(ADMINS, fixed("/api/v1/admin/kb/reindex"), ok=(202,)),
    ("POST", "/api/v1/admin/kb/search"): Rule(ADMINS, fixed("/api/v1/admin/kb/search", {"query": "walk page"})),
    # Intents and rules: admins (intents.manage).
    ("GET", "/api/v1/admin/intents"): Rule(ADMINS, fixed("/api/v1/admin/intents")),
    ("POST", "/api/v1/admin/intents/{intent}/examples"): Rule(ADMINS, lambda w, c: Call(
        "/api/v1/admin/intents/walk/examples", {"text": f"walk example {next(w.serial)}"}), ok=(201,)),
    ("DELETE", "/api/v1/admin/intents/{intent}/examples/{example_id}"): Rule(ADMINS, _intent_example),
    ("POST", "/api/v1/admin/intents/try"): Rule(ADMINS, fixed("/api/v1/admin/intents/try", {"text": "hello"})),
    # Reports, the conversation search and the export: supervisors and admins (reports.read).
    ("GET", "/api/v1/admin/reports"): Rule(REPORTS, fixed("/api/v1/admin/reports")),
    ("GET", "/api/v1/admin/conversations"): Rule(REPORTS, fixed("/api/v1/admin/conversations?q=hello")),
    ("GET", "/api/v1/admin/conversations/export"): Rule(
        REPORTS, fixed("/api/v1/admin/conversations/export?format=jsonl&q=hello")),
    # The OpenAI-compatible API: api tokens only.
    ("POST", "/v1/chat/completions"): Rule(OPENAI, fixed("/v1/chat/completions", {
        "model": "appliance", "messages": [{"role": "user", "content": "hello"}]})),
    ("GET", "/v1/models"): Rule(OPENAI, fixed("/v1/models")),
    ("GET", "/v1/models/{model}"): Rule(OPENAI, fixed("/v1/models/appliance")),
    # A visitor's data, exported or erased: admins.
    ("GET", "/api/v1/admin/visitors/{visitor_id}/export"): Rule(
        ADMINS, lambda w, c: Call(f"/api/v1/admin/visitors/{w.visitor_id(w.conversation)}/export")),
    ("DELETE", "/api/v1/admin/visitors/{visitor_id}"): Rule(
        ADMINS, lambda w, c: Call(f"/api/v1/admin/visitors/{w.visitor_id(w.queued())}")),
}


def refusal(rule: Rule, caller: str) -> int:
    """403 when the caller has the kind of credential the route takes (a console session, a
    token) but a role that may not; 401 when it has none of that kind."""
    # An api token is no credential at the desk (401 there), but a desk token is a token at /v1/ (403).
    same_kind = SESSIONS if caller in SESSIONS else ALL_TOKENS if caller in TOKENS else (
        (API_TOKEN,) if caller == API_TOKEN else ())
    return 403 if any(kind in rule.who for kind in same_kind) else 401


def app_routes(node: Node) -> set[tuple[str, str]]:
    """(method, path template) of every route the real application serves; ``WS`` for sockets.
    Litestar's own OPTIONS answer on every path is left out (see the OPTIONS test)."""
    from litestar.routes import HTTPRoute, WebSocketRoute

    from appliance.commands._context import read_config
    from appliance.runtime import Runtime
    from appliance.web.app import create_app

    runtime = Runtime.open(read_config(node.config))
    try:
        app = create_app(runtime)
        found: set[tuple[str, str]] = set()
        for route in app.routes:
            path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)
            if isinstance(route, WebSocketRoute):
                found.add(("WS", path))
            elif isinstance(route, HTTPRoute):
                for handler in route.route_handlers:
                    if handler.handler_name != "options_handler":
                        found.update((method, path) for method in handler.http_methods)
            else:
                found.add((type(route).__name__, path))
        return found
    finally:
        runtime.store.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    node = make_node(tmp_path_factory.mktemp("permissions") / "node", **{"offline_grace_s = 15": "offline_grace_s = 0"})
    with starting(node) as server:
        passwords = add_users(node, {"alice": "agent", "sue": "supervisor", "walker": "agent"})
        tokens = {role: new_token(node, role, f"script-{role}") for role in (*SESSIONS, "api")}
        server.wait_ready()
        yield World(node, server, passwords, tokens)


def test_every_route_of_the_app_is_in_the_table(world: World) -> None:
    served = app_routes(world.node)
    unlisted = sorted(served - set(TABLE))
    stale = sorted(set(TABLE) - served)
    assert not unlisted, f"routes with no entry in TABLE (say who may call them): {unlisted}"
    assert not stale, f"TABLE lists routes the app does not serve: {stale}"


def test_litestars_options_answer_says_only_which_methods_exist(world: World) -> None:
    for path in sorted({path for method, path in TABLE if method != "WS"}):
        concrete = re.sub(r"\{\w+\}", "x", path)
        status, body, headers = request(world.server, "OPTIONS", concrete, headers={})
        assert status == 204 and not body, (path, status, body)
        assert headers.get("Allow"), (path, dict(headers))


def check_error(status: int, body: Any, path: str = "") -> str:
    """'' when ``body`` is the one error format with a reason for ``status`` (OpenAI's under
    ``/v1/``); else what is wrong."""
    if path.startswith("/v1/"):
        error = body.get("error") if isinstance(body, dict) and set(body) == {"error"} else None
        if not isinstance(error, dict) or set(error) != {"message", "type", "param", "code"}:
            return f"not OpenAI's error format: {body!r}"
        if not str(error["message"]).strip() or (status == 403 and error["code"] != "insufficient_permissions"):
            return f"reason or code missing: {body!r}"
        return ""
    if not isinstance(body, dict) or set(body) != {"status", "error", "message"}:
        return f"not the error format: {body!r}"
    if body["status"] != status or not str(body["message"]).strip():
        return f"status or reason missing: {body!r}"
    if status == 403 and body["error"] != "forbidden":
        return f"403 with error {body['error']!r}"
    return ""


def test_every_route_answers_every_caller_as_the_table_says(world: World) -> None:
    failures: list[str] = []
    for (method, _), rule in TABLE.items():
        if rule.call is None:
            continue
        for kind in CALLERS:
            caller = world.callers[kind]
            call = rule.call(world, caller)
            status, body = caller.send(method, call)
            where = f"{method} {call.path} as {kind}: {status}"
            if kind in rule.who:
                if status not in rule.ok:
                    failures.append(f"{where}, expected {rule.ok} (allowed): {str(body)[:300]}")
            else:
                expected = refusal(rule, kind)
                problem = check_error(status, body, call.path) if status == expected else f"expected {expected}"
                if problem:
                    failures.append(f"{where} (refused): {problem}: {str(body)[:300]}")
    assert not failures, f"{len(failures)} answers differ from the table:\n" + "\n".join(failures)


def test_the_sockets_admit_whom_the_table_says(world: World) -> None:
    failures: list[str] = []
    for kind in CALLERS:
        caller = world.callers[kind]
        headers = caller.headers()
        # The widget's socket serves anyone; their credentials change nothing there.
        assert kind in TABLE[("WS", "/ws/visitor")].who
        with connect(f"ws://127.0.0.1:{world.server.port}/ws/visitor", additional_headers=headers,
                     open_timeout=10) as ws:
            if kind == VISITOR:
                ws.send(json.dumps({"type": "resume", "conversation_id": world.conversation,
                                    "visitor_token": world.visitor["visitor_token"]}))
                wanted = "history"
            else:
                ws.send(json.dumps({"type": "handoff", "language": "zh"}))
                wanted = "reply"
            frame = json.loads(ws.recv(timeout=20))
            if frame["type"] != wanted:
                failures.append(f"/ws/visitor as {kind}: {frame}")

        allowed = kind in TABLE[("WS", "/ws/agent")].who
        with connect(f"ws://127.0.0.1:{world.server.port}/ws/agent", additional_headers=headers,
                     open_timeout=10) as ws:
            try:
                frame = json.loads(ws.recv(timeout=10))
            except ConnectionClosed as exc:
                code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")
                if allowed or code != 4401 or not reason:
                    failures.append(f"/ws/agent as {kind}: closed {code} {reason!r}")
            else:
                if not allowed or frame["type"] != "hello":
                    failures.append(f"/ws/agent as {kind}: {'admitted' if not allowed else ''} {frame}")
    assert not failures, "\n".join(failures)


def test_the_route_list_sees_more_than_the_openapi_document(world: World) -> None:
    """The route check is only worth having if it sees every route: what OpenAPI documents, and
    the pages and both sockets, which it does not."""
    status, schema, _ = request(world.server, "GET", "/schema/openapi.json")
    assert status == 200
    documented = {(m.upper(), p) for p, item in schema["paths"].items() for m in item if m != "parameters"}
    assert documented <= set(TABLE), sorted(documented - set(TABLE))
    assert {("WS", "/ws/visitor"), ("WS", "/ws/agent"), ("GET", "/console")} <= app_routes(world.node)
