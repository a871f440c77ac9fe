"""The Export box: target, signing, output folder, a button, and the artefact's parity report.

Used under a clicked point in `TradeoffExplorer` and on its own in `ExportPanel` (the export report dashboard).
The variant is rebuilt from its row (`workbench.ui.data.variant_handle`) and exported with `workbench.export`;
a parity failure is shown in the box with its figures (nothing is written then). Above the controls, the decision
card of the row being exported (`row_decision`): what it gains against the original, in plain words.

Releases: "update of" picks an earlier artefact of the folder; the export is then signed as the next version
replacing it (rollback protection: `workbench.verify(..., installed=...)`), and the box shows the over-the-air
update size from that release (`workbench.plan.update_size`: full, deflated, binary delta), recomputed when another
previous release is picked. "encrypt" writes the artefact AES-256-GCM encrypted; the box then measures what it
shows without the key (`workbench.artifacts.sealed_evidence`) and its Decrypt button runs `workbench.decrypt`,
which verifies the signed manifest before decrypting anything.
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
        previous: "update of": None (a first release) or the path of an earlier artefact in the folder.
        encrypt: write the artefact encrypted (needs sign; the AES key is ``<out_dir>/keys/model.key``, or
            `encrypt_with`). decrypt_button: verify, then decrypt the last encrypted artefact.
        report: the HTML report of the last export. artifact: the last `workbench.Artifact`, or None.
        updates: the update-size table (from `previous` to the last artefact); update: its DataFrame row.
        sealed: what the encrypted file shows without the key; evidence: its `sealed_evidence` dict.
        decrypted: the decrypted model's path after Decrypt, or None.

    Example:
        >>> box = ExportBox(out_dir="exports")
        >>> box.set_row(df.iloc[0]); box.target.value = "onnx-int8"; box.button.click()
        >>> box.artifact.parity["passed"]
        True
    """

    def __init__(self, *, task: Any = None, out_dir: str | Path | None = None, sign_with: str | Path | None = None,
                 limit: int | None = None, show_manifest: bool = False,
                 encrypt_with: str | Path | None = None) -> None:
        from workbench.artifacts import TARGETS
        from workbench.core.env import fast_mode
        from workbench.ui.data import export_dir

        self.task = task
        self.show_manifest = show_manifest
        self.sign_with = sign_with
        self.encrypt_with = encrypt_with
        self.update: Any = None
        self.evidence: dict[str, Any] | None = None
        self.decrypted: Path | None = None
        self._public: Path | None = None
        self._refreshing = False
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
        self.previous = widgets.Dropdown(options=[("none (a first release)", None)], value=None,
                                         description="update of", layout=widgets.Layout(width="420px"))
        self.encrypt = widgets.Checkbox(value=False, description="encrypt (AES-256-GCM)", indent=False,
                                        layout=widgets.Layout(width="200px"))
        self.decrypt_button = widgets.Button(description="Decrypt (verifies first)", icon="unlock", disabled=True,
                                             layout=widgets.Layout(width="200px"),
                                             tooltip="verify the signed manifest, then decrypt the artefact")
        self.report = widgets.HTML(value="")
        self.updates = widgets.HTML(value="")
        self.sealed = widgets.HTML(value="")
        self.button.on_click(self.guard(self._export))
        self.decrypt_button.on_click(self.guard(self._decrypt))
        self.previous.observe(self.guard(lambda _c: self.show_update()), names="value")
        self.out_dir.observe(self.guard(lambda _c: self.refresh_releases()), names="value")
        controls = widgets.HBox([self.target, self.sign, self.out_dir, self.button],
                                layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        release = widgets.HBox([self.previous, self.encrypt, self.decrypt_button],
                               layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__([self.card, self.heading, controls, release, self.report, self.updates, self.sealed])
        self.add_class("wb-export-box")
        for name in ("target", "sign", "out_dir", "button", "report", "card", "previous", "encrypt",
                     "decrypt_button", "updates", "sealed"):
            getattr(self, name).add_class("wb-export-" + name.replace("_", "-"))
        self.refresh_releases()

    def set_row(self, row: pd.Series | None, data: pd.DataFrame | None = None, **card: Any) -> None:
        """Choose the variant to export (a results row); suggests the matching target. With `data` (the results
        the row comes from), the box shows the row's decision card (`row_decision`; `card` are its keywords:
        device, metric, min_accuracy, rate_hz, battery_mah)."""
        self.row = row
        self.button.disabled = row is None
        self.report.value = self.updates.value = self.sealed.value = ""
        self.decrypt_button.disabled = True
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
            if self.encrypt.value and not self.sign.value:
                raise WorkbenchError("encryption needs a signature: a device decrypts only what verifies. Tick "
                                     "'sign the manifest' too.")
            private, public = self._key(out)
            secret = self._secret(out) if self.encrypt.value else None
            art = workbench.export(handle, self.target.value, out, task=task, sign_with=private, limit=self.limit,
                                   replaces=self.previous.value, encrypt_with=secret)
        except Exception:
            self.report.value = ""
            raise
        verified = None
        if private is not None and public is not None:
            verified = workbench.verify(art.path, public, installed=self.previous.value)
        self.artifact, self._public, self.decrypted = art, public, None
        self.report.value = artifact_html(art, verified=verified is not None, public_key=public)
        self.decrypt_button.disabled = not (art.encrypted and public is not None)
        self.show_update()
        self.show_sealed()
        if self.show_manifest:
            import json

            text = html.escape(json.dumps(art.manifest, indent=2, default=str))
            self.report.value += (f"<details class='wb-manifest'><summary>manifest "
                                  f"({html.escape(art.manifest_path.name)})</summary><pre style='font-size:11px'>"
                                  f"{text}</pre></details>")
        self.refresh_releases(keep=self.previous.value)
        return art

    def _secret(self, out: Path) -> Path:
        from workbench.artifacts import keys

        if self.encrypt_with is not None:
            return Path(self.encrypt_with)
        path = out / "keys" / "model.key"
        return path if path.is_file() else keys.generate_secret(path)

    def refresh_releases(self, keep: Any = None) -> None:
        """List the folder's artefacts (`workbench.artifacts.releases`) as choices for "update of"."""
        from workbench.artifacts import releases

        found = releases(Path(self.out_dir.value).expanduser())
        options = [("none (a first release)", None)] + [
            (f"v{r.version} {r.file}{' (encrypted)' if r.encrypted else ''}", str(r.path))
            for r in found.itertuples()]
        value = keep if keep in [v for _, v in options] else None
        before, self._refreshing = self.previous.value, True
        try:  # new options reset the value for a moment: the update table must not follow that
            self.previous.options = options
            self.previous.value = value
        finally:
            self._refreshing = False
        if value != before:
            self.show_update()

    def show_update(self) -> None:
        """The update size from the chosen previous release to the last artefact (`workbench.plan.update_size`)."""
        if self._refreshing:
            return
        self.update = None
        art, old = self.artifact, self.previous.value
        if art is None or old is None or Path(old) == art.path or not art.path.is_file():
            self.updates.value = ""
            return
        from workbench.plan import update_size

        df, _fig = update_size(old, art.path, label=f"{Path(old).name} -> {art.path.name}")
        self.update = row = df.iloc[0]
        self.updates.value = update_html(row, old_name=Path(old).name, new=art)

    def show_sealed(self) -> None:
        """What the last (encrypted) artefact shows without the key, measured (`sealed_evidence`)."""
        from workbench.artifacts import sealed_evidence

        art = self.artifact
        if art is None or not art.encrypted:
            self.evidence, self.sealed.value = None, ""
            return
        self.evidence = sealed_evidence(art.path, plain=self.decrypted)
        self.sealed.value = sealed_html(self.evidence, decrypted=self.decrypted)

    def _decrypt(self, _button: Any = None) -> Path:
        """Verify the last encrypted artefact, then decrypt it into ``<folder>/decrypted/``."""
        import workbench

        art = self.artifact
        if art is None or not art.encrypted or self._public is None:
            raise WorkbenchError("export an encrypted, signed artefact first (tick 'encrypt' and 'sign').")
        secret = self._secret(art.path.parent)
        out = art.path.parent / "decrypted" / art.manifest["encryption"]["plaintext_file"]
        self.decrypted = workbench.decrypt(art.path, secret, public_key=self._public, out=out)
        self.show_sealed()
        return self.decrypted


def update_html(row: pd.Series, *, old_name: str, new: Any) -> str:
    """The over-the-air update size table of one `update_size` row."""
    full = row["full_bytes"]

    def cell(col: str) -> str:
        v = row[col]
        if v != v:  # NaN: no delta for files this large
            return "–"
        best = " <b>(best)</b>" if col == f"{row['best_method']}_bytes" else ""
        return f"{int(v):,} bytes ({v / full:.1%} of the file){best}"

    rep = new.replaces
    chain = (f"v{new.version}, signed as replacing v{rep['version']} (<code>{html.escape(rep['file'])}</code>)"
             if rep and rep["file"] == old_name else
             f"v{new.version}; its manifest replaces {'v' + str(rep['version']) if rep else 'nothing'}, not this "
             "release: a device holding it would refuse the update as a broken chain")
    rows = [("from", f"<code>{html.escape(old_name)}</code> ({int(row['old_bytes']):,} bytes)"),
            ("to", f"<code>{html.escape(new.path.name)}</code> — {chain}"),
            ("full file", cell("full_bytes")), ("deflated", cell("deflated_bytes")),
            ("binary delta (bsdiff4)", cell("delta_bytes")), ("delta, deflated", cell("delta_deflated_bytes"))]
    note = (note_html("The new release is encrypted: ciphertext has no pattern in common with the old file, so the "
                      "binary delta is as large as the file itself. To ship small encrypted updates, delta the "
                      "plain models and encrypt the patch.", "#F58518") if new.encrypted else "")
    return ("<div class='wb-update-size'>" + table_html(rows, "Update size over the air (measured on these files)")
            + note + "</div>")


def sealed_html(seen: dict[str, Any], *, decrypted: Path | None = None) -> str:
    """What an encrypted artefact shows without its key (`sealed_evidence`), and the decryption after verifying."""
    plain = seen.get("plain_deflate_ratio")
    rows = [
        ("readable part", f"the header <code>{html.escape(seen['header'])}</code> only"),
        ("deflate ratio", f"{seen['deflate_ratio']:.3f}" + (f" (the decrypted model: {plain:.3f})" if plain else "")
         + " — ciphertext does not compress"),
        ("byte entropy", f"{seen['entropy_bits_per_byte']:.3f} bits per byte (8 = noise)"
         + (f"; decrypted model {seen['plain_entropy_bits_per_byte']:.3f}" if plain else "")),
        ("loaded as the model, without the key",
         "<b style='color:#D62728'>loads</b>" if seen["loads_without_key"] else
         f"refused: <i>{html.escape(seen['load_error'])}</i>"),
        ("decrypted", f"after the manifest verified: <code>{html.escape(str(decrypted))}</code> (its sha256 is the "
                      "signed one)" if decrypted else "not yet: Decrypt verifies the signed manifest first"),
    ]
    return "<div class='wb-sealed'>" + table_html(rows, "Encrypted (AES-256-GCM): what it shows without the key") \
        + "</div>"


def artifact_html(art: Any, *, verified: bool = False, public_key: Path | None = None) -> str:
    """An artefact's file, manifest and parity figures as an HTML report."""
    p = art.parity
    m = p["metric"]
    rows = [
        ("file", f"<code>{html.escape(str(art.path))}</code>"),
        ("target", html.escape(art.target)),
        ("size", f"{art.size_bytes:,} bytes"),
        ("sha256", f"<code>{art.sha256[:16]}…</code>"),
        ("version", f"v{art.version}" + (f", replaces v{art.replaces['version']} "
                                         f"(<code>{html.escape(art.replaces['file'])}</code>)" if art.replaces
                                         else " (a first release)")),
        ("encrypted", "yes, AES-256-GCM" if art.encrypted else "no"),
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
