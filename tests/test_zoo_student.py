"""`workbench.zoo.student`: the zoo's CNNs at a chosen width, untrained and seeded."""

from __future__ import annotations

import pytest
import torch

import workbench
from workbench import zoo
from workbench.nets.blocks import scaled_channels


def _shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_full_width_is_the_shipped_architecture(digits):
    assert _shapes(zoo.student(digits, width=1.0)) == _shapes(digits.model.module)


def test_half_width_halves_every_channel_count_and_keeps_the_interface(digits):
    half = zoo.student("digits-cnn", width=0.5)
    convs = [m.out_channels for m in half.modules() if isinstance(m, torch.nn.Conv2d)]
    full = [m.out_channels for m in digits.model.module.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [c // 2 for c in full] and all(c % 8 == 0 for c in convs)
    with torch.no_grad():
        assert half(torch.from_numpy(digits.eval_inputs[0][:3])).shape == (3, 10)
    assert not half.training
    kws = zoo.student("kws", width=0.5)
    with torch.no_grad():
        assert kws(torch.zeros(2, 1, 49, 10)).shape == (2, 12)
    assert {m.out_channels for m in kws.modules() if isinstance(m, torch.nn.Conv2d)} == {32}


def test_seeded_fresh_weights_and_the_global_random_state_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = zoo.student("digits-cnn", seed=0), zoo.student("digits-cnn", seed=0), zoo.student("digits-cnn", seed=1)
    assert torch.equal(torch.rand(3), expected)  # building students drew nothing from the caller's generator
    same = [torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())]
    assert all(same)
    assert not torch.equal(a.stem.conv.weight, c.stem.conv.weight)


def test_channel_rounding_and_bad_widths():
    assert [scaled_channels(c, 0.5) for c in (32, 64, 256)] == [16, 32, 128]
    assert scaled_channels(64, 0.3) == 16 and scaled_channels(64, 0.01) == 8 and scaled_channels(12, 1.0) == 12
    with pytest.raises(ValueError, match=r"width must be a number in \(0, 16\]"):
        zoo.student("digits-cnn", width=0)


def test_a_task_without_a_scalable_network_says_what_to_do():
    with pytest.raises(workbench.WorkbenchError, match=r"no width-scalable network.*digits-cnn, kws.*Distill"):
        zoo.student("minilm")
