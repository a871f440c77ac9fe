"""`measure` for a language model: perplexity, agreement, instructions answered, time to first token, decode
tokens/s, artefact bytes, KV-cache bytes, peak memory, and device estimates — one `Measurement`, same columns.

Timing: a fixed prompt (the first `PROMPT_TOKENS` tokens of the first held-out chunk, as plain text) and a fixed
number of new tokens (`NEW_TOKENS`, greedy), repeated until the median decode speed is stable (the last three
runs within 5 % of each other; at least `MIN_REPS`, at most `MAX_REPS`). ``ttft_ms`` is the median time to first
token, ``tokens_per_s`` the median decode speed, ``latency_ms_*`` the milliseconds per decoded token (so the
latency plots of every dashboard read a language model too). ``kv_cache_bytes`` is the fp32 K/V cache at
`CONTEXT` tokens, from the architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from workbench.core.errors import first_line
from workbench.core.handle import ModelHandle
from workbench.core.lm import lm_spec

PROMPT_TOKENS = 64
NEW_TOKENS = 32
FAST_NEW_TOKENS = 16
MIN_REPS, MAX_REPS = 3, 10
CONTEXT = 512


def folder_bytes(path: Path | None) -> int | None:
    """Bytes of a file, or of every file in a folder (a multi-file artefact; `size.artifact_size`)."""
    from workbench.measurement.size import artifact_size

    return artifact_size(Path(path)) if path is not None and Path(path).exists() else None


def timing_prompt(task: Any, tokenizer: Any) -> str:
    """The fixed timing prompt: the first `PROMPT_TOKENS` tokens of the task's first held-out chunk, as text."""
    ids = task.eval_inputs[0][0][:PROMPT_TOKENS]
    return tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)


def time_generation(run: Any, prompt: str, new_tokens: int) -> dict[str, float]:
    """Median time to first token and decode tokens/s over repeated greedy generations (see the module docstring)."""
    run.generate(prompt, 4, chat=False)  # warm-up: first-call allocations, kernel selection
    ttft, speed = [], []
    for _ in range(MAX_REPS):
        g = run.generate(prompt, new_tokens, chat=False)
        ttft.append(g.ttft_ms)
        if g.tokens_per_s:
            speed.append(g.tokens_per_s)
        if len(ttft) >= MIN_REPS and len(speed) >= 3:
            last = np.asarray(speed[-3:])
            if last.max() / last.min() <= 1.05:
                break
    tps = np.asarray(speed) if speed else np.asarray([np.nan])
    ms = 1e3 / tps
    return {"ttft_ms": float(np.median(ttft)), "tokens_per_s": float(np.median(tps)), "reps": len(ttft),
            "p10": float(np.percentile(ms, 10)), "p50": float(np.median(ms)), "p90": float(np.percentile(ms, 90)), "p99": float(np.percentile(ms, 99)),
            "mean": float(np.mean(ms)), "iqr": float(np.subtract(*np.percentile(ms, [75, 25])))}


def measure_lm(handle: ModelHandle, task: Any, *, runtime: str, threads: int | None, devices: Sequence[Any],
               memory: bool, limit: int | None, common: dict[str, Any]) -> dict[str, Any]:
    """One language-model variant on one runtime: the fields of its `Measurement` (`workbench.measure` builds it).
    """
    from workbench.core.env import fast_mode
    from workbench.formats.lm_folder import tokenizer_of
    from workbench.measurement.latency import timing_section
    from workbench.realize import realize
    from workbench.runtimes import runtime as make_runtime

    spec = lm_spec(handle)
    common = {**common, "macs": 2 * handle.num_params}  # per token: two operations per weight
    try:
        real = realize(handle, runtime, task)
        run = make_runtime(real.handle, runtime, threads=threads)
        outputs, rows = task.run(run, limit=limit)
        metrics = task.score(outputs, rows)
        with timing_section():  # one worker at a time where a parallel search asks for it
            timing = time_generation(run, timing_prompt(task, tokenizer_of(handle)),
                                     FAST_NEW_TOKENS if fast_mode() else NEW_TOKENS)
    except Exception as e:  # noqa: BLE001 - one failing runtime is a row, not a crashed sweep
        return dict(**common, error=f"{type(e).__name__}: {first_line(e)}", estimates=lm_estimates(handle, devices, runtime))
    from workbench.hardware.lm_estimate import lm_weight_bytes
    from workbench.measurement.size import count_nonzero

    return dict(
        **common,
        metrics=metrics,
        fidelity=metrics.get("agreement"),
        fidelity_low=metrics.get("agreement_low"),
        fidelity_high=metrics.get("agreement_high"),
        size_bytes=folder_bytes(real.path),
        params_nonzero=count_nonzero(handle),
        realized=real.realized,
        realization=real.note,
        latency_ms_p10=timing["p10"], latency_ms_p50=timing["p50"], latency_ms_p90=timing["p90"],
        latency_ms_p99=timing["p99"], latency_ms_mean=timing["mean"], latency_ms_iqr=timing["iqr"], reps=timing["reps"],
        tokens_per_s=timing["tokens_per_s"], ttft_ms=timing["ttft_ms"],
        kv_cache_bytes=spec.kv_cache_bytes(CONTEXT) if spec else None,
        weight_bytes=lm_weight_bytes(handle),
        peak_mem_bytes=peak_memory_lm(runtime, real.path, threads) if memory and real.path else None,
        artifact=str(real.path) if real.path else None,
        estimates=lm_estimates(handle, devices, runtime),
    )


