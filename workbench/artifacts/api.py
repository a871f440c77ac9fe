"""`export`: a variant leaves the workbench as one file a device runs, with a parity check and a (signed) manifest."""

from __future__ import annotations

import enum
import hashlib
import math
import os
import platform
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from workbench.artifacts.manifest import (
    ENCRYPTION_ALGORITHM,
    SCHEMA,
    check_version,
    encrypt_bytes,
    folder_entry,
    manifest_path,
    release_of,
    sha256_bytes,
    sha256_file,
    sign,
    write_manifest,
)
from workbench.artifacts.parity import DEFAULT_TOLERANCES, Tolerance, check, measure_parity
from workbench.artifacts.targets import LM_TOLERANCES, Target, get_target
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle


@dataclass(frozen=True)
class Artifact:
    """An exported model file and the evidence that came with it.

    Attributes:
        path: the one file a device loads (``.onnx``, ``.tflite``, ``.pt``, ``.pt2``; ``.enc`` when encrypted), or
            the folder of a multi-file artefact (a language model's ONNX Runtime GenAI folder).
        manifest: what was written beside it as ``<file>.manifest.json`` (signed when `sign_with` was given).
        parity: the parity figures (metrics of source and artefact, agreement, max abs error, tolerance).
        manifest_path: the manifest file.
    """

    path: Path
    manifest: dict[str, Any]
    parity: dict[str, Any]
    manifest_path: Path

    @property
    def target(self) -> str:
        return self.manifest["target"]

    @property
    def sha256(self) -> str:
        return self.manifest["artifact"]["sha256"]

    @property
    def size_bytes(self) -> int:
        return self.manifest["artifact"]["size_bytes"]

    @property
    def signed(self) -> bool:
        return "signature" in self.manifest

    @property
    def encrypted(self) -> bool:
        return self.manifest.get("encryption") is not None

    @property
    def version(self) -> int:
        """The release version (1 when the manifest has none: written before versions existed)."""
        return self.manifest.get("version", 1)

    @property
    def replaces(self) -> dict[str, Any] | None:
        """``{"file", "sha256", "version"}`` of the artefact this release updates, or None."""
        return self.manifest.get("replaces")

    def __repr__(self) -> str:
        m = self.parity["metric"]
        flags = "".join([", signed" if self.signed else "", ", encrypted" if self.encrypted else ""])
        return (f"Artifact(path={str(self.path)!r}, target={self.target!r}, version={self.version}, "
                f"size_bytes={self.size_bytes:,}, "
                f"{m}={self.parity['artifact'][m]:.4f} (source {self.parity['source'][m]:.4f}){flags})")


