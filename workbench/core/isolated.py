"""Run a snippet that opens an untrusted model file in a child Python process.

Native model readers (TFLite's flatbuffer interpreter, PyTorch's TorchScript reader) can crash or abort on a
corrupt file instead of raising. Opening the file first in a child process means such a file costs the user an
error message, not their kernel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class ChildResult:
    """How the child ended: ``status`` is ``"ok"``, ``"timeout"``, ``"crash"`` or ``"error"``.

    `detail` is the signal name for a crash and the last stderr line for an error; `stdout` is what it printed.
    """

    status: str
    detail: str = ""
    stdout: str = ""


def run_child(code: str, *args: str, timeout: float, env: dict[str, str] | None = None) -> ChildResult:
    """Run `python -c code args...` with the current interpreter and classify how it ended."""
    try:
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return ChildResult("timeout")
    if proc.returncode < 0:
        return ChildResult("crash", signal.Signals(-proc.returncode).name, proc.stdout)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return ChildResult("error", lines[-1][:300] if lines else "unknown error", proc.stdout)
    return ChildResult("ok", "", proc.stdout)
