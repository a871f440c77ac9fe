"""ONNX Runtime GenAI folders: build one from a Hugging Face folder (the GenAI model builder), read one back.

A GenAI folder is what ``onnxruntime_genai.Model`` loads: ``genai_config.json`` (decoder I/O names, heads,
context, search defaults), ``model.onnx`` + ``model.onnx.data`` (a decoder with a KV cache; fused QKV,
GroupQueryAttention, and ``MatMulNBits`` for quantised weights) and the tokenizer files.

What the builder (onnxruntime-genai 0.18) does with weights, measured on this machine:
    * ``int4`` / ``int8``: every linear layer becomes ``MatMulNBits`` with blocks of `block_size` (16..256)
      along the input dimension, one scale per block (and a uint zero point when asymmetric). Only 4 and 8 bits;
      2 bits come from ONNX Runtime's ``MatMulNBitsQuantizer`` run on the fp32 model (ONNX Runtime's CPU
      kernel runs them); 3 bits have no kernel.
    * Asymmetric blocks use the workbench's own grid (min/max including 0, zero point rounded), so a variant
      fake-quantised on that grid is reproduced exactly: logits equal to 1e-6 with ``accuracy_level=1``.
      Symmetric blocks use ONNX Runtime's grid ``[-8, 7]`` with scale ``max|w|/8``, not the workbench's
      ``±7``: re-quantising moves weights (perplexity differs by ~0.3 % on the tiny model).
    * ``accuracy_level=4`` (the CPU default, kept here) quantises activations to int8 inside ``MatMulNBits``;
      it is the fast kernel and costs ~0.04 in logits on the tiny model.
    * A tied embedding (SmolLM2) is shared with the 4-bit LM head only for symmetric weights: the builder's
      asymmetric shared embedding does not load in ONNX Runtime 1.32, so it is kept in float then.

The builder is silenced: importing ``onnxruntime.quantization.matmul_nbits_quantizer`` calls
``logging.basicConfig(level=INFO)`` on the root logger (undone here), and its prints, progress bars and log lines
flood any output. Small models build in this process; large ones in a subprocess (`IN_PROCESS_MAX_BYTES`). Builds
are cached in ``cache_dir()/genai``, keyed by the input folder's bytes and the options, so a second call is instant.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, TensorSpec, file_sha256
from workbench.core.lm import META_KEY, LMSpec
from workbench.core.paths import cache_dir

GENAI_CONFIG = "genai_config.json"
PRECISIONS = ("fp32", "int8", "int4", "int2")
BUILDER_BITS = (4, 8)
"""Weight bits the GenAI builder quantises to itself; 2 bits are added by ONNX Runtime's quantiser."""
BLOCK_SIZES = (16, 32, 64, 128, 256)
ALGOS = ("rtn", "k_quant", "hqq")

IN_PROCESS_MAX_BYTES = 64 << 20
"""Models with at most this many weight bytes are built in this process (~0.1 s for the tests' tiny model); larger
ones in a subprocess (~10 s of imports), whose memory (the builder loads a second copy) is returned at its end."""
_SCRIPT = "import json, sys; from workbench.formats.genai_folder import run_build_job; run_build_job(json.loads(sys.argv[1]))"


RECIPE_VERSION = 3
"""Part of every cached build's key; raised when what a set of options builds changes (3: an HQQ build with
``quantize_embeddings`` also quantises the embedding table)."""


def run_build_job(job: dict[str, Any]) -> None:
    """Run the GenAI builder (and a post-quantisation) for one job; what `build_genai_folder` runs."""
    from onnxruntime_genai.models import builder

    opts = builder.parse_extra_options(None, job["input"], job["output"], job["precision"], "cpu", job["cache"],
                                       job["extra"])
    builder.create_model(None, job["input"], job["output"], job["precision"], "cpu", job["cache"], **opts)
    post = job.get("post")
    if post:
        _post_quantize(Path(job["output"]) / "model.onnx", post)


