"""A sweep over a language model: bits x group size x method x depth pruning, on torch and ONNX Runtime GenAI,
resumable, with perplexity treated as lower-is-better by pareto and best."""

from __future__ import annotations

import pytest
from tiny_lm import tiny_lm_texts

import workbench


@pytest.fixture(scope="module")
def lm_task(tiny_lm):
    return workbench.Task.from_text(tiny_lm, tiny_lm_texts(120), seq_len=32)


def test_an_lm_sweep_measures_every_point_and_resumes(lm_task, tmp_path):
    g = workbench.grid(prune=[0, 0.5], structure=["layer"], bits=[32, 4, 3], group_size=[32], method=["rtn", "hqq"],
                       runtimes=["torch", "onnxruntime"], devices=["raspberry-pi-4"], limit=3)
    assert [v.label for v in g] == ["baseline", "q4-group32", "q4-group32-hqq", "q3-group32", "q3-group32-hqq",
                                    "layer-0.50", "layer-0.50+q4-group32", "layer-0.50+q4-group32-hqq",
                                    "layer-0.50+q3-group32", "layer-0.50+q3-group32-hqq"]
    store = tmp_path / "lm.sqlite"
    df = workbench.sweep(lm_task, g, store=store, progress=False, memory=False)
    assert len(df) == 2 * len(g) and df["error"].isna().all(), df.loc[df["error"].notna(), "error"].tolist()
    assert (df["tokens_per_s"] > 0).all() and (df["perplexity"] > 1).all()
    rows = df.set_index(["variant", "runtime"])
    # int4 runs as MatMulNBits in ONNX Runtime GenAI; 3-bit has no kernel (simulated); torch simulates both
    assert rows.loc[("q4-group32", "onnxruntime"), "realized"]
    assert not rows.loc[("q3-group32", "onnxruntime"), "realized"]
    assert not rows.loc[("q4-group32", "torch"), "realized"]
    assert rows.loc[("q4-group32", "onnxruntime"), "size_bytes"] < rows.loc[("baseline", "onnxruntime"), "size_bytes"]
    # the same weights give the same perplexity on both runtimes (the builder re-quantises the grid exactly)
    assert rows.loc[("q4-group32", "onnxruntime"), "perplexity"] == pytest.approx(
        rows.loc[("q4-group32", "torch"), "perplexity"], rel=1e-3)
    assert rows.loc[("layer-0.50", "torch"), "params"] < rows.loc[("baseline", "torch"), "params"]
    seen = []
    again = workbench.sweep(lm_task, g, store=store, progress=False, memory=False, on_result=seen.append)
    assert not seen and len(again) == len(df)  # nothing measured twice


def test_pareto_and_best_minimise_perplexity():
    import pandas as pd

    df = pd.DataFrame({"variant": ["a", "b", "c"], "perplexity": [10.0, 12.0, 30.0],
                       "latency_ms_p50": [5.0, 3.0, 4.0], "size_bytes": [1, 1, 1], "error": [None] * 3})
    front = workbench.pareto(df, maximize=["perplexity"], minimize=["latency_ms_p50"])
    assert front.loc[front.pareto, "variant"].tolist() == ["a", "b"]  # c: worse perplexity and slower than b
    assert workbench.best(df, metric="perplexity", max_metric=11)["variant"] == "a"
    assert workbench.best(df, metric="perplexity", max_metric=15)["variant"] == "b"
    with pytest.raises(workbench.WorkbenchError, match="max_metric"):
        workbench.best(df, metric="perplexity", min_accuracy=11)
    with pytest.raises(workbench.WorkbenchError, match="perplexity <= 5"):
        workbench.best(df, metric="perplexity", max_metric=5)
