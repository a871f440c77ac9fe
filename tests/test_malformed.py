"""Malformed, hostile and mislabelled files, and wrong runner inputs: always a `WorkbenchError` that names the file
and says what is wrong; never another exception, never code from the file, never a crash.

A segfault would take pytest down with it, so besides the in-process tests the whole corpus (plus mutated copies
of every valid format) is also swept in a child process whose exit status is checked.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_models import make_tiny_cnn

import workbench
from workbench import ModelHandle, WorkbenchError

EXTENSIONS = [".onnx", ".tflite", ".pt", ".pt2", ".pth"]


def expect_refused(path: Path, *fragments: str, **load_kwargs) -> str:
    """`workbench.load(path)` raises a WorkbenchError naming the file and containing every fragment."""
    with pytest.raises(WorkbenchError) as info:
        workbench.load(path, **load_kwargs)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert Path(path).name in message, message
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in: {message}"
    assert len(message) > len(str(path)) + 30, f"message does not say what is wrong: {message}"
    return message


# ------------------------------------------------------------------------------------------ payloads


class SystemPayload:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class OpenPayload:
    """Unpickling this creates `marker` with builtins.open (no shell needed)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class MarkerModule(torch.nn.Module):
    """An nn.Module that creates a marker file when unpickled (torch.save of a full model)."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)
        self.marker = str(marker)

    def __setstate__(self, state):
        Path(state["marker"]).touch()
        super().__setstate__(state)


def _torch_save_bytes(obj, **kwargs) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


def _rewrite_zip(src: Path, dst: Path, edit: Callable[[str, bytes], bytes]) -> Path:
    """Copy a zip archive member by member, passing each member's bytes through `edit`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info, edit(info.filename, zin.read(info)))
    return dst


def _edit_model_json(edit: Callable[[dict], None]) -> Callable[[str, bytes], bytes]:
    def apply(name: str, data: bytes) -> bytes:
        if "/models/" in name and name.endswith(".json"):
            doc = json.loads(data)
            edit(doc)
            return json.dumps(doc).encode()
        return data

    return apply


def _first_expr(doc) -> dict:
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("expr_str"), str):
                return node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError("no symbolic expression in the archive (was the batch dimension exported as dynamic?)")


# ---------------------------------------------------------------------------------------------- corpus
# Each case builds one file (or path) in `folder` from the valid model files and says which words the error
# message must contain. The same builders feed the in-process tests and the crash-safety sweep in a child.

Maker = Callable[[Path, dict, Path], Path]
CASES: dict[str, tuple[Maker, tuple[str, ...]]] = {}
HOSTILE: set[str] = set()  # cases whose payload would create the marker file if the file were unpickled / run


def case(name: str, *fragments: str, hostile: bool = False):
    def register(maker: Maker) -> Maker:
        CASES[name] = (maker, fragments)
        if hostile:
            HOSTILE.add(name)
        return maker

    return register


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


case("missing", "no such file")(lambda d, f, m: d / "does-not-exist.onnx")
case("directory", "directory")(lambda d, f, m: (d / "a-folder.onnx").mkdir() or d / "a-folder.onnx")
case("unsupported-txt", "unsupported extension")(lambda d, f, m: _write(d, "model.txt", b"not a model"))
case("unsupported-h5", "unsupported extension")(lambda d, f, m: _write(d, "model.h5", b"\x89HDF\r\n\x1a\n" + bytes(64)))
case("no-extension", "unsupported extension")(lambda d, f, m: _write(d, "model", f["onnx"].read_bytes()))

for _ext in EXTENSIONS:
    case(f"empty{_ext}", "empty")(lambda d, f, m, e=_ext: _write(d, f"empty{e}", b""))
    for _seed, _size in ((0, 1), (1, 100), (2, 5000)):
        case(f"random{_size}{_ext}")(
            lambda d, f, m, e=_ext, s=_seed, n=_size: _write(
                d, f"random-{s}-{n}{e}", np.random.default_rng(s).bytes(n)
            )
        )

_TRUNCATE_FORMATS = {"torchscript": ".pt", "pt2": ".pt2", "onnx": ".onnx", "tflite": ".tflite"}


