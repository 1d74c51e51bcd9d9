"""Both ends of the control channel: the server's Unix socket and the CLI's request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import struct
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import msgspec

log = logging.getLogger("appliance.control")

RUNTIME_FILE = "serve.json"
SOCKET_FILE = "control.sock"
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 elsewhere
_MAX_LINE = 64 * 1024

Topic = Literal["routing", "knowledge", "accounts", "webhooks", "settings"]
TOPICS: tuple[str, ...] = Topic.__args__  # type: ignore[attr-defined]


class RuntimeInfo(msgspec.Struct, kw_only=True):
    """What ``serve.json`` says: who is serving this data directory and where to reach it."""

    pid: int
    socket: str


class Refresh(msgspec.Struct, kw_only=True):
    topics: list[Topic]


class Answer(msgspec.Struct, kw_only=True):
    applied: list[str] = msgspec.field(default_factory=list)
    error: str = ""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """How a request ended: ``applied`` (the server reloaded), ``no_server`` (nothing is serving
    this data directory, or what served it is gone), ``no_answer`` (a server is there but did not
    answer in time) or ``failed`` (it answered with an error)."""

    state: Literal["applied", "no_server", "no_answer", "failed"]
    pid: int = 0
    detail: str = ""


Refresher = Callable[[list[Topic]], Awaitable[list[str]]]


class ControlServer:
    """The server's end: listens while the node serves, removes its files when it stops."""

    def __init__(self, data_dir: Path, refresh: Refresher) -> None:
        self._data_dir = data_dir
        self._refresh = refresh
        self._server: asyncio.Server | None = None
        self._private_dir: Path | None = None
        self.socket_path: Path | None = None

    async def start(self) -> None:
        path = self._data_dir / SOCKET_FILE
        if len(os.fsencode(path.resolve())) > _MAX_SOCKET_PATH:
            self._private_dir = Path(tempfile.mkdtemp(prefix="appliance-"))  # mode 0700
            path = self._private_dir / SOCKET_FILE
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a server that was killed
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(path), limit=_MAX_LINE)
        finally:
            os.umask(old_umask)
        path.chmod(0o600)
        self.socket_path = path
        info = msgspec.json.encode(RuntimeInfo(pid=os.getpid(), socket=str(path.resolve())))
        temporary = self._data_dir / f".{RUNTIME_FILE}.{os.getpid()}"
        temporary.write_bytes(info)
        temporary.chmod(0o600)
        temporary.replace(self._data_dir / RUNTIME_FILE)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)
        self._server = None
        info = read_runtime(self._data_dir)
        if info is not None and info.pid == os.getpid():  # not another server's, started since
            with contextlib.suppress(FileNotFoundError):
                (self._data_dir / RUNTIME_FILE).unlink()
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _same_user(writer.get_extra_info("socket")):
                answer = Answer(error="refused: the caller is not this server's user")
            else:
                try:
                    line = await asyncio.wait_for(reader.readline(), 5)
                    request = msgspec.json.decode(line, type=Refresh)
                except (TimeoutError, ValueError, asyncio.LimitOverrunError) as exc:
                    answer = Answer(error=f"bad request: {exc}")
                else:
                    try:
                        answer = Answer(applied=await self._refresh(list(request.topics)))
                    except Exception as exc:  # the channel answers; the server goes on
                        log.exception("refresh of %s failed", request.topics)
                        answer = Answer(error=f"{type(exc).__name__}: {exc}")
            writer.write(msgspec.json.encode(answer) + b"\n")
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


def _same_user(sock: socket.socket | None) -> bool:
    if sock is None:
        return False
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (AttributeError, OSError):  # no SO_PEERCRED: the 0600 socket file is the guard
        return True
    _, uid, _ = struct.unpack("3i", creds)
    return uid in (os.getuid(), 0)


def read_runtime(data_dir: Path) -> RuntimeInfo | None:
    try:
        return msgspec.json.decode((data_dir / RUNTIME_FILE).read_bytes(), type=RuntimeInfo)
    except (FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def tell_server(data_dir: Path, topics: list[Topic], *, timeout_s: float = 10.0) -> Outcome:
    """Ask the server serving ``data_dir`` to reload ``topics``; wait at most ``timeout_s``."""
    info = read_runtime(data_dir)
    if info is None:
        return Outcome(state="no_server")
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return Outcome(state="no_server", pid=info.pid, detail="stale runtime file")
    except PermissionError:
        pass  # alive, another user's: the socket will say
    request = msgspec.json.encode(Refresh(topics=topics)) + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(info.socket)
        except (FileNotFoundError, ConnectionRefusedError):
            return Outcome(state="no_server", pid=info.pid, detail="stale runtime file")
        except TimeoutError:
            return Outcome(state="no_answer", pid=info.pid)
        except OSError as exc:
            return Outcome(state="failed", pid=info.pid, detail=f"cannot reach it: {exc.strerror or exc}")
        try:
            sock.sendall(request)
            raw = _read_line(sock)
        except TimeoutError:
            return Outcome(state="no_answer", pid=info.pid)
        except OSError as exc:
            return Outcome(state="failed", pid=info.pid, detail=f"the connection failed: {exc.strerror or exc}")
    try:
        answer = msgspec.json.decode(raw, type=Answer)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Outcome(state="failed", pid=info.pid, detail="it answered something unreadable")
    if answer.error:
        return Outcome(state="failed", pid=info.pid, detail=answer.error)
    return Outcome(state="applied", pid=info.pid)


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < _MAX_LINE:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
