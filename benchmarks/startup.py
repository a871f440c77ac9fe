"""Start-up: `import workbench`, the first use of its API, and a dashboard's kernel-side first paint, each in a fresh
interpreter, beside what a hand-written script pays to import the raw libraries it needs.

    .venv/bin/python benchmarks/startup.py [--runs 5]

Each command runs `--runs` times in a new process (interleaved, so background load hits each alike) and the median
is reported. Bars (README): `import workbench` < 1 s, and no slower than the import a raw ONNX Runtime script starts
with (`import onnxruntime`); the explorer dashboard's kernel work (imports + building the page on the shipped
results) is printed for the first-paint bar, which benchmarks/ui_latency.py measures in a real browser.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from common import header, verdict

COMMANDS = {
    "python (interpreter floor)": "pass",
    "import workbench": "import workbench",
    "reference: import onnxruntime": "import onnxruntime",
    "reference: import torch": "import torch",
    "import workbench + Prune/Quantize/compress": "import workbench; workbench.Prune; workbench.compress",
    "dashboard kernel: explorer page on shipped results":
        "from workbench.ui import TradeoffExplorer, demo_page; demo_page(TradeoffExplorer)",
}


def timed(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    header("Start-up: each command in a fresh interpreter, median of interleaved runs")
    for code in COMMANDS.values():  # warm the OS file cache once, untimed
        timed(code)
    runs: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(args.runs):
        for label, code in COMMANDS.items():
            runs[label].append(timed(code))
    med = {k: statistics.median(v) for k, v in runs.items()}
    for label, v in runs.items():
        print(f"  {label:52s} {med[label]:6.2f} s  (runs {', '.join(f'{x:.2f}' for x in v)})")
    print()
    imp, ref = med["import workbench"], med["reference: import onnxruntime"]
    verdict("import workbench < 1 s", imp < 1.0, f"{imp:.2f} s (interpreter floor {med['python (interpreter floor)']:.2f} s)")
    verdict("import workbench <= a raw script's `import onnxruntime`", imp <= ref, f"{imp:.2f} s vs {ref:.2f} s")
    page = med["dashboard kernel: explorer page on shipped results"]
    verdict("explorer kernel work (imports + page) < 5 s (browser first paint: benchmarks/ui_latency.py)", page < 5.0,
            f"{page:.2f} s")


if __name__ == "__main__":
    main()