def _truncated(data: bytes, cut: int | float) -> bytes:
    """The first `cut` bytes (an int), a fraction of the file (a float), or all but the last -cut bytes."""
    return data[:int(len(data) * cut)] if isinstance(cut, float) else data[:cut]


for _fmt, _ext in _TRUNCATE_FORMATS.items():
    for _cut in (1, 16, 0.5, -1):
        case(f"truncated-{_fmt}-{_cut}")(
            lambda d, f, m, fmt=_fmt, e=_ext, c=_cut: _write(
                d, f"truncated-{fmt}-{c}{e}", _truncated(f[fmt].read_bytes(), c)
            )
        )

_WRONG_EXTENSION = {
    "onnx-as-tflite": ("onnx", ".tflite", ("ONNX", "rename")),
    "onnx-as-pt": ("onnx", ".pt", ("ONNX",)),
    "tflite-as-onnx": ("tflite", ".onnx", ("TFLite", ".tflite")),
    "tflite-as-pt": ("tflite", ".pt", ("TFLite",)),
    "torchscript-as-onnx": ("torchscript", ".onnx", ("TorchScript", ".pt")),
    "torchscript-as-pt2": ("torchscript", ".pt2", ("TorchScript",)),
    "pt2-as-pt": ("pt2", ".pt", ("ExportedProgram", ".pt2")),
    "pt2-as-tflite": ("pt2", ".tflite", ("ExportedProgram",)),
}
for _name, (_fmt, _ext, _fragments) in _WRONG_EXTENSION.items():
    case(f"wrong-extension-{_name}", *_fragments)(
        lambda d, f, m, n=_name, fmt=_fmt, e=_ext: _write(d, f"{n}{e}", f[fmt].read_bytes())
    )


def _external_copy(folder: Path, files: dict, name: str) -> tuple[Path, Path]:
    sub = folder / name
    sub.mkdir()
    src = files["onnx_external"]
    shutil.copyfile(src, sub / src.name)
    shutil.copyfile(src.parent / "x.onnx.data", sub / "x.onnx.data")
    return sub / src.name, sub / "x.onnx.data"


@case("onnx-external-data-deleted", "x.onnx.data", "missing")
def _(d, f, m):
    model, data = _external_copy(d, f, "deleted")
    data.unlink()
    return model


@case("onnx-external-data-truncated")
def _(d, f, m):
    model, data = _external_copy(d, f, "truncated")
    data.write_bytes(data.read_bytes()[:100])
    return model


@case("onnx-initializer-removed", "conv.weight", "initialis")
def _(d, f, m):
    import onnx

    proto = onnx.load(str(f["onnx"]))
    keep = [i for i in proto.graph.initializer if i.name != "conv.weight"]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(keep)
    path = d / "no-conv-weight.onnx"
    onnx.save(proto, str(path))
    return path


@case("onnx-graph-only-header")
def _(d, f, m):
    import onnx

    return _write(d, "header-only.onnx", onnx.ModelProto(ir_version=8).SerializeToString())


def _inverted_window(data: bytes, start: int, width: int) -> bytes:
    b = bytearray(data)
    for i in range(start, min(len(b), start + width)):
        b[i] ^= 0xFF
    return bytes(b)


for _frac in (0.25, 0.5, 0.75):
    # 64 inverted bytes in the middle of the flatbuffer break its tables or offsets.
    case(f"tflite-flipped-{_frac}", "TFLite")(
        lambda d, f, m, fr=_frac: _write(
            d, f"flipped-{fr}.tflite",
            _inverted_window(data := f["tflite"].read_bytes(), int(len(data) * fr), 64),
        )
    )
case("tflite-root-offset", "TFLite")(
    lambda d, f, m: _write(d, "bad-root.tflite", b"\xff\xff\xff\x7f" + f["tflite"].read_bytes()[4:])
)
case("tflite-no-identifier", "TFL3")(
    lambda d, f, m: _write(d, "no-identifier.tflite", (b := f["tflite"].read_bytes())[:4] + b"XXXX" + b[8:])
)

