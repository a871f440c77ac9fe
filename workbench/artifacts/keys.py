"""Keys for signed and encrypted exports: Ed25519 signing pairs and AES-256 secrets (`cryptography`).

A manifest is signed with an Ed25519 private key (`generate` writes a PEM pair; the private file is readable by
its owner only) and checked on the device with the public key. An encrypted artefact uses a 32-byte AES-256-GCM
secret (`generate_secret`), shared with the device out of band.

Example:
    >>> private, public = workbench.keys.generate("keys/")
    >>> secret = workbench.keys.generate_secret("keys/model.key")
    >>> art = workbench.export(task.model, "onnx-int8", "out/", task=task, sign_with=private, encrypt_with=secret)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError

SECRET_BYTES = 32
PRIVATE_NAME = "signing-key.pem"
PUBLIC_NAME = "signing-key.pub.pem"


def generate(directory: str | os.PathLike, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Make an Ed25519 key pair in `directory` and return ``(private_path, public_path)``.

    The private key is PEM (PKCS#8, unencrypted) with file mode 0600; the public key is PEM
    (SubjectPublicKeyInfo). Existing keys are never overwritten unless ``overwrite=True``.

    Example:
        >>> private, public = generate("keys/")
        >>> private.name, public.name, oct(private.stat().st_mode & 0o777)
        ('signing-key.pem', 'signing-key.pub.pem', '0o600')
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder = Path(directory)
    private_path, public_path = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    existing = [p for p in (private_path, public_path) if p.exists()]
    if existing and not overwrite:
        raise WorkbenchError(
            f"{existing[0]} already exists; keys are never overwritten by accident. Pick another directory or pass "
            "overwrite=True (manifests signed with the old key will then no longer verify with the new one)."
        )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    folder.mkdir(parents=True, exist_ok=True)
    write_private(private_path, private_pem)
    _write(public_path, public_pem, 0o644)
    return private_path, public_path


def generate_secret(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a fresh random 32-byte AES-256 key to `path` (mode 0600) and return the path."""
    out = Path(path)
    if out.exists() and not overwrite:
        raise WorkbenchError(f"{out} already exists; pass overwrite=True to replace it (old artefacts stay locked).")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_private(out, os.urandom(SECRET_BYTES))
    return out


def write_private(path: Path, data: bytes) -> None:
    """Write secret bytes atomically, the file created with mode 0600 (never readable by others, not even briefly)."""
    _write(path, data, 0o600)


def _write(path: Path, data: bytes, mode: int) -> None:
    from workbench.core.paths import atomic_write

    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)  # the umask may have narrowed it further; set exactly

    atomic_write(path, write)


def _read(key: Any, what: str) -> bytes:
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    if isinstance(key, (str, os.PathLike)):
        path = Path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise WorkbenchError(f"{path}: no such {what} file. Check the path.") from None
        except IsADirectoryError:
            raise WorkbenchError(f"{path} is a directory; pass the {what} file inside it.") from None
        except OSError as e:
            raise WorkbenchError(f"{path}: cannot read the {what} ({e.strerror}).") from None
    raise WorkbenchError(f"Pass the {what} as a file path or bytes, got {type(key).__name__}.")


def load_private(key: Any) -> Any:
    """An `Ed25519PrivateKey` from a PEM file path, PEM bytes, or the key object itself."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(key, Ed25519PrivateKey):
        return key
    data = _read(key, "private signing key")
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise WorkbenchError(
            f"{_name(key)} is not an unencrypted PEM private key ({e}). Make one with workbench.keys.generate(dir)."
        ) from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise WorkbenchError(f"{_name(key)} holds a {type(loaded).__name__}; manifests are signed with Ed25519 keys "
                             "(workbench.keys.generate).")
    return loaded


def load_public(key: Any) -> Any:
    """An `Ed25519PublicKey` from a PEM file path, PEM bytes, or the key object (a private key gives its public)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, Ed25519PrivateKey):
        return key.public_key()
    data = _read(key, "public key")
    try:
        loaded = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise WorkbenchError(
            f"{_name(key)} is not a PEM public key ({e}). Pass the .pub.pem file from workbench.keys.generate()."
        ) from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise WorkbenchError(f"{_name(key)} holds a {type(loaded).__name__}; manifests are verified with Ed25519 keys.")
    return loaded


def key_id(public_key: Any) -> str:
    """sha256 (hex) of the raw 32-byte public key: names the key in a manifest without revealing anything."""
    from cryptography.hazmat.primitives import serialization

    raw = load_public(public_key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_secret(key: Any) -> bytes:
    """A 32-byte AES-256 key from bytes or a key file (raw 32 bytes, or 64 hex characters)."""
    data = _read(key, "encryption key")
    if len(data) != SECRET_BYTES:
        text = data.strip()
        try:
            decoded = bytes.fromhex(text.decode("ascii")) if len(text) == 2 * SECRET_BYTES else b""
        except (UnicodeDecodeError, ValueError):
            decoded = b""
        if len(decoded) != SECRET_BYTES:
            raise WorkbenchError(
                f"{_name(key)}: an AES-256 key is {SECRET_BYTES} bytes (raw, or {2 * SECRET_BYTES} hex characters); "
                f"got {len(data)} bytes. Make one with workbench.keys.generate_secret(path)."
            )
        data = decoded
    return data


def _name(key: Any) -> str:
    return str(key) if isinstance(key, (str, os.PathLike)) else "the key"
