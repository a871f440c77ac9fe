"""Entropy coding (Deep Compression's Huffman stage): real bytes that decode back, smaller than deflate where the
weights sit on a grid, never below the Shannon bound, and the same size as a second, independent coder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench import Prune, Quantize, compress
from workbench.compression.quantize import fake_quantize
from workbench.core.quant import quant_record
from workbench.formats.convert import to_onnx
from workbench.measurement.coding import (
    coded_size,
    grid_indices,
    huffman_decode,
    huffman_encode,
    index_arrays,
    variant_coded_size,
)
from workbench.measurement.record import COLUMNS, measure, to_frame
from workbench.measurement.size import deflated_size


@pytest.fixture(scope="module")
def pq4(digits):
    return compress(digits.model, Prune(0.5), Quantize(4), task=digits)


@pytest.fixture(scope="module")
def pq4_indices(pq4):
    indices, scales, _ = index_arrays(to_onnx(pq4), quant_record(pq4))
    return indices, scales


def test_grid_indices_recover_the_quantisers_levels_symmetric_and_asymmetric():
    w = torch.randn(8, 3, 3, 3)
    for symmetric in (True, False):
        q = fake_quantize(w, 4, symmetric=symmetric).numpy()
        k, steps = grid_indices(q, 4)
        assert k.shape == (q.size,) and steps.shape == (8,)
        assert np.abs(k.reshape(8, -1) * steps[:, None] - q.reshape(8, -1)).max() < 1e-6
        assert max(len(np.unique(row)) for row in k.reshape(8, -1)) <= 16  # asymmetric: k is signed, per channel
    assert grid_indices(w.numpy(), 4) is None  # float weights are on no 4-bit grid: not indices


def test_every_quantised_weight_is_coded_and_its_indices_decode_back(pq4, pq4_indices):
    indices, scales = pq4_indices
    quantised = {e.param for e in quant_record(pq4).integer_layers.values()}
    assert quantised <= set(indices)  # each recorded weight was found on its grid in the real export
    stream = huffman_encode(np.concatenate(list(indices.values())))
    decoded = huffman_decode(stream)
    assert np.array_equal(decoded, np.concatenate(list(indices.values())))  # the bytes are real
    assert stream.bits == int((stream.counts * stream.lengths).sum())  # the code book describes the stream
    assert stream.stream_bytes == 4 * -(-stream.bits // 32)
    zeros = stream.lengths[stream.values == 0][0]
    assert zeros == stream.lengths.min() <= 2  # half the weights are pruned: zero gets the shortest code
    assert sum(scales.values()) > 0


def test_coded_is_smaller_than_deflated_for_a_pruned_quantised_model_and_above_the_entropy_bound(pq4):
    path = to_onnx(pq4)
    c = coded_size(path, quant_record(pq4))
    assert c.total < 0.8 * deflated_size(path)
    assert c.entropy_total <= c.total
    # Huffman is within one bit per index of the bound; the rest of the gap is the code book (and word padding)
    assert c.total - c.entropy_total <= c.codebook_bytes + c.indices / 8 + 4


def test_a_float_model_is_deflated_not_huffman_coded(digits):
    path = to_onnx(digits.model)
    c = coded_size(path, quant_record(digits.model))
    assert c.indices == 0 and c.total == c.entropy_total == deflated_size(path)


def test_dahuffman_agrees_with_constriction_within_two_percent(pq4_indices):
    import dahuffman

    indices = np.concatenate(list(pq4_indices[0].values()))
    ours = huffman_encode(indices)
    values, counts = np.unique(indices, return_counts=True)
    codec = dahuffman.HuffmanCodec.from_frequencies(dict(zip(values.tolist(), counts.tolist())))
    theirs = len(codec.encode(indices.tolist()))
    assert abs(theirs - ours.bits / 8) <= 0.02 * ours.bits / 8
    assert codec.decode(codec.encode(indices[:100].tolist())) == indices[:100].tolist()


def test_measure_rows_carry_the_coded_and_entropy_columns(digits):
    assert COLUMNS.index("size_coded_bytes") == COLUMNS.index("size_deflated_bytes") + 1
    variant = compress(digits.model, Prune(0.5), Quantize(8), task=digits)
    m = measure(variant, digits, runtime="onnxruntime", threads=1, memory=False, limit=64)
    row = to_frame([m]).iloc[0]
    assert "int8" in m.realization and row["size_entropy_bytes"] <= row["size_coded_bytes"] < row["size_deflated_bytes"]
    # measured on the realised int8 file: its int8 weights are the indices
    assert variant_coded_size(variant, m.artifact).total == row["size_coded_bytes"]
