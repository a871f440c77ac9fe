"""Peak-memory probes for a sweep: one pre-started child process per runtime, forked for every variant.

`workbench.measurement.record.peak_memory` starts a fresh Python for each variant, imports the runtime there and
reports how much the peak resident memory grows while the artefact loads and runs three times. The start-up and
the import are most of its cost: 0.2 s of CPU time and 0.3-0.8 s of wall time per variant on a busy 2-core
machine, for a model that loads in milliseconds. `MemoryProbes` starts one child per runtime that imports the
runtime once (a "zygote"); each probe is a `fork` of it. A forked child shares the zygote's memory but the kernel
does not copy the page-table entries of file-backed mappings (the runtime's libraries), so the child first touches
again every such page the zygote has resident: it then holds what a fresh process holds after the same imports,
and runs the same probe code (`MEMORY_PROBES`) up to the same measurement, so the figure is the same
(tests/sweeps/test_memory.py compares them) for a few tens of milliseconds. Linux only (/proc, fork), as
`peak_memory` is. Forking is safe only after imports that start no threads, so only `FORK_SAFE` runtimes take
this path; the others keep `peak_memory`.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
from typing import Any, Sequence

import numpy as np

FORK_SAFE = ("onnxruntime", "litert", "tflite_runtime")
"""Runtimes whose import starts no threads, so a process that imported them may fork."""

TIMEOUT_S = 300.0
"""Longest a single probe may take (as `peak_memory`'s child)."""

_ZYGOTE = r"""
import ctypes, json, os, select, signal, sys
import numpy as np

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))

def start():
    try:  # reset the peak-RSS watermark (VmHWM), as peak_memory's child does
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return status("VmRSS")

def resident_file_pages():
    # (start, run length) of every run of file-backed pages present in this process's page tables. A forked
    # child inherits the anonymous pages but not these entries (the kernel re-faults them on use), so its RSS
    # starts lower than a fresh process's would at the same point; touching them again restores it exactly.
    page, runs = os.sysconf("SC_PAGE_SIZE"), []
    with open("/proc/self/maps") as maps, open("/proc/self/pagemap", "rb") as pagemap:
        for line in maps:
            parts = line.split()
            if len(parts) < 6 or not parts[5].startswith("/") or parts[1][0] != "r":
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            pagemap.seek(lo // page * 8)
            present = (np.frombuffer(pagemap.read((hi - lo) // page * 8), dtype=np.uint64) >> np.uint64(63)) == 1
            edges = np.flatnonzero(np.diff(np.concatenate([[0], present.astype(np.int8), [0]])))
            runs += [(lo + int(a) * page, int(b - a) * page) for a, b in zip(edges[::2], edges[1::2])]
    return runs

def touch(runs, chunk=1 << 20):
    for at, size in runs:
        for off in range(0, size, chunk):
            ctypes.string_at(at + off, min(chunk, size - off))

imported = {"np": np}
exec(sys.argv[1], imported)  # the probe's imports, done once here
runs = resident_file_pages()
for line in sys.stdin:
    req = json.loads(line)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            touch(runs)
            # Free heap space the zygote's own work left behind would absorb the model's first allocations;
            # a fresh process has none, so hand it back first (glibc): the figures then agree within ~1.5 %.
            ctypes.CDLL(None).malloc_trim(0)
            g = {**imported, "start": start, "status": status, "path": req["path"], "threads": req["threads"],
                 "arrays": [np.zeros(s, d) for s, d in req["spec"]]}
            exec(req["probe"], g)
            os.write(w, str(max(0, status("VmHWM") - g["before"])).encode())
        finally:
            os._exit(0)
    os.close(w)
    ready = select.select([r], [], [], req["timeout"])[0]
    out = os.read(r, 64).decode() if ready else ""
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(r)
    sys.stdout.write(json.dumps(int(out) if out.strip().isdigit() else None) + "\n")
    sys.stdout.flush()
"""


class MemoryProbes:
    """``probes(runtime, path, sample, threads)``: `peak_memory`'s figure, from a forked pre-started process.

    Example:
        >>> from workbench.formats.convert import to_onnx
        >>> probes = MemoryProbes()
        >>> grew = probes("onnxruntime", to_onnx(task.model), [task.example_inputs[0][:1]], 1)
        >>> grew > 0
        True
        >>> probes.close()
    """

    def __init__(self) -> None:
        self._children: dict[str, subprocess.Popen] = {}

    def __call__(self, runtime: str, path: Any, sample: Sequence[np.ndarray], threads: int | None) -> int | None:
        from workbench.measurement.record import MEMORY_PROBES, peak_memory

        probe = MEMORY_PROBES.get(runtime)
        if runtime not in FORK_SAFE or probe is None:
            return peak_memory(runtime, path, sample, threads)
        imports, sep, body = probe.partition("before = start()")
        request = {"path": str(path), "threads": int(threads or 1), "timeout": TIMEOUT_S, "probe": sep + body,
                   "spec": [[list(a.shape), a.dtype.name] for a in sample]}
        for _ in range(2):  # a zygote that died (killed, out of memory) is started again once
            child = self._child(runtime, imports)
            try:
                child.stdin.write(json.dumps(request) + "\n")
                child.stdin.flush()
                line = child.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if line:
                return json.loads(line)
            self._stop(runtime)
        return peak_memory(runtime, path, sample, threads)

    def _child(self, runtime: str, imports: str) -> subprocess.Popen:
        child = self._children.get(runtime)
        if child is None or child.poll() is not None:
            env = {"TF_CPP_MIN_LOG_LEVEL": "3", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
            child = subprocess.Popen([sys.executable, "-c", _ZYGOTE, imports], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env={**os.environ, **env})
            self._children[runtime] = child
        return child

    def _stop(self, runtime: str) -> None:
        child = self._children.pop(runtime, None)
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()

    def close(self) -> None:
        """End the pre-started processes (they also end when this process does)."""
        for runtime in list(self._children):
            child = self._children[runtime]
            if child.poll() is None and child.stdin is not None:
                child.stdin.close()  # the zygote's loop ends at end of input
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            self._stop(runtime)


PROBES = MemoryProbes()
"""The probes a sweep in this process uses (each worker process has its own)."""
atexit.register(PROBES.close)


__all__ = ["FORK_SAFE", "PROBES", "TIMEOUT_S", "MemoryProbes"]