def _post_quantize(path: Path, post: dict[str, Any]) -> None:
    """Quantise the fp32 decoder's MatMuls with ONNX Runtime's `MatMulNBitsQuantizer` (2 bits, HQQ)."""
    import onnx
    from onnxruntime.quantization import matmul_nbits_quantizer as mnq

    ops = ("MatMul",)
    if post["algo"] == "hqq":
        cfg = mnq.HQQWeightOnlyQuantConfig(block_size=post["block_size"], bits=post["bits"], op_types_to_quantize=ops)
    else:
        cfg = mnq.DefaultWeightOnlyQuantConfig(block_size=post["block_size"], is_symmetric=post["symmetric"],
                                               bits=post["bits"], accuracy_level=post["accuracy_level"],
                                               op_types_to_quantize=ops)
    model = onnx.load(str(path))
    if post.get("embeddings") and post["bits"] == 4:
        untie_embedding(model)
    quant = mnq.MatMulNBitsQuantizer(model, nodes_to_exclude=[] if post["lm_head"] else
                                     ["/lm_head/MatMul"], algo_config=cfg)
    quant.process()
    model = quant.model.model
    if post.get("embeddings") and post["bits"] == 4:
        # the embedding table (Gather): HQQ quantises MatMuls only, so the table takes ONNX Runtime's 4-bit
        # round-to-nearest (GatherBlockQuantized); the tied LM head keeps its HQQ weights
        gather = mnq.DefaultWeightOnlyQuantConfig(block_size=post["block_size"], is_symmetric=True, bits=4,
                                                  op_types_to_quantize=("Gather",), quant_axes=(("Gather", 1),))
        quant = mnq.MatMulNBitsQuantizer(model, algo_config=gather)
        quant.process()
    path.unlink()
    Path(f"{path}.data").unlink()
    quant.model.save_model_to_file(str(path), use_external_data_format=True)


