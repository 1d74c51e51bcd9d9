"""Node ids for people, and the proof of identity inside the sync handshake.

A node id is the SHA-256 of the node's certificate: 64 hex digits (what ``appliance node id``
prints and what logs show), or the checksummed human form, as Syncthing writes it: the 32 bytes
in base32 (52 characters), each quarter followed by a Luhn mod-32 check character, in eight
groups of seven, ``MFZWI3D-BONSGYC-…``. ``pair add`` takes either; a mistyped character fails
the check instead of pairing with nobody.

The handshake proof: the server sends a fresh nonce; the client signs
``CONTEXT | server nonce | client nonce | server id | client id`` with its node key and sends its
certificate with the signature. The nonce ties the proof to this one connection, so a recorded
handshake replayed on another connection fails.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.core.errors import InputError

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_HEX = re.compile(r"^[0-9a-f]{64}$")
CONTEXT = b"appliance-sync/1 client proof\n"


def _luhn32(text: str) -> str:
    factor, total = 1, 0
    for char in text:
        addend = factor * _ALPHABET.index(char)
        factor = 1 if factor == 2 else 2
        total += addend // 32 + addend % 32
    return _ALPHABET[(32 - total % 32) % 32]


def human_form(node_id: str) -> str:
    plain = base64.b32encode(bytes.fromhex(node_id)).decode().rstrip("=")  # 52 characters
    checked = "".join(part + _luhn32(part) for part in (plain[i:i + 13] for i in range(0, 52, 13)))
    return "-".join(checked[i:i + 7] for i in range(0, 56, 7))


def parse_node_id(text: str) -> str:
    """A node id in either form, as 64 lower-case hex digits; InputError naming what is wrong."""
    value = text.strip()
    if _HEX.match(value.lower()):
        return value.lower()
    compact = value.upper().replace("-", "").replace(" ", "")
    if len(compact) != 56 or any(c not in _ALPHABET for c in compact):
        raise InputError(f"{text!r} is not a node id (64 hex digits, or the 8-group form `appliance node id --human`"
                         " prints)")
    parts = [compact[i:i + 14] for i in range(0, 56, 14)]
    if any(_luhn32(part[:13]) != part[13] for part in parts):
        raise InputError(f"{text!r}: check characters do not match (a typing mistake?)")
    raw = base64.b32decode("".join(part[:13] for part in parts) + "====")
    return raw.hex()


def certificate_id(certificate_der: bytes) -> str:
    return hashlib.sha256(certificate_der).hexdigest()


def certificate_der(cert_path: Path) -> bytes:
    return x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)


def _message(server_nonce: bytes, client_nonce: bytes, server_id: str, client_id: str) -> bytes:
    return b"|".join([CONTEXT, server_nonce, client_nonce, server_id.encode(), client_id.encode()])


def sign_proof(key_path: Path, server_nonce: bytes, client_nonce: bytes, server_id: str, client_id: str) -> bytes:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.sign(_message(server_nonce, client_nonce, server_id, client_id), ec.ECDSA(hashes.SHA256()))


def verify_proof(certificate: bytes, signature: bytes, server_nonce: bytes, client_nonce: bytes,
                 server_id: str) -> str | None:
    """The client's node id if ``signature`` is its key's over this connection's nonces, else None."""
    try:
        public_key = x509.load_der_x509_certificate(certificate).public_key()
    except ValueError:
        return None
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return None
    client_id = certificate_id(certificate)
    try:
        public_key.verify(signature, _message(server_nonce, client_nonce, server_id, client_id),
                          ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return None
    return client_id
