"""Per-layer sensitivity tables and mixed precision chosen from them."""

from __future__ import annotations

import pytest

import workbench
from workbench import auto_mixed_precision, compress, sensitivity, zoo


@pytest.fixture(scope="module")
def table(digits):
    return sensitivity(digits, "quantize", levels=[4, 2], limit=200, progress=False)


def test_one_row_per_layer_and_level_with_measured_values(digits, table):
    layers = table["layer"].unique()
    assert len(table) == 2 * len(layers) and "classifier" in layers and "stem.conv" in layers
    assert set(table["level"]) == {4, 2}
    assert (table["baseline"] == table["baseline"].iloc[0]).all()
    # 2 bits hurts at least as much as 4 bits for the most sensitive layer, and it hurts for real.
    worst = table.loc[table["drop"].idxmax()]
    assert worst["level"] == 2 and worst["drop"] > 0.05
    # The working copy was restored: the original model still scores its baseline.
    acc = digits.evaluate(workbench.runtime(digits.model, "torch"), limit=200)["accuracy"]
    assert acc == pytest.approx(table["baseline"].iloc[0])


def test_prune_sensitivity(digits):
    df = sensitivity(digits, "prune", levels=[0.9], layers=["stem.conv", "classifier"], limit=100, progress=False)
    assert list(df["layer"]) == ["stem.conv", "classifier"] and (df["kind"] == "prune").all()


def test_bad_arguments(digits):
    with pytest.raises(ValueError, match="bit-widths"):
        sensitivity(digits, "quantize", levels=[1])
    with pytest.raises(ValueError, match="ratios"):
        sensitivity(digits, "prune", levels=[1.0])
    with pytest.raises(ValueError, match="kind"):
        sensitivity(digits, "distill")
    with pytest.raises(workbench.WorkbenchError, match="unknown layer"):
        sensitivity(digits, "prune", layers=["nope"])


def test_auto_mixed_precision_meets_the_bar_with_fewer_bits(digits, table):
    cfg = auto_mixed_precision(digits, max_drop=0.01, bits=(8, 4, 2), limit=200, progress=False,
                               table=table)
    variant = compress(digits.model, cfg, task=digits)
    base = table["baseline"].iloc[0]
    acc = digits.evaluate(workbench.runtime(variant, "torch"), limit=200)["accuracy"]
    assert base - acc <= 0.01
    from workbench.compression import effective_bits_per_weight

    assert effective_bits_per_weight(variant) < 8.0


@pytest.mark.slow
def test_auto_mixed_precision_on_minilm_meets_max_drop():
    task = zoo.load("minilm")
    layers = [f"bert.encoder.layer.{i}.{part}" for i in range(6)
              for part in ("attention.self.query", "intermediate.dense", "output.dense")]
    table = sensitivity(task, "quantize", levels=[8, 4], layers=layers, limit=200, progress=False)
    cfg = auto_mixed_precision(task, max_drop=0.01, bits=(8, 4), limit=200, progress=False, table=table)
    variant = compress(task.model, cfg, task=task)
    acc = task.evaluate(workbench.runtime(variant, "torch"), limit=200)["accuracy"]
    assert table["baseline"].iloc[0] - acc <= 0.01
