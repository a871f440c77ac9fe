"""Language-model device estimates: decode is memory-bound, fewer bits decode faster, fit is weights + KV cache."""

from __future__ import annotations

import math

import pytest

import workbench
from workbench.core.lm import LMSpec
from workbench.hardware.lm_estimate import estimate_lm, estimate_lm_spec, weight_bytes_lm

SMOLLM2 = LMSpec("llama", 30, 576, 9, 3, 64, 1536, 49152, 8192, True)
PARAMS = 134_515_008


def test_decode_speed_is_bandwidth_over_bytes_per_token():
    e = estimate_lm_spec(SMOLLM2, PARAMS, "raspberry-pi-4")
    prof = workbench.device("raspberry-pi-4")
    memory_bound = prof.memory_bandwidth_bytes_s / e.bytes_per_token
    overhead = SMOLLM2.layers * prof.layer_overhead_s
    assert e.tokens_per_s_est == pytest.approx(1 / (1 / memory_bound + overhead), rel=1e-6)
    assert e.bytes_per_token == e.weight_bytes + e.kv_cache_bytes // 2


def test_int4_moves_fewer_bytes_and_decodes_several_times_faster():
    fp32 = estimate_lm_spec(SMOLLM2, PARAMS, "raspberry-pi-5")
    int4 = estimate_lm_spec(SMOLLM2, PARAMS, "raspberry-pi-5", bits=4, group_size=32, symmetric=False)
    assert int4.weight_bytes < 0.3 * fp32.weight_bytes
    assert 3 < int4.tokens_per_s_est / fp32.tokens_per_s_est < fp32.bytes_per_token / int4.bytes_per_token + 0.01
    assert int4.energy_mj_per_token_est < fp32.energy_mj_per_token_est


def test_a_model_that_does_not_fit_gets_no_speed_and_a_reason():
    e = estimate_lm_spec(SMOLLM2, PARAMS, "esp32-s3", bits=4, group_size=32)
    assert not e.fits and math.isnan(e.tokens_per_s_est) and "RAM" in e.reason


def test_weight_bytes_count_group_scales_and_zero_points():
    sym = weight_bytes_lm(SMOLLM2, PARAMS, 4, 32, True)
    asym = weight_bytes_lm(SMOLLM2, PARAMS, 4, 32, False)
    per_layer = 576 * 64 * (2 * 9 + 2 * 3) + 3 * 576 * 1536
    linear = 30 * per_layer
    assert asym - sym == pytest.approx(linear * 4 / 32 / 8, rel=1e-6)  # one 4-bit zero point per group of 32
    assert weight_bytes_lm(SMOLLM2, PARAMS, 32) == PARAMS * 4


def test_a_handle_is_estimated_at_the_width_its_quantisation_recorded(tiny_lm):
    e = estimate_lm(tiny_lm, "raspberry-pi-4")
    assert e.dtype == "fp32" and e.weight_bytes == tiny_lm.num_params * 4 and e.fits