case("state-dict", "state_dict", "load_state_dict")(
    lambda d, f, m: _write(d, "weights.pt", _torch_save_bytes(make_tiny_cnn().state_dict()))
)
case("state-dict-pth", "state_dict")(
    lambda d, f, m: _write(d, "weights.pth", _torch_save_bytes(make_tiny_cnn().state_dict()))
)
case("full-module-pickle", "pickle", "refuses", hostile=True)(
    lambda d, f, m: _write(d, "full-model.pt", _torch_save_bytes(MarkerModule(m)))
)
case("full-module-pickle-legacy", "pickle", hostile=True)(
    lambda d, f, m: _write(
        d, "full-model-legacy.pt", _torch_save_bytes(MarkerModule(m), _use_new_zipfile_serialization=False)
    )
)
for _proto in (0, 2, 4):
    for _ext in (".pt", ".pth"):
        case(f"pickle-system-p{_proto}{_ext}", hostile=True)(
            lambda d, f, m, p=_proto, e=_ext: _write(d, f"system-p{p}{e}", pickle.dumps(SystemPayload(m), protocol=p))
        )
case("pickle-open.pt", "pickle", hostile=True)(
    lambda d, f, m: _write(d, "open.pt", pickle.dumps(OpenPayload(m), protocol=2))
)
for _ext in (".pt", ".pth", ".pt2"):
    case(f"torch-save-zip-payload{_ext}", "pickle", hostile=True)(
        lambda d, f, m, e=_ext: _write(
            d, f"zip-payload{e}", _torch_save_bytes({"weight": torch.zeros(3), "extra": SystemPayload(m)})
        )
    )
case("torch-save-legacy-payload", "pickle", hostile=True)(
    lambda d, f, m: _write(
        d, "legacy-payload.pt",
        _torch_save_bytes({"extra": OpenPayload(m)}, _use_new_zipfile_serialization=False),
    )
)
case("pickle-as-onnx", "pickle", hostile=True)(
    lambda d, f, m: _write(d, "pickled.onnx", pickle.dumps(SystemPayload(m), protocol=2))
)
case("pickle-as-tflite", hostile=True)(
    lambda d, f, m: _write(d, "pickled.tflite", pickle.dumps(SystemPayload(m), protocol=2))
)
case("torchscript-payload-data-pkl", "TorchScript", hostile=True)(
    lambda d, f, m: _rewrite_zip(
        f["torchscript"], d / "ts-payload.pt",
        lambda n, b: pickle.dumps(SystemPayload(m), protocol=2) if n.endswith("/data.pkl") else b,
    )
)
# torch.export.load() itself is not safe on hostile files: it falls back to torch.load(weights_only=False) for
# sample inputs and pickled weights, eval()s shape expressions (sympy.sympify) and exec()s guard code.
case("pt2-payload-sample-inputs", "pickle", hostile=True)(
    lambda d, f, m: _rewrite_zip(
        f["pt2"], d / "sample-inputs-payload.pt2",
        lambda n, b: _torch_save_bytes(((SystemPayload(m),), {})) if n.endswith("sample_inputs/model.pt") else b,
    )
)


@case("pt2-payload-pickled-weight", "pickle", hostile=True)
def _(d, f, m):
    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("model_weights_config.json"):
            doc = json.loads(data)
            first = next(iter(doc["config"].values()))
            first["use_pickle"] = True
            edit.target = first["path_name"]
            return json.dumps(doc).encode()
        return data

    tmp = _rewrite_zip(f["pt2"], d / "weights-config.tmp", edit)
    out = _rewrite_zip(
        tmp, d / "weight-payload.pt2",
        lambda n, b: _torch_save_bytes(OpenPayload(m)) if n.endswith("/weights/" + edit.target) else b,
    )
    tmp.unlink()
    return out


@case("pt2-payload-shape-expression", "expr_str", "refuses", hostile=True)
def _(d, f, m):
    def edit(doc):
        node = _first_expr(doc)
        node["expr_str"] = f"(__import__('os').system(\"touch '{m}'\") or {node['expr_str']})"

    return _rewrite_zip(f["pt2"], d / "expr-payload.pt2", _edit_model_json(edit))


