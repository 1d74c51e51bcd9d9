"""Visitors attach images: upload, decoding, limits, and routing to a vision model or a human."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

from tests.conftest import Node, Server
from tests.engine.harness import call, chat, new_token, running, upstreams, wait_routing

IMAGE_LIMIT = 100_000


def png(width: int = 4, height: int = 3) -> bytes:
    """A real, decodable RGB PNG, built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([200, 30, 30]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def upload(server: Server, data: bytes, token: str | None, media_type: str = "image/png") -> tuple[int, Any]:
    return call(server.url, "POST", "/api/v1/attachments", data, token=token, headers={"Content-Type": media_type})


def test_images_reach_a_vision_model_or_a_person(node: Node, tmp_path: Path) -> None:
    node.edit_config("max_image_bytes = 5242880", f"max_image_bytes = {IMAGE_LIMIT}")
    with upstreams(tmp_path, "eyes", "plain") as (eyes, plain):
        eyes.add_to(node, "--vision")
        plain.add_to(node)
        node.cli("model", "use", "eyes")
        node.cli("user", "add", "ops", "--role", "admin")
        admin = new_token(node, "admin", "ops")
        with running(node) as server:
            visitor = chat(server, "Hi, my parcel arrived damaged")
            token = visitor["visitor_token"]
            image = png()
            status, stored = upload(server, image, token)
            assert status == 201, stored
            # Stored as re-encoded (tests/web/test_uploads.py): addressed by the bytes it keeps.
            assert stored["media_type"] == "image/png" and len(stored["attachment_id"]) == 64, stored
            assert upload(server, image, token)[1]["attachment_id"] == stored["attachment_id"]  # content-addressed

            seen = chat(server, "Here is a photo of the box", visitor, attachments=[stored["attachment_id"]])
            assert seen["reply"]["source"] == "llm", seen
            assert "(I see 1 image)" in seen["reply"]["text"], seen
            assert eyes.stats()["images"] == 1

            # The upload is decoded, not trusted: a text file called .png is refused.
            status, answer = upload(server, b"just some notes, not a picture\n" * 4, token)
            assert status == 415, answer
            status, answer = upload(server, image + b"\x00" * IMAGE_LIMIT, token)
            assert status == 413, answer
            status, answer = upload(server, image, None)
            assert status == 401, answer

            # Another visitor cannot use (or learn about) someone else's attachment.
            stranger = chat(server, "Hello")
            status, answer = call(server.url, "POST", "/api/v1/chat", {
                "text": "what is this?", "visitor_token": stranger["visitor_token"],
                "attachments": [stored["attachment_id"]]})
            assert status == 404, answer
            assert eyes.stats()["images"] == 1

            # Routed to a model without vision: a person will look (ops is at the desk).
            assert call(server.url, "POST", "/api/v1/desk/presence", {"status": "online"}, token=admin)[0] == 200
            node.cli("model", "use", "plain")
            wait_routing(server, admin, "model use plain", active="plain")
            calls = (eyes.requests, plain.requests)
            handed = chat(server, "And a second photo", visitor, attachments=[stored["attachment_id"]])
            assert handed["reply"]["source"] == "handoff", handed
            assert "person will look" in handed["reply"]["text"], handed
            assert handed["owner"] == "human"
            assert (eyes.requests, plain.requests) == calls
            status, queue = call(server.url, "GET", "/api/v1/desk/conversations?filter=queue", token=admin)
            assert visitor["conversation_id"] in {c["id"] for c in queue["conversations"]}
