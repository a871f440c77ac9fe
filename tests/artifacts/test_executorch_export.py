"""ExecuTorch export targets: ``executorch`` (fp32 XNNPACK .pte) and ``executorch-int8`` (PT2E static int8) pass
parity in ExecuTorch, store what they say (storage read from the XNNPACK delegate's graph), and verify signed."""

from __future__ import annotations

import pytest

import workbench
from workbench.artifacts import TARGETS
from workbench.core.errors import WorkbenchError

pytest.importorskip("executorch")


@pytest.mark.parametrize("target", ["executorch", pytest.param("executorch-int8", marks=pytest.mark.slow)])
def test_export_passes_parity_and_verifies(artifact, keypair, target, tmp_path):
    art = artifact("digits-cnn", target)
    task = workbench.zoo.load("digits-cnn")
    assert art.path.suffix == ".pte" and art.parity["passed"] and art.parity["artifact_runtime"] == "executorch"
    m = art.manifest
    assert (m["format"], m["runtime"], m["precision"]["target"]) == ("pte", "executorch", TARGETS[target].precision)
    kind = "FLOAT32" if target == "executorch" else "INT8"
    assert m["storage"][kind]["elements"] > 0.9 * task.model.num_params
    assert any("aten::mean" in n for n in m["notes"])  # the op the partitioner left to portable kernels
    assert workbench.verify(art.path, keypair[1]).sha256 == art.sha256
    handle = workbench.load(art.path)
    assert handle.framework == "executorch"
    out = workbench.runtime(handle, "executorch", threads=1)(task.eval_inputs[0][:2])[0]
    assert out.shape == (2, 10)
    tampered = tmp_path / art.path.name
    data = bytearray(art.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    (tmp_path / art.manifest_path.name).write_bytes(art.manifest_path.read_bytes())
    with pytest.raises(WorkbenchError):
        workbench.verify(tampered, keypair[1])