@case("pt2-payload-guard", "guards_code", "refuses", hostile=True)
def _(d, f, m):
    def edit(doc):
        doc["guards_code"] = [f"__import__('os').system(\"touch '{m}'\") == 0"]

    return _rewrite_zip(f["pt2"], d / "guard-payload.pt2", _edit_model_json(edit))


@case("pt2-payload-guard-builtin", "guards_code", hostile=True)
def _(d, f, m):
    def edit(doc):
        doc["guards_code"] = [f"open('{m}', 'w') is not None"]

    return _rewrite_zip(f["pt2"], d / "guard-open.pt2", _edit_model_json(edit))


# ------------------------------------------------------------------------------------ in-process tests


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "PWNED"
    assert not path.exists()
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case_is_refused(name, tmp_path, model_files, marker):
    maker, fragments = CASES[name]
    folder = tmp_path / "corpus"
    folder.mkdir()
    path = maker(folder, model_files, marker)
    expect_refused(path, *fragments)
    assert not marker.exists(), f"{name}: loading the file ran code from it"


@pytest.mark.parametrize("name", ["pickle-open.pt", "pickle-system-p2.pt"])
def test_payloads_do_run_when_unpickled(tmp_path, model_files, marker, name):
    """Sanity check of the corpus: plain unpickling (what torch.load(weights_only=False) does) runs the payload,
    so the marker checks above would notice if the workbench ever unpickled one."""
    path = CASES[name][0](tmp_path, model_files, marker)
    with open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_valid_files_still_load(model_files):
    # The safety checks on .pt2 archives must not refuse what torch.export.save writes.
    for fmt, path in model_files.items():
        assert isinstance(workbench.load(path, example_inputs=None), ModelHandle), fmt


def test_pt2_with_symbolic_expressions_and_guards_loads(tmp_path):
    """A real archive with derived dimensions and guards passes the expression checks and runs."""

    class Reshape(torch.nn.Module):
        def forward(self, x):
            if x.shape[1] > 3:
                return x.reshape(x.shape[0] * x.shape[1] // 2, -1).sqrt() * x.shape[0]
            return x

    ep = torch.export.export(Reshape(), (torch.rand(4, 6),), dynamic_shapes=({0: torch.export.Dim.AUTO,
                                                                              1: torch.export.Dim.AUTO},))
    path = tmp_path / "symbolic.pt2"
    torch.export.save(ep, str(path))
    h = workbench.load(path)
    x = np.random.default_rng(0).random((4, 6), dtype=np.float32)
    (out,) = workbench.runtime(h, "torch")(x)
    np.testing.assert_allclose(out, ep.module()(torch.from_numpy(x)).numpy(), rtol=1e-6)


def test_load_rejects_non_paths():
    with pytest.raises(WorkbenchError, match="file path or a torch.nn.Module"):
        workbench.load(12345)


@pytest.mark.parametrize("name", ["x" * 300 + ".onnx", "nul\0byte.onnx"], ids=["name-too-long", "nul-byte"])
def test_unusable_paths(tmp_path, name):
    expect_refused(tmp_path / name)


# ------------------------------------------------------------------------------------------- runners


@pytest.fixture(scope="module")
def runners(tiny_handle, model_files):
    return {
        "torch": workbench.runtime(tiny_handle, "torch"),
        "onnxruntime": workbench.runtime(workbench.load(model_files["onnx"]), "onnxruntime"),
        "litert": workbench.runtime(workbench.load(model_files["tflite"]), "litert"),
    }


RUNNERS = ["torch", "onnxruntime", "litert"]


def _runner_error(run, *arrays) -> str:
    with pytest.raises(WorkbenchError) as info:
        run(*arrays)
    return str(info.value)


@pytest.mark.parametrize("rt", RUNNERS)
def test_runner_wrong_dtype(runners, tiny_inputs, rt):
    msg = _runner_error(runners[rt], tiny_inputs.astype(np.float64))
    assert "float64" in msg and "float32" in msg and "1, 8, 8]" in msg


@pytest.mark.parametrize("rt", RUNNERS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (2, 1, 1, 8, 8), (8,)], ids=["rank3", "rank5", "rank1"])
def test_runner_wrong_rank(runners, rt, shape):
    msg = _runner_error(runners[rt], np.zeros(shape, np.float32))
    assert str(shape) in msg and "float32[" in msg and "1, 8, 8]" in msg


