import numpy as np
import pytest
import torch

import workbench
from workbench import Prune, Quantize
from workbench.core.errors import WorkbenchError
from workbench.federated.updates import check_update, compress_delta, decode, encode


@pytest.fixture(scope="module")
def digits_delta():
    task = workbench.zoo.load("digits-cnn")
    state = task.model.module.state_dict()
    rng = np.random.default_rng(0)
    names = [k for k, v in state.items() if v.is_floating_point()]
    delta = {k: (rng.standard_normal(tuple(state[k].shape)) * 1e-2).astype(np.float32) for k in names}
    return task.model, names, delta


def roundtrip(handle, names, delta, update):
    packed = compress_delta(handle, delta, check_update(update))
    blob = encode(packed, names)
    back = decode(blob, {k: delta[k].shape for k in names})
    return packed, blob, back


def test_uncompressed_is_exact_float32(digits_delta):
    handle, names, delta = digits_delta
    _, blob, back = roundtrip(handle, names, delta, None)
    assert len(blob) == 3 * len(names) + 4 * sum(v.size for v in delta.values())
    assert all(np.array_equal(back[k], delta[k]) for k in names)


def test_int8_delta_is_the_quantised_one_and_4x_smaller(digits_delta):
    handle, names, delta = digits_delta
    packed, blob, back = roundtrip(handle, names, delta, Quantize(8))
    full = 4 * sum(v.size for v in delta.values())
    assert 3.0 < full / len(blob) < 4.0  # 3.4: BatchNorm weights and running statistics stay float32
    w = "classifier.weight"
    # the decoded tensor is what Quantize produced (up to float rounding of the recovered scale), on 255 levels
    assert np.allclose(back[w], packed["tensors"][w], atol=1e-7)
    expect = workbench.compression.fake_quantize(torch.from_numpy(delta[w]), 8).numpy()
    assert np.allclose(back[w], expect, atol=1e-7)
    assert all(len(np.unique(row)) <= 255 for row in back[w])
    assert np.array_equal(back["classifier.bias"], delta["classifier.bias"])  # biases stay float32
    assert not np.shares_memory(handle.module.classifier.weight.detach().numpy(), back[w])


def test_topk_keeps_the_largest_and_int4_packs_two_per_byte(digits_delta):
    handle, names, delta = digits_delta
    full = 4 * sum(v.size for v in delta.values())
    _, sparse, back = roundtrip(handle, names, delta, Prune(0.9))
    w = "classifier.weight"
    kept = back[w] != 0
    assert 0.05 < kept.mean() < 0.2 and np.array_equal(back[w][kept], delta[w][kept])
    assert np.abs(delta[w][~kept]).max() <= np.abs(delta[w][kept]).min() + 1e-6 or kept.mean() < 0.2
    assert full / len(sparse) > 5  # 10 % of float32 values + a 1-bit mask on Conv/Linear; BatchNorm dense: 5.9x
    _, both, _ = roundtrip(handle, names, delta, [Prune(0.9), Quantize(8)])
    _, q4, back4 = roundtrip(handle, names, delta, Quantize(4))
    assert len(both) < len(sparse) and full / len(q4) > 5  # 5.8: two codes a byte, BatchNorm float32
    assert max(len(np.unique(r)) for r in back4[w]) <= 15


def test_fp16_halves(digits_delta):
    handle, names, delta = digits_delta
    _, blob, back = roundtrip(handle, names, delta, Quantize(dtype="fp16"))
    assert abs(4 * sum(v.size for v in delta.values()) / len(blob) - 2) < 0.01
    assert np.allclose(back["classifier.weight"], delta["classifier.weight"], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("bad", [Prune(0.5, structure="channel"), Quantize(8, activations=8),
                                 Quantize(4, group_size=32), "int8", [Quantize(8), Quantize(4)],
                                 workbench.Recover(steps=5)])
def test_refused_updates(bad):
    with pytest.raises(WorkbenchError, match="update"):
        check_update(bad)


def test_corrupt_blob_is_refused(digits_delta):
    handle, names, delta = digits_delta
    blob = encode(compress_delta(handle, delta, ()), names)
    with pytest.raises(WorkbenchError, match="corrupt"):
        decode(blob + b"\0", {k: delta[k].shape for k in names})
