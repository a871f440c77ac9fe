"""workbench.measurement.explain: the runtime's own profiler, per operator type, variant against original."""

from __future__ import annotations

import pytest

import workbench
from workbench.core.errors import WorkbenchError
from workbench.measurement.explain import COLUMNS, OVERHEAD_ROW, explain_speed
from workbench.measurement.op_profile import (
    PROFILERS,
    UNSUPPORTED,
    category_of,
    et_classify,
    ort_family,
    ort_profiler_floor_ms,
    ov_classify,
)


@pytest.fixture(scope="module")
def q8(digits):
    return workbench.compress(digits.model, workbench.Quantize(8), task=digits)


@pytest.fixture(scope="module")
def ort(digits, q8):
    return explain_speed(q8, runtime="onnxruntime", task=digits, runs=40)


def _row(why, op_type):
    return why.frame.set_index("op_type").loc[op_type]


def test_onnxruntime_int8_shows_quantised_convs_and_added_qdq(ort):
    assert tuple(ort.frame.columns) == COLUMNS
    conv = _row(ort, "Conv")
    assert (conv.kernels_before, conv.precision_before) == ("Conv", "fp32")
    assert (conv.kernels_after, conv.precision_after) == ("QLinearConv", "int8")
    assert conv.count_before == conv.count_after == 11  # every convolution of the digits CNN, before and after
    assert conv.before_ms > 0 and conv.after_ms > 0
    qdq = ort.frame[ort.frame.category == "quantize/dequantize"]
    assert set(qdq.op_type) >= {"QuantizeLinear", "DequantizeLinear"}
    assert qdq.after_ms.sum() > 0 and qdq.before_ms.sum() == 0 and qdq.count_before.sum() == 0
    assert ort.stayed_float == () and ort.frame.float_after.sum() == 0  # static QDQ quantises every conv and Gemm
    assert ort.notes == ("fp32", "int8 QDQ (static, calibrated)")


def test_rows_add_up_to_the_call_and_the_summary_uses_the_numbers(ort):
    f = ort.frame
    assert list(f.op_type)[-1] == OVERHEAD_ROW and (f.delta_ms == f.after_ms - f.before_ms).all()
    for side, call, kernels in (("before", ort.before_ms, ort.kernel_before_ms),
                                ("after", ort.after_ms, ort.kernel_after_ms)):
        rows = f[f"{side}_ms"]
        assert rows[f.category != "overhead"].sum() == pytest.approx(kernels)
        assert rows.sum() == pytest.approx(max(call, kernels))  # the overhead row closes the gap, never negative
    assert ort.profiled_after_ms > 0 and ort.calls == 40 and ort.threads == 1
    assert ort.speedup == pytest.approx(ort.before_ms / ort.after_ms)
    assert "QLinearConv" not in ort.summary and "Quantize/dequantize" in ort.summary
    assert ort.variant in ort.summary and "int8 QDQ (static, calibrated)" in ort.summary
    nodes = ort.nodes()
    assert set(nodes.model) == {"original", "variant"} and (nodes.ms >= 0).all()
    assert len(nodes[nodes.model == "variant"]) == int(f.count_after.sum())


def test_profiler_floor_is_measured_and_subtracted(ort):
    base, per_input = ort_profiler_floor_ms(1)
    assert 0 < base < 0.05 and per_input >= 0  # microseconds per node, not milliseconds
    assert ort.after.floor_ms == pytest.approx(base + per_input)


def test_original_override_and_an_original_without_lineage(digits, q8):
    with pytest.raises(WorkbenchError, match="original="):
        explain_speed(digits.model, task=digits)  # a loaded model has no original
    why = explain_speed(q8, task=digits, original=digits.model, runs=5, rounds=1)
    assert why.original == digits.model.name


@pytest.mark.parametrize("runtime", sorted(UNSUPPORTED))
def test_runtimes_without_a_profiler_say_what_to_use(q8, runtime):
    with pytest.raises(WorkbenchError, match="onnxruntime") as info:
        explain_speed(q8, runtime=runtime)
    assert runtime in str(info.value)
    if runtime == "litert":
        assert "enable_op_profiling" in str(info.value)  # where LiteRT's op profiler is


def test_bad_arguments(q8):
    with pytest.raises(WorkbenchError, match="unknown runtime"):
        explain_speed(q8, runtime="tensorrt")
    with pytest.raises(WorkbenchError, match="runs"):
        explain_speed(q8, runs=0)
    with pytest.raises(WorkbenchError, match="ModelHandle"):
        explain_speed("model.onnx")
    assert set(PROFILERS) == {"onnxruntime", "openvino", "executorch"}


def test_kernel_names_map_to_operator_families():
    assert [ort_family(k) for k in ("QLinearConv", "QGemm", "MatMulIntegerToFloat", "QLinearAdd", "Relu")] == [
        "Conv", "Gemm", "MatMul", "Add", "Relu"]
    assert category_of("DynamicQuantizeLinear") == "quantize/dequantize" and category_of("ReorderInput") == "layout"
    assert ov_classify("FullyConnectedQuantizedLegacy", "fc", "brgemm_avx512_I8") == ("FullyConnected", "int8",
                                                                                      "compute")
    assert ov_classify("Subgraph", "x/fq_output_0", "jit_avx512_f32")[2] == "quantize/dequantize"
    assert et_classify("Fully Connected (NC, QS8, QC8W) GEMM #3")[1:3] == ("Fully Connected", "int8")
    assert et_classify("Convert (NC, F32, QD8) #1")[3] == "quantize/dequantize"
    assert et_classify("Transpose (ND, X32) #2")[3] == "layout"


def test_openvino_int8_names_the_convolutions_that_stayed_float(digits, q8):
    pytest.importorskip("openvino")
    why = explain_speed(q8, runtime="openvino", task=digits, runs=40)
    conv = _row(why, "Convolution")
    assert (conv.precision_before, conv.precision_after) == ("fp32", "int8") and conv.count_after == 6
    # the CPU plugin keeps NNCF's depthwise convolutions in f32 (measured): each is named, with its kernel
    assert why.stayed_float and all(s.endswith("(GroupConvolution)") for s in why.stayed_float)
    assert why.frame.float_after.sum() == len(why.stayed_float)
    assert why.frame[why.frame.category == "quantize/dequantize"].count_after.sum() > 0
    assert "stayed float" in why.summary and "NNCF" in why.summary


@pytest.mark.slow  # the int8 .pte (PT2E + XNNPACK lowering) takes about a minute to build on 2 cores
def test_executorch_int8_from_etdump(digits, q8):
    pytest.importorskip("executorch")
    why = explain_speed(q8, runtime="executorch", task=digits, runs=30)
    fc = _row(why, "Fully Connected")  # XNNPACK runs the 1x1 convolutions as fully connected operators
    assert (fc.precision_before, fc.precision_after) == ("fp32", "int8") and fc.after_ms > 0
    assert why.frame[why.frame.category == "quantize/dequantize"].count_after.sum() > 0  # Convert (NC) in and out
