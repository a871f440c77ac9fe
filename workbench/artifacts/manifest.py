"""Manifests beside exported artefacts: hashing, Ed25519 signatures, verification, AES-GCM encryption.

An artefact ``X`` has its manifest in ``X.manifest.json``. The manifest is written in one canonical form
(sorted keys, two-space indent, ASCII, a final newline), and `verify` insists on exactly those bytes, so
*every* byte of it counts: a change to the content breaks the signature, a change to the layout breaks the
canonical form. The signature (``manifest["signature"]``) is Ed25519 over the canonical compact JSON of every
other field, which includes the artefact's sha256, so the signature covers the artefact too.

An encrypted artefact is ``MAGIC | 12-byte nonce | AES-256-GCM ciphertext and tag`` (the magic is the
associated data); its manifest hashes the encrypted file (what the device receives) and records the
plaintext's sha256, which `decrypt` checks after decrypting.

**Versions and rollback protection** (anti-rollback, as secure boot's monotonic counters do for firmware). Every
manifest carries ``version`` (an int >= 1, monotonic along a product's releases) and ``replaces``: ``None`` for a
first release, else ``{"file", "sha256", "version"}`` of the artefact it updates. Both are signed fields, so they
cannot be edited without breaking the signature. `verify` refuses a version below ``min_version`` (a downgrade:
an old release may carry a flaw a later one fixed) and, given the ``installed`` artefact, a version that does
not exceed it (a downgrade or replay) or whose ``replaces`` hash and version are not the installed artefact's
(a broken chain; the version is part of the link because two releases may hold identical bytes); `verify_chain` checks v1 -> v2 -> ... end to end. Manifests written before versions existed have neither
field: they verify as **version 1 replacing nothing** (their signature still covers every field they have), so a
device that demands ``min_version=2`` refuses them.

**Revoked keys**: ``verify(..., revoked=...)`` takes a revocation list (`workbench.keys.revoke`) and refuses a
manifest whose signing key (``signature.key_id``, the sha256 of the raw public key) is on it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError

SCHEMA = "edge-workbench/artifact-manifest/1"
SIGNATURE_ALGORITHM = "ed25519"
ENCRYPTION_ALGORITHM = "AES-256-GCM"
MAGIC = b"EWB-AESGCM-v1\n"
NONCE_BYTES = 12
MANIFEST_SUFFIX = ".manifest.json"


def manifest_path(artifact: str | os.PathLike) -> Path:
    """``<artefact>.manifest.json`` beside the artefact."""
    p = Path(artifact)
    return p.with_name(p.name + MANIFEST_SUFFIX)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def folder_entry(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest's ``artifact`` fields of a multi-file artefact (a folder): every file with its sha256 and size,
    sorted by relative path, and one sha256 over that list (so the folder has a single digest too)."""
    root = Path(folder)
    files = [{"name": p.relative_to(root).as_posix(), "sha256": sha256_file(p), "size_bytes": p.stat().st_size}
             for p in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()) if p.is_file()]
    return {"sha256": sha256_bytes(canonical_bytes(files)), "size_bytes": sum(f["size_bytes"] for f in files),
            "files": files}


def _verify_folder(folder: Path, entry: dict[str, Any]) -> str:
    """Check every file of a folder artefact against the signed list; its digest, or a `WorkbenchError`."""
    if not folder.is_dir():
        raise WorkbenchError(f"{folder}: no such folder (its manifest is here). Refused.")
    signed = {f.get("name"): f for f in entry["files"] if isinstance(f, dict)}
    actual = folder_entry(folder)
    found = {f["name"]: f for f in actual["files"]}
    missing, extra = sorted(set(signed) - set(found)), sorted(set(found) - set(signed))
    if missing or extra:
        raise WorkbenchError(
            f"{folder}: the folder's files differ from the signed list ("
            + "; ".join(x for x in (f"missing: {', '.join(missing)}" if missing else "",
                                    f"not signed: {', '.join(extra)}" if extra else "") if x)
            + "). Ship exactly the exported folder. Refused.")
    for name, f in found.items():
        if f["sha256"] != signed[name].get("sha256"):
            raise WorkbenchError(
                f"{folder / name}: sha256 {f['sha256'][:16]}… differs from the signed "
                f"{str(signed[name].get('sha256'))[:16]}…: the file was changed or corrupted after export. Refused.")
    if actual["sha256"] != entry["sha256"]:
        raise WorkbenchError(f"{folder}: the folder's digest differs from the signed one. Refused.")
    return actual["sha256"]