def untie_embedding(model: Any) -> bool:
    """Give a tied embedding its own table: the builder's fp32 graph gathers token rows from a Transpose of the LM
    head's weight, which no quantiser can reach (only an initializer can be quantised). The transposed table becomes
    an initializer of its own, so the LM head (MatMul) and the table (Gather) are each quantised; `False` when the
    graph has no such Transpose."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    for node in list(model.graph.node):
        if node.op_type != "Transpose" or node.input[0] not in inits:
            continue
        users = [n for n in model.graph.node if node.output[0] in n.input]
        if not users or any(u.op_type != "Gather" for u in users):
            continue
        table = numpy_helper.to_array(inits[node.input[0]]).T.copy()
        name = f"{node.input[0]}.embedding"
        model.graph.initializer.append(numpy_helper.from_array(table, name))
        for u in users:
            u.input[0] = name
        model.graph.node.remove(node)
        return True
    return False


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Silence the builder in this process: its prints and progress bars (captured for error messages), its
    logging, and the root-logger ``basicConfig(level=INFO)`` that importing ONNX Runtime's quantiser performs."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    log = io.StringIO()
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield log
    finally:
        logging.disable(logging.NOTSET)
        root.handlers[:] = handlers
        root.setLevel(level)
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


@dataclass(frozen=True)
class GenaiOptions:
    """How a GenAI folder is built.

    Attributes:
        precision: ``"fp32"``, ``"int8"``, ``"int4"`` (the builder) or ``"int2"`` (the builder's fp32 model
            quantised by ONNX Runtime's ``MatMulNBitsQuantizer``).
        block_size: weights per scale along the input dimension (16, 32, 64, 128 or 256).
        symmetric: symmetric (int4/int8, zero point 0) or asymmetric (uint with zero points) blocks.
        algo: ``"rtn"`` (round to nearest, ONNX Runtime's C++ quantiser), ``"k_quant"`` or ``"hqq"``
            (half-quadratic, 4 or 2 bits, always with zero points).
        quantize_embeddings: quantise the embedding table too (``Gather``, 4 bits only).
        exclude_lm_head: keep the LM head in float (not the builder's ``exclude_lm_head``, which removes it).
        accuracy_level: ``MatMulNBits`` compute: 4 = int8 activations (the CPU default, fastest), 1 = fp32.
    """

    precision: str = "fp32"
    block_size: int = 32
    symmetric: bool = True
    algo: str = "rtn"
    quantize_embeddings: bool = False
    exclude_lm_head: bool = False
    accuracy_level: int = 4

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.block_size not in BLOCK_SIZES:
            raise ValueError(f"block_size must be one of {BLOCK_SIZES}, got {self.block_size!r}")
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        if self.algo == "hqq" and self.precision not in ("int4", "int2"):
            raise ValueError(f"algo 'hqq' quantises to 4 or 2 bits, not {self.precision}")
        if self.accuracy_level not in (0, 1, 2, 3, 4):
            raise ValueError(f"accuracy_level must be 0..4, got {self.accuracy_level!r}")

    @property
    def bits(self) -> int | None:
        return None if self.precision == "fp32" else int(self.precision[3:])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """In words, e.g. ``"int4 MatMulNBits, block 32, asymmetric (ONNX Runtime GenAI builder)"``."""
        if self.bits is None:
            return "fp32 (ONNX Runtime GenAI builder)"
        how = {"rtn": "", "k_quant": ", k-quant", "hqq": ", HQQ"}[self.algo]
        sym = "symmetric" if self.symmetric and self.algo != "hqq" else "asymmetric"
        tool = "ONNX Runtime GenAI builder" if self.bits in BUILDER_BITS and self.algo != "hqq" else \
            "ONNX Runtime GenAI builder + MatMulNBitsQuantizer"
        head = ", LM head float" if self.exclude_lm_head else ""
        return f"int{self.bits} MatMulNBits, block {self.block_size}, {sym}{how}{head} ({tool})"

    def label(self) -> str:
        if self.bits is None:
            return "fp32"
        return f"int{self.bits}-b{self.block_size}-{'sym' if self.symmetric else 'asym'}-{self.algo}"

    def job(self, tied: bool) -> tuple[str, list[str], dict[str, Any] | None]:
        """(builder precision, builder extra options, post-quantisation or None)."""
        post_quant = self.bits is not None and (self.bits not in BUILDER_BITS or self.algo == "hqq")
        if self.bits is None or post_quant:
            post = None if self.bits is None else {
                "algo": self.algo, "bits": self.bits, "block_size": self.block_size, "symmetric": self.symmetric,
                "accuracy_level": self.accuracy_level, "lm_head": not self.exclude_lm_head,
                "embeddings": self.quantize_embeddings}
            return "fp32", [], post
        extra = [f"block_size={self.block_size}", f"is_symmetric={str(self.symmetric).lower()}",
                 f"accuracy_level={self.accuracy_level}"]
        if self.algo == "k_quant":
            extra.append("algo_config=k_quant")
        if self.exclude_lm_head:
            extra.append("nodes_to_exclude=/lm_head/MatMul")
        share = tied and not self.exclude_lm_head and self.bits == 4 and self.symmetric
        if tied:
            extra.append(f"shared_embeddings={str(share).lower()}")
        if self.quantize_embeddings and not share:
            extra.append("op_types_to_quantize=MatMul/Gather")
        return self.precision, extra, None


def is_genai_folder(path: Path | str) -> bool:
    """A folder with a ``genai_config.json``."""
    return Path(path).is_dir() and (Path(path) / GENAI_CONFIG).is_file()


def folder_files(folder: Path) -> list[Path]:
    """Every file under `folder` (recursively), sorted by relative path."""
    return sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())


def folder_digest(folder: Path) -> str:
    """sha256 over the relative names and bytes of every file in `folder` (memoised on names, sizes, mtimes)."""
    files = folder_files(folder)
    stamp = tuple((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _digest(str(folder.resolve()), stamp)


@lru_cache(maxsize=64)
def _digest(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in stamp:
        h.update(name.encode() + b"\0" + bytes.fromhex(file_sha256([Path(folder) / name])))
    return h.hexdigest()


def _versions() -> list[str]:
    from importlib.metadata import version

    out = [f"recipe={RECIPE_VERSION}"]
    for lib in ("onnxruntime-genai", "onnxruntime", "transformers"):
        try:
            out.append(f"{lib}={version(lib)}")
        except Exception:  # noqa: BLE001 - absent: not part of the key
            continue
    return out


def build_genai_folder(hf_folder: Path | str, out: Path | str | None = None, *, precision: str = "fp32",
                       block_size: int = 32, symmetric: bool = True, algo: str = "rtn",
                       quantize_embeddings: bool = False, exclude_lm_head: bool = False,
                       accuracy_level: int = 4) -> Path:
    """Build an ONNX Runtime GenAI folder from a Hugging Face folder (offline, output silenced, cached).

    Args:
        hf_folder: config.json + safetensors + tokenizer files (`workbench.formats.lm_folder.lm_folder_of`).
        out: where to put the folder; `None` returns the cached build itself (do not modify it).
        precision / block_size / symmetric / algo / quantize_embeddings / exclude_lm_head / accuracy_level:
            see `GenaiOptions`.

    Returns:
        The folder (genai_config.json, model.onnx, model.onnx.data, tokenizer files).

    Raises:
        WorkbenchError: not a Hugging Face folder, bad options, or a builder failure (with its last output lines).
    """
    try:
        options = GenaiOptions(precision, block_size, symmetric, algo, quantize_embeddings, exclude_lm_head,
                               accuracy_level)
    except ValueError as e:
        raise WorkbenchError(f"build_genai_folder: {e}.") from None
    src = Path(hf_folder)
    config_path = src / "config.json"
    if not config_path.is_file():
        raise WorkbenchError(f"{src}: no config.json; the GenAI builder takes a Hugging Face model folder.")
    config = json.loads(config_path.read_text())
    key = hashlib.sha256(json.dumps([folder_digest(src), options.to_dict(), _versions()]).encode()).hexdigest()[:20]
    cached = cache_dir() / "genai" / f"{options.label()}-{key}"
    if not is_genai_folder(cached):
        _build(src, cached, options, bool(config.get("tie_word_embeddings", False)))
    if out is None:
        return cached
    out = Path(out)
    from workbench.formats.lm_folder import write_folder

    if out.exists():
        shutil.rmtree(out)
    return write_folder(out, lambda tmp: shutil.copytree(cached, tmp, dirs_exist_ok=True))


def _build(src: Path, dest: Path, options: GenaiOptions, tied: bool) -> None:
    from workbench.formats.lm_folder import write_folder

    precision, extra, post = options.job(tied)

    def write(tmp: Path) -> None:
        work = tmp.parent / f"{tmp.name}-work"
        job = {"input": str(src.resolve()), "output": str(tmp), "precision": precision, "extra": extra,
               "cache": str(work), "post": post}
        weights = sum(p.stat().st_size for p in src.glob("*.safetensors"))
        try:
            if weights <= IN_PROCESS_MAX_BYTES:
                output, failed = _in_process(job)
            else:
                env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1",
                       "PYTHONWARNINGS": "ignore"}
                done = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(job)], env=env, capture_output=True,
                                      text=True, check=False)
                output, failed = (done.stderr or done.stdout or ""), done.returncode != 0
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if failed or not (tmp / GENAI_CONFIG).is_file():
            tail = "\n".join(output.strip().splitlines()[-6:])
            raise WorkbenchError(f"{src}: the ONNX Runtime GenAI builder failed ({options.describe()}):\n{tail}")

    write_folder(dest, write)


def _in_process(job: dict[str, Any]) -> tuple[str, bool]:
    """(captured output, failed) of `run_build_job` run here, silenced."""
    with _quiet() as log:
        try:
            run_build_job(job)
            failed = False
        except Exception as e:  # noqa: BLE001 - any builder failure is reported with its output
            print(f"{type(e).__name__}: {first_line(e)}", file=log)
            failed = True
    return log.getvalue(), failed


# --------------------------------------------------------------------------------------------------- reading


def read_genai_config(folder: Path) -> dict[str, Any]:
    """``genai_config.json`` of `folder`, checked: a clear `WorkbenchError` for a missing or broken one."""
    if not folder.is_dir():
        raise WorkbenchError(f"{folder}: not a folder; an ONNX Runtime GenAI model is a folder with genai_config.json.")
    path = folder / GENAI_CONFIG
    if not path.is_file():
        raise WorkbenchError(f"{folder}: no {GENAI_CONFIG}, so this is not an ONNX Runtime GenAI folder. Build one "
                             "with workbench.export(model, 'onnx-int4', out) or onnxruntime_genai's model builder.")
    try:
        config = json.loads(path.read_text())
        decoder = config["model"]["decoder"]
        _ = decoder["filename"], decoder["num_hidden_layers"], decoder["num_attention_heads"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WorkbenchError(f"{path}: not a valid GenAI config ({type(e).__name__}: {first_line(e)}). Rebuild the "
                             "folder.") from None
    return config


def graph_facts(model_path: Path) -> dict[str, Any]:
    """Facts of the decoder graph (read without its external data): parameters, MLP width, quantised weights."""
    import onnx

    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - any parse failure is a damaged file
        raise WorkbenchError(f"{model_path}: not a readable ONNX model ({first_line(e)}). Rebuild the folder.") from e
    for init in model.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location" and not (model_path.parent / entry.value).is_file():
                raise WorkbenchError(f"{model_path}: its weights file {entry.value} is missing beside it. Copy the "
                                     "whole folder.")
    params, intermediate, nbits, embedding = 0, None, [], False
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and "cache" not in init.name:
            n = 1
            for d in init.dims:
                n *= d
            params += n
        embedding |= init.name.startswith("model.embed_tokens")
    for node in model.graph.node:
        attrs = {a.name: a.i for a in node.attribute if a.type == onnx.AttributeProto.INT}
        if node.op_type in ("MatMulNBits", "GatherBlockQuantized"):
            if node.op_type == "MatMulNBits":
                params += attrs.get("K", 0) * attrs.get("N", 0)
            nbits.append({"bits": attrs.get("bits", 4), "block_size": attrs.get("block_size", 0),
                          "symmetric": len([i for i in node.input if i]) < 4 if node.op_type == "MatMulNBits"
                          else None, "accuracy_level": attrs.get("accuracy_level")})
        if "/mlp/down_proj/" in node.name and intermediate is None:
            if node.op_type == "MatMulNBits":
                intermediate = attrs.get("K")
            else:
                dims = {i.name: list(i.dims) for i in model.graph.initializer}
                intermediate = next((dims[i][0] for i in node.input if i in dims and len(dims[i]) == 2), None)
    # a tied embedding is read from the LM head's weights (Transpose or GatherBlockQuantized): no table of its own
    return {"params": params, "intermediate": intermediate, "nbits": nbits, "tied": not embedding}


def genai_quant(facts: dict[str, Any]) -> dict[str, Any] | None:
    """The quantisation a folder executes (``{"bits", "block_size", "symmetric", "accuracy_level"}``) or `None`."""
    matmuls = [q for q in facts["nbits"] if q["symmetric"] is not None]
    if not matmuls:
        return None
    first = matmuls[0]
    bits = sorted({q["bits"] for q in matmuls})
    return {"bits": bits[0] if len(bits) == 1 else bits, "block_size": first["block_size"],
            "symmetric": first["symmetric"], "accuracy_level": first["accuracy_level"], "layers": len(matmuls)}


def load_genai_folder(path: Path | str, name: str | None = None) -> ModelHandle:
    """Read an ONNX Runtime GenAI folder as a language-model handle (``framework="onnx"``, ``source_format="genai"``).

    ``meta["lm"]`` comes from genai_config.json (and the graph, for the MLP width), ``meta["tokenizer"]`` is the
    folder, ``meta["genai"]`` says what the weights are (bits, block size, symmetric) and ``meta["realised"]``
    says so in words. The handle runs in runtime ``"onnxruntime"`` (ONNX Runtime GenAI).

    Raises:
        WorkbenchError: no or a broken genai_config.json, a missing model or weights file, no tokenizer.json.
    """
    import numpy as np

    folder = Path(path)
    config = read_genai_config(folder)
    model, decoder = config["model"], config["model"]["decoder"]
    model_path = folder / decoder["filename"]
    if not model_path.is_file():
        raise WorkbenchError(f"{folder}: genai_config.json names {decoder['filename']}, which is not in the folder. "
                             "Copy the whole folder.")
    if not (folder / "tokenizer.json").is_file():
        raise WorkbenchError(f"{folder}: no tokenizer.json; ONNX Runtime GenAI needs the tokenizer beside the model.")
    facts = graph_facts(model_path)
    hidden, heads = int(decoder["hidden_size"]), int(decoder["num_attention_heads"])
    try:
        spec = LMSpec(architecture=str(model.get("type", "unknown")), layers=int(decoder["num_hidden_layers"]),
                      hidden=hidden, heads=heads, kv_heads=int(decoder.get("num_key_value_heads") or heads),
                      head_dim=int(decoder.get("head_size") or hidden // heads),
                      intermediate=int(facts["intermediate"] or 4 * hidden), vocab=int(model["vocab_size"]),
                      context=int(model.get("context_length") or 2048), tie_embeddings=facts["tied"])
    except (KeyError, TypeError, ValueError) as e:
        raise WorkbenchError(f"{folder / GENAI_CONFIG}: missing or bad model fields ({first_line(e)}).") from None
    quant = genai_quant(facts)
    meta: dict[str, Any] = {META_KEY: spec.to_dict(), "tokenizer": str(folder), "genai": quant}
    if quant:
        meta["realised"] = (f"int{quant['bits']} MatMulNBits, block {quant['block_size']}, "
                            f"{'symmetric' if quant['symmetric'] else 'asymmetric'}")
    example = np.asarray([list(range(1, 17)), list(range(17, 33))], dtype=np.int64) % spec.vocab
    return ModelHandle(
        framework="onnx",
        inputs=[TensorSpec("input_ids", (None, None), "int64")],
        outputs=[TensorSpec("logits", (None, None, spec.vocab), "float32")],
        num_params=int(facts["params"]),
        fingerprint=folder_digest(folder),
        source_format="genai",
        name=name or folder.name,
        path=folder,
        example_inputs=[example],
        meta=meta,
    )


def genai_folder_of(handle: ModelHandle, **options: Any) -> Path:
    """The (cached) GenAI folder of a language-model handle: its own folder when it was loaded from one, else
    the builder's output for its Hugging Face folder with `options` (see `build_genai_folder`)."""
    if handle.source_format == "genai" and handle.path is not None:
        return Path(handle.path)
    if handle.framework != "torch" or handle.module is None:
        raise WorkbenchError(f"{handle.name}: ONNX Runtime GenAI runs a PyTorch language model or a GenAI folder, "
                             f"not a {handle.source_format} file.")
    from workbench.formats.lm_folder import lm_folder_of

    return build_genai_folder(lm_folder_of(handle), **options)
