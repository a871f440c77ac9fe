"""Tucker-2 and CP decomposition of k x k convolutions (`LowRank(method="tucker" | "cp")`): the chains, their
reconstruction error, the layers that qualify on the zoo models, determinism, export through ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import workbench
from workbench import zoo
from workbench.compression.base import compress, config_from_dict
from workbench.compression.decompose import chain_kernel, cost, cp_chain, cp_rank, energy_kept, tucker_chain
from workbench.compression.lowrank import LowRank, lowrank_plan
from workbench.core.layers import count_macs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _plain_cnn(seed: int = 0) -> nn.Module:
    """A VGG-style CNN on digits-shaped input: three 3x3 convs with groups=1 (what Tucker and CP decompose)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 16),
    ).eval()


@pytest.fixture(scope="module")
def plain():
    return workbench.load(_plain_cnn(), example_inputs=[np.random.default_rng(0).standard_normal(
        (4, 1, 32, 32)).astype(np.float32)])


def _cp_kernel(shape: tuple[int, int, int, int], rank: int) -> torch.Tensor:
    """A kernel whose CP rank is exactly `rank` (a sum of `rank` outer products)."""
    g = torch.Generator().manual_seed(1)
    a, b, h, v = (torch.randn(n, rank, generator=g) for n in shape)
    return torch.einsum("or,ir,hr,wr->oihw", a, b, h, v)


# ------------------------------------------------------------------------------------------------ the maths