def canonical_bytes(obj: Any) -> bytes:
    """The bytes a signature covers: compact JSON with sorted keys, ASCII only, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The one byte layout a manifest file may have (readable, and checked byte for byte by `verify`)."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def write_manifest(path: Path, manifest: dict[str, Any]) -> Path:
    from workbench.core.paths import atomic_write

    data = manifest_bytes(manifest)
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def sign(manifest: dict[str, Any], private_key: Any) -> dict[str, Any]:
    """A copy of `manifest` with an Ed25519 ``signature`` over all its other fields."""
    from workbench.artifacts import keys

    key = keys.load_private(private_key)
    body = {k: v for k, v in manifest.items() if k != "signature"}
    value = key.sign(canonical_bytes(body))
    return {**body, "signature": {"algorithm": SIGNATURE_ALGORITHM, "key_id": keys.key_id(key), "value": value.hex()}}


@dataclass(frozen=True)
class VerifiedArtifact:
    """An artefact whose bytes match its signed manifest.

    Attributes:
        path: the artefact (encrypted artefacts stay encrypted: see `decrypt`).
        manifest: the manifest, as signed.
        sha256: the artefact's sha256 (equal to the manifest's).
        key_id: sha256 of the public key that verified the signature.
    """

    path: Path
    manifest: dict[str, Any]
    sha256: str
    key_id: str

    @property
    def target(self) -> str:
        return self.manifest["target"]

    @property
    def format(self) -> str:
        return self.manifest["format"]

    @property
    def encrypted(self) -> bool:
        return self.manifest.get("encryption") is not None

    @property
    def version(self) -> int:
        """The release's version (1 for manifests written before versions existed)."""
        return manifest_version(self.manifest)

    @property
    def replaces(self) -> dict[str, Any] | None:
        """``{"file", "sha256", "version"}`` of the artefact this release updates, or None (a first release)."""
        return self.manifest.get("replaces")

    def __repr__(self) -> str:
        return (f"VerifiedArtifact(path={str(self.path)!r}, target={self.target!r}, version={self.version}, "
                f"sha256={self.sha256[:12]}…, key_id={self.key_id[:12]}…{', encrypted' if self.encrypted else ''})")


def manifest_version(manifest: dict[str, Any]) -> int:
    """A manifest's ``version``; 1 when it has none (written before versions existed)."""
    return manifest.get("version", 1)


