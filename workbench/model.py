"""`ModelHandle`: one object for a model in any of the five formats the workbench reads.

`load()` recognises a file by its content (not just its name), validates it eagerly and never executes code
from it: TorchScript and ExportedProgram archives go through PyTorch's own loaders, any pickle through
`torch.load(weights_only=True)`, and TFLite flatbuffers are first opened in a child process so that a
corrupt file cannot take the user's kernel down with it.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np

from workbench.errors import WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    import torch

Framework = Literal["torch", "onnx", "tflite"]
SourceFormat = Literal["module", "torchscript", "exported_program", "onnx", "tflite"]

SUFFIXES: dict[str, SourceFormat] = {
    ".pt": "torchscript",
    ".pth": "torchscript",
    ".pt2": "exported_program",
    ".onnx": "onnx",
    ".tflite": "tflite",
}
_FRAMEWORK: dict[SourceFormat, Framework] = {
    "module": "torch",
    "torchscript": "torch",
    "exported_program": "torch",
    "onnx": "onnx",
    "tflite": "tflite",
}
_FORMAT_NAMES = {
    "torchscript": "a TorchScript archive",
    "exported_program": "a torch.export ExportedProgram archive",
    "onnx": "an ONNX model",
    "tflite": "a TFLite flatbuffer",
    "pickle": "a Python pickle (torch.save)",
}


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one model input or output.

    `shape` is a tuple of ints with `None` for a dynamic dimension (usually the batch), or `None` as a whole
    when the format does not record shapes (TorchScript loaded without `example_inputs`). `dtype` is a numpy
    dtype name such as ``"float32"``.
    """

    name: str
    shape: tuple[int | None, ...] | None
    dtype: str | None

    def describe(self) -> str:
        dims = "?" if self.shape is None else ", ".join("N" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype or '?'}[{dims}]"


def describe_signature(specs: Sequence[TensorSpec]) -> str:
    """`(x: float32[N, 1, 32, 32], h: float32[N, 128])` for error messages."""
    return "(" + ", ".join(s.describe() for s in specs) + ")"


@dataclass(eq=False)
class ModelHandle:
    """A loaded model: what it is, what it takes and returns, and a content fingerprint.

    Attributes:
        framework: ``"torch"``, ``"onnx"`` or ``"tflite"``.
        inputs: input specs, in call order.
        outputs: output specs, in return order.
        num_params: number of weights (parameters / initialisers / constant tensors).
        fingerprint: sha256 of the content (file bytes, or the module's structure and state).
        module: the `nn.Module` for torch handles, else `None`.
        path: the file the model came from, if any.
        source_format: the format it was read from.
        name: a short human name.
        example_inputs: sample inputs (batch >= 2 where known), used for conversion and tracing.
        lineage: the compression configs applied to reach this variant, in order (empty for an original).
        origin: for a variant, the uncompressed handle it came from (the teacher for distillation).
        meta: technique-specific facts a later step needs (e.g. calibrated activation ranges), JSON-friendly.
    """

    framework: Framework
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    num_params: int
    fingerprint: str
    source_format: SourceFormat
    name: str
    module: Any = None
    path: Path | None = None
    example_inputs: list[np.ndarray] | None = None
    lineage: tuple[Any, ...] = ()
    origin: Any = field(default=None, repr=False)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    _artifacts: dict[str, Path] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (
            f"ModelHandle(name={self.name!r}, framework={self.framework!r}, "
            f"inputs={describe_signature(self.inputs)}, outputs={describe_signature(self.outputs)}, "
            f"num_params={self.num_params:,}, fingerprint={self.fingerprint[:12]}…)"
        )

    @property
    def signature(self) -> str:
        """Human-readable input signature, e.g. ``(x: float32[N, 1, 32, 32])``."""
        return describe_signature(self.inputs)