@pytest.mark.parametrize("rt", RUNNERS)
@pytest.mark.parametrize("shape", [(2, 1, 8, 9), (2, 3, 8, 8), (2, 1, 32, 32)])
def test_runner_wrong_static_dim(runners, rt, shape):
    msg = _runner_error(runners[rt], np.zeros(shape, np.float32))
    assert str(shape) in msg and "float32[" in msg and "1, 8, 8]" in msg


@pytest.mark.parametrize("rt", RUNNERS)
def test_runner_wrong_number_of_inputs(runners, tiny_inputs, rt):
    assert "takes 1 input" in _runner_error(runners[rt])
    msg = _runner_error(runners[rt], tiny_inputs, tiny_inputs)
    assert "takes 1 input" in msg and "got 2" in msg and "float32[" in msg


@pytest.mark.parametrize("rt", RUNNERS)
def test_runner_not_an_array(runners, rt):
    assert "numpy" in _runner_error(runners[rt], "an image")


@pytest.mark.parametrize("rt", RUNNERS)
def test_runner_accepts_other_batch_sizes(runners, rt, tiny_model):
    x = np.random.default_rng(3).standard_normal((3, 1, 8, 8)).astype(np.float32)
    (out,) = runners[rt](x)
    with torch.no_grad():
        expected = tiny_model(torch.from_numpy(x)).numpy()
    assert out.shape == (3, 3) and np.max(np.abs(out - expected)) < 1e-4


@pytest.mark.parametrize("rt", RUNNERS)
def test_runner_empty_batch(runners, rt):
    (out,) = runners[rt](np.zeros((0, 1, 8, 8), np.float32))
    assert out.shape == (0, 3)


def test_runner_without_known_shapes_wraps_model_errors(tiny_model):
    # Loaded without example inputs, the signature is unknown: the model's own error comes back as a
    # WorkbenchError, not a torch RuntimeError.
    run = workbench.runtime(workbench.load(tiny_model), "torch")
    with pytest.raises(WorkbenchError, match="failed in torch"):
        run(np.zeros((2, 3, 8, 8), np.float32))


# ------------------------------------------------------------------------------------------ hypothesis

_MAGIC = [b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x04\x95", b"\x1c\x00\x00\x00TFL3", b"\x08\x08\x12\x07pytorch"]


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _load_or_refuse(path: Path, run: bool = False) -> None:
    """Loading either works or raises WorkbenchError naming the file; so does running what loaded."""
    try:
        h = workbench.load(path)
    except WorkbenchError as e:
        assert path.name in str(e), str(e)
        return
    assert isinstance(h, ModelHandle)
    if run and h.inputs and all(s.shape is not None and s.dtype for s in h.inputs):
        arrays = [np.zeros([1 if d is None else d for d in s.shape], s.dtype) for s in h.inputs]
        native = {"torch": "torch", "onnx": "onnxruntime", "tflite": "litert"}[h.framework]
        try:
            workbench.runtime(h, native)(*arrays)
        except WorkbenchError:
            pass


_counter = iter(range(10**9))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(magic=st.sampled_from(_MAGIC), body=st.binary(max_size=2048), ext=st.sampled_from(EXTENSIONS))
def test_random_bytes_never_escape(fuzz_dir, magic, body, ext):
    path = fuzz_dir / f"random-{next(_counter)}{ext}"
    path.write_bytes(magic + body)
    _load_or_refuse(path)


_MUTATION = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
    st.integers(min_value=0, max_value=2**31),
    st.binary(min_size=1, max_size=8),
)


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, pos, chunk in ops:
        if not b:
            break
        i = pos % len(b)
        if op == "flip":
            b[i] ^= 1 << (chunk[0] % 8)
        elif op == "set":
            b[i:i + len(chunk)] = chunk
        elif op == "insert":
            b[i:i] = chunk
        elif op == "delete":
            del b[i:i + len(chunk)]
        else:
            del b[i:]
    return bytes(b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["onnx", "tflite"]), ops=st.lists(_MUTATION, min_size=1, max_size=4))
