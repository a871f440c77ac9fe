"""`ExportPanel`: pick a variant of a sweep (the best one by default), read its decision card, export it, read the
parity report and the signed manifest; release it as an update of an earlier artefact (its version, the
over-the-air update size from that release) and encrypt it (what the file shows without the key, decryption only
after verification). The export report dashboard is this panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.ui.base import Panel, load_results, ok_rows, primary_metric
from workbench.ui.explorer import details_html
from workbench.ui.export_box import ExportBox


class ExportPanel(Panel):
    """Export one variant of a sweep and show the evidence: parity in the target runtime, the signed manifest.

    Args:
        data: a results frame, a `ResultStore` or a results file.
        task: the task the results come from (default: the zoo task named in the rows).
        out_dir: where artefacts are written (default: `workbench.ui.data.export_dir()`).
        sign_with: an Ed25519 private key file (default: a pair generated in ``<out_dir>/keys``).
        min_accuracy: the bar for the default choice (default: the original model's metric − 0.02).

    Attributes:
        card: the decision card of the variant being exported (at the top; `workbench.ui.export_box.row_decision`):
            what it gains against the original, in plain words, on this machine (measured).
        variant: dropdown of variants (``label on runtime``); its value is a row key.
        details: the chosen variant's figures. export: the `ExportBox` (target, sign, folder, button, report;
            ``previous`` "update of" and its update-size table ``updates``; ``encrypt``, ``sealed`` and
            ``decrypt_button``).

    Example:
        >>> panel = ExportPanel(df, out_dir="exports")
        >>> panel.export.target.value = "onnx"; panel.export.button.click()
        >>> panel.export.artifact.path.name
        'digits-cnn-q8-onnx.onnx'
    """

    def __init__(self, data: Any, *, task: Any = None, out_dir: str | Path | None = None,
                 sign_with: str | Path | None = None, min_accuracy: float | None = None) -> None:
        import workbench

        self.data = load_results(data)
        good = ok_rows(self.data)
        if good.empty:
            raise WorkbenchError("every result row has an error; nothing to export.")
        self.metric = primary_metric(self.data) or "accuracy"
        if "key" not in good:
            good = good.assign(key=good.index.astype(str))
            self.data = self.data.assign(key=self.data.index.astype(str))
        one = good.drop_duplicates(subset=[c for c in ("variant", "runtime") if c in good])
        options = [(f"{r['variant']} on {r.get('runtime', '?')}", str(r["key"])) for _, r in one.iterrows()]
        default = options[0][1]
        base = pd.to_numeric(good.get(f"baseline_{self.metric}", pd.Series(dtype=float)), errors="coerce").max()
        bar = min_accuracy if min_accuracy is not None else (float(base) - 0.02 if pd.notna(base) else None)
        try:
            pick = workbench.best(one, min_accuracy=bar, metric=self.metric, objective="size_bytes")
            default = str(pick["key"])
        except (WorkbenchError, KeyError):
            pass
        self.bar = bar
        self.variant = widgets.Dropdown(options=options, value=default, description="variant",
                                        layout=widgets.Layout(width="420px"))
        self.details = widgets.HTML(value="")
        self.export = ExportBox(task=task, out_dir=out_dir, sign_with=sign_with, show_manifest=True)
        self.card = self.export.card  # the box's card, shown at the top of the panel
        self.export.children = tuple(c for c in self.export.children if c is not self.card)
        super().__init__([self.card, self.variant, self.details, self.export])
        self.add_class("wb-export")
        self.variant.add_class("wb-export-variant")
        self.details.add_class("wb-export-details")
        self.variant.observe(self.guard(lambda _c: self.update()), names="value")
        self.guard(self.update)()

    def update(self) -> None:
        """Show the chosen variant and make it the one to export."""
        row = self.data[self.data["key"].astype(str) == self.variant.value].iloc[0]
        self.details.value = details_html(row, self.metric, device=False)
        self.export.set_row(row, self.data, metric=self.metric, min_accuracy=self.bar)
