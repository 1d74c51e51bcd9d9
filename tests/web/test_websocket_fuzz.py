"""Hypothesis throws frames at both WebSockets of a real server: random bytes, random JSON (deep,
wide, wrong types, strings up to ~100 KB, Chinese, emoji, lone surrogates), frames shaped like the
protocol's with random field values, as text and as binary frames.

What must hold for every frame: the server answers bad input with an ``error`` frame in the one
format (a 4xx status, a code and a reason), never closes the socket except with 1009 for a frame
over ``server.max_ws_message_bytes`` (never 1011, 4500 or a dropped connection), and after the run
``/healthz`` answers 200 and the log holds no traceback.

Each fuzz frame is followed by a *sentinel* frame that the server is certain to refuse naming the
sentinel's id; the socket handles frames in order, so everything between the two is the server's
answer to the fuzz frame.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import Server
from tests.desk.helpers import Console, handoff, make_node, next_frame, request, starting

MAX_MESSAGE = 65_536  # server.max_ws_message_bytes in config.example.toml
ALLOWED_CLOSE = 1009  # "message too big": the one close a frame may cause, and only an oversized one
FUZZ = settings(max_examples=200, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example, HealthCheck.filter_too_much])

VISITOR_FIELDS = {"message": {"text", "conversation_id", "visitor_token", "attachments", "language", "profile"},
                  "resume": {"conversation_id", "visitor_token"},
                  "typing": {"conversation_id", "visitor_token", "typing"},
                  "handoff": {"conversation_id", "visitor_token", "language"}}
AGENT_FIELDS = {"typing": {"conversation_id", "typing"}, "activity": set(), "presence": {"status"}}

# -- strategies ---------------------------------------------------------------------------

CHARS = st.characters(categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Cs", "Co"])
CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
short_text = st.text(st.one_of(CHARS, CJK), max_size=40)
# Long strings are built, not drawn character by character: "字" × 40,000 is 120 KB of UTF-8.
long_text = st.builds(lambda piece, n: piece * n,
                      st.sampled_from(["a", "字", "😀", "\ud800", "\x00", "<script>", "é\u0301", "\\"]),
                      st.integers(0, 40_000))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), short_text)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                       st.dictionaries(short_text, inner, max_size=6)),
                      max_leaves=30)
deep = st.builds(lambda n, opener, closer: opener * n + closer * n, st.integers(1, 30_000),
                 st.sampled_from(["[", '{"a":[']), st.sampled_from(["]", "]}"]))
wide = st.integers(500, 4_000).map(lambda n: {f"k{i}": i for i in range(n)})


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices``, each drawn ``weight`` times as often (``one_of`` weighs them alike)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


def shaped(fields: dict[str, set[str]], ids: st.SearchStrategy[str], tokens: st.SearchStrategy[str]
           ) -> st.SearchStrategy[dict[str, Any]]:
    """A frame of the protocol: a known type with some of its fields, mostly with plausible values
    (so the handlers behind the decoder run too), sometimes with wrong ones or an unknown field."""
    plausible = {"conversation_id": ids, "visitor_token": tokens, "text": st.one_of(short_text, long_text),
                 "typing": st.booleans(), "language": st.sampled_from(["en", "zh", "zh-CN", "xx", ""]),
                 "status": st.sampled_from(["online", "away", "offline", "busy"]),
                 "attachments": st.lists(st.one_of(ids, short_text), max_size=5),
                 "profile": st.fixed_dictionaries({}, optional={"name": short_text, "email": short_text,
                                                                "page": long_text, "ip": short_text})}

    def frame(kind: str) -> st.SearchStrategy[dict[str, Any]]:
        some = {name: weighted((5, plausible[name]), (1, values)) for name in sorted(fields[kind])}
        typed = st.just({"type": kind}) if kind != "message" else st.sampled_from([{"type": kind}, {}])
        return st.builds(lambda head, body, extra: head | body | extra, typed,
                         st.fixed_dictionaries({}, optional=some),
                         weighted((5, st.just({})), (1, st.dictionaries(short_text, values, max_size=2))))

    known = st.sampled_from(sorted(fields)).flatmap(frame)
    unknown = st.builds(lambda kind, body: {"type": kind} | body,
                        st.one_of(st.sampled_from(["", "MESSAGE", "reply", "error", "hello"]), values),
                        st.dictionaries(st.sampled_from(sorted(plausible)), values, max_size=4))
    return weighted((4, known), (1, unknown))


def frames(fields: dict[str, set[str]], ids: st.SearchStrategy[str], tokens: st.SearchStrategy[str]
           ) -> st.SearchStrategy[tuple[str | bytes, bool]]:
    """(payload, whether it is bad input the server must answer with an error frame)."""
    documents = weighted((6, shaped(fields, ids, tokens)), (1, values), (1, deep), (1, wide), (1, long_text))

    def encode(document: Any, ascii_only: bool, binary: bool) -> tuple[str | bytes, bool]:
        text = document if isinstance(document, str) else json.dumps(document, ensure_ascii=ascii_only)
        bad = not well_formed(document, fields)
        if binary:  # a lone surrogate becomes invalid UTF-8 here
            return text.encode("utf-8", "surrogatepass"), bad
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a text frame must be UTF-8: escape the surrogates instead
            text = document if isinstance(document, str) else json.dumps(document)
            if isinstance(document, str):
                return text.encode("utf-8", "surrogatepass"), bad
        return text, bad

    encoded = st.builds(encode, documents, st.booleans(), st.booleans())
    noise = st.binary(max_size=3_000).map(lambda raw: (raw, True))
    return weighted((9, encoded), (1, noise))


def well_formed(document: Any, fields: dict[str, set[str]]) -> bool:
    """Could the server take this for one of its frames? (Not: would it succeed.)"""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except (ValueError, RecursionError):
            return False
    if not isinstance(document, dict):
        return False
    kind = document.get("type", "message" if "message" in fields else None)
    return isinstance(kind, str) and kind in fields and set(document) - {"type"} <= fields[kind]


# -- the sockets ------------------------------------------------------------------------------


class Link:
    """One socket to ``path``, opened again after the server closed it (for an oversized frame)."""

    def __init__(self, server: Server, path: str, headers: dict[str, str], sentinel: dict[str, Any]) -> None:
        self.server, self.path, self.headers, self.sentinel = server, path, headers, sentinel
        self.ws: ClientConnection | None = None
        self.count = itertools.count()
        self.reconnects = 0

    def socket(self) -> ClientConnection:
        if self.ws is None:
            self.ws = connect(f"ws://127.0.0.1:{self.server.port}{self.path}", additional_headers=self.headers,
                              open_timeout=15, max_size=None)
            if self.path == "/ws/agent":
                next_frame(self.ws, lambda f: f["type"] == "hello", "hello")
        return self.ws

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()

    def exchange(self, payload: str | bytes, bad: bool) -> None:
        size = len(payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload)
        ws = self.socket()
        mark = f"sentinel-{next(self.count)}"
        try:
            ws.send(payload)
            ws.send(json.dumps({**self.sentinel, "conversation_id": mark}))
            answers = self.until(ws, mark)
        except ConnectionClosed as exc:
            self.ws = None
            self.reconnects += 1
            code = exc.rcvd.code if exc.rcvd else None
            assert code == ALLOWED_CLOSE and size > MAX_MESSAGE, (
                f"{self.path} closed with {code} ({exc.rcvd.reason if exc.rcvd else 'no close frame'}) "
                f"after a {size}-byte frame {payload[:200]!r}")
            return
        assert size <= MAX_MESSAGE, f"a {size}-byte frame was read; the limit is {MAX_MESSAGE}"
        errors = [a for a in answers if a.get("type") == "error"]
        for error in errors:
            assert set(error) == {"type", "status", "error", "message"}, error
            assert 400 <= error["status"] < 500 and error["error"] and error["message"], (payload[:200], error)
        if bad:
            assert errors, f"no error frame for bad input {payload[:200]!r}; got {answers}"

    @staticmethod
    def until(ws: ClientConnection, mark: str) -> list[dict[str, Any]]:
        """Frames up to the sentinel's refusal (which names ``mark``); those before it answer the fuzz frame."""
        seen: list[dict[str, Any]] = []
        while True:
            raw = ws.recv(timeout=60)
            frame = json.loads(raw)
            assert isinstance(frame, dict) and isinstance(frame.get("type"), str), raw[:300]
            if frame["type"] == "error" and mark in frame.get("message", ""):
                assert frame["status"] == 404, frame
                return seen
            seen.append(frame)


