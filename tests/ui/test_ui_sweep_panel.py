"""SweepPanel: press Run on a tiny grid; the progress bar and the chart fill in as results arrive."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from workbench import ui
from workbench.core.errors import WorkbenchError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_run_fills_the_chart_live(monkeypatch, tmp_path):
    from workbench import viz

    panel = ui.SweepPanel("digits-cnn", limit=100, memory=False, store=tmp_path / "r.sqlite")
    panel.prune.value = (0.0,)
    panel.bits.value = (32, 8)
    panel.devices.value = ("raspberry-pi-4",)
    seen = []
    real = viz.update_pareto

    def spy(fig, df, **kw):
        seen.append((len(df), panel.running))
        return real(fig, df, **kw)

    monkeypatch.setattr(viz, "update_pareto", spy)
    panel.run_button.click()
    assert panel.last_error is None, panel.errors.value
    assert len(panel.results) == 2 and set(panel.results["variant"]) == {"baseline", "q8"}
    assert panel.progress.value == panel.progress.max == 2 and panel.progress.bar_style == "success"
    assert (1, True) in seen  # the chart was drawn while the sweep was still running, after the first result
    points = sum(len(t.x) for t in panel.figure.data if t.customdata is not None)
    assert points == 2
    assert "Done: 2 rows" in panel.status.value
    assert not panel.run_button.disabled
    panel.x.value = "latency_ms_est"
    assert panel.figure.layout.xaxis.title.text == "latency (est., ms) on raspberry-pi-4"
    # the store keeps the rows: a second run computes nothing and still shows them
    panel.run_button.click()
    assert len(panel.results) == 2 and panel.progress.value == 2 and panel.last_error is None


def test_errors_appear_in_the_panel():
    panel = ui.SweepPanel("digits-cnn", limit=100, memory=False)
    panel.bits.value = ()
    panel.run_button.click()  # must not raise
    assert "choose at least one bit-width" in panel.errors.value
    panel.bits.value = (32,)
    panel.model.value = "(a model file)"
    assert panel.path.layout.display == ""
    panel.path.value = "/no/such/model.onnx"
    panel.run_button.click()
    assert "does not exist" in panel.errors.value and isinstance(panel.last_error, WorkbenchError)
    assert not panel.running and not panel.run_button.disabled


def test_failed_rows_are_listed():
    panel = ui.SweepPanel("digits-cnn", limit=100, memory=False)
    panel.progress.max = 2
    panel._on_result({"variant": "2:4+q2", "runtime": "onnxruntime", "error": "compress: RuntimeError: boom"})
    assert "2:4+q2" in panel.failures.value and "boom" in panel.failures.value
    assert panel.last_error is None  # nothing plottable yet is not an error


def test_model_file_task(onnx_file):
    panel = ui.SweepPanel(limit=100, memory=False)
    panel.model.value = "(a model file)"
    panel.path.value = str(onnx_file)
    task = panel.task()
    assert task.metric == "fidelity" and task.eval_inputs[0].shape[1:] == (1, 8, 8)
    g = panel.grid()
    assert g.limit == 100 and [v.label for v in g][:1] == ["baseline"]


def test_grid_from_controls():
    panel = ui.SweepPanel("digits-cnn", limit=0, memory=False)
    panel.prune.value = (0.0, 0.5)
    panel.structure.value = ("channel", "2:4")
    panel.bits.value = (32, 8)
    panel.runtimes.value = ("onnxruntime",)
    g = panel.grid()
    assert g.limit is None
    assert [v.label for v in g] == ["baseline", "q8", "channel-0.50", "channel-0.50+q8", "2:4", "2:4+q8"]
    assert panel.task().name == "digits-cnn"


# ------------------------------------------------------------------------------------------- search mode


def test_search_mode_shows_trials_the_front_and_the_hypervolume(monkeypatch):
    from workbench.ui import search_view

    panel = ui.SweepPanel("digits-cnn", limit=100, memory=False)  # store None: in memory
    assert panel.n_trials.layout.display == "none" and panel.run_button.description == "Run sweep"
    panel.mode.value = "search"
    assert panel.n_trials.layout.display == "" and panel.sampler.layout.display == ""
    assert panel.run_button.description == "Run search" and panel.n_trials.value == 20
    panel.n_trials.value = 5
    panel.prune.value = (0.0, 0.5)
    panel.bits.value = (32, 8, 4)
    panel.devices.value = ("raspberry-pi-4",)
    panel.min_metric.value = 0.5  # channel-0.50 without retraining is far below: it must show as infeasible
    drawn, said = [], []
    real = search_view.search_figure

    def spy(p, **kw):
        drawn.append((len(p), panel.running))
        said.append(panel.status.value)
        return real(p, **kw)

    monkeypatch.setattr(search_view, "search_figure", spy)
    panel.run_button.click()
    assert panel.last_error is None, panel.errors.value
    df = panel.results
    assert df.attrs["trials"] == 5 and len(panel.trials) == 5 and "trial" in df and df["trial"].nunique() <= 5
    assert df.attrs["objectives"] == {"accuracy": "max", "latency_ms_p50": "min"}
    assert df.attrs["constraints"] == {"min_accuracy": 0.5, "device": "raspberry-pi-4"}
    assert (1, True) in drawn and (5, True) in drawn  # drawn live, after the first trial and the last
    assert any("Trial 3 of 5" in s and "best feasible so far:" in s for s in said)
    assert panel.progress.value == panel.progress.max == 5 and panel.progress.bar_style == "success"
    traces = {t.name: t for t in panel.figure.data}
    assert set(traces) == {"meets the constraints", "misses a constraint", "current front"}
    # the panel's front is the search's own: its feasible non-dominated rows on the judged device
    on = df[(df["device"] == "raspberry-pi-4") & df["feasible"]]
    assert sorted(traces["current front"].x) == sorted(on.loc[on["pareto"], "latency_ms_p50"])
    missed = [t for t in panel.trials if not t["feasible"] and not t["error"]]
    assert missed and len(traces["misses a constraint"].x) == len(missed)  # seed 0 tries channel-0.50
    assert traces["misses a constraint"].marker.symbol == "circle-open"
    best = on.sort_values(["accuracy", "latency_ms_p50"], ascending=[False, True]).iloc[0]
    assert "Done: 5 trials" in panel.status.value and f"best feasible: {best['variant']}," in panel.status.value
    hv = panel.hypervolume_figure
    assert panel.hypervolume_box.layout.display == "" and len(hv.data[0].x) == df.attrs["trials"]
    ys = list(hv.data[0].y)
    assert ys == sorted(ys) and 0 < ys[-1] <= 1
    assert "dominate" in hv.layout.title.text
    panel.mode.value = "grid"
    assert panel.n_trials.layout.display == "none" and panel.run_button.description == "Run sweep"


def test_a_search_that_fails_shows_the_error(monkeypatch):
    import workbench

    def boom(*args, **kwargs):
        raise WorkbenchError("search: unknown sampler 'x'")

    monkeypatch.setattr(workbench, "search", boom)
    panel = ui.SweepPanel("digits-cnn", limit=100, memory=False)
    panel.mode.value = "search"
    panel.run_button.click()  # must not raise
    assert "unknown sampler" in panel.errors.value and panel.progress.bar_style == "danger"
    assert "The search stopped" in panel.status.value
    assert not panel.running and not panel.run_button.disabled


def test_a_failed_trial_is_listed_and_a_stored_one_says_so():
    panel = ui.SweepPanel("digits-cnn", limit=100, memory=False)
    panel.progress.max = 3
    row = {"variant": "q8", "accuracy": 0.98, "latency_ms_p50": 0.05}
    panel._on_trial({"trial": 0, "variant": "2:4+q2", "runtime": "onnxruntime", "values": {}, "feasible": False,
                     "cached": False, "error": "compress: RuntimeError: boom", "row": {"variant": "2:4+q2"}})
    assert "2:4+q2" in panel.failures.value and "boom" in panel.failures.value
    assert "Trial 1 of 3: 2:4+q2 (failed) — no variant meets the constraints yet" in panel.status.value
    panel._on_trial({"trial": 1, "variant": "q8", "runtime": "onnxruntime", "values": {}, "feasible": True,
                     "cached": True, "error": None, "row": row})
    assert panel.last_error is None, panel.errors.value
    assert "Trial 2 of 3: q8 (stored) — best feasible so far: q8, accuracy 98.0 %, 0.05 ms" in panel.status.value
    front = next(t for t in panel.figure.data if t.name == "current front")
    assert list(front.x) == [0.05]


def test_the_metric_limit_becomes_the_constraint_of_the_metric():
    panel = ui.SweepPanel("digits-cnn", limit=100, memory=False)
    panel.devices.value = ()
    task = panel.task()
    assert panel.search_settings(task, panel.grid()) == ({"accuracy": "max", "latency_ms_p50": "min"}, {})
    panel.min_metric.value = 0.9
    panel.x.value = "size_bytes"
    panel.devices.value = ("raspberry-pi-4",)
    assert panel.search_settings(task, panel.grid()) == (
        {"accuracy": "max", "size_bytes": "min"}, {"min_accuracy": 0.9, "device": "raspberry-pi-4"})
    lm = SimpleNamespace(metric="perplexity")  # lower is better: the limit is a ceiling
    objectives, constraints = panel.search_settings(lm, panel.grid())
    assert objectives == {"perplexity": "min", "size_bytes": "min"} and "min_accuracy" not in constraints
    assert constraints["max_metric"] == 0.9


def test_a_search_read_back_whole_is_drawn_from_its_frame():
    import pandas as pd

    from workbench.ui import search_view

    df = pd.DataFrame({"trial": [0, 1, 3], "variant": ["baseline", "channel-0.50", "q8"], "device": None,
                       "accuracy": [0.99, 0.12, 0.98], "latency_ms_p50": [0.06, 0.02, 0.05],
                       "feasible": [True, False, True], "error": None})
    df.attrs.update(trials=4, objectives={"accuracy": "max", "latency_ms_p50": "min"}, device=None)
    p = search_view.frame_points(df, "latency_ms_p50", "accuracy")
    assert p["variant"].tolist() == ["baseline", "channel-0.50", "q8"] and p["feasible"].tolist() == [True, False, True]
    assert search_view.front_of(p, "accuracy")["variant"].tolist() == ["q8", "baseline"]
    assert search_view.done_words(df, p, [], x="latency_ms_p50", metric="accuracy") == (
        "Done: 4 trials (all read from the store: this search had finished before), 3 different variants — "
        "best feasible: baseline, accuracy 99.0 %, 0.06 ms")
