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