def load(
    path_or_module: Any,
    *,
    example_inputs: Any = None,
    name: str | None = None,
) -> ModelHandle:
    """Load a model from memory or a file and validate it.

    Args:
        path_or_module: an `nn.Module` (or `torch.export.ExportedProgram`) in memory, or a path to a
            TorchScript (``.pt``/``.pth``), ExportedProgram (``.pt2``), ONNX (``.onnx``) or TFLite
            (``.tflite``) file.
        example_inputs: sample inputs (numpy arrays or tensors, one per model input, batch first). Needed
            for in-memory modules and TorchScript to know input shapes and to convert to ONNX / TFLite.
        name: display name; defaults to the file stem or the module's class name.

    Returns:
        A `ModelHandle`.

    Raises:
        WorkbenchError: the file is missing, not a model, corrupt, unsafe to unpickle, or fails to run.

    Example:
        >>> import torch, workbench
        >>> h = workbench.load(torch.nn.Linear(4, 2), example_inputs=[np.zeros((2, 4), np.float32)])
        >>> h.framework, h.inputs[0].shape, h.num_params
        ('torch', (None, 4), 10)
    """
    examples = _as_arrays(example_inputs) if example_inputs is not None else None
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        torch = None  # type: ignore[assignment]
    if torch is not None and isinstance(path_or_module, torch.export.ExportedProgram):
        return _from_exported_program(path_or_module, None, examples, name or "exported_program")
    if torch is not None and isinstance(path_or_module, torch.nn.Module):
        src: SourceFormat = "torchscript" if isinstance(path_or_module, torch.jit.ScriptModule) else "module"
        return _from_module(path_or_module, src, None, examples, name)
    if isinstance(path_or_module, ModelHandle):
        return path_or_module
    if not isinstance(path_or_module, (str, os.PathLike)):
        raise WorkbenchError(
            f"workbench.load() takes a file path or a torch.nn.Module, got {type(path_or_module).__name__}."
        )
    return _load_file(Path(path_or_module), examples, name)


# ----------------------------------------------------------------------------------------------- files


def _load_file(path: Path, examples: list[np.ndarray] | None, name: str | None) -> ModelHandle:
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except (OSError, ValueError) as e:  # e.g. "File name too long"
        reason = getattr(e, "strerror", None) or str(e)
        raise WorkbenchError(f"{path}: cannot access this path ({reason}). Check the path.") from e
    if not exists:
        raise WorkbenchError(f"{path}: no such file. Check the path (relative paths start at {Path.cwd()}).")
    if is_dir:
        raise WorkbenchError(
            f"{path} is a directory. Pass the model file inside it ({', '.join(sorted(SUFFIXES))})."
        )
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise WorkbenchError(
            f"{path}: unsupported extension {suffix or '(none)'!r}. Supported: TorchScript .pt/.pth, "
            f"ExportedProgram .pt2, ONNX .onnx, TFLite .tflite."
        )
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as e:
        raise WorkbenchError(f"{path}: cannot read the file ({e.strerror}).") from e
    if not head:
        raise WorkbenchError(f"{path} is empty (0 bytes). Re-export or re-download the model.")
    content = _sniff(path, head)
    expected = SUFFIXES[suffix]
    if content is None and expected != "onnx" and _is_onnx(path):
        content = "onnx"
    if content == "pickle" and expected in ("torchscript", "exported_program"):
        _refuse_pickle(path)
    if content is not None and content != expected:
        good = [s for s, f in SUFFIXES.items() if f == content]
        hint = f"rename it to {path.stem}{good[0]}" if good else "save the model as TorchScript, .pt2 or ONNX"
        raise WorkbenchError(
            f"{path}: the extension {suffix} says {_FORMAT_NAMES[expected]}, but the content is "
            f"{_FORMAT_NAMES[content]}; {hint}."
        )
    name = name or path.stem
    if expected == "torchscript":
        return _load_torchscript(path, examples, name)
    if expected == "exported_program":
        return _load_exported_program(path, examples, name)
    if expected == "onnx":
        from workbench.formats.onnx_file import load_onnx

        return load_onnx(path, examples, name)
    from workbench.formats.tflite_file import load_tflite

    return load_tflite(path, examples, name)


