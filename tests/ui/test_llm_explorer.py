"""The language-model dashboard's logic on the tiny LM: the built-in sweep (stored, resumed, failures as rows),
lower-is-better perplexity in the best variant and the Pareto front, the chart driven through its controls, and
the chat box (both answers streamed, each with its measured speed). The dashboard notebook itself is executed by
tests/dashboards/."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.compression import Quantize
from workbench.core.errors import WorkbenchError
from workbench.ui.llm_data import builtin_variants, llm_results, variant_configs, variant_label
from workbench.ui.llm_explorer import LLMExplorer, best_row, distribution_note, with_memory

pytestmark = pytest.mark.usefixtures("one_torch_thread")

Q4 = (Quantize(4, group_size=32, symmetric=False),)
Q2 = (Quantize(2, group_size=32, symmetric=False),)
DEVICES = ["raspberry-pi-5", "esp32-s3"]


@pytest.fixture(scope="module")
def lm_task(tiny_lm):
    from tiny_lm import tiny_lm_texts

    import workbench

    return workbench.Task.from_text(tiny_lm, tiny_lm_texts(40), seq_len=32,
                                    instructions=[("Say something", r"\w"), ("Name a number", r"\d")])


@pytest.fixture(scope="module")
def lm_store(tmp_path_factory):
    return tmp_path_factory.mktemp("llm-store") / "llm.sqlite"


@pytest.fixture(scope="module")
def lm_frame(lm_task, lm_store):
    return llm_results(lm_task, store=lm_store, variants=[(), Q4, Q2], runtimes=["torch"], devices=DEVICES,
                       memory=False)


def test_the_builtin_sweep_measures_every_variant_on_every_device(lm_frame):
    df = lm_frame
    assert sorted(set(df["variant"])) == ["baseline", "q2-group32-asym", "q4-group32-asym"]
    assert len(df) == 3 * len(DEVICES) and df["error"].isna().all()
    base = df[df.variant == "baseline"].iloc[0]
    assert base["agreement"] == 1.0 and base["baseline_perplexity"] == base["perplexity"]
    q2 = df[df.variant == "q2-group32-asym"].iloc[0]
    assert q2["perplexity"] > base["perplexity"] and q2["agreement"] < 1.0  # 2 bits cost quality
    assert (df["tokens_per_s"] > 0).all() and (df["ttft_ms"] > 0).all()
    pi = df[df.device == "raspberry-pi-5"]
    assert pi["fits"].all() and (pi["tokens_per_s_est"] > 0).all()
    assert (df["bits"].tolist().count(32), set(df["bits"])) == (2, {32, 4, 2})
    assert "Built-in sweep" in df.attrs["note"]


def test_stored_rows_are_read_back_without_measuring(lm_task, lm_store, lm_frame, monkeypatch):
    import workbench.measurement.record as record

    def no_measuring(*_a, **_k):
        raise AssertionError("measured again")

    monkeypatch.setattr(record, "measure", no_measuring)
    seen = []
    df = llm_results(lm_task, store=lm_store, variants=[(), Q4, Q2], runtimes=["torch"], devices=DEVICES,
                     memory=False, on_result=lambda row, done, total: seen.append((row["variant"], done, total)))
    assert seen == [("baseline", 1, 3), ("q4-group32-asym", 2, 3), ("q2-group32-asym", 3, 3)]
    pd.testing.assert_series_equal(df["perplexity"], lm_frame["perplexity"])


def test_a_variant_that_cannot_be_built_is_an_error_row(lm_task, tmp_path):
    from workbench.sweeps import ResultStore

    store = tmp_path / "s.sqlite"
    bad = (Quantize(4),)  # per-channel 4-bit: a language model needs blocks (group_size)
    df = llm_results(lm_task, store=store, variants=[(), bad], runtimes=["torch"], devices=["raspberry-pi-5"],
                     memory=False)
    row = df[df.variant == "q4"].iloc[0]
    assert "group_size" in row["error"] and row["device"] == "raspberry-pi-5"
    with ResultStore(store) as s:
        assert len(s) == 2  # stored too: the next page load shows it at once instead of failing again
    assert llm_results(lm_task, store=store, variants=[(), bad], runtimes=["torch"], devices=["raspberry-pi-5"],
                       memory=False, cached_only=True)["error"].notna().sum() == 1
    app = LLMExplorer(df, task=lm_task)
    assert "q4" in app.failures.value and "could not be measured" in app.failures.value
    assert app.last_error is None


def test_results_without_language_model_rows_fall_back_to_the_builtin_sweep(lm_task, tmp_path):
    cnn = pd.DataFrame({"variant": ["baseline"], "accuracy": [0.9], "runtime": ["onnxruntime"]})
    df = llm_results(lm_task, results=cnn, store=":memory:", variants=[()], runtimes=["torch"],
                     devices=["raspberry-pi-5"], memory=False)
    assert df["perplexity"].notna().all() and "no language-model rows" in df.attrs["note"]
    with pytest.raises(WorkbenchError, match="does not exist"):
        llm_results(lm_task, results=tmp_path / "missing.sqlite")
    stored = tmp_path / "lm.csv"
    df.to_csv(stored, index=False)
    again = llm_results(results=stored)  # a stored language-model frame is shown as it is (no task needed)
    assert again["perplexity"].tolist() == pytest.approx(df["perplexity"].tolist())
    assert again.attrs["note"].startswith("stored results")


def test_best_knows_that_lower_perplexity_is_better():
    d = pd.DataFrame({"variant": ["baseline", "a", "b", "c"], "perplexity": [10.0, 10.4, 9.9, 30.0],
                      "baseline_perplexity": 10.0, "pass_rate": [0.8, 0.8, 0.5, 0.1], "baseline_pass_rate": 0.8,
                      "tokens_per_s": [20.0, 50.0, 40.0, 90.0], "memory_bytes": [100, 30, 40, 10],
                      "fits": [True, True, False, True]})
    assert best_row(d, "perplexity", "tokens_per_s", 5, must_fit=False)["variant"] == "a"
    assert best_row(d, "perplexity", "tokens_per_s", 1, must_fit=False)["variant"] == "b"  # a is +4 %
    assert best_row(d, "perplexity", "tokens_per_s", 1, must_fit=True)["variant"] == "baseline"  # b does not fit
    assert best_row(d, "perplexity", "memory_bytes", 500, must_fit=False)["variant"] == "c"  # lowest memory
    assert best_row(d, "pass_rate", "tokens_per_s", 0, must_fit=False)["variant"] == "a"  # a drop in points
    assert best_row(d, "pass_rate", "tokens_per_s", 75, must_fit=False)["variant"] == "c"
    assert best_row(d.assign(perplexity=99.0), "perplexity", "tokens_per_s", 5, must_fit=False) is None


def test_the_chart_puts_quality_against_cost_and_rings_the_best(lm_frame, lm_task):
    app = LLMExplorer(lm_frame, task=lm_task)
    assert app.last_error is None, app.errors.value
    fig = app.figure
    assert fig.layout.yaxis.title.text == "perplexity (measured; lower is better)"
    assert fig.layout.xaxis.title.text == "tokens per second (measured on this machine)"
    points = sum(len(t.x) for t in fig.data if t.customdata is not None)
    assert points == 3  # one per variant on the chosen device
    assert app.best is not None and "Best:" in app.summary.value and "(ringed)" in app.summary.value
    ring = next(t for t in fig.data if t.name == "highlighted")
    assert list(ring.y) == [app.best["perplexity"]]
    # the Pareto front minimises perplexity: the baseline (lowest perplexity) and q4 are on it, never a worse one
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert min(front.y) == pytest.approx(lm_frame["perplexity"].min())
    traces = list(fig.data)
    app.cost.value = "tokens_per_s_est"
    assert fig.layout.xaxis.title.text == "tokens per second (estimate for raspberry-pi-5)"
    assert app.figure is fig and [t.name for t in fig.data] == [t.name for t in traces]  # updated in place
    app.quality.value = "pass_rate"
    assert fig.layout.yaxis.title.text.startswith("answers right") and app.bar.description == "may lose (points)"
    app.cost.value = "memory_bytes"
    pi = with_memory(lm_frame[lm_frame.device == "raspberry-pi-5"])
    keep = pi[pi["pass_rate"] >= pi["baseline_pass_rate"] - 0.05]
    assert app.best["variant"] == keep.loc[keep["memory_bytes"].idxmin(), "variant"]  # the least memory that passes
    app.device.value = "esp32-s3"  # the tiny model fits nowhere on this microcontroller's estimate
    assert app.best is None and "fit esp32-s3" in app.summary.value and app.last_error is None


def test_a_perplexity_bar_of_zero_keeps_only_the_variants_that_do_not_get_worse(lm_frame, lm_task):
    app = LLMExplorer(lm_frame, task=lm_task)
    app.bar.value = 0.0
    base = lm_frame.loc[lm_frame.variant == "baseline", "perplexity"].iloc[0]
    assert app.best["perplexity"] <= base


def test_clicking_a_point_shows_its_figures_and_picks_it_for_the_chat(lm_frame, lm_task, click_point):
    app = LLMExplorer(lm_frame, task=lm_task)
    index = next(i for i, t in enumerate(app.figure.data) if t.customdata is not None and t.name == "2-bit")
    click_point(app.figure, index)
    assert "Variant: q2-group32-asym" in app.details.value and "estimates for raspberry-pi-5" in app.details.value
    assert "against the original" in app.details.value
    assert app.chat_variant.value == "q2-group32-asym|torch"


def test_the_chat_streams_both_answers_with_their_speed(lm_frame, lm_task):
    app = LLMExplorer(lm_frame, task=lm_task)
    app.chat_variant.value = "q2-group32-asym|torch"
    updates = {"answer": [], "reference": []}
    app.answer.observe(lambda c: updates["answer"].append(c["new"]), names="value")
    app.reference.observe(lambda c: updates["reference"].append(c["new"]), names="value")
    app.prompt.value = "Tell me about Python"
    app.max_tokens.value = 8
    app.send.click()
    assert app.last_error is None, app.errors.value
    v, o = app.last_chat["variant"], app.last_chat["original"]
    assert v.new_tokens == o.new_tokens == 8 and v.tokens_per_s > 0 and o.ttft_ms > 0
    for box, g in ((app.answer, v), (app.reference, o)):
        assert "tokens per second" in box.value and "first token after" in box.value
        assert (g.text.strip()[:3] or "") in box.value
    assert "q2-group32-asym on torch" in app.answer.value and "original on torch" in app.reference.value
    # streamed: several intermediate values, each a prefix of the answer, before the final one
    assert sum("answering…" in u for u in updates["answer"]) >= 4
    assert sum("answering…" in u for u in updates["reference"]) >= 4
    assert "Done:" in app.chat_status.value and not app.send.disabled
    assert set(app._runners) == {("q2-group32-asym", "torch"), ("baseline", "torch")}
    app.chat_variant.value = "q4-group32-asym|torch"
    app.chat("Hello", 4)
    assert set(app._runners) == {("q4-group32-asym", "torch"), ("baseline", "torch")}  # two models at most


def test_chat_errors_show_in_the_panel(lm_frame, lm_task):
    app = LLMExplorer(lm_frame, task=lm_task)
    app.prompt.value = "   "
    app.send.click()
    assert isinstance(app.last_error, WorkbenchError) and "type a prompt" in app.errors.value
    assert not app.send.disabled


def test_without_data_it_measures_in_the_background_with_progress(lm_task, tmp_path):
    kw = dict(task=lm_task, store=tmp_path / "bg.sqlite", variants=[(), Q4], runtimes=["torch"],
              devices=["raspberry-pi-5"], memory=False)
    app = LLMExplorer(**kw)
    assert app.measuring and app.data is None and app.send.disabled  # the panel is up before anything is measured
    with pytest.raises(WorkbenchError, match="still being measured"):
        app.chat("hello")
    app.wait(300)
    assert not app.measuring and app.last_error is None, app.errors.value
    assert app.progress.value == app.progress.max == 2 and app.progress.bar_style == "success"
    assert len(app.data) == 2 and not app.send.disabled
    assert sum(len(t.x) for t in app.figure.data if t.customdata is not None) == 2
    again = LLMExplorer(**kw)  # everything measured: shown at once, no thread
    assert not again.measuring and again.data is not None and len(again.data) == 2


def test_results_that_are_not_a_language_model_are_an_error_in_the_panel(frame):
    app = LLMExplorer(frame)
    assert isinstance(app.last_error, WorkbenchError) and "no language-model rows" in app.errors.value


def test_variants_are_rebuilt_from_their_labels():
    for configs in builtin_variants(fast=False):
        assert variant_label(variant_configs({"variant": variant_label(configs)})) == variant_label(configs)
    assert variant_configs({"variant": "baseline"}) == ()
    custom = (Quantize(5, group_size=64, symmetric=False),)
    assert variant_configs({"variant": "q5-group64-asym"}, [custom]) == custom
    with pytest.raises(WorkbenchError, match="cannot rebuild"):
        variant_configs({"variant": "something-else", "bits": 32})


def test_the_distribution_grid_is_named():
    assert "Q4_1 (asymmetric 4-bit, blocks of 32)" in distribution_note("/x/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert distribution_note("/x/model.safetensors") == "" and distribution_note(None) == ""


def test_memory_is_weights_plus_kv_cache():
    d = with_memory(pd.DataFrame({"weight_bytes": [100, None], "kv_cache_bytes": [20, 5]}))
    assert d["memory_bytes"].iloc[0] == 120 and pd.isna(d["memory_bytes"].iloc[1])
