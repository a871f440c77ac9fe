"""`SweepPanel`: choose a model and a grid, press Run, watch the progress bar and the Pareto chart fill in.

The sweep runs in the kernel (`workbench.sweep` with an ``on_result`` callback); every stored row updates the
progress bar and the chart in place. In search mode the same controls describe the space, and Run calls
`workbench.search` (``on_trial``): each finished trial is a point, the current front a line, and one line of
words says the best feasible variant so far (`workbench.ui.search_view`); the hypervolume chart follows. Rows that failed are listed in the panel, and an exception (a bad model
file, an unknown device) is shown there too — never lost in a callback.

`SweepProgress` is the page a dashboard shows while its data must first be measured (`workbench.ui.data.demo_page`):
a progress bar and "Measuring variant 7 of 44…", then the dashboard's panel in its place.
"""

from __future__ import annotations

import contextlib
import html
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import ipywidgets as widgets
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.sweeps.frame import error_mask
from workbench.ui.base import Panel, axis_options, note_html, ok_rows, primary_metric

FILE = "(a model file)"
PRUNE_CHOICES = (0.0, 0.25, 0.5, 0.75)
BITS_CHOICES = (("32-bit float", 32), ("16-bit float", 16), ("8-bit", 8), ("4-bit", 4), ("2-bit", 2))
X_CHOICES = ("latency_ms_p50", "size_bytes", "size_deflated_bytes", "macs", "latency_ms_est", "energy_mj_est")


