"""`load()`: a model from memory or a file, recognised by its content and validated eagerly.

`load()` recognises a file by its content (not just its name), validates it eagerly and never executes code
from it: TorchScript and ExportedProgram archives go through PyTorch's own loaders, any pickle through
`torch.load(weights_only=True)`, and TFLite flatbuffers are first opened in a child process so that a
corrupt file cannot take the user's kernel down with it.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, SourceFormat, as_arrays
from workbench.formats.module import from_module
from workbench.formats.pt2_file import from_exported_program, load_exported_program
from workbench.formats.torchscript_file import load_torchscript

SUFFIXES: dict[str, SourceFormat] = {
    ".pt": "torchscript",
    ".pth": "torchscript",
    ".pt2": "exported_program",
    ".onnx": "onnx",
    ".tflite": "tflite",
    ".xml": "openvino_ir",
    ".pte": "pte",
}


_FORMAT_NAMES = {
    "torchscript": "a TorchScript archive",
    "exported_program": "a torch.export ExportedProgram archive",
    "onnx": "an ONNX model",
    "tflite": "a TFLite flatbuffer",
    "pickle": "a Python pickle (torch.save)",
    "openvino_ir": "an OpenVINO IR (model.xml beside model.bin)",
    "pte": "an ExecuTorch program (.pte)",
}


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
            (``.tflite``) file; a language model as a ``.gguf`` file, a Hugging Face folder (config.json +
            safetensors + tokenizer.json) or an ONNX Runtime GenAI folder.
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
    examples = as_arrays(example_inputs) if example_inputs is not None else None
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        torch = None  # type: ignore[assignment]
    if torch is not None and isinstance(path_or_module, torch.export.ExportedProgram):
        return from_exported_program(path_or_module, None, examples, name or "exported_program")
    if torch is not None and isinstance(path_or_module, torch.nn.Module):
        src: SourceFormat = "torchscript" if isinstance(path_or_module, torch.jit.ScriptModule) else "module"
        return from_module(path_or_module, src, None, examples, name)
    if isinstance(path_or_module, ModelHandle):
        return path_or_module
    if not isinstance(path_or_module, (str, os.PathLike)):
        raise WorkbenchError(
            f"workbench.load() takes a file path or a torch.nn.Module, got {type(path_or_module).__name__}."
        )
    return _load_file(Path(path_or_module), examples, name)


def _load_file(path: Path, examples: list[np.ndarray] | None, name: str | None) -> ModelHandle:
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except (OSError, ValueError) as e:  # e.g. "File name too long"
        reason = getattr(e, "strerror", None) or str(e)
        raise WorkbenchError(f"{path}: cannot access this path ({reason}). Check the path.") from e
    if not exists:
        raise WorkbenchError(f"{path}: no such file. Check the path (relative paths start at {Path.cwd()}).")
    if is_dir:
        return load_directory(path, name)
    suffix = path.suffix.lower()
    if suffix == ".gguf":
        from workbench.formats.lm_folder import load_lm

        return load_lm(path, name)
    if suffix in (".bin", ".ckpt"):
        raise WorkbenchError(f"{path}: a {suffix} checkpoint is a Python pickle; loading one runs code from the file, "
                             "so the workbench refuses it. Save the weights as safetensors (a Hugging Face folder) "
                             "or export TorchScript/ONNX where you trust the file.")
    if suffix not in SUFFIXES:
        raise WorkbenchError(
            f"{path}: unsupported extension {suffix or '(none)'!r}. Supported: TorchScript .pt/.pth, "
            f"ExportedProgram .pt2, ONNX .onnx, TFLite .tflite, OpenVINO IR .xml (+ .bin), ExecuTorch .pte."
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
        return load_torchscript(path, examples, name)
    if expected == "exported_program":
        return load_exported_program(path, examples, name)
    if expected == "onnx":
        from workbench.formats.onnx_file import load_onnx

        return load_onnx(path, examples, name)
    if expected == "openvino_ir":
        from workbench.formats.openvino_file import load_openvino_ir

        if path.name == "openvino_model.xml" and (path.parent / "config.json").is_file():  # a language-model folder
            return load_directory(path.parent, name)

        return load_openvino_ir(path, examples, name)
    if expected == "pte":
        from workbench.formats.executorch_lm import is_executorch_lm, load_executorch_lm
        from workbench.formats.pte_file import load_pte

        if is_executorch_lm(path):  # a language model beside its tokenizer folder
            return load_executorch_lm(path, name)

        return load_pte(path, examples, name)
    from workbench.formats.litert_lm import is_litert_lm, load_litert_lm

    if is_litert_lm(path):  # a language model with prefill/decode signatures (and its tokenizer folder)
        return load_litert_lm(path, name)
    from workbench.formats.tflite_file import load_tflite

    return load_tflite(path, examples, name)


def load_directory(path: Path, name: str | None) -> ModelHandle:
    """A folder: a Hugging Face language model (config.json), an ONNX Runtime GenAI folder (genai_config.json), an
    exported LiteRT or ExecuTorch language model (model.tflite / model.pte beside its tokenizer folder), an OpenVINO
    language model (openvino_model.xml + config.json) or an OpenVINO IR (model.xml + model.bin)."""
    from workbench.formats.litert_lm import is_litert_lm, load_litert_lm

    if is_litert_lm(path):
        return load_litert_lm(path, name)
    from workbench.formats.executorch_lm import is_executorch_lm, load_executorch_lm

    if is_executorch_lm(path):  # an exported ExecuTorch language model (model.pte beside its tokenizer folder)
        return load_executorch_lm(path, name)
    if (path / "genai_config.json").is_file():
        from workbench.formats.genai_folder import load_genai_folder

        return load_genai_folder(path, name)
    if (path / "openvino_model.xml").is_file() and (path / "config.json").is_file():  # an OpenVINO LM folder
        from workbench.formats.openvino_lm import load_openvino_lm

        return load_openvino_lm(path, name)
    if (path / "config.json").is_file():
        from workbench.formats.lm_folder import load_lm

        return load_lm(path, name)
    from workbench.formats.openvino_file import find_ir

    ir = find_ir(path)  # an OpenVINO IR folder (model.xml + model.bin, as export writes it); after config.json, so
    if ir is not None:  # a language-model folder that holds IRs too is read as that
        from workbench.formats.openvino_file import load_openvino_ir

        return load_openvino_ir(ir, None, name or path.name)
    raise WorkbenchError(
        f"{path} is a directory but not a model folder (no config.json or genai_config.json). Pass the model file "
        f"inside it ({', '.join(sorted(SUFFIXES))}, .gguf) or a Hugging Face / ONNX Runtime GenAI model folder."
    )


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
                f"{path}: looks like a zip archive but is corrupt ({first_line(e)}). Re-save the model."
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
    except Exception:  # noqa: BLE001 - any parse failure just means "not ONNX"
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
            f"(Loader said: {first_line(e)[:200]})"
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
