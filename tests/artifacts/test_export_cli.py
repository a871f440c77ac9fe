"""`workbench keys`, `workbench export` and `workbench verify` through `workbench.cli.main`."""

from __future__ import annotations

import pytest

from workbench.cli import main


@pytest.fixture(scope="module")
def cli_keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-keys")
    assert main(["keys", str(folder), "--secret"]) == 0
    return folder / "signing-key.pem", folder / "signing-key.pub.pem", folder / "model.key"


def test_export_then_verify(cli_keys, tmp_path, capsys):
    private, public, _ = cli_keys
    rc = main(["export", "--task", "digits-cnn", "--target", "onnx-int8", "-o", str(tmp_path),
               "--sign-with", str(private), "--device", "raspberry-pi-5"])
    out = capsys.readouterr().out
    assert rc == 0, out
    path = tmp_path / "digits-cnn-onnx-int8.onnx"
    assert f"wrote {path}" in out and "signed by key" in out and "passed" in out and "accuracy 0.98" in out
    assert main(["verify", str(path), "--public-key", str(public)]) == 0
    assert capsys.readouterr().out.startswith(f"OK {path}: onnx-int8 (onnx)")
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    assert main(["verify", str(path), "--public-key", str(public)]) == 2
    assert "sha256" in capsys.readouterr().err


def test_export_encrypted_model_file(cli_keys, digits_onnx, tmp_path, capsys):
    private, public, secret = cli_keys
    rc = main(["export", "--model", str(digits_onnx.path), "--task", "digits-cnn", "--target", "onnx-fp16",
               "-o", str(tmp_path), "--sign-with", str(private), "--encrypt-with", str(secret), "--limit", "64"])
    out = capsys.readouterr().out
    assert rc == 0 and "AES-256-GCM encrypted" in out
    enc = next(tmp_path.glob("*.onnx.enc"))
    assert main(["verify", str(enc), "--public-key", str(public)]) == 0
    assert "encrypted" in capsys.readouterr().out


def test_cli_errors_are_one_line_with_exit_code_2(cli_keys, tmp_path, capsys):
    private, public, secret = cli_keys
    assert main(["export", "--target", "onnx", "-o", str(tmp_path), "--encrypt-with", str(secret)]) == 2
    assert "needs sign_with" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "missing.onnx"), "--public-key", str(public)]) == 2
    assert "no manifest" in capsys.readouterr().err
    assert main(["keys", str(private.parent)]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--target", "onnx-int3", "-o", str(tmp_path)])


def test_versions_rollback_and_revocation_on_the_command_line(cli_keys, tmp_path, capsys, monkeypatch):
    private, public, _ = cli_keys
    common = ["export", "--task", "digits-cnn", "-o", str(tmp_path), "--sign-with", str(private), "--limit", "64"]
    assert main([*common, "--target", "onnx"]) == 0
    v1 = tmp_path / "digits-cnn-onnx.onnx"
    assert "version 1 (replaces nothing)" in capsys.readouterr().out
    assert main([*common, "--target", "onnx-fp16", "--version", "2", "--replaces", str(v1)]) == 0
    v2 = tmp_path / "digits-cnn-onnx-fp16-v2.onnx"
    assert f"version 2, replaces {v1.name} (version 1" in capsys.readouterr().out
    assert main(["verify", str(v2), "--public-key", str(public), "--installed", str(v1), "--min-version", "2"]) == 0
    assert "version 2, sha256" in capsys.readouterr().out
    assert main(["verify", str(v1), "--public-key", str(public), "--installed", str(v2)]) == 2
    assert "does not supersede the installed version 2" in capsys.readouterr().err
    assert main(["verify", str(v1), "--public-key", str(public), "--min-version", "2"]) == 2
    assert "older than version 2" in capsys.readouterr().err
    assert main([*common, "--target", "onnx", "--version", "2", "--replaces", str(v2)]) == 2
    assert "Pass version=3" in capsys.readouterr().err
    listing = tmp_path / "revoked.txt"
    assert main(["revoke", str(public), "--list", str(listing), "--reason", "test"]) == 0
    assert "revoked key" in capsys.readouterr().out
    assert main(["verify", str(v2), "--public-key", str(public), "--revoked", str(listing)]) == 2
    assert "which is revoked" in capsys.readouterr().err


def test_passphrase_protected_keys_on_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WB_TEST_PASSPHRASE", "correct horse")
    assert main(["keys", str(tmp_path / "k"), "--passphrase-env", "WB_TEST_PASSPHRASE"]) == 0
    assert "passphrase-protected" in capsys.readouterr().out
    private = tmp_path / "k" / "signing-key.pem"
    common = ["export", "--task", "digits-cnn", "--target", "onnx", "-o", str(tmp_path), "--sign-with", str(private),
              "--limit", "32"]
    assert main(common) == 2
    assert "--passphrase-env" in capsys.readouterr().err
    assert main([*common, "--passphrase-env", "WB_UNSET_VARIABLE"]) == 2
    assert "not set" in capsys.readouterr().err
    assert main([*common, "--passphrase-env", "WB_TEST_PASSPHRASE"]) == 0
    assert "signed by key" in capsys.readouterr().out