class SweepPanel(Panel):
    """Run a sweep from widgets and watch its results arrive.

    Args:
        task: a `Task`, a zoo task name, or None for the zoo's default (the `model` dropdown can change it).
        store: the results store (a path or `ResultStore`; default: in memory, so nothing is resumed).
        limit: evaluate on the first `limit` samples (0 = the whole split; default 200 with ``WORKBENCH_FAST``).
        memory: measure each variant's peak memory (about 1 s each).

    Attributes:
        model: zoo task or ``"(a model file)"``; path / upload: the file when it is a model file.
        prune, structure, bits, runtimes, devices: the grid (`SelectMultiple`s; set ``.value`` to tuples).
        limit: evaluation samples (0 = all). memory: peak-memory checkbox. x: the chart's x axis.
        run_button: press (or ``run_button.click()``) to run. progress, status: progress bar and its words.
        figure: the live Pareto chart. results: the finished frame (None before the first run).
        mode: ``"grid"`` (every combination, `workbench.sweep`) or ``"search"`` (`workbench.search` over the grid's
            space, on the metric and the chart's x). Search mode only: n_trials, sampler (``"nsga2"``, ``"tpe"``,
            ``"random"``), min_metric (the worst acceptable metric value, a floor for accuracy and a ceiling for
            perplexity; 0 = none; judged on the first chosen device), trials (the ``on_trial`` dicts so far),
            hypervolume_figure (shown once a search returns).

    Example:
        >>> panel = SweepPanel("digits-cnn", limit=100, memory=False)
        >>> panel.bits.value = (32, 8); panel.prune.value = (0.0, 0.5)
        >>> panel.run_button.click()
        >>> len(panel.results)  # 2 prune ratios (channel) x 2 bit-widths, on onnxruntime, for raspberry-pi-4
        4
    """

    def __init__(self, task: Any = None, *, store: Any = None, limit: int | None = None,
                 memory: bool = True) -> None:
        import plotly.graph_objects as go

        import workbench
        from workbench import zoo
        from workbench.core.env import fast_mode
        from workbench.runtimes import available_runtimes
        from workbench.sweeps.spec import STRUCTURES

        self._task = None if task is None or isinstance(task, str) else task
        names = list(zoo.names())
        first = task if isinstance(task, str) else (self._task.name if self._task is not None else names[0])
        options = names if first in names else [first, *names]
        self.store = store
        self.model = widgets.Dropdown(options=[*options, FILE], value=first, description="model",
                                      layout=widgets.Layout(width="260px"))
        self.path = widgets.Text(value="", placeholder="path to .onnx / .tflite / .pt2 / .pt", description="file",
                                 layout=widgets.Layout(width="360px", display="none"))
        self.upload = widgets.FileUpload(accept=".onnx,.tflite,.pt2,.pt", multiple=False, description="upload",
                                         layout=widgets.Layout(display="none"))
        self.prune = widgets.SelectMultiple(options=[(f"{p:.0%}", p) for p in PRUNE_CHOICES], value=(0.0, 0.5),
                                            description="prune", rows=4, layout=widgets.Layout(width="180px"))
        self.structure = widgets.SelectMultiple(options=list(STRUCTURES), value=("channel",),
                                                description="structure", rows=3, layout=widgets.Layout(width="230px"))
        self.bits = widgets.SelectMultiple(options=BITS_CHOICES, value=(32, 8), description="bits", rows=5,
                                           layout=widgets.Layout(width="220px"))
        runtimes = list(available_runtimes())
        self.runtimes = widgets.SelectMultiple(options=runtimes, value=("onnxruntime",) if "onnxruntime" in runtimes
                                               else tuple(runtimes[:1]), description="runtimes", rows=3,
                                               layout=widgets.Layout(width="230px"))
        devices = sorted(workbench.devices())
        self.devices = widgets.SelectMultiple(options=devices, value=tuple(d for d in ("raspberry-pi-4",)
                                                                           if d in devices),
                                              description="devices", rows=5, layout=widgets.Layout(width="260px"))
        default_limit = limit if limit is not None else (200 if fast_mode() else 0)
        self.limit = widgets.BoundedIntText(value=default_limit, min=0, max=10**7, description="samples",
                                            tooltip="evaluation samples (0 = the whole split)",
                                            layout=widgets.Layout(width="180px"))
        self.memory = widgets.Checkbox(value=memory, description="peak memory", indent=False,
                                       layout=widgets.Layout(width="130px"))
        self.x = widgets.Dropdown(options=axis_options(X_CHOICES), value="latency_ms_p50", description="chart x",
                                  layout=widgets.Layout(width="330px"))
        self.mode = widgets.ToggleButtons(options=[("grid", "grid"), ("search", "search")], value="grid",
                                          tooltips=["measure every combination", "let a search pick n trials"],
                                          style={"button_width": "70px"})
        self.n_trials = widgets.BoundedIntText(value=20, min=1, max=10_000, description="trials",
                                               layout=widgets.Layout(width="150px", display="none"))
        self.sampler = widgets.Dropdown(options=[("NSGA-II", "nsga2"), ("TPE", "tpe"), ("random", "random")],
                                        value="nsga2", description="sampler",
                                        layout=widgets.Layout(width="200px", display="none"))
        self.min_metric = widgets.FloatText(value=0.0, description="metric limit", style={"description_width": "80px"},
                                            tooltip="worst acceptable value of the task's metric (accuracy: a floor, "
                                                    "perplexity: a ceiling); 0 = none",
                                            layout=widgets.Layout(width="180px", display="none"))
        self.run_button = widgets.Button(description="Run sweep", icon="play", button_style="primary")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="", bar_style="",
                                            layout=widgets.Layout(width="320px"))
        self.status = widgets.HTML(value=note_html("Choose a grid and press Run.", "#BAB0AC"))
        self.failures = widgets.HTML(value="")
        self.figure = go.FigureWidget(layout={"height": 440})
        self.hypervolume_figure = go.FigureWidget(layout={"height": 300})
        self.hypervolume_box = widgets.Box([self.hypervolume_figure], layout=widgets.Layout(display="none"))
        self.trials: list[dict[str, Any]] = []
        self._searched: tuple[str, str | None] = ("accuracy", None)  # the last search's metric and device
        self.results: pd.DataFrame | None = None
        self.rows: list[dict[str, Any]] = []
        self.running = False
        grid_box = widgets.HBox([self.prune, self.structure, self.bits, self.runtimes, self.devices],
                                layout=widgets.Layout(flex_flow="row wrap"))
        top = widgets.HBox([self.model, self.path, self.upload], layout=widgets.Layout(flex_flow="row wrap"))
        search = widgets.HBox([self.mode, self.n_trials, self.sampler, self.min_metric],
                              layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        run = widgets.HBox([self.limit, self.memory, self.x, self.run_button, self.progress],
                           layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__([top, grid_box, search, run, self.status, self.figure, self.hypervolume_box, self.failures])
        self.add_class("wb-sweep")
        self.model.observe(self.guard(self._model_changed), names="value")
        self.x.observe(self.guard(lambda _c: self._redraw()), names="value")
        self.mode.observe(self.guard(self._mode_changed), names="value")
        self.run_button.on_click(self.guard(self.run))

    # ------------------------------------------------------------------------------------------ model

    def _model_changed(self, change: Any = None) -> None:
        show = "" if self.model.value == FILE else "none"
        self.path.layout.display = show
        self.upload.layout.display = show

    def _mode_changed(self, change: Any = None) -> None:
        show = "" if self.mode.value == "search" else "none"
        for w in (self.n_trials, self.sampler, self.min_metric):
            w.layout.display = show
        self.run_button.description = "Run search" if self.mode.value == "search" else "Run sweep"

    def task(self) -> Any:
        """The task to sweep: the given one, a zoo task, or a model file wrapped with random inputs."""
        from workbench import zoo

        choice = self.model.value
        if choice != FILE:
            if self._task is not None and choice == self._task.name:
                return self._task
            return zoo.load(choice)
        path = self._model_file()
        return task_from_file(path)

    def _model_file(self) -> Path:
        if self.upload.value:
            item = self.upload.value[0]
            folder = Path(tempfile.mkdtemp(prefix="workbench-upload-"))
            path = folder / Path(str(item["name"])).name
            path.write_bytes(bytes(item["content"]))
            return path
        if not self.path.value.strip():
            raise WorkbenchError("no model file: type its path in 'file' or upload one (.onnx, .tflite, .pt2, .pt).")
        path = Path(self.path.value.strip()).expanduser()
        if not path.is_file():
            raise WorkbenchError(f"model file {path} does not exist.")
        return path

    def grid(self) -> Any:
        """The `workbench.grid` the controls describe."""
        from workbench.sweeps import grid

        if not self.bits.value:
            raise WorkbenchError("choose at least one bit-width.")
        if not self.prune.value:
            raise WorkbenchError("choose at least one prune ratio (0% for none).")
        if not self.runtimes.value:
            raise WorkbenchError("choose at least one runtime.")
        structures = self.structure.value or ("unstructured",)
        return grid(prune=list(self.prune.value), structure=list(structures), bits=list(self.bits.value),
                    runtimes=list(self.runtimes.value), devices=list(self.devices.value),
                    limit=self.limit.value or None)

    # -------------------------------------------------------------------------------------------- run

    def run(self, _button: Any = None) -> pd.DataFrame | None:
        """Run the sweep (or, in search mode, the search) the controls describe (what the Run button does);
        returns the results frame."""
        import workbench

        if self.running:
            raise WorkbenchError("a sweep is already running; wait for it to finish.")
        g = self.grid()
        task = self.task()
        self.rows = []
        self.trials = []
        self.results = None
        self.failures.value = ""
        self.hypervolume_box.layout.display = "none"
        if self.mode.value == "search":
            return self._search(task, g)
        per_unit = max(1, len(g.devices))
        self.progress.max = max(1, len(g) * len(g.runtimes) * per_unit)
        self.progress.value = 0
        self.progress.bar_style = ""
        self.status.value = note_html(f"Sweeping {html.escape(task.name)}: {len(g)} variants × {len(g.runtimes)} "
                                      f"runtime(s)…", "#4C78A8")
        with self._busy("sweep", "variants"):
            df = workbench.sweep(task, g, store=self.store, progress=False, on_result=self._on_result,
                                 memory=self.memory.value)
        self.results = df
        self.progress.value = self.progress.max
        self.progress.bar_style = "success"
        bad = int(error_mask(df).sum())
        self.status.value = note_html(f"Done: {len(df)} rows ({len(g)} variants), {bad} with errors."
                                      + (" Dropped: " + html.escape("; ".join(f"{v}: {r}" for v, r in
                                                                               df.attrs.get("dropped", [])[:5]))
                                         if df.attrs.get("dropped") else ""), "#2CA02C" if not bad else "#F58518")
        self._show_failures(df)
        self._redraw(df)
        return df

    @contextlib.contextmanager
    def _busy(self, what: str, kept: str) -> Iterator[None]:
        """Run button off while `what` runs; on an error, the bar turns red and the words say what was kept."""
        self.running = True
        self.run_button.disabled = True
        try:
            yield
        except BaseException:
            self.progress.bar_style = "danger"
            self.status.value = note_html(f"The {what} stopped; see the error below. Finished {kept} are kept in "
                                          "the store.", "#D62728")
            raise
        finally:
            self.running = False
            self.run_button.disabled = False

    def search_settings(self, task: Any, g: Any) -> tuple[dict[str, str], dict[str, Any]]:
        """``(objectives, constraints)`` of a search-mode run: the task's metric and the chart's x, the metric
        limit (``min_accuracy``, or ``max_metric`` for a lower-is-better metric) and the first chosen device."""
        from workbench.sweeps.frame import LOWER_IS_BETTER

        lower = task.metric in LOWER_IS_BETTER
        objectives = {task.metric: "min" if lower else "max", self.x.value: "min"}
        constraints: dict[str, Any] = {}
        if self.min_metric.value:
            constraints["max_metric" if lower else "min_accuracy"] = float(self.min_metric.value)
        if g.devices:
            constraints["device"] = g.devices[0]
        return objectives, constraints

    def _search(self, task: Any, g: Any) -> pd.DataFrame:
        import workbench
        from workbench.searches import Space
        from workbench.ui import search_view
        from workbench.viz.search import hypervolume_chart, search_history

        objectives, constraints = self.search_settings(task, g)
        self._searched = (task.metric, constraints.get("device"))
        self.progress.max = self.n_trials.value
        self.progress.value = 0
        self.progress.bar_style = ""
        self.status.value = note_html(f"Searching {html.escape(task.name)}: {self.n_trials.value} trials over "
                                      f"{len(g)} possible variants…", "#4C78A8")
        with self._busy("search", "trials"):
            df = workbench.search(task, Space.from_grid(g), objectives=objectives, constraints=constraints,
                                  n_trials=self.n_trials.value, sampler=self.sampler.value, store=self.store,
                                  progress=False, on_trial=self._on_trial, memory=self.memory.value)
        self.results = df
        self.progress.value = self.progress.max
        self.progress.bar_style = "success"
        self.status.value = note_html(html.escape(search_view.done_words(
            df, self._points(df), self.trials, x=self.x.value, metric=task.metric)), "#2CA02C")
        self._redraw(df)
        last = int(df["trial"].max()) + 1 if len(df) else 0  # every trial, also those of an earlier run
        trials = sorted({t["trial"] for t in self.trials} | set(range(max(df.attrs.get("trials", 0), last))))
        hypervolume_chart(search_history(df), trials=trials, fig=self.hypervolume_figure)
        self.hypervolume_box.layout.display = ""
        return df

    def _points(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """The search's trials as points: those reported so far, or the finished frame's when none was."""
        from workbench.ui import search_view

        if self.trials or df is None:
            return search_view.trial_points(self.trials, self.x.value, self._searched[0])
        return search_view.frame_points(df, self.x.value, self._searched[0])

    def _on_trial(self, trial: dict[str, Any]) -> None:
        # Called inside workbench.search for every finished trial: must never raise into the search.
        from workbench.ui import search_view

        try:
            self.trials.append(trial)
            self.progress.value = min(self.progress.max, len(self.trials))
            self.status.value = note_html(html.escape(search_view.trial_words(
                self._points(), total=self.progress.max, x=self.x.value, metric=self._searched[0])), "#4C78A8")
            self._show_failures(pd.DataFrame([{"variant": t["variant"], "runtime": t["runtime"],
                                               "error": t.get("error")} for t in self.trials]))
            self._redraw()
        except Exception as e:  # noqa: BLE001 - a drawing problem must not stop the search; show it instead
            self.show_error(e)

    def _on_result(self, row: dict[str, Any]) -> None:
        # Called inside workbench.sweep for every new row: must never raise into the sweep.
        try:
            self.rows.append(row)
            self.progress.value = min(self.progress.max, self.progress.value + 1)
            self.status.value = note_html(f"{self.progress.value} of {self.progress.max} results: "
                                          f"{html.escape(str(row.get('variant')))} on "
                                          f"{html.escape(str(row.get('runtime')))}", "#4C78A8")
            self._show_failures(pd.DataFrame(self.rows))
            self._redraw()
        except Exception as e:  # noqa: BLE001 - a drawing problem must not stop the sweep; show it instead
            self.show_error(e)

    def _show_failures(self, df: pd.DataFrame) -> None:
        if "error" not in df:
            return
        bad = df[error_mask(df)]
        if bad.empty:
            self.failures.value = ""
            return
        items = "".join(f"<li><b>{html.escape(str(r.get('variant')))}</b> on {html.escape(str(r.get('runtime')))}: "
                        f"{html.escape(str(r.get('error')))}</li>"
                        for _, r in bad.drop_duplicates(subset=["variant", "runtime"]).iterrows())
        self.failures.value = note_html(f"{len(bad)} results failed:<ul>{items}</ul>", "#D62728")

    def _redraw(self, df: pd.DataFrame | None = None) -> None:
        from workbench import viz

        if self.trials or (self.results is not None and "trial" in self.results):  # search mode's figure
            from workbench.ui import search_view

            metric, device = self._searched
            search_view.search_figure(self._points(df if df is not None else self.results), x=self.x.value,
                                      metric=metric, device=device, fig=self.figure)
            return
        if df is None:
            if not self.rows:
                return
            from workbench.sweeps.frame import frame

            df = frame(self.rows)
        good = ok_rows(df)
        x = self.x.value
        metric = primary_metric(good)
        if good.empty or metric is None or x not in good or pd.to_numeric(good[x], errors="coerce").isna().all():
            return  # nothing plottable yet (the first rows failed, or no device rows for an estimate axis)
        viz.update_pareto(self.figure, good, x=x, y=metric, color="bits")


class SweepProgress(widgets.VBox):
    """A page that measures its data first: a progress bar and its words while ``load(on_progress=...)`` sweeps,
    then ``make(results)`` (the dashboard's panel) in their place. An error is shown on the page.

    Args:
        make: builds the panel from the results frame.
        load: the data function; called as ``load(on_progress=report, **kwargs)`` with
            ``report(done, total, text)`` after each measured variant.
        **kwargs: passed to `load`.

    Attributes:
        progress, status: the bar (units done of total) and "Measuring variant 7 of 44…" with the last variant.
        panel: the panel once built (None before). error: the exception that stopped the sweep, if any.

    Example:
        >>> def load(on_progress):  # a sweep of two variants, one measured so far
        ...     on_progress(1, 2, "last: q8 on onnxruntime")
        ...     return df
        >>> page = SweepProgress(lambda d: widgets.HTML(f"{len(d)} rows"), load)
        >>> page.start(background=False)
        >>> page.texts, page.children == (page.panel,), page.panel.value
        (['Measuring variant 2 of 2… (last: q8 on onnxruntime)', 'Building the page…'], True, '6 rows')
    """

    def __init__(self, make: Callable[[pd.DataFrame], Any], load: Callable[..., pd.DataFrame], **kwargs: Any) -> None:
        self._make, self._load, self._kwargs = make, load, kwargs
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="420px"))
        self.status = widgets.HTML(value=note_html("Preparing the results…", "#4C78A8"))
        self.panel: Any = None
        self.error: BaseException | None = None
        self.texts: list[str] = []  # every status line shown, in order (for tests and logs)
        self._thread: threading.Thread | None = None
        head = widgets.HTML("<b>No precomputed results for this page: measuring them on this machine, once (later "
                            "visits read them).</b>")
        super().__init__([head, self.progress, self.status])
        self.add_class("wb-loading")
        self.progress.add_class("wb-loading-progress")
        self.status.add_class("wb-loading-status")

    def report(self, done: int, total: int, text: str) -> None:
        """Show `done` of `total` units measured (the ``on_progress`` callback the sweep calls)."""
        self.progress.max = max(1, total)
        self.progress.value = min(done, self.progress.max)
        head = f"Measuring variant {done + 1} of {total}…" if done < total else f"Measured {total} variants."
        self._say(f"{head} ({text})" if text else head)

    def _say(self, text: str, color: str = "#4C78A8") -> None:
        self.texts.append(text)
        self.status.value = note_html(html.escape(text), color)

    def _run(self) -> None:
        try:
            from workbench.ui.server import wait_for_visitor

            wait_for_visitor()  # a spare (preheated) Voilà kernel measures only once a visitor takes it
            df = self._load(on_progress=self.report, **self._kwargs)
            self._say("Building the page…")
            self.panel = self._make(df)
            self.children = [self.panel]
        except Exception as e:  # noqa: BLE001 - shown on the page, never lost in a thread
            self.error = e
            self.progress.bar_style = "danger"
            self._say(f"The sweep stopped: {type(e).__name__}: {e}", "#D62728")
            self.status.add_class("wb-error")

    def start(self, background: bool = True) -> None:
        """Measure and build the panel: in a background thread (the page shows at once), or here."""
        if not background:
            self._run()
            return
        self._thread = threading.Thread(target=self._run, name="workbench-demo-sweep", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> Any:
        """Wait for the background sweep (at most `timeout` s); returns the panel (None if not built yet)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.panel


def task_from_file(path: str | Path, *, samples: int = 64, seed: int = 0) -> Any:
    """A task for a bare model file: random inputs shaped by its input spec; the metric is fidelity to itself.

    Example:
        >>> task = task_from_file(workbench.runtime(task.model, "onnxruntime").artifact)  # any model file
        >>> task.metric
        'fidelity'
    """
    import numpy as np

    import workbench
    from workbench.task import Task

    handle = workbench.load(str(path))
    if handle.example_inputs:
        inputs = [np.repeat(a, max(1, samples // max(1, len(a))), axis=0)[:samples] for a in handle.example_inputs]
    else:
        rng = np.random.default_rng(seed)
        inputs = []
        for spec in handle.inputs:
            if spec.shape is None or any(d is None for d in spec.shape[1:]):
                raise WorkbenchError(f"{Path(path).name}: input {spec.describe()} has unknown dimensions; load it "
                                     "with workbench.load(path, example_inputs=[...]) and pass the Task to SweepPanel.")
            dtype = np.dtype(spec.dtype or "float32")
            shape = (samples, *spec.shape[1:])
            inputs.append(rng.standard_normal(shape).astype(dtype) if dtype.kind == "f"
                          else rng.integers(0, 2, shape).astype(dtype))
    return Task.from_model(handle, inputs, name=Path(path).stem)