def check_version(version: Any, what: str = "version") -> int:
    """`version` as a release version (an int >= 1; bools refused), or a `WorkbenchError` saying what to pass."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise WorkbenchError(f"{what} must be an integer >= 1 (releases count 1, 2, 3, ...), got {version!r}.")
    return version


def release_of(artefact: Any, role: str = "replaced") -> dict[str, Any]:
    """``{"file", "sha256", "version"}`` of an artefact: an `Artifact`, a `VerifiedArtifact`, or a path (the file
    or its manifest; the file's bytes are hashed and must match the manifest beside it).

    Example:
        >>> art = workbench.export(task.model, "onnx", "out/", task=task, limit=64)
        >>> release_of(art.path) == {"file": art.path.name, "sha256": art.sha256, "version": 1}
        True
    """
    manifest = getattr(artefact, "manifest", None)
    if isinstance(manifest, dict) and hasattr(artefact, "path"):  # an Artifact or a VerifiedArtifact
        digest = getattr(artefact, "sha256", None) or manifest.get("artifact", {}).get("sha256")
        return {"file": Path(artefact.path).name, "sha256": digest, "version": manifest_version(manifest)}
    if not isinstance(artefact, (str, os.PathLike)):
        raise WorkbenchError(f"The {role} artefact must be a workbench.Artifact, a VerifiedArtifact or a path, got "
                             f"{type(artefact).__name__}.")
    path, mpath = _paths(artefact)
    try:
        manifest = json.loads(mpath.read_text("ascii"))
        entry = manifest["artifact"]
        version = check_version(manifest_version(manifest), f"the {role} artefact's version")
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: no manifest {mpath.name} beside the {role} artefact; its version and hash come "
                             "from it (keep the manifest with every installed file).") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise WorkbenchError(f"{mpath}: the {role} artefact's manifest is unreadable or malformed.") from None
    if path.is_dir():
        digest = folder_entry(path)["sha256"]
    elif path.is_file():
        digest = sha256_file(path)
    else:
        raise WorkbenchError(f"{path}: the {role} artefact is missing (its manifest is here).")
    if digest != entry.get("sha256"):
        raise WorkbenchError(f"{path}: the {role} artefact's sha256 {digest[:16]}… is not its manifest's: the file "
                             "was changed after export, so it is no release to build on.")
    return {"file": path.name, "sha256": digest, "version": version}


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    if p.name.endswith(MANIFEST_SUFFIX):
        return p.with_name(p.name[: -len(MANIFEST_SUFFIX)]), p
    return p, manifest_path(p)


def verify(path: str | os.PathLike, public_key: Any, *, min_version: int | None = None, installed: Any = None,
           revoked: Any = None) -> VerifiedArtifact:
    """Check an exported artefact against its signed manifest; refuse anything else.

    Args:
        path: the artefact (or its ``.manifest.json``).
        public_key: the signer's Ed25519 public key: a PEM file path, PEM bytes or a key object.
        min_version: the lowest release version this device accepts (its anti-rollback counter); an older
            release is refused as a downgrade. Manifests without a version count as version 1.
        installed: the artefact on the device (its path, an `Artifact` or a `VerifiedArtifact`): the new release
            must have a higher version and name the installed artefact's sha256 as the one it replaces.
        revoked: revoked signing keys: a revocation list file (`workbench.keys.revoke`) or key ids / public keys.

    Returns:
        A `VerifiedArtifact`.

    Raises:
        WorkbenchError: a missing or unsigned manifest, a manifest changed in any byte, a signature that
            does not verify with this key, a revoked key, an artefact whose bytes do not match the manifest's sha256
            (for a folder artefact: any file changed, missing or added), a version below `min_version` or not
            above the installed one, or a release that does not replace the installed artefact (a broken chain).

    Example:
        >>> private, public = workbench.keys.generate("keys/")
        >>> art = workbench.export(task.model, "onnx-int8", "out/", task=task, sign_with=private)
        >>> workbench.verify(art.path, "keys/signing-key.pub.pem").target
        'onnx-int8'
    """
    from cryptography.exceptions import InvalidSignature

    from workbench.artifacts import keys

    artifact, mpath = _paths(path)
    key = keys.load_public(public_key)
    revoked_ids = keys.revoked_ids(revoked)
    if min_version is not None:
        check_version(min_version, "min_version")
    try:
        raw = mpath.read_bytes()
    except FileNotFoundError:
        raise WorkbenchError(
            f"{artifact}: no manifest {mpath.name} beside it. A device must refuse an artefact it cannot verify; "
            "ship the manifest that workbench.export wrote with the file."
        ) from None
    except OSError as e:
        raise WorkbenchError(f"{mpath}: cannot read the manifest ({e.strerror}).") from None
    try:
        manifest = json.loads(raw.decode("ascii"))
        canonical = manifest_bytes(manifest) if isinstance(manifest, dict) else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WorkbenchError(f"{mpath}: the manifest is not valid JSON: it was altered or truncated. Refused.") from None
    if canonical is None:
        raise WorkbenchError(f"{mpath}: the manifest is not a JSON object. Refused.")
    if canonical != raw:
        raise WorkbenchError(
            f"{mpath}: the manifest's bytes are not the form it was signed in (changed whitespace, key order or "
            "escapes): it was altered. Refused."
        )
    sig = manifest.get("signature")
    if sig is None:
        raise WorkbenchError(
            f"{mpath}: the manifest is not signed, so nothing vouches for it. Export with sign_with=<private key> "
            "(workbench.keys.generate makes one)."
        )
    expected_id = keys.key_id(key)
    if not isinstance(sig, dict) or set(sig) != {"algorithm", "key_id", "value"} \
            or sig["algorithm"] != SIGNATURE_ALGORITHM:
        raise WorkbenchError(f"{mpath}: the signature block is malformed (expected an {SIGNATURE_ALGORITHM} "
                             "signature from workbench.export). Refused.")
    if sig["key_id"] != expected_id:
        raise WorkbenchError(
            f"{mpath}: signed by key {str(sig['key_id'])[:16]}…, but the public key given is {expected_id[:16]}…: "
            "wrong key, or the manifest was altered. Refused."
        )
    if expected_id in revoked_ids:
        raise WorkbenchError(
            f"{mpath}: signed by key {expected_id[:16]}…, which is revoked (on the revocation list): its signatures "
            "are no longer trusted, valid or not. Refused. Re-sign the release with a current key."
        )
    value = sig["value"]
    try:
        signature = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        signature = b""
    if signature.hex() != value:  # one spelling only: no case or whitespace variants of the same bytes
        raise WorkbenchError(f"{mpath}: the signature value is not lowercase hex: it was altered. Refused.")
    body = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        key.verify(signature, canonical_bytes(body))
    except InvalidSignature:
        raise WorkbenchError(
            f"{mpath}: the signature does not verify with key {expected_id[:16]}…: the manifest was altered after "
            "signing (or signed by another key with the same id, which cannot happen by chance). Refused."
        ) from None
    entry = body.get("artifact")
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise WorkbenchError(f"{mpath}: the signed manifest names no artefact hash. Refused.")
    if entry.get("file") != artifact.name:
        raise WorkbenchError(
            f"{artifact}: the manifest describes {entry.get('file')!r}, not {artifact.name!r}. Keep the exported "
            "names (the manifest is found by name). Refused."
        )
    if isinstance(entry.get("files"), list):  # a multi-file artefact (an ONNX Runtime GenAI folder)
        digest = _verify_folder(artifact, entry)
    else:
        if not artifact.is_file():
            raise WorkbenchError(f"{artifact}: no such file (its manifest is here). Refused.")
        digest = sha256_file(artifact)
        if digest != entry["sha256"]:
            raise WorkbenchError(
                f"{artifact}: sha256 {digest[:16]}… differs from the signed {entry['sha256'][:16]}…: the file was "
                "changed or corrupted after export. Refused."
            )
    verified = VerifiedArtifact(artifact, body, digest, expected_id)
    _check_release(verified, mpath, min_version, installed)
    return verified


def _check_release(new: VerifiedArtifact, mpath: Path, min_version: int | None, installed: Any) -> None:
    """Rollback protection on a verified manifest: a well-formed version and ``replaces``, not below
    `min_version`, above the installed version and naming the installed artefact's hash."""
    body = new.manifest
    try:
        version = check_version(manifest_version(body), "the manifest's version")
    except WorkbenchError:
        raise WorkbenchError(f"{mpath}: the signed version {body.get('version')!r} is not an integer >= 1. "
                             "Refused.") from None
    rep = body.get("replaces")
    if rep is not None and not (isinstance(rep, dict) and isinstance(rep.get("sha256"), str)
                                and isinstance(rep.get("version"), int)):
        raise WorkbenchError(f"{mpath}: the signed 'replaces' field is malformed (expected file, sha256, version). "
                             "Refused.")
    if min_version is not None and version < min_version:
        raise WorkbenchError(
            f"{new.path}: version {version} is older than version {min_version}, the oldest this device accepts: "
            f"a downgrade (an old release may carry a flaw a later one fixed). Refused. Ship version >= {min_version}."
        )
    if installed is None:
        return
    have = release_of(installed, "installed")
    if version <= have["version"]:
        raise WorkbenchError(
            f"{new.path}: version {version} does not supersede the installed version {have['version']} "
            f"({have['file']}): a downgrade or a replay of an old release. Refused. Ship a release with a version "
            f"above {have['version']} that replaces the installed one."
        )
    if rep is None or rep["sha256"] != have["sha256"] or rep["version"] != have["version"]:
        # the link is (hash, version): two releases of identical bytes (a re-signed file) stay distinct
        said = (f"replaces {rep['sha256'][:16]}… (version {rep['version']}, {rep.get('file')})" if rep is not None
                else "replaces nothing (a first release)")
        raise WorkbenchError(
            f"{new.path}: version {version} {said}, but the installed artefact is {have['sha256'][:16]}… "
            f"(version {have['version']}, {have['file']}): the update chain is broken. Refused. Install the "
            "releases in between first, or export this one with replaces=<the installed artefact>."
        )


def verify_chain(paths: Any, public_key: Any, *, min_version: int | None = None,
                 revoked: Any = None) -> list[VerifiedArtifact]:
    """Verify an update chain v1 -> v2 -> ... end to end: each release verifies, and each later one supersedes
    and replaces the one before it (``verify(..., installed=previous)``).

    Args:
        paths: the artefacts in install order (paths, `Artifact` or `VerifiedArtifact` objects).
        public_key: the signer's public key. min_version, revoked: as in `verify` (min_version for the first).

    Returns:
        The `VerifiedArtifact` of every release, in order.

    Example:
        >>> private, public = workbench.keys.generate("keys/")
        >>> v1 = workbench.export(task.model, "onnx", "out/", task=task, sign_with=private, limit=64)
        >>> v2 = workbench.export(task.model, "onnx-fp16", "out/", task=task, sign_with=private, limit=64, replaces=v1)
        >>> [v.version for v in verify_chain([v1.path, v2.path], public)]
        [1, 2]
    """
    items = list(paths)
    if not items:
        raise WorkbenchError("verify_chain needs at least one artefact.")
    chain: list[VerifiedArtifact] = []
    for item in items:
        path = getattr(item, "path", item)
        chain.append(verify(path, public_key, min_version=min_version if not chain else None,
                            installed=chain[-1] if chain else None, revoked=revoked))
    return chain


# ------------------------------------------------------------------------------------------- encryption


def encrypt_bytes(plaintext: bytes, key: Any) -> bytes:
    """``MAGIC | nonce | AES-256-GCM(plaintext)`` with a fresh random nonce."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from workbench.artifacts import keys

    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(keys.load_secret(key)).encrypt(nonce, plaintext, MAGIC)


def decrypt_bytes(blob: bytes, key: Any, *, name: str = "the artefact") -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from workbench.artifacts import keys

    secret = keys.load_secret(key)
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + NONCE_BYTES + 16:
        raise WorkbenchError(f"{name} is not an artefact encrypted by workbench.export (no {MAGIC!r} header).")
    nonce = blob[len(MAGIC): len(MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(secret).decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES:], MAGIC)
    except InvalidTag:
        raise WorkbenchError(f"{name}: decryption failed: wrong key, or the ciphertext was altered.") from None


def decrypt(path: str | os.PathLike, key: Any, *, public_key: Any, out: str | os.PathLike | None = None) -> Path:
    """Verify an encrypted artefact, decrypt it, check the plaintext's hash, and write it.

    Args:
        path: the encrypted artefact (``*.enc``) or its manifest.
        key: the AES-256 key: 32 bytes, or a key file (`workbench.keys.generate_secret`).
        public_key: the signer's public key; nothing is decrypted before the manifest verifies.
        out: where to write the model (default: the artefact's path without ``.enc``).

    Returns:
        The path of the decrypted model file (written atomically).

    Example:
        >>> private, public = workbench.keys.generate("keys/")
        >>> secret = workbench.keys.generate_secret("keys/model.key")
        >>> art = workbench.export(task.model, "onnx-int8", "out/", task=task, sign_with=private, encrypt_with=secret)
        >>> model = workbench.decrypt(art.path, "keys/model.key", public_key="keys/signing-key.pub.pem")
        >>> model.name
        'digits-cnn-onnx-int8.onnx'
    """
    from workbench.core.paths import atomic_write

    verified = verify(path, public_key)
    enc = verified.manifest.get("encryption")
    if not enc:
        raise WorkbenchError(f"{verified.path}: the manifest says this artefact is not encrypted; load it directly.")
    plaintext = decrypt_bytes(verified.path.read_bytes(), key, name=str(verified.path))
    digest = sha256_bytes(plaintext)
    if digest != enc.get("plaintext_sha256"):
        raise WorkbenchError(f"{verified.path}: the decrypted model's sha256 differs from the signed one. Refused.")
    name = Path(str(enc.get("plaintext_file") or verified.path.stem)).name  # never a path out of the folder
    target = Path(out) if out is not None else verified.path.with_name(name)
    return atomic_write(target, lambda tmp: tmp.write_bytes(plaintext))
