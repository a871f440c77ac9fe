"""LanguageTask: perplexity (lower is better), agreement with the original, instructions answered right."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tiny_lm import tiny_lm_texts

import workbench
from workbench.core.lm import lm_spec
from workbench.formats.lm_folder import lm_handle
from workbench.task import LanguageTask, next_token_scores

INSTRUCTIONS = [("The for statement", r"\w"), ("Write nothing but the digit 7", r"^7$")]


@pytest.fixture(scope="module")
def lm_task(tiny_lm):
    return workbench.Task.from_text(tiny_lm, tiny_lm_texts(200), instructions=INSTRUCTIONS, seq_len=64)


def test_from_text_makes_a_perplexity_task_with_a_fixed_split(lm_task, tiny_lm):
    assert isinstance(lm_task, LanguageTask) and lm_task.metric == "perplexity" and not lm_task.higher_is_better
    ev, tr = lm_task.eval_inputs[0], lm_task.train_inputs[0]
    assert ev.dtype == np.int64 and ev.shape[1] == 64 and len(tr) > 2 * len(ev)
    again = workbench.Task.from_text(tiny_lm, tiny_lm_texts(200), seq_len=64)
    assert np.array_equal(again.eval_inputs[0], ev)  # deterministic
    assert not {r.tobytes() for r in ev} & {r.tobytes() for r in tr}  # held-out chunks never train


def test_the_original_agrees_with_itself_and_perplexity_is_the_exp_of_the_mean_nll(lm_task, tiny_lm):
    run = workbench.runtime(tiny_lm, "torch")
    res = lm_task.evaluate(run, limit=4)
    assert res["agreement"] == 1.0 and 0.0 <= res["pass_rate"] <= 1.0
    ids = lm_task.eval_inputs[0][:4]
    with torch.no_grad():
        logits = tiny_lm.module(torch.from_numpy(ids)).logits
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), torch.from_numpy(ids[:, 1:]).reshape(-1))
    assert res["perplexity"] == pytest.approx(float(torch.exp(nll)), rel=1e-4)
    assert 1 < res["perplexity"] < lm_task.model.meta["lm"]["vocab"]  # better than uniform: it was trained


def test_a_damaged_model_has_higher_perplexity_and_lower_agreement(lm_task, tiny_lm):
    module = copy.deepcopy(tiny_lm.module)
    with torch.no_grad():
        for layer in module.model.layers:
            layer.mlp.down_proj.weight.mul_(3.0)
    damaged = lm_handle(module, lm_spec(tiny_lm), None, tiny_lm.meta["tokenizer"], "damaged")
    base = lm_task.evaluate(workbench.runtime(tiny_lm, "torch"), limit=4)
    worse = lm_task.evaluate(workbench.runtime(damaged, "torch"), limit=4)
    assert worse["perplexity"] > base["perplexity"] and worse["agreement"] < 1.0


def test_next_token_scores_match_a_hand_computed_softmax():
    logits = np.log(np.asarray([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [1 / 3, 1 / 3, 1 / 3]]))
    nll, top = next_token_scores(logits, np.asarray([0, 1, 2]))
    assert np.allclose(nll, [-np.log(0.25), -np.log(0.1)]) and top.tolist() == [0, 1]


def test_from_text_refuses_what_it_cannot_use(tiny_lm, digits):
    with pytest.raises(workbench.WorkbenchError, match="language model"):
        workbench.Task.from_text(digits.model, ["some text"])
    with pytest.raises(workbench.WorkbenchError, match="list of texts"):
        workbench.Task.from_text(tiny_lm, "one string, not a list")
    with pytest.raises(workbench.WorkbenchError, match="chunk"):
        workbench.Task.from_text(tiny_lm, ["too short"], seq_len=64)
    with pytest.raises(workbench.WorkbenchError, match="prompt, regex"):
        workbench.Task.from_text(tiny_lm, tiny_lm_texts(50), instructions=[("only a prompt",)])


@pytest.mark.slow
def test_smollm2_answers_the_capital_of_france_and_has_a_sane_perplexity():
    task = workbench.zoo.load("smollm2")
    assert task.metric == "perplexity" and task.model.num_params == 134_515_008
    run = workbench.runtime(task.model, "torch")
    assert "paris" in run.generate("What is the capital of France?", 16).text.lower()
    res = task.evaluate(run, limit=4)
    assert res["agreement"] == 1.0 and 2 < res["perplexity"] < 200 and res["pass_rate"] >= 0.5