def lm_estimates(handle: ModelHandle, devices: Sequence[Any], runtime: str | None = None) -> tuple[Any, ...]:
    from workbench.hardware import device as get_device
    from workbench.hardware.lm_estimate import estimate_lm

    return tuple(estimate_lm(handle, get_device(d) if isinstance(d, str) else d, runtime=runtime) for d in devices)


_START = r"""
import sys, json
def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))
path, threads = sys.argv[1], int(sys.argv[2])
"""
LM_MEMORY_PROBES: dict[str, str] = {
    "torch": r"""
import torch, transformers
torch.set_num_threads(threads)
before = status("VmRSS")
m = transformers.AutoModelForCausalLM.from_pretrained(path, dtype="float32", local_files_only=True)
with torch.no_grad():
    m.generate(torch.ones(1, 64, dtype=torch.long), max_new_tokens=8, do_sample=False)
""",
    "onnxruntime": r"""
import onnxruntime_genai as og
before = status("VmRSS")
model = og.Model(path)
p = og.GeneratorParams(model); p.set_search_options(max_length=72, do_sample=False)
g = og.Generator(model, p); g.append_tokens([[1] * 64])
for _ in range(8):
    g.generate_next_token()
""",
    "openvino": r"""
import numpy as np, openvino as ov
before = status("VmRSS")
req = ov.Core().compile_model(path + "/openvino_model.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32",
      "KV_CACHE_PRECISION": "f32", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": threads}).create_infer_request()
def feed(n, start):
    req.infer({"input_ids": np.ones((1, n), np.int64), "attention_mask": np.ones((1, start + n), np.int64),
               "position_ids": np.arange(start, start + n, dtype=np.int64)[None], "beam_idx": np.zeros(1, np.int32)})
feed(64, 0)
for i in range(8):
    feed(1, 64 + i)
""",
    "executorch": r"""
import torch
from executorch.extension.pybindings import portable_lib
from executorch.runtime import Runtime
portable_lib._unsafe_reset_threadpool(threads)
before = status("VmRSS")
m = Runtime.get().load_program(path).load_method("forward")
m.execute([torch.ones(1, 64, dtype=torch.long), torch.arange(64)])
for i in range(8):
    m.execute([torch.ones(1, 1, dtype=torch.long), torch.tensor([64 + i])])
""",
}
"""Per runtime: child-process code that loads a language-model artefact and generates 8 tokens after a 64-token
prompt; the parent reads the growth of peak RSS over the resident set before loading."""


def peak_memory_lm(runtime: str, path: Any, threads: int | None) -> int | None:
    """Peak resident memory that loading and running the artefact adds, measured in a fresh process (`None` for a
    runtime without a probe, or when the child fails)."""
    from workbench.core.isolated import run_child

    probe = LM_MEMORY_PROBES.get(runtime)
    if probe is None:
        return None
    code = _START + probe + '\nprint(json.dumps(max(0, status("VmHWM") - before)))\n'
    child = run_child(code, str(path), str(threads or 1), timeout=600)
    try:
        return int(child.stdout.strip().splitlines()[-1]) if child.status == "ok" else None
    except (ValueError, IndexError):
        return None
