"""Encrypted exports: AES-256-GCM on disk, verified before decryption, restored byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.artifacts.manifest import MAGIC, sha256_file
from workbench.core.errors import WorkbenchError


@pytest.fixture(scope="module")
def secret(tmp_path_factory):
    return workbench.keys.generate_secret(tmp_path_factory.mktemp("secret") / "model.key")


@pytest.fixture(scope="module")
def encrypted(digits, keypair, secret, tmp_path_factory):
    out = tmp_path_factory.mktemp("encrypted")
    return workbench.export(digits.model, "tflite-int8", out, task=digits, sign_with=keypair[0], encrypt_with=secret)


def test_encrypted_file_hides_the_model(encrypted, artifact):
    plain = artifact("digits-cnn", "tflite-int8")
    data = encrypted.path.read_bytes()
    assert encrypted.path.name == "digits-cnn-tflite-int8.tflite.enc" and encrypted.encrypted
    assert data.startswith(MAGIC) and b"TFL3" not in data[:64]
    assert plain.path.read_bytes()[1000:1064] not in data  # no plaintext run survives
    enc = encrypted.manifest["encryption"]
    assert enc["algorithm"] == "AES-256-GCM" and enc["plaintext_file"] == "digits-cnn-tflite-int8.tflite"
    assert encrypted.manifest["artifact"]["sha256"] == sha256_file(encrypted.path) != enc["plaintext_sha256"]
    with pytest.raises(WorkbenchError):
        workbench.load(encrypted.path)


def test_decrypt_verifies_then_restores(encrypted, keypair, secret, tmp_path, digits):
    assert workbench.verify(encrypted.path, keypair[1]).encrypted
    out = workbench.decrypt(encrypted.path, secret, public_key=keypair[1], out=tmp_path / "model.tflite")
    assert sha256_file(out) == encrypted.manifest["encryption"]["plaintext_sha256"]
    run = workbench.runtime(workbench.load(out), "litert", threads=1)
    acc = digits.evaluate(run)["accuracy"]
    assert acc == pytest.approx(encrypted.parity["artifact"]["accuracy"])
    default = workbench.decrypt(encrypted.path, secret.read_bytes(), public_key=keypair[1])  # key as bytes
    assert default == encrypted.path.with_name("digits-cnn-tflite-int8.tflite") and default.is_file()
    default.unlink()


def test_wrong_key_tampering_and_bad_keys_are_refused(encrypted, keypair, secret, copied, tmp_path):
    with pytest.raises(WorkbenchError, match="wrong key"):
        workbench.decrypt(encrypted.path, bytes(32), public_key=keypair[1], out=tmp_path / "x.tflite")
    with pytest.raises(WorkbenchError, match="32 bytes"):
        workbench.decrypt(encrypted.path, b"short", public_key=keypair[1], out=tmp_path / "x.tflite")
    path, _ = copied(encrypted)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(WorkbenchError, match="differs"):  # refused by verification, before any decryption
        workbench.decrypt(path, secret, public_key=keypair[1], out=tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()


def test_hex_key_files_work(tmp_path):
    key = tmp_path / "hex.key"
    raw = np.random.default_rng(0).bytes(32)
    key.write_text(raw.hex() + "\n")
    assert workbench.keys.load_secret(key) == raw


def test_encryption_needs_a_signature(digits, secret, tmp_path):
    with pytest.raises(WorkbenchError, match="needs sign_with"):
        workbench.export(digits.model, "onnx", tmp_path, task=digits, encrypt_with=secret)
    assert not any(tmp_path.iterdir())


def test_decrypting_a_plain_artefact_is_explained(artifact, keypair, secret):
    art = artifact("digits-cnn", "onnx")
    with pytest.raises(WorkbenchError, match="not encrypted"):
        workbench.decrypt(art.path, secret, public_key=keypair[1])


def test_sealed_evidence_measures_what_the_file_shows_without_the_key(encrypted, keypair, secret, tmp_path):
    from workbench.artifacts import sealed_evidence

    seen = sealed_evidence(encrypted.path)
    assert seen["header"] == "EWB-AESGCM-v1" and seen["size_bytes"] == encrypted.size_bytes
    assert seen["deflate_ratio"] > 0.99 and seen["entropy_bits_per_byte"] > 7.99  # incompressible, uniform
    assert not seen["loads_without_key"] and "not a TFLite flatbuffer" in seen["load_error"]
    plain = workbench.decrypt(encrypted.path, secret, public_key=keypair[1], out=tmp_path / "m.tflite")
    seen = sealed_evidence(encrypted.path, plain=plain)
    assert seen["plain_deflate_ratio"] < 0.9 < seen["deflate_ratio"]  # the model compresses, ciphertext does not
    assert seen["plain_entropy_bits_per_byte"] < seen["entropy_bits_per_byte"]
    with pytest.raises(WorkbenchError, match="not an artefact encrypted"):
        sealed_evidence(plain)
