"""A serial sweep's fine-tuning on two cores, done before anything is timed.

Recovery fine-tuning is most of a cold sweep's work (200 steps per prune point: 32 of the 59 CPU-seconds of the
kws demo grid) and exporting each architecture to ONNX most of the rest; neither needs a quiet machine. A serial
sweep therefore builds its next prune points (as many as `workbench.sweeps.shared.head_room` allows) in this
process and one helper process side by side: each builds a prune point's pruned and fine-tuned model and the ONNX
files of its bit-widths (`prepare_family`). Only then are their variants measured, one at a time in this process,
with the helper idle, so latency is timed as in a purely serial sweep. The helper loads the task from its
`TaskRef` (a zoo task, or a task made from a model file); a task that lives only in this process is built here
alone, as before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from workbench.sweeps.shared import add_head, has_head, head_key, prepare_family, split_head
from workbench.sweeps.spec import Grid, VariantSpec


def build_processes(workers: int | None) -> int:
    """Processes a serial sweep fine-tunes on: `workers` if given, else 2 where there are 2+ cores, else 1."""
    if workers is not None:
        return workers
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def cost(spec: VariantSpec) -> float:
    """Relative fine-tuning work of a prune point: its steps, times the share of channels kept (channel pruning
    shrinks the layers; zeros do not). On kws the measured ratios were 0.64 / 0.42 / 0.27 at 25 / 50 / 75 %."""
    kept = 1 - spec.prune if spec.structure == "channel" else 1.0
    return (spec.recover or 0) * kept


class Prebuild:
    """Builds the fine-tuned heads a serial sweep's units need, in this process and one helper, a chunk at a time.

    Call `ready(spec)` before a unit runs: when its head is fine-tuned and not built yet, the next prune points
    that fine-tune (this one first, up to `head_room`) are built, split between the two processes by
    `cost` (the longest first, each to the less loaded process).
    """

    def __init__(self, task: Any, g: Grid, specs: Sequence[VariantSpec], processes: int) -> None:
        from workbench.sweeps.units import task_ref

        self.task, self.g = task, g
        self.ref = task_ref(task) if processes >= 2 else None
        self.families: dict[tuple[str, str], list[VariantSpec]] = {}
        for s in specs:
            head, _ = split_head(s.configs(scope=g.scope))
            if s.recover and head:
                self.families.setdefault(head_key(task, head), []).append(s)
        self.pool: Any = None
        self.helper_ok = self.ref is not None

    def start(self, specs: Sequence[VariantSpec]) -> None:
        """Build the first prune points now, before anything is measured; this process also exports the
        variants that come before them and have nothing to fine-tune (the unpruned bit-widths) meanwhile."""
        keys = [self._key(s) for s in specs]
        first = next((i for i, k in enumerate(keys) if k in self.families), None)
        if first is not None:
            self.ready(specs[first], local=[s for s, k in zip(specs[:first], keys) if k is None])

    def _key(self, spec: VariantSpec) -> tuple[str, str] | None:
        head, _ = split_head(spec.configs(scope=self.g.scope))
        return head_key(self.task, head) if head else None

    def ready(self, spec: VariantSpec, local: Sequence[VariantSpec] = ()) -> None:
        from workbench.sweeps.shared import head_room

        key = self._key(spec)
        if key not in self.families or has_head(key):
            return
        keys = list(self.families)
        todo = [k for k in keys[keys.index(key):] if not has_head(k)][:head_room(self.task)]
        if len(todo) < 2 or not self.helper_ok:
            return  # one prune point (or no helper): the unit builds it as before
        self._build(todo, list(local))

    def _build(self, todo: list[tuple[str, str]], local: list[VariantSpec]) -> None:
        order = sorted(todo, key=lambda k: -cost(self.families[k][0]))
        mine, theirs, load = [], [], [0.0, 0.0]
        for k in order:  # longest first, to the less loaded process (ties: the helper, which also has to start)
            side = 0 if load[0] < load[1] else 1
            (mine if side == 0 else theirs).append(k)
            load[side] += cost(self.families[k][0])
        futures = self._submit(theirs)
        for s in local:  # while the helper starts: the ONNX files of the variants measured first
            prepare_family(self.task, [s], self.g)
        for k in mine:
            prepare_family(self.task, self.families[k], self.g)
        for k, fut in futures.items():
            try:
                head = fut.result()
            except Exception:  # noqa: BLE001 - a helper that failed: this process builds what it did not
                head, self.helper_ok = None, False
            if head is not None:
                import dataclasses

                add_head(k, dataclasses.replace(head, origin=self.task.model))  # the live original, not a copy
        for k in theirs:
            if not has_head(k):
                prepare_family(self.task, self.families[k], self.g)

    def _submit(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        if not keys:
            return {}
        if self.pool is None:
            self.pool = Helper()
        return {k: self.pool.submit(self.ref, self.families[k], self.g) for k in keys}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None


_HELPER = r"""
import os, pickle, sys
from workbench.sweeps.units import remote_prepare
for line in sys.stdin:
    request, out = line.rstrip("\n").split("\t")
    with open(request, "rb") as f:
        ref, specs, g = pickle.load(f)
    try:
        head = remote_prepare(ref, specs, g)
    except Exception:
        head = None
    with open(out + ".tmp", "wb") as f:
        pickle.dump(head, f)
    os.replace(out + ".tmp", out)
    sys.stdout.write("done\n")
    sys.stdout.flush()
"""


class Helper:
    """A helper Python process that runs `remote_prepare` requests in order; results come back through files.

    A plain child process, not `multiprocessing`: a spawned multiprocessing worker first re-imports the calling
    script, which re-runs a script without an ``if __name__ == "__main__"`` guard, and a serial sweep must
    never do that. Requests and results are pickles in a temporary folder (results can be larger than a pipe's
    buffer, and the helper must not wait for this process to read them).
    """

    def __init__(self) -> None:
        import subprocess
        import sys
        import tempfile

        self.dir = tempfile.TemporaryDirectory(prefix="workbench-prebuild-")
        self.log = open(Path(self.dir.name) / "helper.log", "w")  # open as long as the helper runs
        self.proc = subprocess.Popen([sys.executable, "-c", _HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self.sent = 0
        self.read = 0

    def submit(self, ref: Any, specs: list[VariantSpec], g: Grid) -> "Pending":
        import pickle

        n = self.sent
        self.sent += 1
        request, out = Path(self.dir.name) / f"{n}.request", Path(self.dir.name) / f"{n}.head"
        request.write_bytes(pickle.dumps((ref, specs, g)))
        try:
            self.proc.stdin.write(f"{request}\t{out}\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # a helper that died: `Pending.result` raises and this process builds it
        return Pending(self, n, out)

    def wait_for(self, n: int) -> None:
        while self.read <= n:
            if not self.proc.stdout.readline():
                raise RuntimeError("the prebuild helper process ended early")
            self.read += 1

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the helper's loop ends at end of input
                self.proc.wait(timeout=30)
            except Exception:  # noqa: BLE001 - a helper that does not stop is killed
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.dir.cleanup()


class Pending:
    """One request sent to a `Helper`; `result()` waits for it and returns the head (or None)."""

    def __init__(self, helper: Helper, n: int, out: Path) -> None:
        self.helper, self.n, self.out = helper, n, out

    def result(self) -> Any:
        import pickle

        self.helper.wait_for(self.n)
        return pickle.loads(self.out.read_bytes())


__all__ = ["Helper", "Pending", "Prebuild", "build_processes", "cost"]
