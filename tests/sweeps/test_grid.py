"""Grids: what gets built, what is dropped and why, and the YAML round trip."""

from __future__ import annotations

import pytest

import workbench
from workbench.core.errors import WorkbenchError
from workbench.sweeps.spec import Grid, VariantSpec, load_spec


def test_default_grid_has_baseline_first_and_no_duplicate_unpruned_variants():
    g = workbench.grid()
    labels = [v.label for v in g]
    assert labels[0] == "baseline"
    assert len(labels) == len(set(labels))
    # 3 pruned ratios x 2 structures + the unpruned model, each at 5 bit-widths
    assert len(g) == (3 * 2 + 1) * 5
    assert sum(1 for v in g if v.prune == 0) == 5
    assert all(v.structure is None for v in g if v.prune == 0)
    assert {r for _, r in g.dropped} == {"prune 0 has no structure: same variant as the unpruned one"}


def test_impossible_combinations_are_dropped_with_reasons():
    g = workbench.grid(prune=[0, 0.25, 0.5], structure=["2:4"], bits=[32], recover=[None, 50])
    assert [v.label for v in g] == ["baseline", "2:4", "2:4+r50"]
    reasons = {(s.prune, s.recover): r for s, r in g.dropped}
    assert "exactly half" in reasons[(0.25, None)]
    assert reasons[(0.0, 50)] == "nothing pruned, so nothing to recover"


def test_unpruned_bit_widths_stay_when_every_pruned_variant_is_recovered():
    g = workbench.grid(prune=[0, 0.5], structure=["channel"], bits=[32, 8], recover=[200])
    assert [v.label for v in g] == ["baseline", "q8", "channel-0.50+r200", "channel-0.50+r200+q8"]


def test_variant_configs_build_the_pipeline_in_order():
    spec = VariantSpec(0.5, "channel", 8, 100)
    kinds = [c.kind for c in spec.configs()]
    assert kinds == ["prune", "recover", "quantize"]
    assert spec.configs()[0].scope.value == "layer"
    assert VariantSpec(bits=16).configs()[0].label == "fp16"
    assert VariantSpec().configs() == []
    assert spec.label == "channel-0.50+r100+q8"


@pytest.mark.parametrize("kw", [
    dict(prune=[1.0]), dict(prune=[-0.1]), dict(bits=[12]), dict(bits=[True]), dict(structure=["rows"]),
    dict(runtimes=["tensorrt"]), dict(runtimes=[]), dict(recover=[0]), dict(threads=0), dict(limit=0),
    dict(scope="model"), dict(prune=[]),
])
def test_bad_grids_raise_value_error(kw):
    with pytest.raises(ValueError):
        workbench.grid(**kw)


def test_yaml_round_trip(tmp_path):
    g = workbench.grid(prune=[0, 0.5], structure="channel", bits=[32, 8], recover=[None, 20],
                       runtimes=["onnxruntime", "litert"], devices=["raspberry-pi-4"], limit=100)
    path = g.save(tmp_path / "spec.yaml", task="digits-cnn")
    task, back = load_spec(path)
    assert task == "digits-cnn"
    assert back == g and [v.label for v in back] == [v.label for v in g]


def test_bad_spec_files_say_what_is_wrong(tmp_path):
    with pytest.raises(WorkbenchError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("prune: [0, 0.5]\nbitz: [8]\n")
    with pytest.raises(WorkbenchError, match="unknown field.*bitz"):
        load_spec(bad)
    bad.write_text("prune: [2]\n")
    with pytest.raises(WorkbenchError, match="prune"):
        load_spec(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(WorkbenchError, match="mapping"):
        load_spec(bad)
    assert isinstance(load_spec(_write(tmp_path / "ok.yaml", "bits: [8]\n"))[1], Grid)


def _write(path, text):
    path.write_text(text)
    return path
