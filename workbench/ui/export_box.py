"""The Export box: target, signing, output folder, a button, and the artefact's parity report.

Used under a clicked point in `TradeoffExplorer` and on its own in `ExportPanel` (the export report dashboard).
The variant is rebuilt from its row (`workbench.ui.data.variant_handle`) and exported with `workbench.export`;
a parity failure is shown in the box with its figures (nothing is written then). Above the controls, the decision
card of the row being exported (`row_decision`): what it gains against the original, in plain words.
"""

from __future__ import annotations

import html
from dataclasses import replace
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.ui.base import Panel, fmt, note_html, table_html
from workbench.viz.style import runtime_name


def row_decision(data: pd.DataFrame, row: pd.Series, *, device: str | None = None, metric: str | None = None,
                 min_accuracy: float | None = None, rate_hz: float | None = None,
                 battery_mah: float | None = None) -> Any:
    """The decision card (`workbench.sweeps.decision.Decision`) of one chosen row rather than the best one.

    `decide` is given the row's own rows (its variant on its runtime) as the only candidates and the original's
    rows to compare against: those are marked simulated (``realized=False``), so `decide` never picks them but
    still names them as the original. A simulated row is described on its own (no original to compare with:
    `decide` would choose the original) and its card says it is simulated. The bar is `min_accuracy` when the
    row reaches it, else the row's own value (a card for a row below the bar would otherwise say nothing).

    Example:
        >>> card = row_decision(df, df[df.variant == "q8"].iloc[0])
        >>> card.headline, card.row["variant"]
        ('Exporting Not pruned, 8-bit (ONNX Runtime) — figures on this machine (measured)', 'q8')
    """
    from workbench.sweeps.analysis import LOWER_IS_BETTER
    from workbench.sweeps.decision import decide_or_none
    from workbench.sweeps.frame import error_mask, primary_metric

    metric = metric or primary_metric(data) or "accuracy"
    same = pd.Series(True, index=data.index)
    for col in ("variant", "runtime", "task"):
        if col in data and col in row.index:
            same &= data[col].astype(str) == str(row[col])
    own = data[same & ~error_mask(data)]
    simulated = is_simulated(row)
    frame = own
    if not simulated and row.get("variant") != "baseline":
        base = data[(data["variant"] == "baseline") & ~same & ~error_mask(data)]
        if "runtime" in base and "runtime" in row.index:
            base = base[base["runtime"].astype(str) == str(row["runtime"])]
        frame = pd.concat([own, base.assign(realized=False)], ignore_index=True)  # compared with, never chosen
    value = pd.to_numeric(pd.Series([row.get(metric)]), errors="coerce").iloc[0]
    value = float(value) if pd.notna(value) else None
    if metric in LOWER_IS_BETTER:
        bars = {"max_metric": value}
    else:
        reaches = min_accuracy is not None and value is not None and value >= min_accuracy
        bars = {"min_accuracy": min_accuracy if reaches or value is None else value}
    card = decide_or_none(frame, device=device, metric=metric, rate_hz=rate_hz if device else None,
                          battery_mah=battery_mah if device else None, realized_only=not simulated, **bars)
    if card.ok:  # the card of the row being exported, not a recommendation
        from workbench.viz.words import device_words, variant_words

        where = f"on {device_words(device)} (estimated)" if device else "on this machine (measured)"
        card = replace(card, headline=f"Exporting {variant_words(card.row)} ({runtime_name(card.row.get('runtime'))})"
                                      f" — figures {where}")
    return card


def is_simulated(row: pd.Series) -> bool:
    """Whether the row's compression is only simulated (``realized`` not True, as `workbench.best` reads it).

    Example:
        >>> is_simulated(pd.Series({"realized": False})), is_simulated(pd.Series({"realized": True}))
        (True, False)
    """
    if "realized" not in row.index:
        return False
    v = row["realized"]
    return not (isinstance(v, (bool, np.bool_, int, float)) and v == v and bool(v))


