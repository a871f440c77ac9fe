"""`LLMExplorer`: a language model's variants, and a chat box that asks the chosen variant and the original.

The chart puts a quality (perplexity, lower is better; the share of instructions answered right; agreement with
the original) against a cost (tokens per second measured here or estimated for a device, time to first token,
memory), one point per variant and runtime, with the Pareto front and the best variant ringed: the best on the
cost axis among the variants whose quality stays within the bar of the original (and that fit the device).
Perplexity is lower-is-better everywhere: in the front, in the bar and in the best.

The chat box sends one prompt to the chosen variant and then to the original on the same runtime (one after the
other, so neither steals the other's cores); each answer streams into its box token by token (the runner's
``stream`` callback updates an HTML widget) and ends with its measured tokens per second and time to first token.

Data: `workbench.ui.llm_data.llm_results` (a results store with language-model rows, or the built-in sweep). Without
data the panel appears at once and measures in a background thread, its progress bar filling in.
"""

from __future__ import annotations

import html
import re
import threading
from typing import Any, Sequence

import ipywidgets as widgets
import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.ui.base import Panel, fmt, load_results, note_html, ok_rows, present, row_by_key, table_html

QUALITY = (("perplexity (lower is better)", "perplexity"), ("answers right", "pass_rate"),
           ("agreement with the original", "agreement"))
COSTS = (("tokens per second (measured)", "tokens_per_s"), ("tokens per second (estimate)", "tokens_per_s_est"),
         ("time to first token (measured)", "ttft_ms"), ("memory: weights + KV cache", "memory_bytes"),
         ("peak memory (measured)", "peak_mem_bytes"), ("files the runtime loads", "size_bytes"),
         ("energy per token (estimate)", "energy_mj_per_token_est"))
HIGHER_IS_BETTER = frozenset({"pass_rate", "agreement", "tokens_per_s", "tokens_per_s_est"})
LABELS = {
    "perplexity": "perplexity (measured; lower is better)",
    "pass_rate": "answers right (measured, share of the instructions)",
    "agreement": "agreement with the original (measured, share of next tokens)",
    "tokens_per_s": "tokens per second (measured on this machine)",
    "tokens_per_s_est": "tokens per second (estimate)",
    "ttft_ms": "time to first token (measured, ms)",
    "memory_bytes": "weights + KV cache at 512 tokens (computed, bytes)",
    "peak_mem_bytes": "peak memory (measured, bytes)",
    "size_bytes": "files the runtime loads (measured, bytes)",
    "energy_mj_per_token_est": "energy per token (estimate, mJ)",
}
DEFAULT_PROMPT = "What is the capital of France?"
GGUF_GRIDS = {"Q4_0": "symmetric 4-bit, blocks of 32", "Q4_1": "asymmetric 4-bit, blocks of 32",
              "Q5_0": "symmetric 5-bit, blocks of 32", "Q5_1": "asymmetric 5-bit, blocks of 32",
              "Q8_0": "symmetric 8-bit, blocks of 32"}


def axis_text(column: str, device: str | None = None) -> str:
    """Plain words for an axis; an estimate names its device.

    Example:
        >>> axis_text("tokens_per_s_est", "raspberry-pi-5")
        'tokens per second (estimate for raspberry-pi-5)'
    """
    from workbench.viz import axis_label

    text = LABELS.get(column) or axis_label(column)
    if column.endswith("_est") and device:
        text = text.replace("(estimate", f"(estimate for {device}")
    return text


