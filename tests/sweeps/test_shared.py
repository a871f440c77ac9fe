"""Work shared by a sweep's variants: one recovery per prune point, one ONNX trace per architecture, and the
executors' grouping that keeps a prune point's bit-widths in one worker."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import workbench
from workbench.compression import Prune, Quantize
from workbench.compression import recover as recover_module
from workbench.formats.convert import to_onnx
from workbench.sweeps import shared
from workbench.sweeps.executors import families
from workbench.sweeps.units import Unit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_prune_point_is_recovered_once_for_all_its_bit_widths(digits, tmp_path, monkeypatch):
    steps = []
    real_step = recover_module.constrained_step
    monkeypatch.setattr(recover_module, "constrained_step", lambda *a: (steps.append(1), real_step(*a)))
    g = workbench.grid(prune=[0.5], structure=["channel"], bits=[32, 4, 2], recover=[3], limit=50)
    df = workbench.sweep(digits, g, store=tmp_path / "r.sqlite", progress=False, memory=False)
    assert set(df["variant"]) == {"baseline", "channel-0.50+r3", "channel-0.50+r3+q4", "channel-0.50+r3+q2"}
    assert df["error"].isna().all()
    assert len(steps) == 3  # one Recover(steps=3) for the three bit-widths, not three


def _graph(path):
    m = onnx.load(str(path))
    nodes = [(n.op_type, list(n.input), list(n.output), [a.SerializeToString() for a in n.attribute])
             for n in m.graph.node]
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    io = ([i.SerializeToString() for i in m.graph.input], [o.SerializeToString() for o in m.graph.output])
    return nodes, inits, io, list(m.opset_import)


def test_a_derived_onnx_file_is_the_direct_export(digits):
    # Unstructured pruning keeps every shape, so this variant reuses the original model's trace.
    variant = workbench.compress(digits.model, Prune(0.5), Quantize(4), task=digits)
    assert shared.architecture_key(variant) == shared.architecture_key(digits.model)
    derived = shared.share_onnx(variant)
    assert derived is not None and to_onnx(variant) == derived
    direct = to_onnx(dataclasses.replace(variant, _artifacts={}))  # a fresh handle: exported the usual way
    assert direct != derived
    (nodes_a, inits_a, io_a, ops_a), (nodes_b, inits_b, io_b, ops_b) = _graph(derived), _graph(direct)
    assert nodes_a == nodes_b and io_a == io_b and ops_a == ops_b
    assert inits_a.keys() == inits_b.keys()
    for name in inits_a:
        np.testing.assert_array_equal(inits_a[name], inits_b[name], err_msg=name)


def test_one_trace_per_architecture_and_files_reused_across_processes(digits, tmp_path, monkeypatch):
    # An empty cache: an earlier test of this process may have left these variants' files on disk already.
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    before = dataclasses.replace(shared.STATS)
    same = [workbench.compress(digits.model, *c, task=digits) for c in ([Quantize(8)], [Prune(0.25), Quantize(2)])]
    narrow = workbench.compress(digits.model, Prune(0.25, structure="channel"), task=digits)
    for h in (*same, narrow):
        assert shared.share_onnx(h) is not None
    # The original model's architecture may have been traced by an earlier test of this process.
    assert shared.STATS.traces - before.traces in (1, 2)
    assert shared.STATS.derived - before.derived == 3 and shared.STATS.fallbacks == before.fallbacks
    fresh = dataclasses.replace(same[0], _artifacts={})  # as another process sees the variant: found on disk
    traces = shared.STATS.traces
    assert shared.share_onnx(fresh) == shared.share_onnx(same[0]) and shared.STATS.traces == traces


class Scaled(torch.nn.Module):
    """A forward that reads a plain attribute: the trace bakes it in, and the state dict does not show it."""

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x) * self.k


def test_a_derived_file_that_disagrees_with_torch_is_not_used(tmp_path, monkeypatch):
    # An empty cache: a file found on disk is trusted by its key (same weights, same architecture), which cannot
    # see the attribute this model bakes into its trace; the check below is about a file derived in this process.
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    x = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    torch.manual_seed(0)
    one = workbench.load(Scaled(1.0), example_inputs=[x], name="scaled")
    two = workbench.load(Scaled(3.0), example_inputs=[x], name="scaled")
    two.module.load_state_dict(one.module.state_dict())
    assert shared.architecture_key(one) == shared.architecture_key(two)
    fallbacks = shared.STATS.fallbacks
    assert shared.share_onnx(one) is not None
    assert shared.share_onnx(two) is None and shared.STATS.fallbacks == fallbacks + 1
    out = workbench.runtime(two, "onnxruntime")(x)[0]  # exported directly: the right factor
    np.testing.assert_allclose(out, two.module(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_families_keep_a_prune_point_together_and_fill_every_worker():
    g = workbench.grid(prune=[0, 0.25, 0.5], structure=["unstructured", "channel"], bits=[32, 8, 4], recover=[10])
    units = [Unit(s, "onnxruntime", s.label, ()) for s in g]
    groups = families(units, workers=2)
    assert sorted(u.spec.label for f in groups for u in f) == sorted(s.label for s in g)
    pruned = [f for f in groups if f[0].spec.prune]
    assert len(pruned) == 4 and all(len({(u.spec.prune, u.spec.structure) for u in f}) == 1 for f in pruned)
    assert all(len(f) == 3 for f in pruned) and groups[:4] == pruned  # the fine-tuning groups start first
    assert [len(f) for f in groups if not f[0].spec.prune] == [1, 1, 1]  # nothing to share: one unit each
    one = [Unit(s, "onnxruntime", s.label, ()) for s in workbench.grid(prune=[0.5], structure=["channel"],
                                                                     bits=[32, 8, 4, 2], recover=[10])][1:]
    assert [len(f) for f in families(one, workers=2)] == [2, 2]  # one family, two workers: split


def test_a_serial_sweep_builds_and_times_on_the_grids_threads(digits, tmp_path):
    seen = []
    g = workbench.grid(prune=[0], bits=[32, 8], threads=2, limit=20)
    workbench.sweep(digits, g, store=tmp_path / "t.sqlite", progress=False, memory=False,
                    on_result=lambda row: seen.append(torch.get_num_threads()))
    assert seen == [2, 2] and torch.get_num_threads() == 1  # restored afterwards (the module fixture set 1)


def test_a_serial_sweep_fine_tunes_prune_points_in_a_helper_with_the_same_result(digits):
    from workbench.compression import Recover
    from workbench.sweeps.prebuild import Prebuild, cost

    g = workbench.grid(prune=[0.3], structure=["unstructured", "channel"], bits=[32, 4], recover=[3], limit=50)
    specs = [s for s in g if s.prune]
    assert cost(specs[-1]) < cost(specs[0])  # narrower layers fine-tune faster
    heads_here = shared.STATS.heads
    ahead = Prebuild(digits, g, specs, processes=2)
    try:
        ahead.ready(specs[0])
    finally:
        ahead.close()
    assert shared.STATS.heads - heads_here == 1  # one prune point built here, the other by the helper
    for structure in ("unstructured", "channel"):
        configs = [Prune(0.3, structure=structure, scope=g.scope), Recover(steps=3)]
        key = shared.head_key(digits, configs)
        assert shared.has_head(key)
        alone = workbench.compress(digits.model, *configs, task=digits)  # built again, here, from scratch
        built = shared.build_variant(digits, configs)
        assert built.fingerprint == alone.fingerprint and built.origin is digits.model, structure