def _sniff(path: Path, head: bytes) -> str | None:
    """Recognise a model format by its first bytes (`None`: no magic number, e.g. ONNX protobuf)."""
    if head[4:8] == b"TFL3":
        return "tflite"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in range(2, 6):
        return "pickle"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except Exception as e:  # BadZipFile, NotImplementedError ("zip file version"), EOFError, ValueError, …
            raise WorkbenchError(
                f"{path}: looks like a zip archive but is corrupt ({_first_line(e)}). Re-save the model."
            ) from e
        if not infos or min(i.header_offset for i in infos) != 0:
            # A truncated archive whose last bytes hold a nested zip (a .pt2 embeds torch.save files) parses as
            # that inner archive; the outer one's directory is gone.
            raise WorkbenchError(
                f"{path}: looks like a zip archive but is truncated or corrupt (its central directory does not "
                "describe the file). Re-save or re-copy the model."
            )
        names = [i.filename for i in infos]
        # .pt2 archives hold <root>/models/...; a TorchScript archive may hold code paths such as
        # <root>/code/__torch__/transformers/models/bert/..., so only a top-level models/ folder counts.
        if any(n.endswith("serialized_exported_program.json") or n.split("/")[1:2] == ["models"] for n in names):
            return "exported_program"
        if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "pickle"
        raise WorkbenchError(
            f"{path}: a zip archive that is neither TorchScript nor a torch.export archive. "
            "Save models with torch.jit.save(...) or torch.export.save(...)."
        )
    return None


def _is_onnx(path: Path) -> bool:
    """Whether a file without a magic number parses as an ONNX model with a graph (to name a wrong extension)."""
    if path.stat().st_size > (1 << 31):
        return False
    try:
        import onnx

        return len(onnx.load_model(str(path), load_external_data=False).graph.node) > 0
    except Exception:  # any parse failure just means "not ONNX"
        return False


def _refuse_pickle(path: Path) -> None:
    """Explain what a torch.save pickle holds without executing anything in it."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # whatever a corrupt or hostile pickle makes the weights-only loader raise
        raise WorkbenchError(
            f"{path} is a Python pickle that holds objects other than tensors (a pickled model class or "
            "code). The workbench refuses to unpickle it because that can run arbitrary code. Save the model "
            "with torch.jit.save(torch.jit.script(model), ...) or torch.export.save(...), or export it to ONNX. "
            f"(Loader said: {_first_line(e)[:200]})"
        ) from e
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WorkbenchError(
            f"{path} holds a state_dict ({len(obj)} tensors), not a model. Build the model class, call "
            "model.load_state_dict(torch.load(path, weights_only=True)) and pass the module to workbench.load()."
        )
    raise WorkbenchError(
        f"{path} is a torch.save() pickle of a {type(obj).__name__}, not a model. Save models with "
        "torch.jit.save or torch.export.save."
    )


_TS_PROBE = "import sys, torch; torch.jit.load(sys.argv[1], map_location='cpu')"


def _check_zip_crc(path: Path) -> None:
    """Reject an archive whose entries fail their CRC: corrupt bytes inside can abort PyTorch's C++ reader."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except Exception as e:  # noqa: BLE001 - any failure to read the archive is corruption
        raise WorkbenchError(f"{path}: the archive is corrupt ({_first_line(e)}). Re-save the model.") from e
    if bad is not None:
        raise WorkbenchError(f"{path}: the archive is corrupt (entry {bad!r} fails its checksum). Re-save the model.")


@lru_cache(maxsize=64)
def _probe_torchscript(path: str, fingerprint: str) -> str | None:
    """Open a TorchScript file in a child process first: torch.jit.load aborts (SIGABRT) on some corrupt
    archives, which would take the user's kernel down. Returns an error line, or None if it loads."""
    from workbench.formats.isolated import run_child

    child = run_child(_TS_PROBE, path, timeout=300, env={"OMP_NUM_THREADS": "1"})
    if child.status == "timeout":
        return "loading did not finish in 300 s"
    if child.status == "crash":
        return f"PyTorch crashed ({child.detail}) reading it"
    return child.detail if child.status == "error" else None