def export(
    handle: ModelHandle | Any,
    target: str,
    out_dir: str | os.PathLike,
    *,
    task: Any = None,
    calibration: Any = None,
    sign_with: Any = None,
    encrypt_with: Any = None,
    device: Any = None,
    tolerance: Tolerance | None = None,
    name: str | None = None,
    limit: int | None = None,
    accuracy_control: Any = True,
    version: int | None = None,
    replaces: Any = None,
) -> Artifact:
    """Export a model or variant to a deployable file, check it in its runtime, and write a manifest.

    Args:
        handle: the model or variant (a `ModelHandle`, or a `Task` whose model is exported).
        target: one of `workbench.artifacts.TARGETS`: ``onnx``, ``onnx-fp16``, ``onnx-int8``,
            ``onnx-int8-dynamic``, ``onnx-int4``, ``tflite``, ``tflite-fp16``, ``tflite-dynamic``,
            ``tflite-int8``, ``tflite-int4``, ``torchscript``, ``pt2``, ``openvino``, ``openvino-int8``,
            ``openvino-int4`` (OpenVINO IR folders: model.xml + model.bin), ``executorch``, ``executorch-int8``.
        out_dir: folder for the artefact and its manifest (created if needed).
        task: the task whose evaluation split checks parity and whose calibration split calibrates static int8.
            Without one, parity runs on the handle's example inputs only (and the manifest says so).
        calibration: calibration inputs (one array per model input) instead of the task's.
        sign_with: an Ed25519 private key (PEM path, bytes or key object; `workbench.keys.generate`) to sign
            the manifest, which covers the artefact's sha256.
        encrypt_with: a 32-byte AES-256 key (bytes or key file; `workbench.keys.generate_secret`): the artefact
            is written AES-GCM encrypted as ``<file>.enc``. Needs `sign_with`: a device decrypts only what
            verifies (`workbench.decrypt`).
        device: the intended device (a profile name such as ``"raspberry-pi-5"``, or a `DeviceProfile`).
        tolerance: parity bounds; default `DEFAULT_TOLERANCES[target precision]`.
        name: the artefact's base name (default: model name, compression labels and target).
        limit: check parity on the first `limit` evaluation samples only.
        accuracy_control: when an int8 target (``onnx-int8``, ``onnx-int8-dynamic``, ``tflite-int8``,
            ``tflite-dynamic``) fails parity, keep its most fragile quantisers float, smallest set first, until
            it passes (`workbench.artifacts.accuracy_control`, after NNCF's ``quantize_with_accuracy_control``);
            the manifest's ``accuracy_control`` says which stayed float, the ranking, every try and the size
            and latency cost. ``True`` (default) uses `AccuracyControl()`; pass an `AccuracyControl` to change
            its budget, or ``False`` to refuse a failing int8 export as it is.
        version: the release version recorded (and signed) in the manifest, an int >= 1; default 1, or one more
            than the version of `replaces`. Devices refuse versions below their minimum (`verify(min_version=)`).
        replaces: the release this one updates (its `Artifact`, `VerifiedArtifact` or path): its sha256 and
            version are signed into the manifest (``replaces``), so ``verify(..., installed=...)`` can check the
            chain. Its version must be below `version`. With `version` or `replaces` given, the default file
            name ends in ``-v<version>``, so a release never overwrites the one it replaces.

    Returns:
        An `Artifact`.

    Raises:
        WorkbenchError: an unknown target, a target that does not apply to this model (the message says why),
            missing calibration, bad keys, a `version` not above the version of `replaces`, or a parity failure
            (with the figures; nothing is written then) that accuracy control could not recover within its budget.

    Example:
        >>> private, public = workbench.keys.generate("keys/")
        >>> art = workbench.export(task.model, "onnx-int8", "out/", task=task, sign_with=private)
        >>> art.path.name, art.parity["passed"], art.size_bytes < 250_000
        ('digits-cnn-onnx-int8.onnx', True, True)
        >>> workbench.verify(art.path, public).sha256 == art.sha256
        True
    """
    from workbench.artifacts import keys
    from workbench.task import Task

    if not isinstance(handle, ModelHandle):
        inner = getattr(handle, "model", None)
        if not isinstance(inner, ModelHandle):
            raise WorkbenchError(f"export() takes a ModelHandle or a Task, got {type(handle).__name__}.")
        task = task if task is not None else handle
        handle = inner
    from workbench.core.lm import is_language_model

    t = get_target(target)
    lm = is_language_model(handle)
    if tolerance is None:
        tolerance = (LM_TOLERANCES if lm else DEFAULT_TOLERANCES)[t.precision]
    elif not isinstance(tolerance, Tolerance):
        raise WorkbenchError(f"tolerance must be a workbench.Tolerance, got {type(tolerance).__name__}.")
    if encrypt_with is not None and sign_with is None:
        raise WorkbenchError(
            "encrypt_with needs sign_with too: workbench.decrypt only decrypts an artefact whose signed manifest "
            "verifies. Make a key pair with workbench.keys.generate(dir)."
        )
    private = keys.load_private(sign_with) if sign_with is not None else None  # fail fast, before slow work
    release = _release(version, replaces)
    secret = keys.load_secret(encrypt_with) if encrypt_with is not None else None
    device_name = _device_name(device)
    calib = _calibration(handle, calibration if calibration is not None else getattr(task, "calibration", None))
    notes: list[str] = []
    if lm and task is None:
        raise WorkbenchError(f"{handle.name} is a language model: export checks parity on held-out text; pass "
                             "task=workbench.Task.from_text(model, texts) (or the zoo task).")
    if (lm or not t.suffix) and secret is not None:  # a folder artefact (no single file suffix)
        what = "a language model" if lm else f"{t.name}"
        raise WorkbenchError(f"{handle.name}: {what} exports as a folder of files, which encrypt_with "
                             "does not cover; sign it (sign_with) and encrypt the transport instead.")
    if task is None:
        if not handle.example_inputs:
            raise WorkbenchError(
                f"{handle.name}: export checks parity on data; pass task=... (or load the model with example_inputs)."
            )
        task = Task.from_model(handle, handle.example_inputs)
        notes.append(f"no task given: parity checked on the model's {len(handle.example_inputs[0])} example inputs only")

    control = _control(accuracy_control)
    built = t.build(handle, calib)
    evaluate = _evaluator(handle, t, task, replay=control is not None and not lm)
    figures, art_handle = evaluate(built.path, limit)
    report = None
    try:
        parity = check(figures, tolerance, what=f"{handle.name} exported to {t.name}", hint=t.hint)
    except WorkbenchError as failure:
        from workbench.artifacts.accuracy_control import restore, supports

        if control is None or lm or not supports(t):
            raise
        built, parity, art_handle, report = restore(handle, t, calib, built, figures, str(failure), evaluate,
                                                     tolerance, limit, control)
        kept = len(report["kept_float"])
        notes.append(f"accuracy control kept {kept} of {report['quantisers']} quantised "
                     f"{report['unit']}{'s' * (report['quantisers'] > 1)} float to pass parity "
                     f"({parity['metric']} {report['before'][parity['metric']]:.4f} -> "
                     f"{report['after'][parity['metric']]:.4f}; manifest 'accuracy_control')")
    storage = t.storage(built.path, art_handle)

    out = Path(out_dir)
    base = _safe_name(name) if name else _default_name(handle, t)
    if not name and (version is not None or replaces is not None):
        base = f"{base}-v{release['version']}"
    if built.path.is_dir():  # a multi-file artefact (an ONNX Runtime GenAI folder): every file in the manifest
        _not_the_replaced(out / base, replaces)
        return _export_folder(handle, t, built, parity, art_handle, storage, out, base, task, notes, device_name,
                              private, release)
    plain_name = f"{base}{t.suffix}"
    file_name = plain_name + (".enc" if secret is not None else "")
    _not_the_replaced(out / file_name, replaces)
    out.mkdir(parents=True, exist_ok=True)
    path, mpath = out / file_name, manifest_path(out / file_name)
    mpath.unlink(missing_ok=True)  # never leave an old manifest beside a new file, even if writing fails midway
    data = built.path.read_bytes()
    blob = encrypt_bytes(data, secret) if secret is not None else data
    from workbench.core.paths import atomic_write

    atomic_write(path, lambda tmp: tmp.write_bytes(blob))
    manifest = {
        "schema": SCHEMA,
        "artifact": {"file": file_name, "sha256": sha256_file(path), "size_bytes": path.stat().st_size},
        "encryption": None if secret is None else {
            "algorithm": ENCRYPTION_ALGORITHM, "plaintext_file": plain_name,
            "plaintext_sha256": sha256_bytes(data), "plaintext_size_bytes": len(data)},
        "format": t.format,
        "target": t.name,
        "runtime": t.runtime,
        "precision": {"target": t.precision, "weights": t.weights, "activations": t.activations},
        "inputs": _signature(art_handle.inputs),
        "outputs": _signature(art_handle.outputs),
        "storage": storage,
        "source": {"name": handle.name, "framework": handle.framework, "fingerprint": handle.fingerprint,
                   "params": int(handle.num_params), "task": task.name},
        "lineage": [c.to_dict() for c in handle.lineage],
        "realized": built.realized,
        "recipe": built.recipe,
        "notes": [*built.notes, *notes],
        "metrics": parity["artifact"],
        "parity": parity,
        "libraries": _libraries(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device_name,
        **release,
    }
    if report is not None:
        manifest["accuracy_control"] = report
    return _write(manifest, private, path, mpath)


def _release(version: Any, replaces: Any) -> dict[str, Any]:
    """The manifest's ``version`` and ``replaces`` fields, checked before any slow work."""
    previous = release_of(replaces, "replaced") if replaces is not None else None
    if version is None:
        version = previous["version"] + 1 if previous else 1
    check_version(version)
    if previous is not None and previous["version"] >= version:
        raise WorkbenchError(
            f"version {version} does not supersede {previous['file']} (version {previous['version']}): versions are "
            f"monotonic, and devices refuse an update that is not newer. Pass version={previous['version'] + 1} "
            "(or leave version out: it defaults to one more than the replaced release's)."
        )
    return {"version": version, "replaces": previous}


def _not_the_replaced(path: Path, replaces: Any) -> None:
    if replaces is None:
        return
    old = Path(getattr(replaces, "path", replaces))
    old = old.with_name(old.name[: -len(".manifest.json")]) if old.name.endswith(".manifest.json") else old
    if path.resolve() == old.resolve():
        raise WorkbenchError(f"{path}: this release would overwrite the artefact it replaces; pass another name= or "
                             "out_dir (a device keeps the installed file until the update verifies).")


def _write(manifest: dict[str, Any], private: Any, path: Path, mpath: Path) -> Artifact:
    manifest = _jsonable(manifest)
    if private is not None:
        manifest = sign(manifest, private)
    write_manifest(mpath, manifest)
    return Artifact(path, manifest, manifest["parity"], mpath)


def _export_folder(handle: ModelHandle, t: Target, built: Any, parity: dict[str, Any], art_handle: ModelHandle,
                   storage: Any, out: Path, base: str, task: Any, notes: list[str], device_name: str | None,
                   private: Any, release: dict[str, Any]) -> Artifact:
    """Copy a built folder to ``out/<base>`` and sign a manifest that lists every file (`folder_entry`)."""
    import shutil

    from workbench.formats.lm_folder import write_folder

    out.mkdir(parents=True, exist_ok=True)
    path, mpath = out / base, manifest_path(out / base)
    mpath.unlink(missing_ok=True)
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    write_folder(path, lambda tmp: shutil.copytree(built.path, tmp, dirs_exist_ok=True))
    manifest = {
        "schema": SCHEMA, "artifact": {"file": base, **folder_entry(path)}, "encryption": None,
        "format": t.format, "target": t.name, "runtime": t.runtime,
        "precision": {"target": t.precision, "weights": t.weights, "activations": t.activations},
        "inputs": _signature(art_handle.inputs), "outputs": _signature(art_handle.outputs), "storage": storage,
        "source": {"name": handle.name, "framework": handle.framework, "fingerprint": handle.fingerprint,
                   "params": int(handle.num_params), "task": task.name},
        "lineage": [c.to_dict() for c in handle.lineage], "realized": built.realized, "recipe": built.recipe,
        "notes": [*built.notes, *notes], "metrics": parity["artifact"], "parity": parity,
        "libraries": _libraries(), "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device_name, **release,
    }
    return _write(manifest, private, path, mpath)


def _evaluator(handle: ModelHandle, t: Target, task: Any, *, replay: bool) -> Any:
    """``evaluate(path, limit) -> (parity figures, artefact handle)`` against the source in its own runtime; with
    `replay`, the source's outputs are computed once (`Replay`) for the many candidates
    accuracy control may check (not for language models: their outputs are large)."""
    from workbench.compression.base import base_name
    from workbench.formats.loader import load
    from workbench.runtimes import NATIVE, runtime

    source = runtime(handle, NATIVE[handle.framework], threads=1)
    source = Replay(source) if replay else source

    def evaluate(path: Path, limit: int | None) -> tuple[dict[str, Any], ModelHandle]:
        art_handle = load(path, name=f"{base_name(handle)}[{t.name}]", example_inputs=handle.example_inputs)
        artifact = runtime(art_handle, t.runtime, threads=1)
        return measure_parity(task, source, artifact, limit=limit), art_handle

    return evaluate


class Replay:
    """A runner that calls `runner` once per distinct input and replays its outputs afterwards.

    Accuracy control checks many candidate files against one source; the source's outputs on the evaluation
    split do not change, and recomputing them (38 s for MiniLM in PyTorch) would dominate every try. Inputs are
    keyed by their bytes, so a stateful task (the VAD feeds back its state) replays exactly.
    """

    def __init__(self, runner: Any) -> None:
        self.runner, self.runtime = runner, runner.runtime
        self._seen: dict[str, list[np.ndarray]] = {}

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        h = hashlib.sha1()
        for a in arrays:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
        key = h.hexdigest()
        if key not in self._seen:
            self._seen[key] = [np.array(o, copy=True) for o in self.runner(*arrays)]
        return self._seen[key]

    def __getattr__(self, name: str) -> Any:  # anything else a task reads from its runner
        return getattr(self.runner, name)


def _control(option: Any) -> Any:
    from workbench.artifacts.accuracy_control import AccuracyControl

    if option is True:
        return AccuracyControl()
    if option is False or option is None:
        return None
    if isinstance(option, AccuracyControl):
        return option
    raise WorkbenchError(f"accuracy_control must be True, False or a workbench.AccuracyControl, got {option!r}.")


def _calibration(handle: ModelHandle, calibration: Any) -> list[np.ndarray] | None:
    if calibration is None:
        return None
    arrays = list(calibration) if isinstance(calibration, (list, tuple)) else [calibration]
    arrays = [a.detach().cpu().numpy() if hasattr(a, "detach") else a for a in arrays]
    if not arrays or not all(isinstance(a, np.ndarray) and a.ndim >= 1 for a in arrays):
        raise WorkbenchError("calibration must be a list of numpy arrays, one per model input, batch first.")
    if handle.inputs and len(arrays) != len(handle.inputs):
        raise WorkbenchError(
            f"{handle.name} takes {len(handle.inputs)} inputs {handle.signature}; calibration has {len(arrays)} arrays."
        )
    if len({len(a) for a in arrays}) != 1 or not len(arrays[0]):
        raise WorkbenchError("calibration arrays must share one non-empty batch dimension.")
    return arrays


def _device_name(device: Any) -> str | None:
    if device is None:
        return None
    name = getattr(device, "name", device)
    if not isinstance(name, str) or not name.strip():
        raise WorkbenchError(f"device must be a device profile or its name, got {device!r}.")
    return name


def _safe_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", str(name)).strip("._")
    if not safe:
        raise WorkbenchError(f"name {name!r} has no usable characters; use letters, digits, '.', '_', '+', '-'.")
    return safe[:150]


def _default_name(handle: ModelHandle, t: Target) -> str:
    from workbench.compression.base import base_name

    labels = [c.label for c in handle.lineage]
    return _safe_name("-".join([base_name(handle), *(["+".join(labels)] if labels else []), t.name]))


def _signature(specs: Any) -> list[dict[str, Any]]:
    return [{"name": s.name, "shape": None if s.shape is None else list(s.shape), "dtype": s.dtype} for s in specs]


def _libraries() -> dict[str, str]:
    from importlib.metadata import version

    from workbench.core.version import VERSION
    from workbench.measurement.record import library_versions

    libs = {"workbench": VERSION, "python": platform.python_version(), "numpy": np.__version__,
            **library_versions()}
    try:
        libs["cryptography"] = version("cryptography")
    except Exception:  # noqa: BLE001 - not installed: not listed
        pass
    return libs


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, tuples to lists, enums to values, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in (sorted(obj) if isinstance(obj, (set, frozenset)) else obj)]
    if isinstance(obj, enum.Enum):
        return _jsonable(obj.value)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)
