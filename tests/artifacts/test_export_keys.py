"""Key generation and loading: Ed25519 PEM pairs (private mode 0600), AES secrets, clear errors for the wrong thing."""

from __future__ import annotations

import stat

import pytest

import workbench
from workbench.core.errors import WorkbenchError


def test_generate_writes_a_pem_pair_with_a_private_file_only_the_owner_reads(tmp_path):
    private, public = workbench.keys.generate(tmp_path / "k")
    assert (private.name, public.name) == ("signing-key.pem", "signing-key.pub.pem")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    key = workbench.keys.load_private(private)
    assert workbench.keys.key_id(key) == workbench.keys.key_id(public)  # a private key gives its public id
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["signing-key.pem", "signing-key.pub.pem"]


def test_generate_never_overwrites_by_accident(tmp_path):
    private, _ = workbench.keys.generate(tmp_path)
    before = private.read_bytes()
    with pytest.raises(WorkbenchError, match="already exists"):
        workbench.keys.generate(tmp_path)
    assert private.read_bytes() == before
    new_private, _ = workbench.keys.generate(tmp_path, overwrite=True)
    assert new_private.read_bytes() != before


def test_secret_is_32_random_bytes_owner_only(tmp_path):
    a = workbench.keys.generate_secret(tmp_path / "a.key")
    b = workbench.keys.generate_secret(tmp_path / "b.key")
    assert len(a.read_bytes()) == 32 and a.read_bytes() != b.read_bytes()
    assert stat.S_IMODE(a.stat().st_mode) == 0o600
    with pytest.raises(WorkbenchError, match="already exists"):
        workbench.keys.generate_secret(a)


def test_wrong_key_material_is_explained(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(WorkbenchError, match="Ed25519"):
        workbench.keys.load_private(ec_pem)
    private, public = workbench.keys.generate(tmp_path)
    with pytest.raises(WorkbenchError, match="not a PEM private key"):
        workbench.keys.load_private(public)  # the public file where the private one belongs
    with pytest.raises(WorkbenchError, match="no such private signing key file"):
        workbench.keys.load_private(tmp_path / "nope.pem")
    with pytest.raises(WorkbenchError, match="directory"):
        workbench.keys.load_public(tmp_path)
    with pytest.raises(WorkbenchError, match="file path or bytes"):
        workbench.keys.load_secret(12345)


def test_a_passphrase_protected_key_round_trips(tmp_path):
    private, public = workbench.keys.generate(tmp_path, passphrase="correct horse")
    assert private.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = workbench.keys.load_private(private, passphrase="correct horse")
    assert workbench.keys.key_id(key) == workbench.keys.key_id(public)
    assert workbench.keys.key_id(workbench.keys.load_private(private, passphrase=b"correct horse")) \
        == workbench.keys.key_id(public)  # bytes work too
    with pytest.raises(WorkbenchError, match="passphrase-protected: pass passphrase="):
        workbench.keys.load_private(private)
    with pytest.raises(WorkbenchError, match="wrong passphrase"):
        workbench.keys.load_private(private, passphrase="battery staple")
    with pytest.raises(WorkbenchError, match="passphrase is empty"):
        workbench.keys.generate(tmp_path / "other", passphrase="")


def test_export_refuses_a_protected_key_without_its_passphrase(digits, tmp_path):
    private, public = workbench.keys.generate(tmp_path / "k", passphrase="s3cret")
    with pytest.raises(WorkbenchError, match="passphrase-protected"):
        workbench.export(digits.model, "onnx", tmp_path / "out", task=digits, sign_with=private)
    assert not (tmp_path / "out").exists()  # refused before any work
    key = workbench.keys.load_private(private, passphrase="s3cret")
    art = workbench.export(digits.model, "onnx", tmp_path / "out", task=digits, sign_with=key, limit=32)
    assert workbench.verify(art.path, public).key_id == workbench.keys.key_id(public)


def test_protect_encrypts_an_existing_key_and_a_plain_key_takes_no_passphrase(tmp_path):
    private, public = workbench.keys.generate(tmp_path)
    with pytest.raises(WorkbenchError, match="not passphrase-protected"):
        workbench.keys.load_private(private, passphrase="x")
    workbench.keys.protect(private, "new one")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    with pytest.raises(WorkbenchError, match="passphrase-protected"):
        workbench.keys.load_private(private)
    workbench.keys.protect(private, "newer", old_passphrase="new one")  # change the passphrase
    assert workbench.keys.key_id(workbench.keys.load_private(private, passphrase="newer")) \
        == workbench.keys.key_id(public)