@pytest.mark.parametrize("conv", [
    nn.Conv2d(16, 24, 3, padding=1),
    nn.Conv2d(16, 24, (3, 5), stride=2, padding=(1, 2), bias=False),
    nn.Conv2d(8, 12, 3, stride=(2, 1), padding=2, dilation=2, padding_mode="reflect"),
])
def test_tucker_at_full_rank_is_the_same_function_and_error_grows_as_rank_falls(conv):
    torch.manual_seed(0)
    x = torch.randn(2, conv.in_channels, 11, 13)
    c_in, c_out = conv.in_channels, conv.out_channels
    full = tucker_chain(conv, (c_in, c_out))
    assert [tuple(m.weight.shape) for m in full] == [(c_in, c_in, 1, 1), (c_out, c_in, *conv.kernel_size),
                                                     (c_out, c_out, 1, 1)]
    assert full[1].stride == conv.stride and full[1].padding == conv.padding and full[1].dilation == conv.dilation
    assert full[0].bias is None and full[1].bias is None and (full[2].bias is None) == (conv.bias is None)
    torch.testing.assert_close(full(x), conv(x), atol=1e-5, rtol=1e-4)
    kept = [energy_kept(conv, tucker_chain(conv, (max(1, c_in * k // 4), max(1, c_out * k // 4)))) for k in (4, 3, 2, 1)]
    assert kept[0] == pytest.approx(1.0, abs=1e-9)
    assert kept[0] > kept[1] > kept[2] > kept[3] > 0, kept


@pytest.mark.parametrize("conv", [
    nn.Conv2d(12, 20, 3, padding=1),
    nn.Conv2d(12, 20, (3, 5), stride=2, padding=(1, 2), dilation=(1, 2), bias=False),
])
def test_cp_reconstructs_a_kernel_of_that_rank_and_error_grows_as_rank_falls(conv):
    with torch.no_grad():
        conv.weight.copy_(_cp_kernel(tuple(conv.weight.shape), 6))
    chain = cp_chain(conv, 6)
    assert [(tuple(m.weight.shape), m.groups) for m in chain] == [
        ((6, 12, 1, 1), 1), ((6, 1, conv.kernel_size[0], 1), 6), ((6, 1, 1, conv.kernel_size[1]), 6),
        ((20, 6, 1, 1), 1)]
    x = torch.randn(2, 12, 15, 17)
    assert chain(x).shape == conv(x).shape
    torch.testing.assert_close(chain(x), conv(x), atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(chain_kernel(chain).float(), conv.weight.detach(), atol=1e-3, rtol=1e-3)
    kept = [energy_kept(conv, cp_chain(conv, r)) for r in (6, 3, 1)]
    assert kept[0] > 0.999999 and kept[0] > kept[1] > kept[2], kept


def test_cp_rank_is_a_share_of_the_largest_rank_the_kernel_can_have():
    assert cp_rank(nn.Conv2d(32, 64, 3), 1.0) == 32 * 9  # 64*32*9 / 64
    assert cp_rank(nn.Conv2d(1, 64, (10, 4)), 0.25) == 10  # kws stem: 640 / 64 * 0.25
    assert cp_rank(nn.Conv2d(1, 32, 3), 0.01) == 1


def test_cp_is_deterministic_for_a_seed():
    conv = nn.Conv2d(16, 24, 3, padding=1)
    first, again = cp_chain(conv, 20, seed=3), cp_chain(conv, 20, seed=3)
    for a, b in zip(first, again):
        torch.testing.assert_close(a.weight, b.weight, atol=0, rtol=0)


# ------------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize("bad, match", [
    (dict(rank_ratio=0.5, method="tt"), r"method must be one of svd, tucker, cp, got 'tt'"),
    (dict(rank_ratio=0.5, method=None), r"method must be one of"),
    (dict(rank_ratio=0.5, method="cp", seed=-1), r"seed must be a non-negative integer"),
    (dict(rank_ratio=0.5, seed=1.5), r"seed must be a non-negative integer"),
])
def test_bad_methods_and_seeds_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        LowRank(**bad)


def test_labels_and_round_trip():
    svd = LowRank(0.25)
    assert svd.to_dict() == {"type": "lowrank", "rank_ratio": 0.25, "exclude": [], "min_features": 16}
    tucker, cp = LowRank(0.25, method="tucker"), LowRank(0.5, method="cp", seed=2)
    assert (tucker.label, cp.label) == ("lowrank-tucker-0.25", "lowrank-cp-0.50-s2")
    assert tucker.to_dict()["method"] == "tucker" and "seed" not in tucker.to_dict()
    for cfg in (svd, tucker, cp):
        assert config_from_dict(cfg.to_dict()) == cfg
    assert len({svd.digest, tucker.digest, cp.digest}) == 3


# ------------------------------------------------------------------------------------------- on models


@pytest.mark.parametrize("method, ratio", [("tucker", 0.25), ("cp", 0.1)])
def test_a_plain_cnn_gets_the_documented_chains_params_and_macs_drop(plain, method, ratio):
    fingerprint = plain.fingerprint
    cfg = LowRank(ratio, method=method)
    plan = lowrank_plan(plain, cfg)
    small = compress(plain, cfg)
    assert workbench.core.handle.module_fingerprint(plain.module) == fingerprint
    assert isinstance(plain.module[2], nn.Conv2d)
    done = plan[plan.action == "factorise"]
    assert list(done.layer) == list(small.meta["lowrank_factorised"]) == ["0", "2", "4", "8"]
    assert small.meta["lowrank_methods"]["8"] == "svd"  # the Linear head: SVD (the Tucker of a matrix)
    assert small.num_params == plain.num_params - int((plan.params_before - plan.params_after).sum())
    assert count_macs(small) < count_macs(plain)
    second = small.module[2]
    if method == "tucker":
        assert small.meta["lowrank_factorised"]["2"] == [4, 4]
        assert [tuple(m.weight.shape) for m in second] == [(4, 16, 1, 1), (4, 4, 3, 3), (16, 4, 1, 1)]
        assert second[1].stride == (2, 2) and second[2].bias is not None
        assert small.meta["lowrank_factorised"]["0"] == [None, 4]  # one input channel: that side kept whole
        assert [tuple(m.weight.shape) for m in small.module[0]] == [(4, 1, 3, 3), (16, 4, 1, 1)]
    else:
        r = cp_rank(plain.module[2], ratio)
        assert small.meta["lowrank_factorised"]["2"] == r == 14
        assert [(tuple(m.weight.shape), m.groups, m.stride) for m in second] == [
            ((r, 16, 1, 1), 1, (1, 1)), ((r, 1, 3, 1), r, (2, 1)), ((r, 1, 1, 3), r, (1, 2)),
            ((16, r, 1, 1), 1, (1, 1))]
    assert all(0 < e <= 1 for e in done.energy_kept)


def test_a_strided_cp_that_saves_parameters_but_not_macs_is_skipped(plain):
    """CP's first 1x1 runs at the input resolution: at stride 2 it costs four times its parameters in MACs."""
    plan = lowrank_plan(plain, LowRank(0.25, method="cp")).set_index("layer")
    p0, p1, m0, m1 = cost(plain.module[2], "cp", 36)
    assert p1 < p0 and m1 > m0 and plan.loc["2", "params_after"] == plan.loc["2", "params_before"]  # left whole
    assert plan.loc["2", "action"].startswith("skip: rank 36 saves no MACs")
    assert plan.loc["4", "action"] == "factorise" and plan.loc["4", "macs_ratio"] < 1


def test_output_error_grows_as_rank_falls_on_a_model(plain):
    x = plain.example_inputs[0]
    ref = workbench.runtime(plain, "torch")(x)[0]
    errors = [float(np.abs(workbench.runtime(compress(plain, LowRank(r, method="tucker", min_features=1)),
                                             "torch")(x)[0] - ref).max()) for r in (0.1, 0.3, 0.6)]
    assert errors[0] > errors[1] > errors[2] > 0, errors


def test_zoo_models_have_one_kxk_conv_each_the_stem(digits):
    """Depthwise-separable nets: the only k x k conv with groups=1 is the stem (one input channel)."""
    tucker = compress(digits.model, LowRank(0.25, method="tucker"))
    assert "saves no parameters" in tucker.meta["lowrank_skipped"]["stem.conv"]  # 1 -> 32, 3x3: 288 weights
    assert set(tucker.meta["lowrank_factorised"]) == set(compress(digits.model, LowRank(0.25)).meta[
        "lowrank_factorised"])  # the rest is the SVD
    cp = compress(digits.model, LowRank(0.25, method="cp"))
    assert cp.meta["lowrank_factorised"]["stem.conv"] == 2 and cp.meta["lowrank_methods"]["stem.conv"] == "cp"
    assert "blocks.0.dw.conv" not in lowrank_plan(digits.model, LowRank(0.25, method="cp")).layer.tolist()
    kws = zoo.load("kws")
    plan = lowrank_plan(kws.model, LowRank(0.25, method="tucker")).set_index("layer")
    assert plan.loc["stem.conv", "rank"] == (None, 16) and plan.loc["stem.conv", "action"] == "factorise"
    assert plan.loc["stem.conv", "params_after"] == 16 * 40 + 16 * 64 < plan.loc["stem.conv", "params_before"]


def test_excluded_kxk_conv_and_svd_unchanged(plain):
    variant = compress(plain, LowRank(0.25, method="tucker", exclude=["2"]))
    assert variant.meta["lowrank_skipped"]["2"] == "excluded" and isinstance(variant.module[2], nn.Conv2d)
    svd = compress(plain, LowRank(0.25))
    assert "lowrank_methods" not in svd.meta and set(svd.meta["lowrank_factorised"]) == {"8"}
    assert "2" not in lowrank_plan(plain, LowRank(0.25)).layer.tolist()  # svd plans no k x k conv


def test_a_decomposed_model_runs_on_onnxruntime_like_torch(plain):
    variant = compress(plain, LowRank(0.25, method="tucker"))
    x = plain.example_inputs[0]
    np.testing.assert_allclose(workbench.runtime(variant, "onnxruntime")(x)[0],
                               workbench.runtime(variant, "torch")(x)[0], atol=1e-4)


@pytest.mark.slow
def test_a_decomposed_model_measures_through_the_spine(digits):
    variant = compress(digits.model, LowRank(0.25, method="cp"))
    m = workbench.measure(variant, digits, runtime="onnxruntime", threads=1, memory=False, limit=64)
    row = m.rows()[0]
    assert m.error is None and row["latency_ms_p50"] > 0 and 0 <= row["accuracy"] <= 1
    assert row["macs"] < workbench.measure(digits.model, digits, runtime="onnxruntime", threads=1, memory=False,
                                           limit=8).rows()[0]["macs"]
