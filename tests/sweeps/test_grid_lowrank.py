"""The grid's `lowrank=` axis: parsing and canonical values, labels and configs, YAML, rows, searches, a sweep."""

from __future__ import annotations

import pytest

import workbench
from workbench.compression.lowrank import LowRank
from workbench.searches.space import Space, load_search_spec
from workbench.sweeps.frame import spec_columns, spec_of_lineage, spec_of_row
from workbench.sweeps.shared import split_head
from workbench.sweeps.spec import VariantSpec, load_spec, lowrank_choice


@pytest.mark.parametrize("value, canonical", [
    (None, None), (0.5, "svd-0.5"), (1, "svd-1"), ("tucker-0.5", "tucker-0.5"), ("cp-0.250", "cp-0.25"),
    ("lowrank-tucker-0.50", "tucker-0.5"), ("lowrank-0.25", "svd-0.25"), ("0.25", "svd-0.25"),
    ({"ratio": 0.5, "method": "tucker"}, "tucker-0.5"), ({"ratio": 0.25}, "svd-0.25"),
])
def test_values_are_canonicalised(value, canonical):
    assert lowrank_choice(value) == canonical


@pytest.mark.parametrize("bad, match", [
    ("tt-0.5", r"method must be one of svd, tucker, cp"),
    ("tucker", r"lowrank values are None, a rank ratio"),
    (1.5, r"rank_ratio must be a number in \(0, 1\]"),
    (0, r"rank_ratio must be"),
    (True, r"rank_ratio must be"),
    ({"rank": 0.5}, r"a lowrank mapping has 'ratio'"),
    ([], r"lowrank must list at least one value"),
])
def test_bad_values_raise_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        workbench.grid(lowrank=bad)


def test_labels_configs_and_recovery():
    g = workbench.grid(prune=[0, 0.5], structure="channel", bits=[32, 8], recover=[20],
                       lowrank=[None, 0.25, "tucker-0.25", {"ratio": 0.25, "method": "cp"}, "svd-0.25"])
    assert g.lowrank == (None, "svd-0.25", "tucker-0.25", "cp-0.25")  # de-duplicated, order kept
    labels = [v.label for v in g]
    assert labels[:4] == ["baseline", "q8", "channel-0.50+r20", "channel-0.50+r20+q8"]
    assert {"lowrank-0.25+r20", "lowrank-tucker-0.25+r20+q8", "lowrank-cp-0.25+channel-0.50+r20"} <= set(labels)
    assert len(labels) == len(set(labels)) == 4 * 4
    spec = next(v for v in g if v.label == "lowrank-tucker-0.25+channel-0.50+r20+q8")
    assert [c.kind for c in spec.configs()] == ["lowrank", "prune", "recover", "quantize"]
    assert spec.configs()[0] == LowRank(0.25, method="tucker")
    assert not spec.is_baseline and spec.to_dict()["lowrank"] == "tucker-0.25"
    head, tail = split_head(VariantSpec(lowrank="cp-0.25", bits=8).configs())  # the factorised model is shared
    assert [c.kind for c in head] == ["lowrank"] and [c.kind for c in tail] == ["quantize"]


def test_without_the_axis_nothing_changes():
    g = workbench.grid(prune=[0, 0.5], structure="channel", bits=[32, 8])
    assert "lowrank" not in g.to_dict() and all("lowrank" not in v.to_dict() for v in g)
    assert "lowrank" not in repr(g.variants[1])


def test_yaml_round_trip_and_rows(tmp_path):
    g = workbench.grid(prune=0, bits=[32, 8], lowrank=[None, "tucker-0.5", "cp-0.25"], recover=[None, 10])
    task, back = load_spec(g.save(tmp_path / "spec.yaml", task="digits-cnn"))
    assert task == "digits-cnn" and back == g and [v.label for v in back] == [v.label for v in g]
    assert "- tucker-0.5" in (tmp_path / "spec.yaml").read_text()
    for spec in g:
        row = {**spec_columns(spec), "lineage": " + ".join(c.label for c in spec.configs())}
        assert spec_of_row(row) == spec
        assert spec_of_lineage(spec.configs()) == spec


def test_space_from_grid_reaches_every_point(tmp_path):
    g = workbench.grid(prune=[0, 0.5], structure="channel", bits=[32, 8], recover=[10],
                       lowrank=[None, "svd-0.25", "tucker-0.25"])
    s = Space.from_grid(g)
    assert s.lowrank == g.lowrank and s.dimensions()["lowrank"] == g.lowrank
    assert sorted({s.point(p).label for p in s.points()}) == sorted(v.label for v in g)
    _, back, _ = load_search_spec(s.save(tmp_path / "s.yaml", task="digits-cnn"))
    assert back == s
    with pytest.raises(ValueError, match=r"Space: lowrank 'qr-0.5'"):
        Space(lowrank=["qr-0.5"])


def test_a_grid_point_builds_its_variant(digits):
    from workbench.sweeps.shared import build_variant

    spec = VariantSpec(lowrank="cp-0.25", bits=8)
    variant = build_variant(digits, spec.configs())
    assert variant.meta["lowrank_methods"]["stem.conv"] == "cp" and variant.num_params < digits.model.num_params
    assert spec_of_lineage(variant.lineage) == spec


@pytest.mark.slow
def test_a_sweep_over_the_axis_runs_and_stores_it(digits, tmp_path):
    g = workbench.grid(prune=0, bits=32, lowrank=[None, "tucker-0.25", "cp-0.25"], runtimes="torch", limit=32)
    df = workbench.sweep(digits, g, store=tmp_path / "r.sqlite", progress=False, memory=False)
    assert list(df.variant) == ["baseline", "lowrank-tucker-0.25", "lowrank-cp-0.25"]
    assert df.error.isna().all() or (df.error.fillna("") == "").all(), df.error.tolist()
    assert df.lowrank.tolist()[1:] == ["tucker-0.25", "cp-0.25"]
    assert (df.macs.iloc[1:] < df.macs.iloc[0]).all() and (df.params.iloc[1:] < df.params.iloc[0]).all()
    again = workbench.sweep(digits, g, store=tmp_path / "r.sqlite", progress=False, memory=False,
                            on_result=(seen := []).append)
    assert seen == [] and list(again.variant) == list(df.variant)
