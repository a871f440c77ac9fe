"""Loading OpenVINO IR: a real pair loads with its signature and weight count; a broken pair is refused with a
message that says what to do, and never takes the process down (the first open happens in a child)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import workbench
from workbench.core.errors import WorkbenchError

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def tiny_ir(tiny_handle):
    from workbench.formats.openvino_file import to_openvino_ir

    return to_openvino_ir(tiny_handle)


@pytest.fixture
def ir_copy(tmp_path, tiny_ir):
    for f in ("model.xml", "model.bin"):
        shutil.copyfile(tiny_ir.parent / f, tmp_path / f)
    return tmp_path / "model.xml"


def test_ir_loads_with_signature_params_and_fingerprint(ir_copy, onnx_file, tiny_inputs, tiny_expected):
    h = workbench.load(ir_copy)
    assert (h.framework, h.source_format, h.path) == ("openvino", "openvino_ir", ir_copy)
    assert [(s.name, s.shape, s.dtype) for s in h.inputs] == [("x", (None, 1, 8, 8), "float32")]
    assert h.outputs[0].shape == (None, 3)
    assert h.num_params == workbench.load(onnx_file).num_params == 55
    out = workbench.runtime(h, "openvino", threads=1)(tiny_inputs)[0]
    np.testing.assert_allclose(out, tiny_expected, atol=1e-5)
    before = h.fingerprint
    data = bytearray(ir_copy.with_suffix(".bin").read_bytes())
    data[0] ^= 1  # one weight changed: the fingerprint covers the .bin too
    ir_copy.with_suffix(".bin").write_bytes(bytes(data))
    assert workbench.load(ir_copy).fingerprint != before


def test_ir_folder_loads_by_its_name(ir_copy):
    h = workbench.load(ir_copy.parent)
    assert h.framework == "openvino" and h.name == ir_copy.parent.name


def test_xml_that_is_not_an_ir_is_refused(tmp_path):
    p = tmp_path / "page.xml"
    p.write_text('<?xml version="1.0"?><html><body>hello</body></html>')
    with pytest.raises(WorkbenchError, match="not an OpenVINO IR"):
        workbench.load(p)


def test_missing_bin_says_to_copy_it(ir_copy):
    ir_copy.with_suffix(".bin").unlink()
    with pytest.raises(WorkbenchError, match="model.bin is missing"):
        workbench.load(ir_copy)


def test_truncated_bin_is_refused(ir_copy):
    b = ir_copy.with_suffix(".bin")
    b.write_bytes(b.read_bytes()[: b.stat().st_size // 2])
    with pytest.raises(WorkbenchError, match="not a loadable OpenVINO IR|crashed"):
        workbench.load(ir_copy)


def test_malformed_xml_is_refused(ir_copy):
    text = ir_copy.read_text()
    ir_copy.write_text(text[: len(text) // 2])  # cut mid-element
    with pytest.raises(WorkbenchError, match="not a loadable OpenVINO IR|crashed"):
        workbench.load(ir_copy)
