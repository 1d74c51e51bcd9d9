"""Uploaded images are decoded for real, stripped of their metadata, re-encoded and stored once.

Everything goes through a real server: the visitor uploads with ``POST /api/v1/attachments``,
reads back with ``GET /api/v1/attachments/{id}`` and opens what comes back with Pillow, as
anyone checking for leaked EXIF would. Hostile files (a header claiming 2³¹ × 2³¹ pixels, a
truncated JPEG, a text file called .png) get a 4xx in the one error format.
"""

from __future__ import annotations

import io
import struct
import urllib.error
import urllib.request
import zlib
from typing import Any

from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from tests.conftest import Node, Server
from tests.desk.helpers import events, handoff, request

GPS = {1: "N", 2: (31.0, 14.0, 2.5), 3: "E", 4: (121.0, 28.0, 10.0)}  # Shanghai


def photo(width: int = 64, height: int = 48) -> Image.Image:
    image = Image.new("RGB", (width, height), (30, 90, 200))
    ImageDraw.Draw(image).rectangle((0, 0, width // 2, height // 2), fill=(250, 200, 0))
    return image


def jpeg_with_gps() -> bytes:
    """A phone photo: EXIF with GPS position, camera make and 'rotate 90°' orientation, a comment."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    exif[0x8825] = GPS  # GPS IFD
    out = io.BytesIO()
    photo(64, 48).save(out, "JPEG", exif=exif, comment=b"taken at home")
    return out.getvalue()


def png_with_text() -> bytes:
    info = PngInfo()
    info.add_text("Author", "Jane Doe <jane@example.com>")
    info.add_itxt("Comment", "家庭住址：上海市")
    out = io.BytesIO()
    photo().save(out, "PNG", pnginfo=info)
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` pixels, with a tiny image body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def upload(server: Server, data: bytes, token: str, media_type: str = "image/png") -> tuple[int, Any]:
    status, body, _ = request(server, "POST", "/api/v1/attachments", data,
                              headers={"Content-Type": media_type, "Authorization": f"Bearer {token}"})
    return status, body


def download(server: Server, attachment_id: str, token: str) -> tuple[int, bytes, str]:
    req = urllib.request.Request(f"{server.url}/api/v1/attachments/{attachment_id}",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def stored_image(server: Server, attachment_id: str, token: str) -> Image.Image:
    status, data, _ = download(server, attachment_id, token)
    assert status == 200, data
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def visitor(server: Server) -> str:
    return str(handoff(server)["visitor_token"])


def assert_error(status: int, body: Any, *expected: int) -> None:
    assert status in expected, (status, body)
    assert isinstance(body, dict) and set(body) == {"status", "error", "message"}, body
    assert body["status"] == status and body["message"], body


def test_a_phone_photo_is_stored_upright_without_exif_or_gps(shared_server: Server) -> None:
    token = visitor(shared_server)
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825), "the test photo must carry GPS"

    status, stored = upload(shared_server, original, token, "image/jpeg")
    assert status == 201, stored
    assert stored["media_type"] == "image/jpeg"

    image = stored_image(shared_server, stored["attachment_id"], token)
    assert image.format == "JPEG"
    assert not image.getexif(), dict(image.getexif())  # no EXIF at all: no GPS, no camera, no orientation
    assert "exif" not in image.info and "comment" not in image.info and "icc_profile" not in image.info
    assert image.size == (48, 64)  # turned upright by its orientation, then the tag dropped
    status, data, content_type = download(shared_server, stored["attachment_id"], token)
    assert content_type.startswith("image/jpeg") and stored["size"] == len(data)


def test_png_text_chunks_are_dropped_and_the_decoder_decides_the_type(shared_server: Server) -> None:
    token = visitor(shared_server)
    status, stored = upload(shared_server, png_with_text(), token)
    assert status == 201, stored
    image = stored_image(shared_server, stored["attachment_id"], token)
    assert image.format == "PNG" and image.size == (64, 48)
    assert not getattr(image, "text", {}) and not image.info.get("Author"), image.info

    # What the client claims does not matter: a JPEG sent as image/png is a JPEG.
    status, stored = upload(shared_server, encoded(photo(), "JPEG"), token, "image/png")
    assert status == 201 and stored["media_type"] == "image/jpeg", stored
    # An animated GIF keeps its first frame, as a PNG; WebP stays WebP.
    frames = [photo(), Image.new("RGB", (64, 48), (255, 0, 0))]
    gif = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0,
                  comment=b"made by someone")
    status, stored = upload(shared_server, gif, token, "image/gif")
    assert status == 201 and stored["media_type"] == "image/png", stored
    first = stored_image(shared_server, stored["attachment_id"], token).convert("RGB")
    assert first.getpixel((50, 40)) == (30, 90, 200) and getattr(first, "n_frames", 1) == 1
    status, stored = upload(shared_server, encoded(photo(), "WEBP", exif=Image.Exif()), token, "image/webp")
    assert status == 201 and stored["media_type"] == "image/webp", stored
    assert stored_image(shared_server, stored["attachment_id"], token).format == "WEBP"


def test_hostile_and_broken_files_are_refused_with_a_clear_4xx(shared_server: Server) -> None:
    token = visitor(shared_server)
    # A header claiming 2³¹ × 2³¹ (PNG's own limit is 2³¹ - 1, so that one is malformed too).
    status, body = upload(shared_server, png_header(2**31, 2**31), token)
    assert_error(status, body, 413, 415)
    status, body = upload(shared_server, png_header(2**31 - 1, 2**31 - 1), token)
    assert_error(status, body, 413)
    status, body = upload(shared_server, png_header(6000, 5000), token)  # 30 million pixels > 25 million
    assert_error(status, body, 413)
    assert "pixels" in body["message"], body

    whole = encoded(photo(640, 480), "JPEG", quality=90)
    status, body = upload(shared_server, whole[: len(whole) // 2], token, "image/jpeg")
    assert_error(status, body, 415)
    cut_png = png_with_text()[:-30]
    status, body = upload(shared_server, cut_png, token)
    assert_error(status, body, 415)
    status, body = upload(shared_server, b"just some notes, not a picture\n" * 8, token)  # "notes.png"
    assert_error(status, body, 415)
    bmp = encoded(photo(), "BMP")  # a real image, but not one of the four formats
    status, body = upload(shared_server, bmp, token, "application/octet-stream")
    assert_error(status, body, 415)

    # (More bytes than server.max_image_bytes is a 413 before decoding: tests/web/test_limits.py.)

    # The server is unharmed: a good upload right after works.
    status, stored = upload(shared_server, encoded(photo(), "PNG"), token)
    assert status == 201, stored


def test_a_large_photo_is_scaled_down_to_the_longest_side(shared_server: Server) -> None:
    token = visitor(shared_server)
    status, stored = upload(shared_server, encoded(photo(4000, 3000), "JPEG"), token, "image/jpeg")
    assert status == 201, stored
    assert stored_image(shared_server, stored["attachment_id"], token).size == (2048, 1536)


def test_two_visitors_with_the_same_photo_share_one_stored_copy(shared_server: Server, shared_node: Node) -> None:
    first, second = visitor(shared_server), visitor(shared_server)
    data = encoded(photo(40, 40), "PNG", pnginfo=PngInfo())  # a picture only this test sends
    status, mine = upload(shared_server, data, first)
    assert status == 201, mine
    status, theirs = upload(shared_server, data, second)
    assert status == 201, theirs
    assert theirs == mine  # same id, type and size

    for token in (first, second):
        status, kept, _ = download(shared_server, mine["attachment_id"], token)
        assert status == 200, kept
    stranger = visitor(shared_server)
    assert download(shared_server, mine["attachment_id"], stranger)[0] == 404

    # Both can send it in a chat (no vision model here: it goes to a person, but it is accepted).
    for token in (first, second):
        status, answer, _ = request(shared_server, "POST", "/api/v1/chat", {
            "text": "这是包裹的照片", "visitor_token": token, "attachments": [mine["attachment_id"]]})
        assert status == 200, answer
        assert answer["reply"]["source"] in ("handoff", "leave_message"), answer

    stored = [e for e in events(shared_node, "attachment.stored") if e["attachment_id"] == mine["attachment_id"]]
    assert len(stored) == 1  # the blob is in the event log once
    shared = [e for e in events(shared_node, "attachment.shared") if e["attachment_id"] == mine["attachment_id"]]
    assert len(shared) == 1