def with_memory(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``memory_bytes`` (weights at their width + the KV cache at the stated context) where both are known."""
    if "weight_bytes" in df and "kv_cache_bytes" in df and "memory_bytes" not in df:
        df = df.copy()
        df["memory_bytes"] = pd.to_numeric(df["weight_bytes"], errors="coerce") + pd.to_numeric(
            df["kv_cache_bytes"], errors="coerce")
    return df


def distribution_note(source: str | None) -> str:
    """What re-quantising costs for a checkpoint distributed on a GGUF grid (from its file name), or ``""``.

    Example:
        >>> distribution_note("SmolLM2-135M-Instruct.Q4_1.gguf")[:52]
        'This model was distributed at Q4_1 (asymmetric 4-bit'
    """
    m = re.search(r"\.(Q\d_[01K]\w*)\.gguf$", str(source or ""), re.IGNORECASE)
    if not m:
        return ""
    name = m.group(1).upper()
    grid = GGUF_GRIDS.get(name, "a block grid")
    return (f"This model was distributed at {name} ({grid}): its float weights lie exactly on that grid, so a "
            "re-quantisation that keeps that grid loses nothing, while any other grid moves almost every weight. "
            "ONNX Runtime's asymmetric 4-bit grid (an integer zero point per block) is another grid even at blocks "
            "of 32; other block sizes and fewer bits lose more.")


def best_row(d: pd.DataFrame, quality: str, cost: str, bar: float, *, must_fit: bool) -> pd.Series | None:
    """The best row on `cost` among those whose `quality` stays within `bar` of the original on its runtime.

    `bar` is a percentage rise for perplexity (lower is better) and a drop in percentage points for the
    shares (answers right, agreement). With `must_fit`, only rows whose ``fits`` is true count.

    Example:
        >>> d = pd.DataFrame({"perplexity": [10.0, 10.3, 14.0], "baseline_perplexity": 10.0,
        ...                   "tokens_per_s": [20.0, 60.0, 90.0]})
        >>> int(best_row(d, "perplexity", "tokens_per_s", 5, must_fit=False)["tokens_per_s"])
        60
    """
    q = pd.to_numeric(d.get(quality), errors="coerce")
    base = pd.to_numeric(d.get(f"baseline_{quality}", pd.Series(np.nan, index=d.index)), errors="coerce")
    base = base.where(base.notna(), q.min() if quality not in HIGHER_IS_BETTER else q.max())
    ok = q <= base * (1 + bar / 100) if quality not in HIGHER_IS_BETTER else q >= base - bar / 100
    c = pd.to_numeric(d.get(cost), errors="coerce")
    ok &= c.notna()
    if must_fit and "fits" in d:
        ok &= d["fits"].map(lambda v: bool(v) if isinstance(v, (bool, np.bool_, int, float)) and v == v else False)
    rows = d[ok]
    if rows.empty:
        return None
    return rows.loc[c[ok].idxmax() if cost in HIGHER_IS_BETTER else c[ok].idxmin()]


def number(v: Any) -> str:
    """A figure for a sentence: thousands separated above 1,000, three significant digits below; '–' if missing.

    Example:
        >>> number(55620.7), number(45.2251), number(float("nan"))
        ('55,621', '45.2', '–')
    """
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    if not np.isfinite(f):
        return "–"
    return f"{f:,.0f}" if abs(f) >= 1000 else f"{f:.3g}"


WORDS = {"perplexity": "perplexity", "pass_rate": "share of answers right", "agreement": "agreement"}


def answer_html(title: str, text: str, footer: str, *, busy: bool = False) -> str:
    """One answer box of the chat: a title, the (escaped) text, and a line of figures."""
    body = html.escape(text).replace("\n", "<br>") + ("<span style='color:#999'> ▍</span>" if busy else "")
    return (f"<div class='wb-answer' style='border:1px solid #ddd;border-radius:6px;padding:8px 10px;"
            f"font-family:sans-serif;font-size:13px;min-height:90px'><div style='font-weight:600;margin-bottom:4px'>"
            f"{html.escape(title)}</div><div class='wb-answer-text' style='white-space:pre-wrap'>{body}</div>"
            f"<div class='wb-answer-figures' style='color:#555;margin-top:6px'>{footer}</div></div>")


def speed_text(g: Any) -> str:
    """'31.2 tokens per second · first token after 85 ms · 24 new tokens (measured on this machine)'."""
    tps = "–" if g.tokens_per_s is None else f"{g.tokens_per_s:.1f}"
    return (f"{tps} tokens per second · first token after {g.ttft_ms:.0f} ms · {g.new_tokens} new tokens "
            "(measured on this machine)")


class LLMExplorer(Panel):
    """Explore a language model's variants and chat with one of them beside the original.

    Args:
        data: results (a frame, store or file with language-model rows); default `llm_results()`: stored rows
            (``$WORKBENCH_RESULTS``) or the built-in sweep, measured in the background when not cached yet.
        task: the `LanguageTask` the rows belong to (default: the zoo task named in the rows), for the chat.
        variants: the compression config tuples of the sweep (to rebuild a variant for the chat; the built-in
            and the common weight-only ones are known).
        store, runtimes, devices, memory: passed to `llm_results` for the built-in sweep.
        background: run the built-in sweep in a thread (the page shows at once); False runs it here.
        max_new_tokens: the chat's initial answer length (default 24 with ``WORKBENCH_FAST``, else 64).

    Attributes:
        quality, cost: the y and x axes (`Dropdown`). device: whose estimates and fit count. runtime: filter.
        bar: how much quality a variant may lose against the original (%). figure, summary, details, failures.
        chat_variant, prompt, max_tokens, send: the chat controls. answer, reference: the variant's and the
        original's answers. last_chat: ``{"variant": Generation, "original": Generation}`` of the last prompt.
        progress, status: the built-in sweep's progress. data: the results frame (None while measuring).
    """

    def __init__(self, data: Any = None, *, task: Any = None, variants: Sequence[Sequence[Any]] = (),
                 store: Any = None, runtimes: Sequence[str] | None = None, devices: Sequence[str] | None = None,
                 memory: bool | None = None, background: bool = True, max_new_tokens: int | None = None) -> None:
        import plotly.graph_objects as go

        from workbench.core.env import fast_mode

        self.task = task
        self.variants = [tuple(v) for v in variants]
        self.data: pd.DataFrame | None = None
        self.best: pd.Series | None = None
        self.selected: pd.Series | None = None
        self.last_chat: dict[str, Any] = {}
        self._runners: dict[tuple[str, str], Any] = {}
        self._thread: threading.Thread | None = None
        self._sweep_args = {"store": store, "runtimes": runtimes, "devices": devices, "memory": memory,
                            "variants": self.variants or None}
        wide = widgets.Layout(width="360px")
        self.quality = widgets.Dropdown(options=QUALITY, value="perplexity", description="quality", layout=wide)
        self.cost = widgets.Dropdown(options=COSTS[:1], value="tokens_per_s", description="against", layout=wide)
        self.device = widgets.Dropdown(options=[("(none)", None)], value=None, description="device",
                                       layout=widgets.Layout(width="300px"))
        self.runtime = widgets.SelectMultiple(options=[], description="runtime", rows=3,
                                              layout=widgets.Layout(width="240px"))
        self.color = widgets.Dropdown(options=(("weight bits", "bits"), ("runtime", "runtime")), value="bits",
                                      description="colour", layout=widgets.Layout(width="220px"))
        self.bar = widgets.FloatSlider(value=5.0, min=0.0, max=100.0, step=0.5, readout_format=".1f",
                                       continuous_update=False, description="may lose (%)",
                                       style={"description_width": "initial"}, layout=wide)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="320px"))
        self.status = widgets.HTML(value="")
        self.note = widgets.HTML(value="")
        self.summary = widgets.HTML(value="")
        self.figure = go.FigureWidget(layout={"height": 460})
        self.details = widgets.HTML(value=note_html("Click a point to see the variant's figures and chat with it.",
                                                    "#BAB0AC"))
        self.failures = widgets.HTML(value="")
        self.chat_variant = widgets.Dropdown(options=[], description="variant", layout=wide)
        self.prompt = widgets.Textarea(value=DEFAULT_PROMPT, placeholder="Ask something…", description="prompt",
                                       layout=widgets.Layout(width="600px", height="60px"))
        fast = fast_mode()
        self.max_tokens = widgets.IntSlider(value=max_new_tokens or (24 if fast else 64), min=4, max=256,
                                            description="answer length (tokens)", continuous_update=False,
                                            style={"description_width": "initial"}, layout=wide)
        self.send = widgets.Button(description="Ask both", icon="comments", button_style="primary",
                                   disabled=True)
        self.chat_status = widgets.HTML(value="")
        self.answer = widgets.HTML(value=answer_html("chosen variant", "", ""),
                                   layout=widgets.Layout(width="49%"))
        self.reference = widgets.HTML(value=answer_html("original", "", ""), layout=widgets.Layout(width="49%"))
        row = widgets.Layout(flex_flow="row wrap")
        controls = widgets.VBox([widgets.HBox([self.quality, self.cost, self.color], layout=row),
                                 widgets.HBox([self.device, self.runtime, self.bar], layout=row)])
        chat = widgets.VBox([
            widgets.HTML("<h3 style='font-family:sans-serif;margin:12px 0 4px'>Ask the variant and the original</h3>"),
            widgets.HBox([self.chat_variant, self.max_tokens], layout=row), self.prompt,
            widgets.HBox([self.send, self.chat_status]),
            widgets.HBox([self.answer, self.reference], layout=widgets.Layout(justify_content="space-between"))])
        super().__init__([widgets.HBox([self.progress, self.status]), self.note, controls, self.summary, self.figure,
                          self.details, self.failures, chat])
        self.add_class("wb-llm-explorer")
        for name in ("quality", "cost", "device", "runtime", "bar", "progress", "status", "note", "summary", "figure",
                     "details", "failures", "chat_variant", "prompt", "max_tokens", "send", "chat_status", "answer",
                     "reference"):
            getattr(self, name).add_class("wb-lm-" + name.replace("_", "-"))  # stable hooks for browser tests
        for w in (self.quality, self.cost, self.device, self.runtime, self.bar, self.color):
            w.observe(self.guard(lambda _change: self.update()), names="value")
        self.send.on_click(self.guard(lambda _button: self.chat()))
        if data is not None:
            self.guard(self.set_data)(load_results(data))
        else:
            self.start(background=background)

    # ------------------------------------------------------------------------------------------ data

    def start(self, *, background: bool = True) -> None:
        """Get the results (`llm_results`): stored or already measured ones at once, else the built-in sweep, in a
        thread when `background` (the page shows at once; the progress bar fills in as each variant is
        measured)."""
        self.status.value = note_html("Loading the language model and its measured variants…", "#4C78A8")
        if not background:
            self.guard(self._load)()
            return
        ready = self.guard(self._cached)()
        if ready is not None:
            self.guard(self.set_data)(ready)
        elif self.last_error is None:
            self._thread = threading.Thread(target=self.guard(self._load), name="llm-explorer-sweep", daemon=True)
            self._thread.start()

    def _cached(self) -> pd.DataFrame | None:
        """Stored results, or the built-in sweep when every variant is already measured; else None."""
        from workbench.ui.llm_data import llm_results, quiet_progress

        if (self.task is None and not _stored_env()) or isinstance(self.task, str):
            from workbench import zoo

            with quiet_progress():
                self.task = zoo.load(self.task or "smollm2")
        return llm_results(self.task if self.task is not None else "smollm2", cached_only=True, **self._sweep_args)

    def wait(self, timeout: float | None = None) -> LLMExplorer:
        """Block until the background sweep is done (or `timeout` seconds passed); returns the panel."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self

    @property
    def measuring(self) -> bool:
        """True while the background sweep runs."""
        return self._thread is not None and self._thread.is_alive()

    def _load(self) -> None:
        from workbench.ui.llm_data import llm_results

        try:
            df = llm_results(self.task if self.task is not None else "smollm2", on_result=self._on_result,
                             **self._sweep_args)
        except BaseException:
            self.progress.bar_style = "danger"
            self.status.value = note_html("Measuring stopped; see the error below.", "#D62728")
            raise
        self.set_data(df)

    def _on_result(self, row: dict[str, Any], done: int, total: int) -> None:
        self.progress.max = max(1, total)
        self.progress.value = done
        self.status.value = note_html(f"Measured {done} of {total}: {html.escape(str(row.get('variant')))} on "
                                      f"{html.escape(str(row.get('runtime')))}", "#4C78A8")

    def set_data(self, df: pd.DataFrame) -> None:
        """Show a results frame: fill the menus, draw the chart, list failures, enable the chat."""
        from workbench.ui.llm_data import is_lm_frame

        df = with_memory(df.reset_index(drop=True))
        if not is_lm_frame(df):
            raise WorkbenchError("these results hold no language-model rows (no perplexity column); run a sweep "
                                 "of a language model (workbench.zoo.load('smollm2')) or leave data empty.")
        good = ok_rows(df)
        if good.empty:
            raise WorkbenchError(f"all {len(df)} result rows have an error (see below); nothing to show.")
        self.data = df
        self._good = good
        self.progress.max = max(1, self.progress.max)
        self.progress.value, self.progress.bar_style = self.progress.max, "success"
        self.status.value = note_html(html.escape(df.attrs.get("note", f"{len(good)} result rows.")), "#2CA02C")
        self.progress.layout.display = "none"
        source = None
        if self.task is not None:
            source = getattr(self.task.model, "meta", {}).get("source_file")
        elif "smollm2" in set(good.get("task", pd.Series(dtype=str)).astype(str)):
            source = "SmolLM2-135M-Instruct.Q4_1.gguf"
        self.note.value = note_html(html.escape(distribution_note(source)), "#9467BD") if distribution_note(source) \
            else ""
        self._show_failures(df)
        has = [c for c in (c for _, c in COSTS) if c in good and pd.to_numeric(good[c], errors="coerce").notna().any()]
        devices = [str(d) for d in present(good, "device")]
        runtimes = [str(r) for r in present(good, "runtime")]
        self._quiet = True  # one update after every menu is filled, not one per menu
        try:
            self.cost.options = [(t, c) for t, c in COSTS if c in has]
            self.cost.value = "tokens_per_s" if "tokens_per_s" in has else has[0]
            self.device.options = [(d, d) for d in devices] or [("(none)", None)]
            self.device.value = devices[0] if devices else None
            self.runtime.options = runtimes
            self.runtime.value = tuple(runtimes)
            self.quality.options = [(t, c) for t, c in QUALITY if c in good]
            self.quality.value = "perplexity"
        finally:
            self._quiet = False
        pairs = good.drop_duplicates(["variant", "runtime"])
        self.chat_variant.options = [(f"{v} on {r}", f"{v}|{r}") for v, r in zip(pairs["variant"], pairs["runtime"])]
        compressed = [o for o in self.chat_variant.options if not o[1].startswith("baseline|")]
        self.update()
        first = self.best if self.best is not None and self.best.get("variant") != "baseline" else None
        choice = f"{first['variant']}|{first['runtime']}" if first is not None else \
            (compressed or list(self.chat_variant.options))[0][1]
        self.chat_variant.value = choice
        self.send.disabled = False

    def _show_failures(self, df: pd.DataFrame) -> None:
        from workbench.sweeps.frame import error_mask

        bad = df[error_mask(df)].drop_duplicates(subset=["variant", "runtime"]) if "error" in df else df.iloc[0:0]
        self.failures.value = "" if bad.empty else note_html(
            f"{len(bad)} variant(s) could not be measured:<ul>" + "".join(
                f"<li><b>{html.escape(str(r['variant']))}</b> on {html.escape(str(r['runtime']))}: "
                f"{html.escape(str(r['error']))}</li>" for _, r in bad.iterrows()) + "</ul>", "#D62728")

    def filtered(self) -> pd.DataFrame:
        """The rows the controls keep: the chosen runtimes, on the chosen device."""
        if self.data is None:
            return pd.DataFrame()
        d = self._good
        keep = d["runtime"].astype(str).isin(list(self.runtime.value))
        if self.device.value is not None and "device" in d:
            keep &= d["device"].astype(str) == str(self.device.value)
        return d[keep]

    # --------------------------------------------------------------------------------------- chart

    def update(self) -> None:
        """Re-filter, find the best variant, and update the chart in place."""
        from workbench import viz

        if self.data is None or getattr(self, "_quiet", False):
            return
        quality, cost, device = self.quality.value, self.cost.value, self.device.value
        self.bar.description = "may lose (%)" if quality == "perplexity" else "may lose (points)"
        d = self.filtered()
        d = d[pd.to_numeric(d[cost], errors="coerce").notna() & pd.to_numeric(d[quality], errors="coerce").notna()]
        if d.empty:
            self.best = None
            self.summary.value = note_html("No variant has both figures here; choose another axis or runtime.",
                                           "#F58518")
            with self.figure.batch_update():
                for t in self.figure.data:
                    t.x, t.y = [], []
            return
        self.best = best_row(d, quality, cost, self.bar.value, must_fit=device is not None)
        self.summary.value = self._summary(d)
        up = [c for c in (cost, quality) if c in HIGHER_IS_BETTER]
        down = [c for c in (cost, quality) if c not in HIGHER_IS_BETTER]
        key = None if self.best is None else self.best.get("key", self.best.name)
        title = f"{'Perplexity' if quality == 'perplexity' else axis_text(quality).split(' (')[0].capitalize()} " \
                f"against {axis_text(cost, device).split(' (')[0]}"
        viz.update_pareto(self.figure, d, x=cost, y=quality, color=self.color.value, device=device, highlight=key,
                          maximize=up, minimize=down, title=title)
        with self.figure.batch_update():
            self.figure.layout.xaxis.title.text = axis_text(cost, device)
            self.figure.layout.yaxis.title.text = axis_text(quality)
        for trace in self.figure.data:
            if trace.customdata is not None:
                trace.on_click(self.guard(self._clicked))

    def _summary(self, d: pd.DataFrame) -> str:
        quality, cost, device = self.quality.value, self.cost.value, self.device.value
        bar = f"{self.bar.value:g} %" if quality == "perplexity" else f"{self.bar.value:g} points"
        where = f" and that fit {html.escape(str(device))}" if device is not None else ""
        if self.best is None:
            return note_html(f"No variant stays within {bar} of the original's {html.escape(axis_text(quality))}"
                             f"{where}; allow more loss.", "#F58518")
        b = self.best
        base = d[(d["variant"] == "baseline") & (d["runtime"] == b["runtime"])]
        parts = [f"<b>Best: {html.escape(str(b['variant']))}</b> on {html.escape(str(b['runtime']))}"]
        parts.append(f"{html.escape(axis_text(cost, device))}: {number(b[cost])}"
                     + (f" (the original: {number(base[cost].iloc[0])})" if not base.empty else ""))
        if "perplexity" in b:
            parts.append(f"perplexity {fmt(b['perplexity'], '.3g')}" + (
                f" ({(b['perplexity'] / base['perplexity'].iloc[0] - 1):+.1%} against the original)"
                if not base.empty else ""))
        if "pass_rate" in b and pd.notna(b["pass_rate"]):
            parts.append(f"answers right {b['pass_rate']:.0%}" + (
                f" (original {base['pass_rate'].iloc[0]:.0%})" if not base.empty else ""))
        sense = "highest" if cost in HIGHER_IS_BETTER else "lowest"
        return note_html(" — ".join(parts) + f". The {sense} among the {len(d)} shown variants that lose at most "
                         f"{bar} of the original's {WORDS.get(quality, quality)}{where} (ringed).", "#2CA02C")

    def _clicked(self, trace: Any, points: Any, state: Any = None) -> None:
        if points.point_inds:
            self.select(trace.customdata[points.point_inds[0]])

    def select(self, key: str) -> pd.Series:
        """Show a row's figures (what clicking its point does) and make it the chat's variant."""
        row = row_by_key(self.data, key)
        self.selected = row
        self.details.value = details_html(row)
        value = f"{row['variant']}|{row['runtime']}"
        if value in [v for _, v in self.chat_variant.options]:
            self.chat_variant.value = value
        return row

    # ---------------------------------------------------------------------------------------- chat

    def _row(self, variant: str, runtime: str) -> pd.Series:
        d = self._good
        rows = d[(d["variant"].astype(str) == variant) & (d["runtime"].astype(str) == runtime)]
        if rows.empty:
            raise WorkbenchError(f"no measured variant {variant!r} on {runtime!r} to chat with.")
        return rows.iloc[0]

    def chat_task(self) -> Any:
        """The task whose model the chat rebuilds variants from (given, or the zoo task named in the rows)."""
        from workbench.ui.data import task_for

        if self.task is None:
            self.task = task_for(self._good.iloc[0])
        return self.task

    def runner(self, variant: str, runtime: str) -> Any:
        """A runner of `variant` on `runtime` (the variant rebuilt from its configs and realised as the sweep
        measured it). Keeps the original and one variant (two model copies at most)."""
        import workbench
        from workbench.realize import realize
        from workbench.ui.llm_data import quiet_progress, variant_configs

        key = (variant, runtime)
        if key not in self._runners:
            if variant != "baseline":  # one variant at a time beside the original
                for k in [k for k in self._runners if k[0] != "baseline"]:
                    del self._runners[k]
            row = self._row(variant, runtime)
            task = self.chat_task()
            configs = variant_configs(row, self.variants)
            with quiet_progress():
                handle = workbench.compress(task.model, *configs, task=task) if configs else task.model
                real = realize(handle, runtime, task)
            threads = pd.to_numeric(pd.Series([row.get("threads")]), errors="coerce").iloc[0]
            self._runners[key] = workbench.runtime(real.handle, runtime,
                                                   threads=None if pd.isna(threads) else int(threads))
        return self._runners[key]

    def chat(self, prompt: str | None = None, max_new_tokens: int | None = None) -> dict[str, Any]:
        """Ask the chosen variant, then the original on the same runtime; both answers stream into their boxes.

        Returns ``{"variant": Generation, "original": Generation}`` (also kept in `last_chat`).
        """
        if self.data is None:
            raise WorkbenchError("the variants are still being measured; chat when the chart is drawn.")
        if self.measuring:
            raise WorkbenchError("the sweep is still measuring; chat when it is done (both would share the cores).")
        prompt = self.prompt.value if prompt is None else prompt
        if not prompt.strip():
            raise WorkbenchError("type a prompt first.")
        n = int(max_new_tokens or self.max_tokens.value)
        variant, runtime = str(self.chat_variant.value).split("|", 1)
        self.send.disabled = True
        out: dict[str, Any] = {}
        try:
            for name, box, which in ((f"{variant} on {runtime}", self.answer, variant),
                                     (f"original on {runtime}", self.reference, "baseline")):
                box.value = answer_html(name, "", "preparing the model…", busy=True)
                self.chat_status.value = note_html(f"{html.escape(name)} is answering…", "#4C78A8")
                run = self.runner(which, runtime)

                def stream(text: str, box: Any = box, name: str = name) -> None:
                    box.value = answer_html(name, text, "answering…", busy=True)

                g = run.generate(prompt, n, chat=True, stream=stream)
                box.value = answer_html(name, g.text, speed_text(g))
                out["original" if which == "baseline" else "variant"] = g
            if variant == "baseline":
                out.setdefault("variant", out["original"])
        finally:
            self.send.disabled = False
        self.last_chat = out
        v, o = out["variant"], out["original"]
        same = "the same answer" if v.token_ids == o.token_ids else "different answers"
        ratio = f"; the variant decodes at {v.tokens_per_s / o.tokens_per_s:.2f}× the original's speed" \
            if v.tokens_per_s and o.tokens_per_s else ""
        self.chat_status.value = note_html(f"Done: {same}{ratio}.", "#2CA02C")
        return out


def _stored_env() -> bool:
    """True when ``$WORKBENCH_RESULTS`` names a file with language-model rows (no model needs loading then)."""
    import os
    from pathlib import Path

    from workbench.ui.llm_data import stored_llm_results

    env = os.environ.get("WORKBENCH_RESULTS")
    return bool(env) and Path(env).is_file() and stored_llm_results(env) is not None


def details_html(row: pd.Series) -> str:
    """One variant's measured figures and its device estimates, in plain words."""
    items = [("runtime", "runtime", None), ("perplexity", "perplexity (lower is better)", ".4g"),
             ("pass_rate", "answers right", ".0%"), ("agreement", "agreement with the original", ".3f"),
             ("tokens_per_s", "tokens per second (measured)", ".3g"), ("ttft_ms", "time to first token (ms)", ".3g"),
             ("size_bytes", "files the runtime loads (bytes)", ",.0f"), ("weight_bytes", "weights (bytes)", ",.0f"),
             ("kv_cache_bytes", "KV cache at 512 tokens (bytes)", ",.0f"),
             ("peak_mem_bytes", "peak memory (measured, bytes)", ",.0f"), ("realization", "runtime executes", None)]
    rows = []
    for col, label, spec in items:
        v = row.get(col)
        if v is not None and not (isinstance(v, float) and np.isnan(v)) and v != "":
            extra = ""
            if col == "perplexity" and pd.notna(row.get("baseline_perplexity")):
                extra = f" ({float(v) / float(row['baseline_perplexity']) - 1:+.1%} against the original)"
            rows.append((label, (fmt(v, spec) if spec else fmt(v)) + extra))
    dev = row.get("device")
    if dev is not None and not (isinstance(dev, float) and np.isnan(dev)):
        d = html.escape(str(dev))
        rows.append((f"estimates for {dev}", ""))
        for col, label, spec in (("tokens_per_s_est", "tokens per second (estimate)", ".3g"),
                                 ("energy_mj_per_token_est", "energy per token (estimate, mJ)", ".3g"),
                                 ("fits", f"fits in the memory of {d}", None), ("reason", "why not", None)):
            v = row.get(col)
            if v is not None and v != "" and not (isinstance(v, float) and np.isnan(v)):
                rows.append((label, fmt(v, spec) if spec else fmt(v)))
    return "<div class='wb-variant'>" + table_html(rows, f"Variant: {row.get('variant')}") + "</div>"


__all__ = ["COSTS", "DEFAULT_PROMPT", "LLMExplorer", "QUALITY", "answer_html", "axis_text", "best_row",
           "details_html", "distribution_note", "number", "speed_text", "with_memory"]