class Fuzzed:
    def __init__(self, server: Server, admin: Console, visitor: dict[str, Any]) -> None:
        self.server, self.admin, self.visitor = server, admin, visitor


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    # Generous per-socket and per-conversation limits (they have their own tests in test_limits.py),
    # short turns and replies: this is about the frame path, not about answers.
    node = make_node(tmp_path_factory.mktemp("wsfuzz") / "node", **{
        "ws_frames_per_socket_per_minute = 300": "ws_frames_per_socket_per_minute = 1000000",
        "chat_per_visitor_per_minute = 20": "chat_per_visitor_per_minute = 1000000",
        "chat_per_conversation_per_minute = 20": "chat_per_conversation_per_minute = 1000000",
        "turn_budget_s = 8.0": "turn_budget_s = 0.5", "reply_max_tokens = 160": "reply_max_tokens = 8"})
    with starting(node) as server:
        server.wait_ready()
        visitor = handoff(server, language="zh")  # waiting for a person: messages into it need no bot turn
        yield Fuzzed(server, Console(server, "admin", node.admin_password), visitor)


def plausible_ids(visitor: dict[str, Any]) -> tuple[st.SearchStrategy[str], st.SearchStrategy[str]]:
    ids = st.one_of(st.sampled_from([visitor["conversation_id"], "conv_0000", "", "../../etc/passwd"]), short_text)
    tokens = st.one_of(st.sampled_from([visitor["visitor_token"], visitor["visitor_token"] + "x", ""]), short_text)
    return ids, tokens


