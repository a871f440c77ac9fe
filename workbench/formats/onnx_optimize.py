"""ONNX Runtime's transformer fusions for BERT-like models (`transformer_onnx`, `fuse_transformer`), cached.

ONNX Runtime ships a graph optimizer for transformers (``onnxruntime.transformers.optimizer.optimize_model``)
that replaces each self-attention block by one ``Attention`` node, the embeddings by ``EmbedLayerNormalization``
and MatMul + bias + erf-GELU by ``BiasGelu``; `quantize_dynamic` then turns those into ``QAttention`` and
``QEmbedLayerNormalization``, integer kernels the unfused graph cannot reach. Its patterns depend on the exporter.
Measured on MiniLM-L6 (onnxruntime 1.32, torch 2.13, transformers 5.24):

- the dynamo exporter (`convert.to_onnx`): the optimizer's shape inference fails on the graph and only BiasGelu
  / LayerNormalization fuse (no Attention). onnxscript's own ORT rewriter does fuse Attention on it, but with the
  mask as an additive ``attention_bias``, which `quantize_dynamic` cannot turn into ``QAttention``;
- the TorchScript exporter with Hugging Face's SDPA attention: no Attention either (the exported mask handling,
  IsNaN/Where, is not a pattern the optimizer knows);
- the TorchScript exporter with *eager* attention: Attention ×6, EmbedLayerNormalization ×1, BiasGelu ×6. This is
  the export `transformer_onnx` makes (on a copy of the model: the user's module keeps its attention setting).

``SkipLayerNormalization`` (residual Add + LayerNormalization) is left out on purpose: onnxruntime 1.32's CPU
kernel for it is a scalar loop, measured 6x slower than Add + the vectorised LayerNormalization (250-340 µs vs
40-57 µs for 64 x 384) and 2.8-4.2 ms of a ~12-30 ms MiniLM call. (ONNX Runtime re-creates that fusion when it
loads a file unless the session disables ``SkipLayerNormFusion``.)

What it buys, MiniLM batch 1 x 64 tokens, one thread, thread time per call (interleaved, AVX-512 VNNI): fp32
12.9 ms (dynamo export) -> 12.8 ms fused (11.6 ms with that session fusion off); dynamic int8 6.6 ms on the
dynamo export -> 6.0 ms quantised after fusion (4.9 ms with it off), accuracy 0.885 -> 0.8825-0.8838.

A fused graph must compute what the export computes: with sample inputs, one whose outputs drift by more than
`DRIFT_LIMIT` is refused.

Layers inside a fused node keep their names: each fused node records, in its ``metadata_props`` under
`FUSED_LAYERS_KEY`, the layers it holds (``bert.encoder.layer.0.attention.self.query``, ...), matched by weight
values against the unfused export, so a quantisation recipe that names layers (``exclude=...``) still applies
(`fused_layers`). A file whose fused weights cannot all be matched is not used.

Nothing here breaks an export: a model that is not a BERT-like transformer (a CNN, an LSTM) is returned as it
is, and any failure of the exporter or the optimizer falls back to the unfused file with the reason in the note.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import first_line
from workbench.core.handle import ModelHandle, file_sha256
from workbench.core.paths import atomic_write, cache_dir

BERT_TYPES = ("bert", "roberta", "xlm-roberta", "electra", "camembert")
"""Hugging Face ``config.model_type`` values exported for ONNX Runtime's BERT optimizer (only ``bert`` is
measured here; for the others the fusion count is checked and an unfused file is used when nothing fused)."""

FUSED_LAYERS_KEY = "workbench.fused_layers"
"""``metadata_props`` key of a fused node: JSON list of ``[layer, original op type, initializer]``."""

FUSION_VERSION = 1
"""Part of every cache key: bump it when the fusion recipe below changes."""

DRIFT_LIMIT = 1e-3
"""Largest output change (relative to the output's scale, on the model's sample inputs) a fused graph may show
against the unfused export before it is refused: fusions reorder float arithmetic (MiniLM: 1e-7 measured), they
must not change the model."""

_NOT_TRANSFORMER = {"Conv", "ConvTranspose", "LSTM", "GRU", "RNN", "ConvInteger", "QLinearConv"}
_WEIGHT_SLOT = {"MatMul": 1, "Gemm": 1, "Gather": 0}


@dataclass(frozen=True)
class Fused:
    """What `transformer_onnx` / `fuse_transformer` gave.

    Attributes:
        path: the file to run (the fused one, or the unfused one when nothing was fused).
        fused: ``{op type: count}`` of the fused operators in `path` (empty when left unfused).
        note: what was done, in words; empty for models fusion does not concern (CNNs).
    """

    path: Path
    fused: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def is_fused(self) -> bool:
        return bool(self.fused)


def bert_config(module: Any) -> tuple[int, int] | None:
    """``(num_heads, hidden_size)`` of the first Hugging Face BERT-like model inside a torch module, else None."""
    if module is None or not hasattr(module, "modules"):
        return None
    for m in module.modules():
        cfg = getattr(m, "config", None)
        if getattr(cfg, "model_type", None) in BERT_TYPES and hasattr(m, "set_attn_implementation"):
            heads, hidden = getattr(cfg, "num_attention_heads", 0), getattr(cfg, "hidden_size", 0)
            if heads and hidden:
                return int(heads), int(hidden)
    return None


def looks_like_transformer(model: Any) -> bool:
    """An `onnx.ModelProto` with softmax attention over MatMuls and layer norms, and no convolution or RNN."""
    ops = {n.op_type for n in model.graph.node}
    return ("Softmax" in ops or "Attention" in ops) and "MatMul" in ops and not ops & _NOT_TRANSFORMER and bool(
        ops & {"LayerNormalization", "ReduceMean", "SkipLayerNormalization", "EmbedLayerNormalization"})


def transformer_onnx(handle: ModelHandle) -> Fused:
    """The ONNX file ONNX Runtime should run for `handle`: fused for a BERT-like transformer, else as exported.

    A torch module holding a Hugging Face BERT-like model is exported with the TorchScript exporter and eager
    attention, then fused (`fuse_transformer`); an ONNX file that looks like a transformer is fused as it is;
    anything else is `convert.to_onnx`'s file with an empty note. Cached per model and library versions.

    Example:
        >>> transformer_onnx(task.model).note  # the digits CNN: nothing to fuse
        ''
    """
    from workbench.formats.convert import to_onnx

    if handle.framework == "onnx":
        import onnx

        model = onnx.load(str(handle.path), load_external_data=False)
        if not looks_like_transformer(model) or any(n.op_type == "Attention" for n in model.graph.node):
            return Fused(handle.path)
        return fuse_transformer(handle.path, inputs=handle.example_inputs or None)
    cfg = bert_config(handle.module) if handle.framework == "torch" else None
    if cfg is None:
        return Fused(to_onnx(handle))
    key = hashlib.sha256(f"{handle.fingerprint}|fused-v{FUSION_VERSION}|{_versions()}".encode()).hexdigest()[:24]
    out = cache_dir() / "conversions" / f"{handle.name}-{key}-fused.onnx"
    record = out.with_suffix(".json")
    if record.is_file():
        done = json.loads(record.read_text())
        if done["fused"] and out.is_file():
            return Fused(out, done["fused"], done["note"])
        if not done["fused"]:
            return Fused(to_onnx(handle), {}, done["note"])
    try:
        fused, note = _export_and_fuse(handle, cfg, out)
    except Exception as e:  # noqa: BLE001 - exporter or optimizer errors must not break export: fall back, say why
        fused, note = {}, f"transformer fusions not applied ({first_line(e)}); unfused dynamo export"
    atomic_write(record, lambda tmp: tmp.write_text(json.dumps({"fused": fused, "note": note})))
    return Fused(out, fused, note) if fused else Fused(to_onnx(handle), {}, note)


def fuse_transformer(path: str | Path, *, num_heads: int = 0, hidden_size: int = 0,
                     inputs: list[np.ndarray] | None = None) -> Fused:
    """Run ONNX Runtime's BERT optimizer on an ONNX file (SkipLayerNormalization left out; see the module doc).

    Args:
        path: an fp32 ONNX file (one file, no external data).
        num_heads / hidden_size: the attention shape; 0 lets the optimizer read them from the graph.
        inputs: sample inputs (one array per model input); when given, a fused graph whose outputs drift from
            the unfused one's by more than `DRIFT_LIMIT` is refused.

    Returns:
        A `Fused` with the fused file (cached by the source's content) when at least one Attention was fused
        and every fused weight was matched to its layer; otherwise `path` itself with a note saying why.
    """
    import onnx

    src = Path(path)
    model = onnx.load(str(src), load_external_data=False)
    if not looks_like_transformer(model):
        return Fused(src, {}, "")
    key = hashlib.sha256(f"{file_sha256([src])}|{num_heads}|{hidden_size}|fused-v{FUSION_VERSION}|{_versions()}"
                         .encode()).hexdigest()[:24]
    out = cache_dir() / "conversions" / f"{src.stem}-{key}-fused.onnx"
    record = out.with_suffix(".json")
    if not record.is_file():
        try:
            fused, note = _fuse_file(src, out, num_heads, hidden_size, inputs)
        except Exception as e:  # noqa: BLE001 - an optimizer error leaves the file as exported, with the reason
            fused, note = {}, f"transformer fusions not applied ({first_line(e)}); left as exported"
        atomic_write(record, lambda tmp: tmp.write_text(json.dumps({"fused": fused, "note": note})))
    done = json.loads(record.read_text())
    if done["fused"] and out.is_file():
        return Fused(out, done["fused"], done["note"])
    return Fused(src, {}, done["note"])


def fused_layers(node: Any) -> list[tuple[str, str, str]]:
    """``[(layer, original op type, initializer)]`` a fused node holds (`FUSED_LAYERS_KEY`), else []."""
    for prop in node.metadata_props:
        if prop.key == FUSED_LAYERS_KEY:
            return [tuple(item) for item in json.loads(prop.value)]
    return []


# ---------------------------------------------------------------------------------------------- internals


def _versions() -> str:
    from importlib.metadata import version

    return ",".join(f"{p}={version(p)}" for p in ("torch", "onnx", "onnxruntime", "transformers"))


def _export_and_fuse(handle: ModelHandle, cfg: tuple[int, int], out: Path) -> tuple[dict[str, int], str]:
    """TorchScript export with eager attention (into a temporary file beside `out`), then `_fuse_file`."""
    import tempfile

    from workbench.formats.convert import batch_at_least_2

    heads, hidden = cfg
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        plain = Path(tmp) / "torchscript.onnx"
        _export_eager(handle, plain)
        fused, note = _fuse_file(plain, out, heads, hidden, [batch_at_least_2(a) for a in handle.example_inputs])
    return fused, (note + " (TorchScript export, eager attention)") if fused else note


def _export_eager(handle: ModelHandle, out: Path) -> None:
    import onnx
    import torch

    from workbench.formats.convert import batch_at_least_2, quiet_conversion

    module = copy.deepcopy(handle.module).eval()
    for m in module.modules():
        cfg = getattr(m, "config", None)
        if getattr(cfg, "model_type", None) in BERT_TYPES and hasattr(m, "set_attn_implementation"):
            # SDPA exports its mask handling as IsNaN/Where, which ONNX Runtime's Attention fusion does not match
            m.set_attn_implementation("eager")
    args = tuple(torch.from_numpy(np.ascontiguousarray(batch_at_least_2(a))) for a in handle.example_inputs)
    inputs = [s.name for s in handle.inputs]
    outputs = [s.name for s in handle.outputs] or None
    with quiet_conversion(), torch.no_grad():
        torch.onnx.export(module, args, str(out), dynamo=False, opset_version=17, input_names=inputs,
                          output_names=outputs,
                          dynamic_axes={n: {0: "batch"} for n in [*inputs, *(outputs or [])]})
    model = onnx.load(str(out))
    _record_scopes(model)
    onnx.save(model, str(out))


def _record_scopes(model: Any) -> None:
    """Give TorchScript-exported nodes the module path the dynamo exporter records (``pkg.torch.onnx.name_scopes``),
    read from their names (``/bert/encoder/layer.0/attention/self/query/MatMul``), so `onnx_layer_name` names
    their weights after the PyTorch layer, as it does for the dynamo export."""
    for node in model.graph.node:
        parts = node.name.strip("/").split("/")
        if not node.name.startswith("/") or len(parts) < 2:
            continue
        if any(p.key == "pkg.torch.onnx.name_scopes" for p in node.metadata_props):
            continue
        prop = node.metadata_props.add()
        prop.key, prop.value = "pkg.torch.onnx.name_scopes", json.dumps([".".join(parts[:-1]), parts[-1]])


def _fuse_file(src: Path, out: Path, num_heads: int, hidden_size: int,
               inputs: list[np.ndarray] | None = None) -> tuple[dict[str, int], str]:
    """Fuse `src` into `out`; ``({}, why)`` when no Attention fused, a fused weight matches no layer, or (given
    sample `inputs`) the fused graph computes something else than `src`."""
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    from workbench.formats.convert import quiet_conversion

    before = onnx.load(str(src))
    layers = _layers_by_value(before)
    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False  # scalar CPU kernel, 6x slower than Add + LayerNormalization
    options.enable_bias_skip_layer_norm = False
    with quiet_conversion("onnxruntime", "onnxruntime.transformers"):
        optimized = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                                   optimization_options=options)
    model = optimized.model
    _keep_metadata(before, model)
    counts = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    if not counts.get("Attention"):
        return {}, "ONNX Runtime's optimizer fused no Attention in this graph; left as exported"
    missing = _label_fused(model, layers)
    if missing:
        return {}, f"fused weights of {', '.join(missing[:3])} match no layer of the export; left unfused"
    if inputs:
        drift = _drift(before, model, inputs)
        if drift > DRIFT_LIMIT:
            return {}, f"the fused graph's outputs differ from the export's (max relative error {drift:.1e}); unfused"
    fused = {k: v for k, v in counts.items() if k in ("Attention", "EmbedLayerNormalization", "BiasGelu",
                                                       "FastGelu", "Gelu", "SkipLayerNormalization")}
    atomic_write(out, lambda tmp: onnx.save_model(model, str(tmp)))
    note = "ONNX Runtime transformer fusions: " + ", ".join(f"{k} x{v}" for k, v in fused.items())
    return fused, note


def _drift(before: Any, after: Any, inputs: list[np.ndarray]) -> float:
    """Largest output difference between two graphs on `inputs`, relative to the output's scale (ONNX Runtime)."""
    import onnxruntime as ort

    def outputs(model: Any) -> list[np.ndarray]:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        return sess.run(None, dict(zip(names, inputs)))

    pairs = zip(outputs(before), outputs(after))
    return max(float(np.abs(a - b).max() / max(1.0, float(np.abs(a).max()))) for a, b in pairs)


def _keep_metadata(before: Any, after: Any) -> None:
    """Copy each surviving node's ``metadata_props`` (the exporter's module scopes, which name its layers) from
    the unfused graph: the optimizer rebuilds the graph through an ONNX Runtime session, which drops them."""
    props = {n.name: n.metadata_props for n in before.graph.node if n.name and len(n.metadata_props)}
    for node in after.graph.node:
        if node.name in props and not len(node.metadata_props):
            node.metadata_props.extend(props[node.name])


def _digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha1(f"{a.dtype}{a.shape}".encode() + a.tobytes()).hexdigest()


def _layers_by_value(model: Any) -> dict[str, tuple[str, str]]:
    """``{digest of a weight: (layer name, op type)}`` for the MatMul / Gemm / Gather weights of an unfused graph."""
    from onnx import numpy_helper

    from workbench.formats.onnx_file import onnx_layer_name

    inits = {i.name: i for i in model.graph.initializer}
    out = {}
    for node in model.graph.node:
        slot = _WEIGHT_SLOT.get(node.op_type)
        if slot is None or len(node.input) <= slot or node.input[slot] not in inits:
            continue
        arr = numpy_helper.to_array(inits[node.input[slot]])
        if arr.ndim == 2:
            out.setdefault(_digest(arr), (onnx_layer_name(node, node.input[slot]), node.op_type))
    return out


def _label_fused(model: Any, layers: dict[str, tuple[str, str]]) -> list[str]:
    """Record on each Attention / EmbedLayerNormalization node the layers its weights came from; return the
    nodes whose weights match no layer (then the fused file is not used)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    missing = []
    for node in model.graph.node:
        if node.op_type == "Attention" and len(node.input) > 1 and node.input[1] in inits:
            w = numpy_helper.to_array(inits[node.input[1]])
            parts = np.split(w, 3, axis=1) if w.ndim == 2 and w.shape[1] % 3 == 0 else []
            names = [node.input[1]] * len(parts)
        elif node.op_type == "EmbedLayerNormalization":
            names = [n for n in node.input[2:5] if n in inits]
            parts = [numpy_helper.to_array(inits[n]) for n in names]
        else:
            continue
        found = [layers.get(_digest(p)) for p in parts]
        if not found or None in found:
            missing.append(node.name)
            continue
        prop = node.metadata_props.add()
        prop.key = FUSED_LAYERS_KEY
        prop.value = json.dumps([[layer, op, init] for (layer, op), init in zip(found, names)])
    return missing