def suggest_target(row: pd.Series | None) -> str:
    """The export target that matches a row's runtime and bit-width (``onnx-int8`` for int8 on ORT, ...).

    Example:
        >>> suggest_target(pd.Series({"runtime": "litert", "bits": 8}))
        'tflite-int8'
    """
    if row is None:
        return "onnx"
    bits = pd.to_numeric(pd.Series([row.get("bits")]), errors="coerce").fillna(32).iloc[0]
    runtime = str(row.get("runtime") or "onnxruntime")
    if runtime == "torch":
        return "torchscript"
    fam = "tflite" if runtime in ("litert", "tflite_runtime") else "onnx"
    suffix = "" if bits >= 32 else "-fp16" if bits >= 16 else "-int8" if bits >= 5 else "-int4"
    return fam + suffix


class ExportBox(Panel):
    """Export the selected variant: pick a target, sign or not, press Export, read the parity report.

    Args:
        task: the task the results belong to (default: the zoo task named in the row).
        out_dir: folder for artefacts (and, when signing without `sign_with`, a generated key pair in
            ``<out_dir>/keys``); default `workbench.ui.data.export_dir()`.
        sign_with: an Ed25519 private key file to sign with (default: generate one on first use).
        limit: check parity on the first `limit` evaluation samples only (default: ``WORKBENCH_FAST`` → 200).
        show_manifest: also show the manifest (JSON) under the report.

    Attributes:
        target, sign, out_dir, button: the controls (set ``.value``; call ``button.click()``).
        report: the HTML report of the last export. artifact: the last `workbench.Artifact`, or None.

    Example:
        >>> box = ExportBox(out_dir="exports")
        >>> box.set_row(df.iloc[0]); box.target.value = "onnx-int8"; box.button.click()
        >>> box.artifact.parity["passed"]
        True
    """

    def __init__(self, *, task: Any = None, out_dir: str | Path | None = None, sign_with: str | Path | None = None,
                 limit: int | None = None, show_manifest: bool = False) -> None:
        from workbench.artifacts import TARGETS
        from workbench.core.env import fast_mode
        from workbench.ui.data import export_dir

        self.task = task
        self.show_manifest = show_manifest
        self.sign_with = sign_with
        self.limit = limit if limit is not None else (200 if fast_mode() else None)
        self.row: pd.Series | None = None
        self.artifact: Any = None
        self.heading = widgets.HTML(value=note_html("Click a point to choose a variant to export.", "#BAB0AC"))
        self.card = widgets.HTML(value="")
        self.decision: Any = None
        self.target = widgets.Dropdown(options=[(f"{n} — {t.description}", n) for n, t in TARGETS.items()],
                                       value="onnx", description="target", layout=widgets.Layout(width="420px"))
        self.sign = widgets.Checkbox(value=True, description="sign the manifest", indent=False,
                                     layout=widgets.Layout(width="160px"))
        folder = out_dir if out_dir is not None else export_dir()
        self.out_dir = widgets.Text(value=str(folder), description="folder", layout=widgets.Layout(width="420px"))
        self.button = widgets.Button(description="Export", icon="download", button_style="primary", disabled=True,
                                     tooltip="export the selected variant and check parity in the target runtime")
        self.report = widgets.HTML(value="")
        self.button.on_click(self.guard(self._export))
        controls = widgets.HBox([self.target, self.sign, self.out_dir, self.button],
                                layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__([self.card, self.heading, controls, self.report])
        self.add_class("wb-export-box")
        for name in ("target", "sign", "out_dir", "button", "report", "card"):
            getattr(self, name).add_class("wb-export-" + name.replace("_", "-"))

    def set_row(self, row: pd.Series | None, data: pd.DataFrame | None = None, **card: Any) -> None:
        """Choose the variant to export (a results row); suggests the matching target. With `data` (the results
        the row comes from), the box shows the row's decision card (`row_decision`; `card` are its keywords:
        device, metric, min_accuracy, rate_hz, battery_mah)."""
        self.row = row
        self.button.disabled = row is None
        self.report.value = ""
        self.decision = None
        self.card.value = ""
        if row is None:
            self.heading.value = note_html("Click a point to choose a variant to export.", "#BAB0AC")
            return
        from workbench.viz.words import variant_words

        self.target.value = suggest_target(row)
        if data is not None:
            self.decision = row_decision(data, row, **card)
            self.card.value = self.decision.html()
        simulated = is_simulated(row)
        note = (" — <b>simulated</b>: the runtime has no kernel for its compression, so the exported file runs "
                "as float" if simulated else "")
        self.heading.value = note_html(f"Export <b>{html.escape(variant_words(row))}</b> "
                                       f"({html.escape(str(row.get('variant')))}, measured on "
                                       f"{html.escape(runtime_name(row.get('runtime')))}){note}",
                                       "#F58518" if simulated else "#4C78A8")

    def _key(self, out: Path) -> tuple[Path | None, Path | None]:
        from workbench.artifacts import keys

        if not self.sign.value:
            return None, None
        if self.sign_with is not None:
            private = Path(self.sign_with)
            public = private.with_name(private.name.replace(".pem", ".pub.pem"))
            return private, public if public.is_file() else None
        folder = out / "keys"
        private, public = folder / keys.PRIVATE_NAME, folder / keys.PUBLIC_NAME
        if not private.is_file():
            private, public = keys.generate(folder)
        return private, public

    def _export(self, _button: Any = None) -> Any:
        """Rebuild the selected variant, export it, verify the signature, and show the report."""
        import workbench
        from workbench.ui.data import task_for, variant_handle

        if self.row is None:
            raise WorkbenchError("no variant selected: click a point in the chart first.")
        self.report.value = note_html(f"Exporting {html.escape(str(self.row.get('variant')))} to "
                                      f"{html.escape(self.target.value)}…", "#BAB0AC")
        self.artifact = None
        try:
            task = task_for(self.row, self.task)
            handle = variant_handle(self.row, task)
            out = Path(self.out_dir.value).expanduser()
            private, public = self._key(out)
            art = workbench.export(handle, self.target.value, out, task=task, sign_with=private, limit=self.limit)
        except Exception:
            self.report.value = ""
            raise
        verified = None
        if private is not None and public is not None:
            verified = workbench.verify(art.path, public)
        self.artifact = art
        self.report.value = artifact_html(art, verified=verified is not None, public_key=public)
        if self.show_manifest:
            import json

            text = html.escape(json.dumps(art.manifest, indent=2, default=str))
            self.report.value += (f"<details class='wb-manifest'><summary>manifest "
                                  f"({html.escape(art.manifest_path.name)})</summary><pre style='font-size:11px'>"
                                  f"{text}</pre></details>")
        return art


def artifact_html(art: Any, *, verified: bool = False, public_key: Path | None = None) -> str:
    """An artefact's file, manifest and parity figures as an HTML report."""
    p = art.parity
    m = p["metric"]
    rows = [
        ("file", f"<code>{html.escape(str(art.path))}</code>"),
        ("target", html.escape(art.target)),
        ("size", f"{art.size_bytes:,} bytes"),
        ("sha256", f"<code>{art.sha256[:16]}…</code>"),
        ("manifest", f"<code>{html.escape(str(art.manifest_path))}</code>"),
        ("signed", ("yes, and the signature verifies" if verified else "yes") + (
            f" (public key <code>{html.escape(str(public_key))}</code>)" if public_key else "")
         if art.signed else "no"),
    ]
    parity = [
        (f"{m}, source ({p.get('source_runtime', '')})", fmt(p["source"].get(m))),
        (f"{m}, artefact ({p.get('artifact_runtime', '')})", fmt(p["artifact"].get(m))),
        (f"change in {m}", fmt(p["delta"].get(m), "+.4f")),
        (p.get("agreement_kind", "agreement"), fmt(p.get("agreement"))),
        ("max abs output difference", fmt(p.get("max_abs_error"))),
        ("evaluation samples", fmt(p.get("samples"), "d")),
        ("parity", "<b style='color:#2CA02C'>passed</b>" if p.get("passed") else "<b style='color:#D62728'>failed</b>"),
    ]
    notes = art.manifest.get("notes") or []
    extra = "".join(f"<li>{html.escape(str(n))}</li>" for n in notes)
    return ("<div class='wb-artifact' style='display:flex;gap:32px;flex-wrap:wrap'>"
            + table_html(rows, "Artefact") + table_html(parity, "Parity in the target runtime") + "</div>"
            + (f"<ul style='font-size:12px;color:#555'>{extra}</ul>" if extra else ""))
