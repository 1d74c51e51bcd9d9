"""The sync wire format: length-prefixed msgpack frames on one bidirectional QUIC stream.

Each frame is a 4-byte big-endian length and a msgspec-msgpack :data:`Frame` (tagged by ``f``).
``version`` travels in the first frame of each side; fields added later get defaults, and a
frame of an unknown kind is skipped, so nodes of different versions interoperate.

The exchange, client on the left::

    Hello(version, node id, nonce)            ->
                                              <- Challenge(version, node id, nonce)
    Proof(certificate, signature)             ->
                                              <- Accepted | Refused(reason)  (then the connection closes)
    then both sides, symmetrically:
    Marks([(origin, epoch, highest seq)])    <->  on connect, and again every anti-entropy period
    Batch([events, each stream in order])    <->
    Ack([(origin, epoch, highest applied)])  <->  after each batch is durable
"""

from __future__ import annotations

import struct
import zlib

import msgspec

from appliance.core import events as ev

ALPN = "appliance-sync/1"
PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024  # one event may carry a large document or an image


class Frame(msgspec.Struct, tag_field="f", kw_only=True):
    pass


class Hello(Frame, tag="hello"):
    version: int
    node_id: str
    nonce: bytes


class Challenge(Frame, tag="challenge"):
    version: int
    node_id: str
    nonce: bytes


class Proof(Frame, tag="proof"):
    certificate: bytes
    signature: bytes


class Accepted(Frame, tag="accepted"):
    name: str = ""


class Refused(Frame, tag="refused"):
    reason: str


Mark = tuple[str, int, int]  # (origin, epoch, highest seq)


class Marks(Frame, tag="marks"):
    marks: list[Mark]


class Batch(Frame, tag="batch"):
    """Events, each stream in order: as ``events``, or zlib-compressed msgpack of that list in
    ``packed`` (``codec="zlib"``), which a large batch of text shrinks to a fraction."""

    events: list[ev.Event] = msgspec.field(default_factory=list)
    codec: str = ""
    packed: bytes = b""


COMPRESS_ABOVE = 4096  # bytes of payload below which compression is not worth it
_events_decoder = msgspec.msgpack.Decoder(list[ev.Event])


def batch(events: list[ev.Event]) -> Batch:
    if sum(len(e.payload) for e in events) < COMPRESS_ABOVE:
        return Batch(events=events)
    return Batch(codec="zlib", packed=zlib.compress(msgspec.msgpack.encode(events), 1))


def batch_events(frame: Batch) -> list[ev.Event]:
    """The events of a batch; ProtocolError for an unknown codec or a body over the frame limit."""
    if not frame.codec:
        return frame.events
    if frame.codec != "zlib":
        raise ProtocolError(f"unknown batch codec {frame.codec!r}")
    inflate = zlib.decompressobj()
    try:
        body = inflate.decompress(frame.packed, MAX_FRAME_BYTES)
    except zlib.error as exc:
        raise ProtocolError(f"corrupt batch: {exc}") from None
    if inflate.unconsumed_tail:
        raise ProtocolError(f"batch inflates past the {MAX_FRAME_BYTES}-byte limit")
    try:
        return _events_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(f"malformed batch: {exc}") from None


class Ack(Frame, tag="ack"):
    marks: list[Mark]


AnyFrame = Hello | Challenge | Proof | Accepted | Refused | Marks | Batch | Ack
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyFrame)
_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent something that is not a frame of this protocol."""


def encode(frame: Frame) -> bytes:
    body = _encoder.encode(frame)
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> AnyFrame | None:
    """A frame, or None for a well-formed frame of a kind this version does not know."""
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        if "Invalid value" in str(exc) and "`$.f`" in str(exc):
            return None
        raise ProtocolError(f"malformed frame: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"malformed frame: {exc}") from None


class FrameBuffer:
    """Sans-I/O framing: feed received bytes, take whole frames out."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> list[AnyFrame]:
        self._data += data
        frames: list[AnyFrame] = []
        while len(self._data) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._data)
            if size > MAX_FRAME_BYTES:
                raise ProtocolError(f"frame of {size} bytes is over the {MAX_FRAME_BYTES}-byte limit")
            if len(self._data) < _HEADER.size + size:
                break
            body = bytes(self._data[_HEADER.size:_HEADER.size + size])
            del self._data[:_HEADER.size + size]
            frame = decode(body)
            if frame is not None:
                frames.append(frame)
        return frames


def to_marks(held: dict[tuple[str, int], int]) -> list[Mark]:
    return [(origin, epoch, seq) for (origin, epoch), seq in sorted(held.items())]


def from_marks(marks: list[Mark]) -> dict[tuple[str, int], int]:
    return {(origin, epoch): seq for origin, epoch, seq in marks}
