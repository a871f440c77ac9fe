"""Versioned, rollback-proof releases: a signed monotonic version and the hash of the release replaced; verify
refuses downgrades and broken chains; the chain v1 -> v2 -> v3 verifies end to end; old manifests still verify."""

from __future__ import annotations

import json

import pytest

import workbench
from workbench.artifacts import release_of, releases, verify_chain
from workbench.artifacts.manifest import manifest_bytes, sign
from workbench.core.errors import WorkbenchError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def chain(digits, keypair, tmp_path_factory):
    """v1 (fp32 ONNX), v2 (fp16, replaces v1), v3 (fp32 again, replaces v2: the same bytes as v1, another release)."""
    out = tmp_path_factory.mktemp("chain")
    private = keypair[0]
    v1 = workbench.export(digits.model, "onnx", out, task=digits, sign_with=private, limit=64)
    v2 = workbench.export(digits.model, "onnx-fp16", out, task=digits, sign_with=private, limit=64, replaces=v1)
    v3 = workbench.export(digits.model, "onnx", out, task=digits, sign_with=private, limit=64, replaces=v2.path,
                          version=3)
    return v1, v2, v3


def test_version_and_replaced_hash_are_recorded_and_signed(chain, keypair):
    v1, v2, v3 = chain
    assert (v1.version, v1.replaces, v1.path.name) == (1, None, "digits-cnn-onnx.onnx")
    assert v2.manifest["replaces"] == {"file": v1.path.name, "sha256": v1.sha256, "version": 1}
    assert v2.path.name == "digits-cnn-onnx-fp16-v2.onnx"  # a versioned release never overwrites the one it replaces
    assert v3.replaces == {"file": v2.path.name, "sha256": v2.sha256, "version": 2} and v3.version == 3
    verified = workbench.verify(v3.path, keypair[1])
    assert verified.version == 3 and verified.replaces["sha256"] == v2.sha256 and "version=3" in repr(verified)
    table = releases(v1.path.parent)
    assert table["version"].tolist() == [1, 2, 3] and table["replaces_version"].tolist() == [None, 1, 2]


def test_the_chain_verifies_end_to_end(chain, keypair):
    v1, v2, v3 = chain
    verified = verify_chain([v1.path, v2, v3.path], keypair[1])
    assert [v.version for v in verified] == [1, 2, 3]
    assert [v.sha256 for v in verified] == [v1.sha256, v2.sha256, v3.sha256]
    assert workbench.verify(v2.path, keypair[1], installed=v1.path, min_version=2).version == 2
    assert workbench.verify(v3.path, keypair[1], installed=v2).version == 3  # an Artifact as the installed one
    with pytest.raises(WorkbenchError, match="broken"):
        verify_chain([v1.path, v3.path], keypair[1])  # v2 skipped
    with pytest.raises(WorkbenchError, match="at least one"):
        verify_chain([], keypair[1])


def test_a_broken_chain_is_refused(chain, keypair):
    v1, v2, v3 = chain
    with pytest.raises(WorkbenchError, match=r"version 3 replaces .* \(version 2.*installed artefact is .*"
                                             r"\(version 1.*update chain is broken"):
        workbench.verify(v3.path, keypair[1], installed=v1.path)  # v3 over v1: v2 was never installed
    # the link is hash *and* version: v3 holds v1's very bytes, yet v3 over v3 is a replay, not an update
    assert v3.sha256 == v1.sha256
    with pytest.raises(WorkbenchError, match="does not supersede"):
        workbench.verify(v3.path, keypair[1], installed=v3.path)


