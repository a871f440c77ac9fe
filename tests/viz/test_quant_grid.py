"""workbench.viz.quant_grid: weights snapped to the b-bit grid, from the workbench's own quantiser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench
from workbench import Quantize
from workbench.core.errors import WorkbenchError
from workbench.viz.quant_grid import quantization_grid, quantization_table, snap, weight_slice

LAYER = "blocks.4.pw.conv"


def weight(digits, layer=LAYER):
    return digits.model.module.get_submodule(layer).weight.detach()


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_a_symmetric_grid_has_2_to_the_b_minus_1_levels_and_the_snapped_values_lie_on_them(digits, bits):
    s = snap(weight(digits), bits, channel=5)
    qmax = 2 ** (bits - 1) - 1
    assert len(s.levels) == 2 * qmax + 1 == 2**bits - 1
    assert 0.0 in s.levels and np.allclose(s.levels, -s.levels[::-1])  # zero exact, symmetric about it
    step = float(weight(digits)[5].abs().max()) / qmax
    assert s.step == pytest.approx(step, rel=1e-5)
    assert np.allclose(s.levels, step * np.arange(-qmax, qmax + 1), atol=1e-7)
    assert np.isin(s.snapped, s.levels).all()
    assert np.abs(s.error).max() <= s.step / 2 * (1 + 1e-5)  # round to nearest: never more than half a step


def test_the_snapped_values_are_what_quantize_writes_into_the_model(digits):
    q4 = workbench.compress(digits.model, Quantize(4))
    stored = q4.module.get_submodule(LAYER).weight.detach()
    for channel in (0, 17, 255):
        assert np.array_equal(snap(weight(digits), 4, channel=channel).snapped, stored[channel].reshape(-1).numpy())
    asym = workbench.compress(digits.model, Quantize(3, symmetric=False)).module.get_submodule("classifier").weight
    s = snap(weight(digits, "classifier"), 3, channel=2, symmetric=False)
    assert np.array_equal(s.snapped, asym[2].detach().numpy()) and len(s.levels) == 8


def test_an_asymmetric_grid_has_2_to_the_b_levels():
    w = torch.from_numpy(np.random.default_rng(0).normal(0.3, 1.0, 500).astype(np.float32))
    for bits in (2, 4, 8):
        s = snap(w, bits, channel=None, symmetric=False)
        assert len(s.levels) == 2**bits and np.isin(s.snapped, s.levels).all()
        assert s.levels.min() <= float(w.min()) and s.levels.max() >= float(w.max()) - s.step / 2


def test_one_grid_for_the_whole_tensor_is_coarser_than_each_channels_own(digits):
    w = weight(digits)
    whole = quantization_table(w, 4, channel=None)
    assert whole.loc[0, "weights"] == w.numel() and whole.loc[0, "step"] == pytest.approx(float(w.abs().max()) / 7)
    steps = [quantization_table(w, 4, channel=c).loc[0, "step"] for c in range(0, 256, 15)]
    assert max(steps) <= whole.loc[0, "step"] * (1 + 1e-6)


def test_the_table_counts_levels_and_errors(digits):
    t = quantization_table(digits, (8, 4, 2), layer="classifier", channel=3)
    assert list(t.bits) == [8, 4, 2] and list(t.levels) == [255, 15, 3]
    assert (t.levels_used <= t.levels).all() and (t.weights == 256).all()
    assert (t.max_abs_error <= t.step / 2 + 1e-7).all() and t.rms_error.is_monotonic_increasing


def test_the_figure_has_a_row_per_width_with_levels_histograms_and_errors(digits):
    fig = quantization_grid(digits.model, (8, 4, 2), layer=LAYER, channel=0)
    grids = [t for t in fig.data if t.name.startswith("grid")]
    assert [len(t.x) for t in grids] == [255, 15, 3]
    n = weight(digits)[0].numel()
    floats = [t for t in fig.data if t.name == "float weights"]
    snapped = [t for t in fig.data if t.name.startswith("snapped")]
    assert len(floats) == len(snapped) == 3 and all(sum(t.y) == n for t in floats + snapped)
    for grid, err in zip(grids, [t for t in fig.data if t.name.startswith("error")]):
        on = np.asarray(err.x) + np.asarray(err.y)  # float + error = the snapped value: on a level
        assert np.abs(on[:, None] - np.asarray(grid.x)[None, :]).min(axis=1).max() < 1e-7
    titles = [a.text for a in fig.layout.annotations]
    assert "8-bit: 255 levels, step 0.0011" in titles and any(t.startswith("2-bit: 3 levels") for t in titles)
    assert "output channel 0" in fig.layout.title.subtitle.text and "per-channel" in fig.layout.title.subtitle.text
    assert quantization_grid(digits.model, 4, layer=LAYER, fig=fig) is fig and len(fig.data) == 4


def test_a_plain_array_is_one_grid():
    fig = quantization_grid(np.linspace(-1, 1, 101), 2)
    assert list(next(t for t in fig.data if t.name.startswith("grid")).x) == [-1.0, 0.0, 1.0]
    assert "all 101 weights" in fig.layout.title.subtitle.text
    assert list(quantization_table(np.linspace(-1, 1, 11), np.array([4, 2])).levels) == [15, 3]  # numpy ints


def test_wrong_arguments_say_what_to_pass(digits):
    with pytest.raises(WorkbenchError, match="needs the layer.*classifier"):
        quantization_grid(digits)
    with pytest.raises(WorkbenchError, match="does not have"):
        quantization_grid(digits, layer="nope")
    with pytest.raises(WorkbenchError, match="channel must be an output channel of classifier, 0 to 9"):
        weight_slice(digits, layer="classifier", channel=10)
    with pytest.raises(WorkbenchError, match="pass the model"):
        quantization_grid(np.ones(4), layer="classifier")
    with pytest.raises(ValueError, match="from 2 to 8"):
        quantization_table(np.ones(4), 9)