def test_mutated_models_never_escape(fuzz_dir, model_files, fmt, ops):
    src = model_files[fmt]
    path = fuzz_dir / f"mutant-{next(_counter)}{src.suffix}"
    path.write_bytes(_mutate(src.read_bytes(), ops))
    _load_or_refuse(path, run=True)


# --------------------------------------------------------------------------------- crash-safety sweep

_SWEEP = r"""
import json, sys, traceback
import numpy as np
import workbench
from workbench import WorkbenchError

NATIVE = {"torch": "torch", "onnx": "onnxruntime", "tflite": "litert"}
results, failures = {}, []
for path in json.load(open(sys.argv[1])):
    print("loading", path, flush=True)
    try:
        h = workbench.load(path)
    except WorkbenchError as e:
        results[path] = ["refused", str(e)]
        continue
    except BaseException as e:
        failures.append(f"{path}: load raised {type(e).__name__}: {e}")
        continue
    outcome = "loaded"
    if h.inputs and all(s.shape is not None and s.dtype for s in h.inputs):
        arrays = [np.zeros([2 if d is None else d for d in s.shape], s.dtype) for s in h.inputs]
        try:
            workbench.runtime(h, NATIVE[h.framework])(*arrays)
            outcome = "ran"
        except WorkbenchError:
            outcome = "loaded, run refused"
        except BaseException as e:
            failures.append(f"{path}: run raised {type(e).__name__}: {e}")
    results[path] = [outcome, ""]
json.dump({"results": results, "failures": failures}, open(sys.argv[2], "w"))
sys.exit(1 if failures else 0)
"""


def _mutants(files: dict, folder: Path, per_format: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    out = []
    for fmt in ("onnx", "tflite", "torchscript", "pt2"):
        src = files[fmt].read_bytes()
        for k in range(per_format):
            b = bytearray(src)
            for _ in range(int(rng.integers(1, 5))):
                i = int(rng.integers(0, len(b)))
                if rng.random() < 0.5:
                    b[i] ^= 1 << int(rng.integers(0, 8))
                else:
                    n = int(rng.integers(1, 16))
                    b[i:i + n] = rng.bytes(n)
            out.append(_write(folder, f"mutant-{fmt}-{k}{files[fmt].suffix}", bytes(b)))
    return out


def _sweep(tmp_path: Path, model_files: dict, per_format: int, seed: int) -> None:
    marker = tmp_path / "PWNED"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    expected_refusals = {}
    for name, (maker, fragments) in CASES.items():
        folder = corpus / name
        folder.mkdir()
        expected_refusals[str(maker(folder, model_files, marker))] = (name, fragments)
    (tmp_path / "mutants").mkdir()
    mutants = _mutants(model_files, tmp_path / "mutants", per_format, seed)
    paths = [*expected_refusals, *map(str, mutants)]
    (tmp_path / "paths.json").write_text(json.dumps(paths))
    proc = subprocess.run(
        [sys.executable, "-c", _SWEEP, str(tmp_path / "paths.json"), str(tmp_path / "results.json")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    tail = "\n".join(proc.stdout.strip().splitlines()[-3:])
    assert proc.returncode >= 0, f"the sweep process crashed (signal {-proc.returncode}); last lines:\n{tail}"
    report = json.loads((tmp_path / "results.json").read_text())
    assert not report["failures"], "\n".join(report["failures"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    for path, (name, fragments) in expected_refusals.items():
        outcome, message = report["results"][path]
        assert outcome == "refused", f"{name}: {outcome}"
        assert Path(path).name in message and all(f.lower() in message.lower() for f in fragments), message
    assert not marker.exists(), "a hostile file ran code in the sweep"
    assert len(report["results"]) == len(paths)


def test_corpus_sweep_in_a_child_process(tmp_path, model_files):
    """Every corpus file plus 8 mutants of each format, in a child: a crash fails this test, not the run."""
    _sweep(tmp_path, model_files, per_format=8, seed=0)


@pytest.mark.slow
def test_large_mutation_sweep_in_a_child_process(tmp_path, model_files):
    """600 mutants (150 per format) loaded and run in a child process (one to two minutes)."""
    _sweep(tmp_path, model_files, per_format=150, seed=1)
