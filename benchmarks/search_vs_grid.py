"""Search against the grid: how much of the full grid's hypervolume `workbench.search` reaches with k evaluations,
and, on a per-layer space too large to grid, whether search finds a variant that dominates the best uniform one.

    python benchmarks/search_vs_grid.py [--store DIR] [--seeds 0 1 2] [--fast]

Part 1 (bar: >= 95 % of the grid's hypervolume with <= 30 % of its evaluations). The default task (kws) on a
uniform grid of ~100 points (prune x structure x bits x recovery), objectives accuracy (max), measured p50 latency
and file size (min). The grid is swept once into a store; each search then runs on *that* store, so a variant it
asks for is read back exactly as the grid measured it: the comparison is sample efficiency, not two noisy
measurements of the same model. An evaluation is one distinct variant asked for (a trial that repeats a point
costs nothing). The hypervolume of both is on the grid's box (`workbench.searches.bounds`). NSGA-II (the default
sampler) and TPE are printed per k, with random sampling as the reference a search must beat.

Part 2 (bar: search dominates the best uniform-bit variant). kws with every weight layer at {5, 4, 3} bits
(3^10 = 59049 points: too many to grid; see `LAYER_BITS` for why these widths), objectives accuracy (max) and
packed weight bytes (min: ``weight_bytes``, parameters x bits / 8, the size a packed format would have; ONNX
Runtime does not realise these widths, so they are simulated, and said so). The best uniform variant is the one
`best()` picks among q8 / q5 / q4 / q3: the smallest whose accuracy is within 1 point of the original's. PASS when
a searched variant dominates it (at least as accurate and as small, better in one); every uniform variant on the
uniform front is checked and printed too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import header, verdict  # noqa: E402

OBJECTIVES = {"accuracy": "max", "latency_ms_p50": "min", "size_bytes": "min"}
FRACTIONS = (0.1, 0.2, 0.3)


def big_grid(fast: bool):
    import workbench

    if fast:
        return workbench.grid(prune=[0, 0.5, 0.75], structure=["unstructured", "channel"], bits=[32, 8, 4],
                              recover=[None, 50], limit=200)
    return workbench.grid(prune=[0, 0.25, 0.5, 0.625, 0.75], structure=["unstructured", "channel", "2:4"],
                          bits=[32, 16, 8, 4, 2], recover=[None, 100])


def distinct_after(df, k: int):
    """The rows of the first `k` distinct variants the search asked for (by first trial)."""
    order = df.drop_duplicates("unit").sort_values("trial")["unit"].tolist()[:k]
    return df[df["unit"].isin(order)], len(order)


class Enough(Exception):
    """Raised from `on_trial` once the search has asked for enough distinct variants."""


def make_sampler(name: str, seed: int, budget: int):
    """The sampler for an evaluation budget: NSGA-II with a population of a third of it (8 or more), so that
    several generations fit; multivariate TPE after a few random trials; or random sampling (the reference)."""
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(8, budget // 3), seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(5, budget // 4), multivariate=True)
    return optuna.samplers.RandomSampler(seed=seed)


def search_curve(task, g, store: Path, sampler: str, seed: int, ks: list[int], box) -> dict[int, float]:
    """The hypervolume after k distinct evaluations, for each k, from one study run until it has max(ks)."""
    import workbench
    from workbench.searches import hypervolume

    n = max(ks)
    seen: set[str] = set()
    trials = [0]

    def count(t: dict) -> None:
        trials[0] += 1
        seen.add(t["row"]["unit"])
        if len(seen) >= n:
            raise Enough

    kw = dict(objectives=OBJECTIVES, sampler=make_sampler(sampler, seed, n), seed=seed, store=store,
              progress=False, memory=False)
    try:  # repeated points cost nothing, so the trial count is generous; it stops at n distinct variants
        workbench.search(task, g, n_trials=30 * n, on_trial=count, **kw)
    except Enough:
        pass
    df = workbench.search(task, g, n_trials=max(trials[0], 1), **kw)  # finished: reads the study back
    out: dict[int, float] = {}
    for k in ks:
        rows, got = distinct_after(df, k)
        out[k] = hypervolume(rows, OBJECTIVES, box=box) if got >= k else float("nan")
    return out


def part1(store_dir: Path, seeds: list[int], fast: bool) -> bool:
    import workbench
    from workbench.searches import bounds, hypervolume

    task = workbench.zoo.load("kws")
    g = big_grid(fast)
    store = store_dir / "grid.sqlite"
    (store_dir / "grid.optuna.log").unlink(missing_ok=True)  # fresh studies; the measurements stay stored
    t0 = time.perf_counter()
    full = workbench.sweep(task, g, store=store, progress=True, memory=False)
    print(f"\nPart 1: grid of {len(g)} variants on kws (onnxruntime), swept in {time.perf_counter() - t0:.0f} s "
          "(read back if stored)")
    box = bounds(full, OBJECTIVES)
    hv_grid = hypervolume(full, OBJECTIVES, box=box)
    ks = sorted({max(2, round(f * len(g))) for f in FRACTIONS})
    print(f"grid hypervolume {hv_grid:.4f} (objectives {OBJECTIVES}); search hypervolume / grid's after k distinct "
          "evaluations:")
    print(f"  {'sampler':8s} {'seed':>4s} " + " ".join(f"k={k:<3d}({k / len(g):.0%})" for k in ks))
    results: dict[str, list[dict[int, float]]] = {}
    for sampler in ("nsga2", "tpe", "random"):
        for seed in seeds:
            # a fresh study per (sampler, seed); the store (and so every measurement) is the grid's own
            curve = search_curve(task, g, store, sampler, seed, ks, box)
            results.setdefault(sampler, []).append(curve)
            print(f"  {sampler:8s} {seed:>4d} " + " ".join(f"{curve[k] / hv_grid:>10.1%}" for k in ks), flush=True)
    k30 = max(k for k in ks if k <= 0.3 * len(g) + 1e-9)
    med = {s: statistics.median(c[k30] / hv_grid for c in cs) for s, cs in results.items()}
    print(f"  median at k={k30}: " + ", ".join(f"{s} {v:.1%}" for s, v in med.items()))
    ok = med["nsga2"] >= 0.95
    verdict(f"search reaches >= 95 % of the grid's hypervolume with <= 30 % of its evaluations (NSGA-II, k={k30} "
            f"of {len(g)})", ok, f"median over seeds {seeds}: {med['nsga2']:.1%} (TPE {med['tpe']:.1%}, random "
            f"{med['random']:.1%})")
    return ok


LAYER_BITS = {"kws": [5, 4, 3], "minilm": [8, 4]}
"""Part 2's per-layer choices. kws: the neighbourhood of its best uniform width (4 bits sits on the 1-point floor;
uniform 3 bits loses 20 points, 2 bits any single layer of an all-4 model costs 1-42 points, 8 bits only adds
bytes), so every layer picks 3, 4 or 5 bits: 3^10 = 59049 points."""


def part2(store_dir: Path, trials: int, fast: bool, task_name: str = "kws") -> bool:
    import workbench
    from workbench.searches import Space

    task = workbench.zoo.load(task_name)
    limit = 200 if fast or task_name == "minilm" else None  # MiniLM: ~30 s a variant on the whole split
    store = store_dir / "layers.sqlite"
    (store_dir / "layers.optuna.log").unlink(missing_ok=True)
    choices = LAYER_BITS[task_name]
    widths = sorted({32, 8, *choices}, reverse=True)
    uniform = workbench.sweep(task, workbench.grid(prune=[0], bits=widths, limit=limit), store=store,
                              progress=False, memory=False)
    base = float(uniform.loc[uniform["variant"] == "baseline", "accuracy"].iloc[0])
    floor = base - 0.01
    quant = workbench.pareto(uniform[uniform["variant"] != "baseline"], maximize=["accuracy"],
                             minimize=["weight_bytes"])
    best_u = workbench.best(quant, min_accuracy=floor, objective="weight_bytes", realized_only=False)
    space = Space.per_layer(task, bits=choices, limit=limit)
    t0 = time.perf_counter()
    df = workbench.search(task, space, objectives={"accuracy": "max", "weight_bytes": "min"},
                          constraints={"min_accuracy": floor}, n_trials=trials, store=store, progress=True,
                          memory=False)
    print(f"\nPart 2: per-layer bits {choices} on {task_name}'s {len(space.layer_bits)} weight layers "
          f"({space.size} points), NSGA-II, {trials} trials ({df.attrs['evaluated']} measured) in "
          f"{time.perf_counter() - t0:.0f} s; accuracy floor {floor:.4f} (original {base:.4f} - 1 pt); sizes are "
          "packed weight bytes (these widths are simulated on ONNX Runtime)")
    for _, r in quant.iterrows():
        print(f"  uniform {r['variant']:4s}: accuracy {r['accuracy']:.4f}, weight bytes {int(r['weight_bytes'])}"
              + ("  (on the uniform front)" if r["pareto"] else ""))
    print(f"  best uniform under the floor (best(): the smallest within 1 pt): {best_u['variant']} "
          f"({best_u['accuracy']:.4f}, {int(best_u['weight_bytes'])} B)")
    front = df[df["pareto"]].sort_values("weight_bytes")
    for _, r in front.head(10).iterrows():
        print(f"  search front: trial {int(r['trial']):3d} {r['variant']:16s} accuracy {r['accuracy']:.4f} "
              f"(CI {r['accuracy_low']:.3f}-{r['accuracy_high']:.3f}), weight bytes {int(r['weight_bytes'])}")

    def dominating(u):
        return df[df["feasible"] & (df["accuracy"] >= u["accuracy"]) & (df["weight_bytes"] <= u["weight_bytes"])
                  & ((df["accuracy"] > u["accuracy"]) | (df["weight_bytes"] < u["weight_bytes"]))]

    for _, u in quant[quant["pareto"] & (quant["accuracy"] >= floor)].iterrows():
        d = dominating(u).sort_values("weight_bytes")
        if len(d):
            r = d.iloc[0]
            print(f"  {u['variant']} is dominated by {len(d)} searched variant(s), e.g. {r['variant']}: "
                  f"accuracy {r['accuracy']:.4f} vs {u['accuracy']:.4f}, {int(r['weight_bytes'])} vs "
                  f"{int(u['weight_bytes'])} B ({1 - r['weight_bytes'] / u['weight_bytes']:.1%} smaller)")
        else:
            print(f"  {u['variant']} is dominated by no searched variant")
    dom = dominating(best_u).sort_values("weight_bytes")
    detail = (f"{len(dom)} searched variant(s) dominate {best_u['variant']}"
              + (f", the smallest {dom.iloc[0]['variant']}: accuracy {dom.iloc[0]['accuracy']:.4f} vs "
                 f"{best_u['accuracy']:.4f} at {int(dom.iloc[0]['weight_bytes'])} vs {int(best_u['weight_bytes'])} B; "
                 "accuracy differences this small are within the evaluation's noise (see the intervals)"
                 if len(dom) else ""))
    verdict("per-layer search dominates the best uniform-bit variant (accuracy and packed weight bytes)", bool(len(dom)),
            detail)
    return bool(len(dom))


def part3(store_dir: Path) -> None:
    """Parallel trials time one at a time: the latency a 2-worker search stores against a serial search's, per
    variant (not a bar: the evidence that parallel search does not bias the objective it optimises)."""
    import shutil

    import workbench
    from workbench.searches import Space

    space = Space(prune=[0, 0.5], structure=["unstructured", "channel"], bits=[32, 8, 4])
    runs = {}
    for ex in ("serial", "processes"):
        where = store_dir / f"timing-{ex}"
        shutil.rmtree(where, ignore_errors=True)
        t0 = time.perf_counter()
        runs[ex] = workbench.search("kws", space, objectives=OBJECTIVES, n_trials=12, store=where / "r.sqlite",
                                    executor=ex, workers=2, progress=False, memory=False)
        print(f"  {ex:9s}: {runs[ex].attrs['evaluated']} variants measured in {time.perf_counter() - t0:.0f} s")
    both = runs["serial"].merge(runs["processes"], on="variant", suffixes=("_s", "_p"))
    ratio = both["latency_ms_p50_p"] / both["latency_ms_p50_s"]
    iqr = (both["latency_ms_iqr_s"] / both["latency_ms_p50_s"]).median()
    print(f"\nPart 3: parallel (2 processes, timing serialised) / serial p50 latency over {len(both)} common variants: "
          f"median {ratio.median():.2f}x, range {ratio.min():.2f}-{ratio.max():.2f}x (a serial run's own spread, IQR / "
          f"p50: {iqr:.0%})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default="bench-search", help="folder for the stores (reused: a re-run reads back)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(11)),
                   help="seeds per sampler (the searches read the stored grid, so many seeds are cheap)")
    p.add_argument("--trials", type=int, default=150, help="trials of the per-layer search (part 2)")
    p.add_argument("--fast", action="store_true", help="a smaller grid and evaluation split (a quick look)")
    p.add_argument("--layers-task", default="kws", choices=["kws", "minilm"],
                   help="part 2's model: kws at {8, 4, 2} bits (default) or MiniLM's 37 linear layers at {8, 4}")
    p.add_argument("--part", type=int, choices=[1, 2, 3], help="run only this part")
    a = p.parse_args()
    header("search vs grid: hypervolume per evaluation (workbench.search on Optuna)", threads=1)
    out = Path(a.store)
    out.mkdir(parents=True, exist_ok=True)
    if a.part in (None, 1):
        part1(out, a.seeds, a.fast)
    if a.part in (None, 2):
        part2(out, a.trials, a.fast, a.layers_task)
    if a.part in (None, 3):
        part3(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
