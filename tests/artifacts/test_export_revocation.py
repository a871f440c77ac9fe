"""Key revocation: a revocation list of key ids; verify refuses what a revoked key signed, valid signature or not."""

from __future__ import annotations

import pytest

import workbench
from workbench.core.errors import WorkbenchError


@pytest.fixture(scope="module")
def signed(artifact):
    return artifact("digits-cnn", "onnx-int8")


def test_a_revoked_key_is_refused(signed, keypair, tmp_path):
    listing = tmp_path / "revoked-keys.txt"
    assert workbench.verify(signed.path, keypair[1], revoked=[]).sha256 == signed.sha256
    _, other = workbench.keys.generate(tmp_path / "other")
    workbench.keys.revoke(other, listing, reason="an unrelated key")
    assert workbench.verify(signed.path, keypair[1], revoked=listing).sha256 == signed.sha256  # not this one
    workbench.keys.revoke(keypair[1], listing, reason="laptop stolen 2026-12-01")
    with pytest.raises(WorkbenchError, match="which is revoked"):
        workbench.verify(signed.path, keypair[1], revoked=listing)
    kid = workbench.keys.key_id(keypair[1])
    with pytest.raises(WorkbenchError, match="which is revoked"):
        workbench.verify(signed.path, keypair[1], revoked=[kid.upper()])  # key ids, any case
    with pytest.raises(WorkbenchError, match="which is revoked"):
        workbench.verify(signed.path, keypair[1], revoked=[keypair[1]])  # or the public key itself
    workbench.verify(signed.path, keypair[1])  # without the list the signature is still valid: the list decides


def test_the_revocation_list_is_plain_text_without_duplicates(keypair, tmp_path):
    listing = tmp_path / "revoked.txt"
    kid = workbench.keys.key_id(keypair[1])
    workbench.keys.revoke(keypair[1], listing, reason="leaked\nnew line")
    workbench.keys.revoke(kid, listing)  # again, by id: no second line
    assert listing.read_text() == f"{kid}  # leaked new line\n"
    assert workbench.keys.revoked_ids(listing) == {kid}
    workbench.keys.revoke(keypair[0], listing)  # a private key names its public key
    assert workbench.keys.revoked_ids(listing) == {kid}


def test_a_damaged_or_missing_list_is_refused_whole(signed, keypair, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("# comment\n" + "a" * 64 + "\nnot-a-key-id\n")
    with pytest.raises(WorkbenchError, match="line 3: 'not-a-key-id' is not a key id"):
        workbench.verify(signed.path, keypair[1], revoked=bad)
    with pytest.raises(WorkbenchError, match="no such revocation list"):
        workbench.verify(signed.path, keypair[1], revoked=tmp_path / "missing.txt")
    with pytest.raises(WorkbenchError, match="revocation list file or key ids"):
        workbench.verify(signed.path, keypair[1], revoked=12)
