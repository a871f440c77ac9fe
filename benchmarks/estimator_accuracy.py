"""Estimator accuracy on this machine: fit the host profile on one set of variants, check it on another.

    .venv/bin/python benchmarks/estimator_accuracy.py [--rounds 9] [--seconds 0.1] [--no-minilm]

Every variant, calibration and evaluation alike, is timed in the same interleaved rounds (ONNX Runtime, one
thread, batch 1), so both sets see the same machine conditions. The host profile is fitted on the calibration
set only (the synthetic variants of `workbench.measurement.calibration_variants`); the estimator then predicts the held-out set:
the three zoo models and further variants (width- and resolution-scaled CNNs, with channel counts that are and are
not multiples of 8, truncated MiniLMs, an MLP and an encoder of other sizes, a channel-pruned digits CNN when the
compression package provides `Prune`).

Two clocks are reported: CPU time of the calling thread (what an idle core would see; robust when other jobs
share the machine) and wall-clock `time_runner` p50. Each is the quietest of the interleaved rounds. The
profile is fitted separately for each clock. Goal: >= 90 % of held-out variants within +/-15 %.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from common import header, verdict

import workbench
from workbench.hardware import estimate
from workbench.measurement.calibrate import fit_host, measure_latencies, memory_bandwidth
from workbench.measurement.calibration_variants import calibration_variants, encoder, mlp, scaled_cnn, truncated_minilm


def evaluation_variants(minilm: bool = True) -> dict[str, workbench.ModelHandle]:
    out = calibration_variants(("digits-cnn", "silero-vad") + (("minilm",) if minilm else ()), synthetic=False)
    out.update({
        "cnn-w1.5": scaled_cnn(1.5),
        "cnn-w0.75": scaled_cnn(0.75),
        "cnn-w1.05": scaled_cnn(1.05),
        "cnn-r16": scaled_cnn(1.0, 16),
        "cnn-w2-r64": scaled_cnn(2.0, 64),
        "mlp-512-768x3": mlp(512, 768, 3),
        "encoder-d192x3": encoder(192, 3, 768, 3),
    })
    if minilm:
        out.update({"minilm-L2": truncated_minilm(2), "minilm-L4": truncated_minilm(4)})
    try:  # a compressed variant, if the compression package has structured pruning
        from workbench.compression.base import compress
        from workbench.compression.prune import Prune

        task = workbench.zoo.load("digits-cnn")
        out["digits-cnn-pruned50"] = compress(task.model, Prune(0.5, structure="channel"), task=task)
    except (ImportError, AttributeError, TypeError, workbench.WorkbenchError) as e:
        print(f"(skipping the pruned variant: {e})")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--seconds", type=float, default=0.1)
    p.add_argument("--no-minilm", action="store_true", help="skip MiniLM (about 10 s to load and export)")
    p.add_argument("--times", help="CSV of earlier timings to reuse (written by --save) instead of measuring")
    p.add_argument("--save", help="write the timings to this CSV")
    args = p.parse_args()

    header("Host latency estimates against measured latency (ONNX Runtime, batch 1)", threads=1)
    calib = calibration_variants((), synthetic=True)
    held_out = evaluation_variants(minilm=not args.no_minilm)
    handles = {**calib, **held_out}
    print(f"timing {len(calib)} calibration + {len(held_out)} held-out variants, {args.rounds} interleaved rounds "
          "(ONNX Runtime, 1 thread, batch 1) ...")
    if args.times:
        times = pd.read_csv(args.times).set_index("variant")
    else:
        times = measure_latencies(handles, rounds=args.rounds, seconds=args.seconds, clock="cpu").set_index("variant")
    if args.save:
        times.reset_index().to_csv(args.save, index=False)
    main_bw = memory_bandwidth()
    shares = {}
    for clock, column in (("cpu", "cpu_ms"), ("wall", "wall_ms")):
        prof = fit_host(calib, times[column].to_dict(), clock=clock, main_bw=main_bw)
        rows = []
        for name, h in handles.items():
            est = estimate(h, prof).latency_ms_est
            measured = times.loc[name, column]
            rows.append({"set": "calibration" if name in calib else "held-out", "variant": name,
                         "measured_ms": measured, "estimated_ms": est, "error_%": 100 * (est / measured - 1),
                         "spread_%": 100 * times.loc[name, "spread"]})
        df = pd.DataFrame(rows)
        ev = df[df.set == "held-out"]
        shares[clock] = float((ev["error_%"].abs() <= 15).mean())
        if clock == "cpu":
            with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
                print(f"\nclock = {clock} (CPU time of the calling thread; quietest of {args.rounds} rounds)")
                print(df.to_string(index=False))
            effs = {k: round(v, 3) for k, v in prof.kind_efficiency.items()}
            print(f"\nfitted host profile: efficiency {effs}, "
                  f"memory {prof.efficiency['memory']:.2f} of {prof.memory_bandwidth_bytes_s / 1e9:.1f} GB/s, "
                  f"cache {prof.cache_bandwidth_bytes_s / 1e9:.1f} GB/s, "
                  f"LLC {prof.llc_bandwidth_bytes_s / 1e9:.1f} GB/s, tile rows {prof.tile_rows:.1f}, "
                  f"serial fraction {prof.serial_fraction:.2f}, "
                  f"overhead/layer {prof.layer_overhead_s * 1e6:.2f} us, "
                  f"per kind {({k: round(v * 1e6, 2) for k, v in prof.kind_overhead_s.items()})} us, "
                  f"per inference {prof.inference_overhead_s * 1e6:.1f} us, "
                  f"peak fp32 {prof.peak_ops['fp32'] / 1e9:.0f} GFLOP/s")
        print(f"clock = {clock}: {int(round(shares[clock] * len(ev)))}/{len(ev)} held-out variants within +/-15 % "
              f"({100 * shares[clock]:.0f} %; median |error| {np.median(ev['error_%'].abs()):.1f} %)")
    print(f"\nshare within +/-15 %: {100 * shares['cpu']:.0f} % (CPU time), {100 * shares['wall']:.0f} % "
          "(wall clock); goal >= 90 %")
    for clock in ("cpu", "wall"):
        verdict(f"host latency estimates within +/-15 % for >= 90 % of held-out variants ({clock} clock)",
                shares[clock] >= 0.9, f"{100 * shares[clock]:.0f} %")


if __name__ == "__main__":
    main()
