"""The visitor WebSocket streams the built-in model's answer token by token."""

from __future__ import annotations

import json

import aiohttp

from tests.conftest import Server


async def test_reply_streams_over_the_websocket_with_text_frames(shared_server: Server) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{shared_server.url}/ws/visitor") as ws:
        await ws.send_str(json.dumps({"text": "Can you explain what a savings account is?"}))
        tokens: list[str] = []
        while True:
            frame = json.loads((await ws.receive(timeout=60)).data)
            if frame["type"] != "token":
                break
            tokens.append(frame["text"])
        assert frame["type"] == "reply", frame
        assert len(tokens) > 3  # it really streamed
        # The final text is authoritative: the built-in model's reply is cut to its first sentences
        # (joined by single spaces where the model wrote line breaks).
        assert " ".join("".join(tokens).split()).startswith(" ".join(frame["reply"]["text"].split()))
        assert frame["reply"]["source"] == "local_model"

        status = json.loads((await ws.receive(timeout=10)).data)  # who answers: the bot, nobody waiting
        assert status["type"] == "status" and status["owner"] == "bot" and status["position"] == 0, status

        await ws.send_str("{broken")
        error = json.loads((await ws.receive(timeout=10)).data)
        assert error["type"] == "error" and error["status"] == 400

        # The socket stays usable, and continues the same conversation with its token.
        await ws.send_str(json.dumps({"text": "Thanks", "conversation_id": frame["conversation_id"],
                                      "visitor_token": frame["visitor_token"]}))
        while (last := json.loads((await ws.receive(timeout=60)).data))["type"] == "token":
            pass
        assert last["type"] == "reply" and last["conversation_id"] == frame["conversation_id"]