EXAMPLES = [  # the probes that found defects once, every run
    ("[" * 30_000 + "]" * 30_000, True),
    ('{"type": "resume", "conversation_id": "c", "visitor_token": "tökén✓"}', False),
    ('{"text": "\\ud800", "language": "zh"}', False),
    (b'{"text": "\xed\xa0\x80"}', True),
    (b"\xff\xfe\x00garbage", True),
    ("字" * 30_000, True),
    (json.dumps({"text": "a" * 70_000}), True),
    (json.dumps({"text": "字" * 5_000, "language": "zh"}, ensure_ascii=False), False),  # over max_text_chars
    (json.dumps({"type": "typing", "conversation_id": {"$ne": None}, "typing": "yes"}), True),
]


def test_fuzzed_visitor_frames_get_error_frames_and_never_break_the_server(fuzzed: Fuzzed) -> None:
    ids, tokens = plausible_ids(fuzzed.visitor)
    sentinel = {"type": "typing", "visitor_token": fuzzed.visitor["visitor_token"], "typing": False}
    link = Link(fuzzed.server, "/ws/visitor", {}, sentinel)

    @FUZZ
    @given(frames(VISITOR_FIELDS, ids, tokens))
    def check(frame: tuple[str | bytes, bool]) -> None:
        link.exchange(*frame)

    for probe in EXAMPLES:
        check = example(probe)(check)
    try:
        check()
        # Still a working widget socket: a new conversation gets its answer.
        ws = link.socket()
        ws.send(json.dumps({"type": "handoff", "language": "zh"}))
        assert next_frame(ws, lambda f: f["type"] in ("reply", "error"), "reply")["type"] == "reply"
    finally:
        link.close()


def test_fuzzed_console_frames_get_error_frames_and_never_break_the_server(fuzzed: Fuzzed) -> None:
    ids, _ = plausible_ids(fuzzed.visitor)
    headers = {"Cookie": f"appliance_session={fuzzed.admin.cookie}"}
    link = Link(fuzzed.server, "/ws/agent", headers, {"type": "typing", "typing": False})

    @settings(FUZZ, max_examples=100)
    @given(frames(AGENT_FIELDS, ids, st.just("")))
    def check(frame: tuple[str | bytes, bool]) -> None:
        link.exchange(*frame)

    for probe in EXAMPLES:
        check = example(probe)(check)
    try:
        check()
        ws = link.socket()  # still the admin's live desk
        ws.send(json.dumps({"type": "presence", "status": "offline"}))
        next_frame(ws, lambda f: f["type"] == "presence", "presence")
    finally:
        link.close()


def test_after_the_fuzz_the_server_is_healthy_and_logged_no_traceback(fuzzed: Fuzzed) -> None:
    status, body, _ = request(fuzzed.server, "GET", "/healthz")
    assert status == 200 and body["status"] == "ok", body
    log = fuzzed.server.log.read_text(errors="replace")
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-6000:]