def test_a_downgrade_is_refused(chain, keypair):
    v1, v2, v3 = chain
    with pytest.raises(WorkbenchError, match="version 1 does not supersede the installed version 3"):
        workbench.verify(v1.path, keypair[1], installed=v3.path)  # v1 over v3
    with pytest.raises(WorkbenchError, match="version 2 is older than version 3, the oldest this device accepts"):
        workbench.verify(v2.path, keypair[1], min_version=3)
    assert workbench.verify(v3.path, keypair[1], min_version=3).version == 3
    for bad in (0, True, 2.0, "2"):
        with pytest.raises(WorkbenchError, match="min_version must be an integer"):
            workbench.verify(v3.path, keypair[1], min_version=bad)


def test_export_refuses_a_version_that_does_not_supersede(chain, digits, tmp_path):
    v1, v2, _ = chain
    with pytest.raises(WorkbenchError, match="Pass version=3"):
        workbench.export(digits.model, "onnx", tmp_path, task=digits, replaces=v2, version=2)
    with pytest.raises(WorkbenchError, match="Pass version=2"):
        workbench.export(digits.model, "onnx", tmp_path, task=digits, replaces=v1.path, version=1)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(WorkbenchError, match="version must be an integer >= 1"):
            workbench.export(digits.model, "onnx", tmp_path, task=digits, version=bad)
    with pytest.raises(WorkbenchError, match="no manifest"):
        workbench.export(digits.model, "onnx", tmp_path, task=digits, replaces=tmp_path / "nothing.onnx")
    assert not any(tmp_path.iterdir())  # refused before any work


def test_the_replaced_release_must_be_the_file_its_manifest_describes(chain, copied):
    v1 = chain[0]
    path, _ = copied(v1)
    assert release_of(path) == {"file": v1.path.name, "sha256": v1.sha256, "version": 1}
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(WorkbenchError, match="changed after export"):
        release_of(path)


@pytest.mark.parametrize("edit", [
    lambda m: m.__setitem__("version", 7),
    lambda m: m.__setitem__("replaces", None),
    lambda m: m["replaces"].__setitem__("version", 2),
    lambda m: m["replaces"].__setitem__("sha256", "0" * 64),
    lambda m: m.pop("version"),
])
def test_editing_the_version_or_the_replaced_hash_breaks_the_signature(chain, copied, keypair, edit):
    _, v2, _ = chain
    path, mpath = copied(v2)
    m = json.loads(mpath.read_text())
    edit(m)
    mpath.write_bytes(manifest_bytes(m))  # the canonical layout: only the signature can catch it
    with pytest.raises(WorkbenchError, match="signature does not verify"):
        workbench.verify(path, keypair[1])


def test_manifests_from_before_versions_verify_as_version_1(chain, copied, keypair):
    v1, v2, _ = chain
    path, mpath = copied(v1)
    old = {k: v for k, v in json.loads(mpath.read_text()).items() if k not in ("version", "replaces", "signature")}
    mpath.write_bytes(manifest_bytes(sign(old, keypair[0])))  # what export wrote before this change
    verified = workbench.verify(path, keypair[1])
    assert verified.version == 1 and verified.replaces is None and "version" not in verified.manifest
    with pytest.raises(WorkbenchError, match="version 1 is older than version 2"):
        workbench.verify(path, keypair[1], min_version=2)
    assert release_of(path)["version"] == 1
    assert workbench.verify(v2.path, keypair[1], installed=path).version == 2  # v2 updates the old-style v1


def test_malformed_signed_versions_are_refused(chain, copied, keypair):
    v1 = chain[0]
    path, mpath = copied(v1)
    m = {k: v for k, v in json.loads(mpath.read_text()).items() if k != "signature"}
    for bad, what in ((0, "signed version"), ("2", "signed version"), (None, "signed version")):
        mpath.write_bytes(manifest_bytes(sign({**m, "version": bad}, keypair[0])))
        with pytest.raises(WorkbenchError, match=what):
            workbench.verify(path, keypair[1])
    mpath.write_bytes(manifest_bytes(sign({**m, "replaces": {"sha256": 5}}, keypair[0])))
    with pytest.raises(WorkbenchError, match="'replaces' field is malformed"):
        workbench.verify(path, keypair[1])
