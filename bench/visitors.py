"""The ``image`` scenario's visitor pool: each visitor has a token and one small PNG uploaded.

Made before wrk starts, from Python: a first chat issues the visitor token, then
``POST /api/v1/attachments`` stores that visitor's image. Every image differs (attachments are
stored by content hash, per visitor). wrk then cycles through the pool, starting a new
conversation for a pooled visitor on every request, with that visitor's image attached.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path

import aiohttp

from bench.processes import BenchError


def png(seed: int, size: int = 16) -> bytes:
    """A ``size`` x ``size`` RGB PNG whose pixels depend on ``seed`` (about 100 bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + bytes(((seed * 7 + x * 13 + y * 29 + c * 71) % 256) for x in range(size) for c in range(3))
        for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def _visitor(session: aiohttp.ClientSession, url: str, seed: int) -> tuple[str, str]:
    async with session.post(f"{url}/api/v1/chat", json={"text": f"Hello, I have a photo to show you ({seed})"}) as r:
        if r.status != 200:
            raise BenchError(f"first chat for the image pool failed: HTTP {r.status} {await r.text()}")
        token = (await r.json())["visitor_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}
    async with session.post(f"{url}/api/v1/attachments", data=png(seed), headers=headers) as r:
        if r.status != 201:
            raise BenchError(f"image upload failed: HTTP {r.status} {await r.text()}")
        attachment = (await r.json())["attachment_id"]
    return token, attachment


async def _pool(url: str, size: int, concurrency: int) -> list[tuple[str, str]]:
    limit = asyncio.Semaphore(concurrency)

    async def one(seed: int) -> tuple[str, str]:
        async with limit:
            return await _visitor(session, url, seed)

    async with aiohttp.ClientSession() as session:
        return await asyncio.gather(*(one(seed) for seed in range(size)))


def make_pool(url: str, size: int, path: Path, concurrency: int = 16) -> Path:
    """Create ``size`` visitors with an image each; write "token attachment_id" lines to ``path``."""
    pool = asyncio.run(_pool(url, size, concurrency))
    path.write_text("".join(f"{token} {attachment}\n" for token, attachment in pool))
    return path
