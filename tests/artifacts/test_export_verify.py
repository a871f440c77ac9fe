"""Verification refuses anything but the exact signed bytes: tampered artefacts and manifests, other keys, missing
or unsigned manifests."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import workbench
from workbench.artifacts.manifest import manifest_bytes, sign
from workbench.core.errors import WorkbenchError

TARGET = "onnx-int8"


@pytest.fixture(scope="module")
def signed(artifact):
    return artifact("digits-cnn", TARGET)


def flipped(data: bytes, pos: int, xor: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= xor
    return bytes(b)


def positions(n: int, k: int, seed: int) -> list[int]:
    """`k` sampled positions plus both ends."""
    rng = np.random.default_rng(seed)
    return sorted({0, n - 1, *rng.choice(n, size=min(k, n), replace=False).tolist()})


def test_untouched_copy_verifies(signed, copied, keypair):
    path, _ = copied(signed)
    v = workbench.verify(path, keypair[1])
    assert v.sha256 == signed.sha256 and v.manifest["target"] == TARGET and not v.encrypted
    assert workbench.verify(path.with_name(path.name + ".manifest.json"), keypair[1]).path == path  # either file


def test_any_flipped_artefact_byte_is_refused(signed, copied, keypair):
    path, _ = copied(signed)
    original = path.read_bytes()
    rng = np.random.default_rng(1)
    for pos in positions(len(original), 22, seed=0):
        path.write_bytes(flipped(original, pos, int(rng.integers(1, 256))))
        with pytest.raises(WorkbenchError, match="sha256 .* differs"):
            workbench.verify(path, keypair[1])
    path.write_bytes(original)
    workbench.verify(path, keypair[1])


def test_every_flipped_manifest_byte_is_refused(signed, copied, keypair):
    """Every byte of the manifest, each with one bit flipped, and sampled bytes set to random values."""
    path, mpath = copied(signed)
    original = mpath.read_bytes()
    public = workbench.keys.load_public(keypair[1])  # parsed once: thousands of verifications follow
    rng = np.random.default_rng(2)
    trials = [(pos, 1 << int(rng.integers(0, 8))) for pos in range(len(original))]
    trials += [(pos, int(rng.integers(1, 256))) for pos in positions(len(original), 24, seed=3)]
    accepted = []
    for pos, xor in trials:
        mpath.write_bytes(flipped(original, pos, xor))
        try:
            workbench.verify(path, public)
            accepted.append((pos, xor))
        except WorkbenchError:
            pass
    assert not accepted, f"tampered manifests verified: {accepted[:5]}"
    mpath.write_bytes(original)
    workbench.verify(path, keypair[1])


def test_truncated_or_extended_files_are_refused(signed, copied, keypair):
    path, mpath = copied(signed)
    data, mdata = path.read_bytes(), mpath.read_bytes()
    for bad in (data[:-1], data + b"\0", b""):
        path.write_bytes(bad)
        with pytest.raises(WorkbenchError, match="differs"):
            workbench.verify(path, keypair[1])
    path.write_bytes(data)
    for bad in (mdata[:-1], mdata + b"\n", mdata[: len(mdata) // 2], b""):
        mpath.write_bytes(bad)
        with pytest.raises(WorkbenchError):
            workbench.verify(path, keypair[1])


def test_a_different_key_is_refused(signed, copied, tmp_path):
    path, _ = copied(signed)
    _, other_public = workbench.keys.generate(tmp_path / "other")
    with pytest.raises(WorkbenchError, match="wrong key"):
        workbench.verify(path, other_public)


def test_a_manifest_re_signed_by_someone_else_is_refused(signed, copied, keypair, tmp_path):
    """An attacker edits the metrics and re-signs with their own key, even claiming the real key's id."""
    path, mpath = copied(signed)
    attacker, _ = workbench.keys.generate(tmp_path / "attacker")
    forged = json.loads(mpath.read_text())
    forged["parity"]["artifact"]["accuracy"] = 1.0
    forged = sign(forged, attacker)
    mpath.write_bytes(manifest_bytes(forged))
    with pytest.raises(WorkbenchError, match="wrong key"):
        workbench.verify(path, keypair[1])
    forged["signature"]["key_id"] = workbench.keys.key_id(keypair[1])
    mpath.write_bytes(manifest_bytes(forged))
    with pytest.raises(WorkbenchError, match="does not verify"):
        workbench.verify(path, keypair[1])


def test_a_swapped_artefact_is_refused(signed, artifact, copied, keypair):
    """Another genuine artefact under this one's name does not match this manifest's hash."""
    path, _ = copied(signed)
    shutil.copyfile(artifact("digits-cnn", "onnx").path, path)
    with pytest.raises(WorkbenchError, match="differs"):
        workbench.verify(path, keypair[1])


def test_missing_manifest_or_artefact_is_refused(signed, copied, keypair):
    path, mpath = copied(signed)
    mpath.unlink()
    with pytest.raises(WorkbenchError, match="no manifest"):
        workbench.verify(path, keypair[1])
    path2, mpath2 = copied(signed)
    path2.unlink()
    with pytest.raises(WorkbenchError, match="no such file"):
        workbench.verify(mpath2, keypair[1])


def test_renamed_artefact_is_refused(signed, copied, keypair):
    path, mpath = copied(signed)
    renamed = path.with_name("other.onnx")
    path.rename(renamed)
    mpath.rename(renamed.with_name("other.onnx.manifest.json"))
    with pytest.raises(WorkbenchError, match="describes"):
        workbench.verify(renamed, keypair[1])


def test_unsigned_manifest_is_refused(digits, tmp_path, keypair):
    art = workbench.export(digits.model, "onnx", tmp_path, task=digits, limit=64)
    assert not art.signed and "signature" not in json.loads(art.manifest_path.read_text())
    with pytest.raises(WorkbenchError, match="not signed"):
        workbench.verify(art.path, keypair[1])


def test_bad_public_keys_are_explained(signed, copied, tmp_path, keypair):
    path, _ = copied(signed)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(WorkbenchError, match="not a PEM public key"):
        workbench.verify(path, garbage)
    with pytest.raises(WorkbenchError, match="no such public key file"):
        workbench.verify(path, tmp_path / "missing.pem")
    assert workbench.verify(path, keypair[1].read_bytes()).sha256 == signed.sha256  # PEM bytes work too
