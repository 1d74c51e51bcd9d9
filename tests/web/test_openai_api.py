"""The OpenAI-compatible API, called with the official ``openai`` package against a real
``appliance serve`` whose LLM is the mock upstream; every answer is checked against what the
desk stores and shows."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import openai
import pytest

from tests.conftest import ROOT, Node, Server, init_node
from tests.engine.harness import Upstream, call, new_token

RETURNS_EN = """# Returns

## Refund period

You can return any item within 30 days of delivery. Refunds reach your account within 5 business days
after the parcel arrives at our warehouse.
"""
RETURNS_ZH = """# 退货政策

## 退款期限

收货后 30 天内可以申请退货。仓库收到退货包裹后，退款会在 5 个工作日内退回您的账户。
"""


class Site(NamedTuple):
    node: Node
    server: Server
    upstream: Upstream
    api: str
    agent: str
    admin: str

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.server.url}/v1", api_key=key or self.api, max_retries=0)

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        status, body = call(self.server.url, "GET", f"/api/v1/desk/conversations/{conversation_id}", token=self.admin)
        assert status == 200, body
        return dict(body)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("openai")
    node = init_node(directory / "node")
    docs = directory / "docs"
    docs.mkdir()
    (docs / "returns.md").write_text(RETURNS_EN, encoding="utf-8")
    (docs / "退货.md").write_text(RETURNS_ZH, encoding="utf-8")
    node.cli("kb", "add", "--quiet", str(docs))
    upstream = Upstream(directory, "llm", chunk_delay_ms=5)
    try:
        upstream.add_to(node)
        node.cli("model", "use", "llm")
        tokens = {role: new_token(node, role, f"script-{role}") for role in ("api", "agent", "admin")}
        server = Server(node).start()
        try:
            yield Site(node, server, upstream, tokens["api"], tokens["agent"], tokens["admin"])
        finally:
            server.stop()
    finally:
        upstream.stop()


def bot_texts(detail: dict[str, Any]) -> list[str]:
    return [m["text"] for m in detail["messages"] if m["role"] == "bot"]


def test_models_lists_the_appliance_engine(site: Site) -> None:
    assert [m.id for m in site.client().models.list()] == ["appliance"]
    assert site.client().models.retrieve("appliance").owned_by == "appliance"


def test_a_plain_completion_is_the_engines_answer_with_its_citations(site: Site) -> None:
    answer = site.client().chat.completions.create(
        model="appliance", messages=[{"role": "system", "content": "be brief"},
                                     {"role": "user", "content": "How many days do I have to return an item?"}])
    text = answer.choices[0].message.content
    assert answer.object == "chat.completion" and answer.choices[0].finish_reason == "stop"
    assert text == "Mock answer about: days do I have to return an item?"  # the LLM (last 8 words), as routed
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    extra = answer.model_extra["appliance"]
    assert extra["source"] == "llm" and extra["trace_id"]
    assert [c["document"] for c in extra["citations"]][:1] == ["returns.md"]
    detail = site.conversation(extra["conversation_id"])  # stored like any visitor turn, on the desk
    assert [m["role"] for m in detail["messages"]] == ["visitor", "bot"]
    assert detail["messages"][0]["text"] == "How many days do I have to return an item?"
    assert bot_texts(detail) == [text]
    assert extra["trace_id"] in detail["traces"]


def test_streamed_chunks_add_up_to_the_stored_reply(site: Site) -> None:
    stream = site.client().chat.completions.create(
        model="appliance", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "When does the refund reach my account after a return?"}])
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(contents) > 3  # the engine's tokens as they came, not one block
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finished) == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    extra = finished[0].model_extra["appliance"]
    detail = site.conversation(extra["conversation_id"])
    assert bot_texts(detail) == ["".join(contents)]
    assert "".join(contents).startswith("Mock answer about:")


def test_the_same_user_continues_one_conversation_until_a_person_takes_it(site: Site) -> None:
    client = site.client()

    def ask(text: str, user: str, who: openai.OpenAI = client) -> Any:
        return who.chat.completions.create(model="appliance", user=user, messages=[{"role": "user", "content": text}])

    first = ask("Can I return shoes I already wore?", "customer-42")
    second = ask("And how long does the refund take?", "customer-42")
    conversation = first.model_extra["appliance"]["conversation_id"]
    assert second.model_extra["appliance"]["conversation_id"] == conversation
    detail = site.conversation(conversation)
    assert [m["role"] for m in detail["messages"]] == ["visitor", "bot", "visitor", "bot"]
    assert detail["messages"][2]["text"] == "And how long does the refund take?"
    other = ask("Can I return shoes I already wore?", "customer-43")
    assert other.model_extra["appliance"]["conversation_id"] != conversation
    second_key = new_token(site.node, "api", "another-integration")
    elsewhere = ask("Can I return shoes I already wore?", "customer-42", site.client(second_key))
    assert elsewhere.model_extra["appliance"]["conversation_id"] != conversation  # a user is per token

    status, body = call(site.server.url, "POST", f"/api/v1/desk/conversations/{conversation}/take", token=site.admin)
    assert status == 200, body
    taken = ask("Hello? Is anyone there?", "customer-42")
    assert taken.choices[0].message.content == (
        "A person from our team is handling this conversation and will answer you here.")
    assert taken.model_extra["appliance"]["owner"] == "human"
    assert taken.model_extra["appliance"]["conversation_id"] == conversation
    messages = site.conversation(conversation)["messages"]
    assert messages[-1]["role"] == "visitor" and messages[-1]["text"] == "Hello? Is anyone there?"


def test_a_chinese_question_gets_a_chinese_answer_when_the_llm_is_down(site: Site) -> None:
    site.upstream.set(mode="error", times=20)
    try:
        answer = site.client().chat.completions.create(
            model="appliance", messages=[{"role": "user", "content": "收货后多少天内可以退货？"}])
    finally:
        site.upstream.set(mode="ok")
    text = answer.choices[0].message.content or ""
    extra = answer.model_extra["appliance"]
    assert extra["source"] in ("local_model", "extractive"), extra
    assert re.search(r"[\u4e00-\u9fff]{4}", text) and "30" in text, text
    assert [c["document"] for c in extra["citations"]][:1] == ["退货.md"]


def test_a_wrong_or_missing_key_is_openais_401(site: Site) -> None:
    with pytest.raises(openai.AuthenticationError) as wrong:
        site.client("sk-not-a-real-key").chat.completions.create(
            model="appliance", messages=[{"role": "user", "content": "hi"}])
    assert wrong.value.status_code == 401
    assert wrong.value.code == "invalid_api_key" and wrong.value.type == "invalid_request_error"
    status, body = call(site.server.url, "GET", "/v1/models")
    assert status == 401 and body["error"]["code"] == "invalid_api_key" and body["error"]["message"]


def test_only_an_api_token_may_call_it_and_it_has_no_desk_powers(site: Site) -> None:
    for key in (site.agent, site.admin):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            site.client(key).chat.completions.create(model="appliance", messages=[{"role": "user", "content": "hi"}])
        assert "--role api" in refused.value.message
    for path in ("/api/v1/desk/conversations?filter=open", "/api/v1/admin/models", "/api/v1/auth/me"):
        status, body = call(site.server.url, "GET", path, token=site.api)
        assert status in (401, 403) and body["error"] in ("forbidden", "unauthorized"), (path, body)
    listed = site.node.cli("token", "list").stdout
    assert re.search(r"script-api\s+api\s+active", listed), listed
    refused_user = site.node.cli("user", "add", "robot", "--role", "api", check=False)
    assert refused_user.returncode == 2 and "invalid choice" in refused_user.stderr


def test_bad_requests_are_openais_400_and_404(site: Site) -> None:
    client = site.client()
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.code == "model_not_found" and "gpt-4o" in unknown.value.message
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model="appliance", messages=[])
    assert empty.value.type == "invalid_request_error" and empty.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as last:
        client.chat.completions.create(model="appliance", messages=[{"role": "assistant", "content": "hi"}])
    assert "last message" in last.value.message
    headers = {"Authorization": f"Bearer {site.api}"}
    for raw in (b"{not json", b'{"model": "appliance", "messages": "hi"}', b'{"messages": [{"role": "user"}]}'):
        status, body = call(site.server.url, "POST", "/v1/chat/completions", raw, headers=headers)
        assert status == 400, (raw, body)
        assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["message"], body
    status, body = call(site.server.url, "GET", "/v1/embeddings", headers=headers)
    assert status == 404 and set(body) == {"error"}
    assert site.client().models.list().data  # still serving


def readme_examples() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## OpenAI-compatible API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "README lost its OpenAI client examples"
    return blocks


@pytest.mark.parametrize("which", [0, 1], ids=["plain", "streaming"])
def test_the_readme_examples_run_verbatim(site: Site, tmp_path: Path, which: int) -> None:
    code = readme_examples()[which]
    assert "http://localhost:8080/v1" in code and "YOUR_API_TOKEN" in code
    script = tmp_path / "example.py"
    script.write_text(code.replace("http://localhost:8080/v1", f"{site.server.url}/v1")
                      .replace("YOUR_API_TOKEN", site.api))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Mock answer about:" in done.stdout, done.stdout
