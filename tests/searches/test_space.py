"""`Space`: validation, grid equivalence, canonical points, per-layer spaces, the YAML round trip."""

from __future__ import annotations

import pytest

import workbench
from workbench.core.errors import WorkbenchError
from workbench.searches import Space, load_search_spec
from workbench.sweeps.spec import VariantSpec


def test_from_grid_reaches_exactly_the_grid_points():
    g = workbench.grid(prune=[0, 0.25, 0.5], structure=["unstructured", "channel", "2:4"], bits=[32, 16, 8, 4],
                       recover=[None, 10])
    s = Space.from_grid(g)
    reached = {s.point(p) for p in s.points()}
    assert reached == set(g.variants)  # every grid point, and nothing the grid drops (2:4 at 0.25, r10 unpruned)


@pytest.mark.parametrize("kw, words", [
    ({"prune": [1.0]}, "prune"), ({"bits": [12]}, "bits"), ({"structure": ["rows"]}, "structure"),
    ({"bits": [32], "layer_bits": {"classifier": [4]}}, "integer"), ({"order": ["backwards"]}, "order"),
    ({"structure": ["2:4"], "layer_prune": {"classifier": [0.5]}}, "2:4"), ({"runtimes": ["nope"]}, "runtimes"),
    ({"layer_bits": {"classifier": []}}, "at least one"),
])
def test_bad_spaces_say_what_is_wrong(kw, words):
    with pytest.raises(ValueError, match=words):
        Space(**kw)


def test_point_is_canonical_so_equivalent_trials_share_a_key():
    s = Space(prune=[0, 0.5], structure=["channel", "2:4"], bits=[32, 8], recover=[None, 10],
              group_size=[None, 32], order=["prune-first", "quantize-first"])
    # nothing pruned: no structure, nothing to recover, no order; float: no quantisation options
    assert s.point({"prune": 0.0, "structure": "2:4", "recover": 10, "bits": 32, "group_size": 32,
                    "order": "quantize-first"}) == VariantSpec()
    q = s.point({"prune": 0.5, "structure": "channel", "bits": 8, "order": "quantize-first"})
    assert q.label == "q8+channel-0.50" and [c.kind for c in q.configs()] == ["quantize", "prune"]
    with pytest.raises(ValueError, match="not one of"):
        s.point({"bits": 4})


def test_layer_choices_equal_to_the_uniform_one_are_not_overrides():
    s = Space(prune=[0.0], bits=[8, 4], layer_bits={"classifier": [8, 4]})
    assert s.point({"bits": 8, "layer_bits:classifier": 8}) == s.point({"bits": 8}) == VariantSpec(bits=8)
    mixed = s.point({"bits": 8, "layer_bits:classifier": 4})
    assert mixed.layer_bits == (("classifier", 4),)
    assert mixed.to_dict()["layer_bits"] == '{"classifier": 4}'
    (q,) = mixed.configs()
    assert q.per_layer == (("classifier", 4),) and q.bits == 8


def test_uniform_points_keep_the_keys_sweeps_wrote():
    spec = VariantSpec(0.5, "channel", 8, 200)
    assert spec.to_dict() == {"prune": 0.5, "structure": "channel", "bits": 8, "recover": 200}
    assert spec.label == "channel-0.50+r200+q8"


def test_per_layer_space_pins_fragile_layers():
    task = workbench.zoo.load("kws")
    s = Space.per_layer(task, bits=[8, 4, 2], pin=["stem.conv", "classifier"])
    dims = s.dimensions()
    assert dims["layer_bits:stem.conv"] == (8,) and dims["layer_bits:classifier"] == (8,)
    assert dims["layer_bits:blocks.0.pw.conv"] == (8, 4, 2)
    assert s.size == 3 ** 8
    import pandas as pd

    sens = pd.DataFrame({"layer": ["blocks.0.dw.conv", "blocks.1.pw.conv"], "drop": [0.2, 0.001]})
    s2 = Space.per_layer(task, bits=[8, 4], sensitivity=sens)
    assert s2.dimensions()["layer_bits:blocks.0.dw.conv"] == (8,)
    assert s2.dimensions()["layer_bits:blocks.1.pw.conv"] == (8, 4)
    with pytest.raises(ValueError, match="no layer"):
        Space.per_layer(task, pin=["stem"])


def test_spec_round_trips_through_yaml(tmp_path):
    s = Space(prune=[0, 0.5], structure="channel", bits=[8, 4], layer_bits={"classifier": [8, 4]},
              recover=[None, 20], devices=["raspberry-pi-4"], limit=50)
    path = s.save(tmp_path / "s.yaml", task="kws", objectives={"accuracy": "max", "size_bytes": "min"},
                  constraints={"min_accuracy": 0.8}, n_trials=12)
    task, back, settings = load_search_spec(path)
    assert (task, back) == ("kws", s)
    assert settings == {"objectives": {"accuracy": "max", "size_bytes": "min"}, "constraints": {"min_accuracy": 0.8},
                        "n_trials": 12}


def test_bad_spec_files_are_clear_errors(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("task: kws\nspace: {bits: [8]}\nsearch: {trials: 3}\n")
    with pytest.raises(WorkbenchError, match="unknown field"):
        load_search_spec(p)
    p.write_text("space: {bits: [12]}\n")
    with pytest.raises(WorkbenchError, match="bits"):
        load_search_spec(p)
    with pytest.raises(WorkbenchError, match="does not exist"):
        load_search_spec(tmp_path / "missing.yaml")


def test_per_layer_pruning_is_searched_and_pinned_layers_stay_whole():
    task = workbench.zoo.load("kws")
    s = Space.per_layer(task, bits=[32], prune=[0.0, 0.5], structure="unstructured", pin=["classifier"], limit=60)
    free = [k for k, c in s.dimensions().items() if k.startswith("layer_prune:") and len(c) > 1]
    spec = s.point({free[0]: 0.5})
    assert dict(spec.layer_prune) == {free[0].split(":", 1)[1]: 0.5, "classifier": 0.0}
    assert spec.structure == "unstructured" and spec.prune == 0.0
    (cfg,) = spec.configs()
    variant = workbench.compress(task.model, cfg, task=task)
    meta = variant.meta["prune_per_layer"]
    assert meta[free[0].split(":", 1)[1]] == 0.5 and meta.get("classifier", 0.0) == 0.0
    assert s.point({}) == VariantSpec()  # nothing pruned anywhere: the original, pins and all