def _load_torchscript(path: Path, examples: list[np.ndarray] | None, name: str) -> ModelHandle:
    import torch

    _check_zip_crc(path)
    problem = _probe_torchscript(str(path), file_sha256([path]))
    if problem:
        raise WorkbenchError(
            f"{path}: not a loadable TorchScript archive ({problem}). The file is corrupt; re-save it with "
            "torch.jit.save()."
        )
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # torch raises RuntimeError/ValueError/… for corrupt archives
        raise WorkbenchError(
            f"{path}: not a loadable TorchScript archive ({_first_line(e)}). Re-save it with torch.jit.save()."
        ) from e
    return _from_module(module, "torchscript", path, examples, name)


def _load_exported_program(path: Path, examples: list[np.ndarray] | None, name: str) -> ModelHandle:
    import torch

    from workbench.formats.pt2_file import check_archive, no_unpickling

    check_archive(path)  # torch.export.load() evaluates the archive's expressions: vet them first
    blocked: list[str] = []
    error: Exception | None = None
    try:
        with no_unpickling(blocked):
            ep = torch.export.load(str(path))
    except Exception as e:
        error = e
    if blocked:
        raise WorkbenchError(
            f"{path} holds pickled Python objects ({', '.join(sorted(set(blocked))[:3])}) besides tensors. "
            "Unpickling them can run arbitrary code, so the workbench refuses the file. If you trust it and the "
            "names are tensor classes you use, allow them with torch.serialization.add_safe_globals([...])."
        ) from error
    if error is not None:
        raise WorkbenchError(
            f"{path}: not a loadable torch.export archive ({_first_line(error)}). Re-save it with "
            "torch.export.save()."
        ) from error
    try:
        return _from_exported_program(ep, path, examples, name)
    except WorkbenchError:
        raise
    except Exception as e:  # a hand-edited archive can deserialize yet not form a usable program
        raise WorkbenchError(
            f"{path}: the torch.export archive loads but its program is inconsistent ({_first_line(e)}). "
            "Re-save it with torch.export.save()."
        ) from e


# --------------------------------------------------------------------------------------------- modules


def _from_module(
    module: torch.nn.Module,
    source_format: SourceFormat,
    path: Path | None,
    examples: list[np.ndarray] | None,
    name: str | None,
) -> ModelHandle:
    import torch

    module = module.eval()
    input_names = _forward_arg_names(module)
    inputs: list[TensorSpec] = []
    outputs: list[TensorSpec] = []
    if examples is not None:
        if input_names and len(examples) != len(input_names):
            raise WorkbenchError(
                f"{name or type(module).__name__}: forward() takes {len(input_names)} inputs "
                f"({', '.join(input_names)}) but {len(examples)} example inputs were given."
            )
        names = input_names or [f"input_{i}" for i in range(len(examples))]
        inputs = [TensorSpec(n, (None, *a.shape[1:]), a.dtype.name) for n, a in zip(names, examples)]
        try:
            with torch.no_grad():
                result = module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in examples])
        except Exception as e:
            raise WorkbenchError(
                f"{name or type(module).__name__}: running the model on the example inputs "
                f"{describe_signature(inputs)} failed: {_first_line(e)}. Check the example shapes and dtypes."
            ) from e
        flat = flatten_outputs(result)
        names = list(getattr(module, "output_names", None) or [n for n, _ in flat])
        if len(names) != len(flat):
            names = [n for n, _ in flat]
        outputs = [TensorSpec(n, (None, *t.shape[1:]), _np_dtype_name(t)) for n, (_, t) in zip(names, flat)]
    elif input_names:
        inputs = [TensorSpec(n, None, None) for n in input_names]
    if path is not None:
        fp = file_sha256([path])
    else:
        fp = module_fingerprint(module)
    return ModelHandle(
        framework="torch",
        inputs=inputs,
        outputs=outputs,
        num_params=sum(p.numel() for p in module.parameters()),
        fingerprint=fp,
        source_format=source_format,
        name=name or type(module).__name__,
        module=module,
        path=path,
        example_inputs=examples,
    )


