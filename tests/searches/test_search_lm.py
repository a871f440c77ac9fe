"""A search over a language model: perplexity is lower-is-better in the objectives, the constraints and the front."""

from __future__ import annotations

import pytest
from tiny_lm import tiny_lm_texts

import workbench
from workbench.core.errors import WorkbenchError
from workbench.searches import Space


@pytest.fixture(scope="module")
def lm_task(tiny_lm):
    return workbench.Task.from_text(tiny_lm, tiny_lm_texts(120), seq_len=32)


def test_an_lm_search_respects_perplexity_direction(lm_task, tmp_path):
    space = Space(prune=[0, 0.5], structure="unstructured", bits=[32, 4, 3], group_size=[32], limit=3,
                  runtimes=["torch"])
    base = workbench.search(lm_task, space, objectives={"perplexity": "min", "size_bytes": "min"}, n_trials=1,
                            store=tmp_path / "r.sqlite", progress=False, memory=False)
    ppl0 = float(base["perplexity"].iloc[0])
    cap = ppl0 * 1.05  # within 5 % of the original's perplexity
    df = workbench.search(lm_task, space, objectives={"perplexity": "min", "size_bytes": "min"},
                          constraints={"max_metric": cap}, n_trials=6, store=tmp_path / "r.sqlite", progress=False,
                          memory=False)
    assert df["error"].isna().all(), df["error"].dropna().tolist()
    assert df["feasible"].tolist() == (df["perplexity"] <= cap).tolist()
    assert df.loc[df["variant"] == "baseline", "feasible"].all()
    with pytest.raises(WorkbenchError, match="max_metric"):
        workbench.search(lm_task, space, constraints={"min_accuracy": 0.5}, store=None, progress=False, memory=False)


def test_per_layer_ratios_prune_a_language_model_unstructured(tiny_lm):
    from workbench.compression.prune_layers import weight_layers

    layers = [n for n in weight_layers(tiny_lm.module) if ".mlp." in n]
    cfg = workbench.Prune(0.25, scope="layer", per_layer={layers[0]: 0.75})
    v = workbench.compress(tiny_lm, cfg)
    w = dict(weight_layers(v.module))
    sparsity = {n: float((w[n].weight == 0).float().mean()) for n in layers[:2]}
    assert sparsity[layers[0]] == pytest.approx(0.75, abs=0.01) and sparsity[layers[1]] == pytest.approx(0.25, abs=0.01)
    with pytest.raises(WorkbenchError, match="MLP channels"):
        workbench.compress(tiny_lm, workbench.Prune(0.25, structure="channel", per_layer={layers[0]: 0.5}))
