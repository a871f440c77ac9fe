"""Keys for signed and encrypted exports: Ed25519 signing pairs and AES-256 secrets (`cryptography`).

A manifest is signed with an Ed25519 private key (`generate` writes a PEM pair; the private file is readable by
its owner only, and with ``passphrase=`` it is also encrypted, PKCS#8 with cryptography's
``BestAvailableEncryption``) and checked on the device with the public key. An encrypted artefact uses a 32-byte
AES-256-GCM secret (`generate_secret`), shared with the device out of band.

**Revocation.** A key whose private half leaked must stop being trusted even though its signatures stay
mathematically valid. A *revocation list* is a text file of revoked key fingerprints (`key_id`: sha256 of the raw
public key, the ``signature.key_id`` every signed manifest names), one per line, ``#`` starting a comment;
`revoke` appends to it, `revoked_ids` reads it, and ``workbench.verify(..., revoked=<list file or ids>)`` refuses
any manifest signed by a listed key. The list itself must reach the device through a channel the attacker does
not control (built into the firmware, or shipped in an update signed by a key that is still trusted), as UEFI's
``dbx`` does for secure boot: a list an attacker can edit protects nothing.

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


def generate(directory: str | os.PathLike, *, overwrite: bool = False,
             passphrase: str | bytes | None = None) -> tuple[Path, Path]:
    """Make an Ed25519 key pair in `directory` and return ``(private_path, public_path)``.

    The private key is PEM (PKCS#8) with file mode 0600, encrypted with `passphrase` when one is given
    (``BestAvailableEncryption``: load it with ``load_private(path, passphrase=...)``); the public key is PEM
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
    private_pem = private_pem_bytes(key, passphrase=passphrase)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    folder.mkdir(parents=True, exist_ok=True)
    write_private(private_path, private_pem)
    _write(public_path, public_pem, 0o644)
    return private_path, public_path


def private_pem_bytes(key: Any, *, passphrase: str | bytes | None = None) -> bytes:
    """PKCS#8 PEM of an Ed25519 private key: plain, or encrypted with `passphrase` (``BestAvailableEncryption``).

    Example:
        >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        >>> private_pem_bytes(Ed25519PrivateKey.generate(), passphrase="correct horse")[:37]
        b'-----BEGIN ENCRYPTED PRIVATE KEY-----'
    """
    from cryptography.hazmat.primitives import serialization

    secret = _passphrase(passphrase)
    encryption = (serialization.BestAvailableEncryption(secret) if secret is not None
                  else serialization.NoEncryption())
    return load_private(key).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def protect(path: str | os.PathLike, passphrase: str | bytes, *, old_passphrase: str | bytes | None = None) -> Path:
    """Rewrite the private key file at `path` encrypted with `passphrase` (or re-encrypted, given its old one).

    Example:
        >>> private, _ = generate("keys/")
        >>> protect(private, "correct horse").read_bytes().startswith(b"-----BEGIN ENCRYPTED")
        True
    """
    out = Path(path)
    key = load_private(out, passphrase=old_passphrase)
    write_private(out, private_pem_bytes(key, passphrase=passphrase))
    return out


def _passphrase(passphrase: str | bytes | None) -> bytes | None:
    if passphrase is None:
        return None
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not isinstance(passphrase, (bytes, bytearray)):
        raise WorkbenchError(f"A passphrase is a str or bytes, got {type(passphrase).__name__}.")
    if not passphrase:
        raise WorkbenchError("The passphrase is empty; give a real one, or none for an unencrypted key file.")
    return bytes(passphrase)


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


def load_private(key: Any, *, passphrase: str | bytes | None = None) -> Any:
    """An `Ed25519PrivateKey` from a PEM file path, PEM bytes, or the key object itself.

    Args:
        key: the key, or its PEM (file or bytes).
        passphrase: the passphrase of an encrypted PEM (``generate(..., passphrase=...)``, `protect`).

    Raises:
        WorkbenchError: not an Ed25519 private key; a protected key without its passphrase or with a wrong one;
            a passphrase for a key that is not protected.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(key, Ed25519PrivateKey):
        return key
    data = _read(key, "private signing key")
    secret = _passphrase(passphrase)
    protected = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
    if protected and secret is None:
        raise WorkbenchError(f"{_name(key)} is passphrase-protected: pass passphrase=... (in the CLI, "
                             "--passphrase-env NAME with the passphrase in that environment variable).")
    if not protected and secret is not None:
        raise WorkbenchError(f"{_name(key)} is not passphrase-protected, but a passphrase was given: drop it, or "
                             "protect the key first (workbench.keys.protect(path, passphrase)).")
    try:
        loaded = serialization.load_pem_private_key(data, password=secret)
    except (ValueError, TypeError) as e:
        if protected:
            raise WorkbenchError(f"{_name(key)}: wrong passphrase (the key could not be decrypted). "
                                 "Nothing was signed.") from None
        raise WorkbenchError(
            f"{_name(key)} is not a PEM private key ({e}). Make one with workbench.keys.generate(dir)."
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


def revoke(key: Any, path: str | os.PathLike, *, reason: str = "") -> Path:
    """Add a key to the revocation list at `path` (created if needed) and return the path.

    Args:
        key: the key to revoke: a public or private key (PEM file, bytes or object), or its 64-hex `key_id`.
        path: the revocation list, a text file of key ids (one per line; ``#`` starts a comment).
        reason: recorded as the line's comment (when and why).

    Example:
        >>> _, public = generate("old/")
        >>> listing = revoke(public, "revoked-keys.txt", reason="laptop stolen")
        >>> key_id(public) in revoked_ids(listing)
        True
    """
    from workbench.core.paths import atomic_write

    kid = _as_key_id(key)
    out = Path(path)
    text = out.read_text("ascii") if out.is_file() else ""
    if not out.is_file() or kid not in revoked_ids(out):
        note = " ".join(str(reason).split()).encode("ascii", "replace").decode("ascii")
        text += ("" if not text or text.endswith("\n") else "\n") + kid + (f"  # {note}" if note else "") + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: tmp.write_text(text, "ascii"))
    return out


def revoked_ids(revoked: Any) -> frozenset[str]:
    """The revoked key ids: from a revocation list file (see `revoke`), or an iterable of key ids / public keys.

    Raises:
        WorkbenchError: a missing list, or a line that is not a 64-hex key id (a damaged list is never half-read).
    """
    if revoked is None:
        return frozenset()
    if isinstance(revoked, (str, os.PathLike)) and not _is_key_id(revoked):
        path = Path(revoked)
        try:
            lines = path.read_text("ascii").splitlines()
        except FileNotFoundError:
            raise WorkbenchError(f"{path}: no such revocation list. Make one with workbench.keys.revoke(key, path)."
                                 ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise WorkbenchError(f"{path}: cannot read the revocation list ({e}).") from None
        ids = set()
        for n, line in enumerate(lines, 1):
            entry = line.split("#", 1)[0].strip().lower()
            if entry and not _is_key_id(entry):
                raise WorkbenchError(f"{path}, line {n}: {entry[:20]!r} is not a key id (64 hex characters, "
                                     "workbench.keys.key_id). The list is refused as a whole.")
            if entry:
                ids.add(entry)
        return frozenset(ids)
    if isinstance(revoked, (bytes, bytearray)):
        return frozenset({_as_key_id(revoked)})
    try:
        return frozenset(_as_key_id(k) for k in revoked)
    except TypeError:
        raise WorkbenchError(f"revoked must be a revocation list file or key ids, got {type(revoked).__name__}."
                             ) from None


def _is_key_id(value: Any) -> bool:
    text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else ""
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text) and not Path(text).exists()


def _as_key_id(key: Any) -> str:
    if isinstance(key, str) and _is_key_id(key):
        return key.lower()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(key, Ed25519PrivateKey):
        return key_id(key)
    data = _read(key, "public key") if not hasattr(key, "public_bytes") else None
    if data is not None and b"PRIVATE KEY" in data:
        return key_id(load_private(data))
    return key_id(key if data is None else data)


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
