"""A sweep over a user's own ONNX file with their own labels, end to end."""

from __future__ import annotations

import pytest

import workbench


@pytest.fixture(scope="module")
def users_task(digits, digits_onnx):
    """The default CNN as a user would bring it: an ONNX file plus their labelled samples."""
    return workbench.Task.from_model(digits_onnx, [digits.eval_inputs[0][:300]], labels=digits.eval_labels[:300],
                                     name="my-digits")


def test_pruning_by_bits_over_a_users_onnx_file_realises_or_marks_every_row(users_task):
    grid = workbench.grid(prune=(0.0, 0.5), structure=("unstructured", "channel"), bits=(32, 8),
                          runtimes=("onnxruntime",))
    df = workbench.sweep(users_task, grid, store=None, progress=False, memory=False)
    rows = df.set_index("variant")
    assert set(rows.index) == {"baseline", "q8", "unstructured-0.50", "unstructured-0.50+q8", "channel-0.50",
                               "channel-0.50+q8"}
    assert df["error"].isna().all()
    base = rows.loc["baseline", "accuracy"]
    assert base > 0.95 and rows.loc["q8", "accuracy"] >= base - 0.02  # int8 within 2 points
    # int8 is real (an integer QDQ file, smaller), not float weights on an int8 grid
    assert rows.loc["q8", "realization"] == "int8 QDQ (static, calibrated)"
    assert rows.loc["q8", "size_bytes"] < 0.5 * rows.loc["baseline", "size_bytes"]
    # unstructured zeros run on dense kernels: marked, not passed off as realised
    assert not rows.loc["unstructured-0.50", "realized"] and "simulated" in rows.loc["unstructured-0.50", "realization"]
    assert rows.loc["channel-0.50", "params"] < 0.4 * rows.loc["baseline", "params"]
    assert rows.loc["channel-0.50", "realized"]
