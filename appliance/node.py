"""A node's identity on disk: its self-signed certificate, private key and token secret.

The node id is the SHA-256 of the certificate (DER), as in Syncthing: a peer recognises a node
by the certificate it presents, never by an address.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.core.errors import ConfigError

CERT_FILE = "node.crt"
KEY_FILE = "node.key"
SECRET_FILE = "token.secret"


@dataclass(frozen=True)
class NodeIdentity:
    node_id: str
    cert_path: Path
    key_path: Path
    secret: bytes

    @classmethod
    def create(cls, data_dir: Path, name: str) -> NodeIdentity:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=36500))
            .sign(key, hashes.SHA256())
        )
        _write_private(data_dir / KEY_FILE, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ))
        (data_dir / CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(data_dir / SECRET_FILE, secrets.token_bytes(32))
        return cls.load(data_dir)

    @classmethod
    def load(cls, data_dir: Path) -> NodeIdentity:
        cert_path, key_path, secret_path = data_dir / CERT_FILE, data_dir / KEY_FILE, data_dir / SECRET_FILE
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            secret = secret_path.read_bytes()
        except FileNotFoundError as exc:
            raise ConfigError(
                f"{exc.filename}: node identity missing (run `appliance init` for this data directory)"
            ) from None
        except ValueError as exc:
            raise ConfigError(f"{cert_path}: unreadable certificate ({exc})") from None
        if len(secret) < 32:
            raise ConfigError(f"{secret_path}: token secret is too short")
        node_id = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        return cls(node_id, cert_path, key_path, secret)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