def _from_exported_program(
    ep: Any, path: Path | None, examples: list[np.ndarray] | None, name: str
) -> ModelHandle:
    import torch

    nodes = {n.name: n for n in ep.graph.nodes}
    user_inputs = list(ep.graph_signature.user_inputs)
    inputs = [_spec_from_fake(n, nodes[n].meta.get("val")) for n in user_inputs]
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    out_vals = out_node.args[0] if isinstance(out_node.args[0], (tuple, list)) else [out_node.args[0]]
    user_outputs = list(ep.graph_signature.user_outputs)
    outputs = [
        _spec_from_fake(n, getattr(v, "meta", {}).get("val"))
        for n, v in zip(user_outputs, out_vals[-len(user_outputs):] if user_outputs else [])
    ]
    module = ep.module()
    fp = file_sha256([path]) if path is not None else module_fingerprint(module)
    if examples is None:
        examples = _examples_from_specs(inputs)
    return ModelHandle(
        framework="torch",
        inputs=inputs,
        outputs=outputs,
        num_params=sum(int(t.numel()) for t in ep.state_dict.values() if isinstance(t, torch.Tensor)),
        fingerprint=fp,
        source_format="exported_program",
        name=name,
        module=module,
        path=path,
        example_inputs=examples,
    )


def _spec_from_fake(name: str, val: Any) -> TensorSpec:
    if val is None or not hasattr(val, "shape"):
        return TensorSpec(name, None, None)
    shape = tuple(int(d) if isinstance(d, int) or str(d).isdigit() else None for d in val.shape)
    return TensorSpec(name, shape, _np_dtype_name(val))


def _examples_from_specs(specs: list[TensorSpec]) -> list[np.ndarray] | None:
    """Zeros of a fully static signature (dynamic batch → 2), so a .pt2 converts without user data."""
    out = []
    for s in specs:
        if s.shape is None or s.dtype is None or any(d is None for d in s.shape[1:]):
            return None
        shape = (2 if s.shape[0] is None else s.shape[0], *s.shape[1:]) if s.shape else ()
        out.append(np.zeros(shape, dtype=s.dtype))
    return out


def _forward_arg_names(module: Any) -> list[str]:
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        try:
            return [a.name for a in module.forward.schema.arguments[1:]]
        except (AttributeError, RuntimeError):
            return []
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def flatten_outputs(result: Any) -> list[tuple[str, Any]]:
    """Name the tensors a forward() returned: a tensor, a tuple/list of tensors, or a dict."""
    import torch

    if isinstance(result, torch.Tensor):
        return [("output", result)]
    if isinstance(result, dict):
        return [(str(k), v) for k, v in result.items() if isinstance(v, torch.Tensor)]
    if isinstance(result, (tuple, list)):
        flat = [t for t in result if isinstance(t, torch.Tensor)]
        return [(f"output_{i}", t) for i, t in enumerate(flat)]
    raise WorkbenchError(f"The model returned a {type(result).__name__}; expected tensors.")


# ------------------------------------------------------------------------------------------- helpers


def _as_arrays(example_inputs: Any) -> list[np.ndarray]:
    """Normalise example inputs (array, tensor, or a sequence of them) to a list of numpy arrays."""
    items = example_inputs if isinstance(example_inputs, (list, tuple)) else [example_inputs]
    out = []
    for i, a in enumerate(items):
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        if not isinstance(a, np.ndarray):
            raise WorkbenchError(f"example_inputs[{i}] is a {type(a).__name__}; pass numpy arrays or tensors.")
        out.append(a)
    return out


def _np_dtype_name(t: Any) -> str:
    return str(t.dtype).replace("torch.", "")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def file_sha256(paths: Sequence[Path]) -> str:
    """sha256 over the bytes of one or more files (a model and its external data)."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def module_fingerprint(module: Any) -> str:
    """sha256 over a module's class, structure and every tensor in its state_dict."""
    h = hashlib.sha256()
    cls = type(module)
    h.update(f"{cls.__module__}.{cls.__qualname__}\n{module!r}\n".encode())
    try:
        h.update(inspect.getsource(cls).encode())
    except (OSError, TypeError):
        pass
    for key, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}\n".encode())
        h.update(t.view(-1).view(dtype=_byte_dtype()).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _byte_dtype() -> Any:
    import torch

    return torch.uint8
