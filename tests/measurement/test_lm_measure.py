"""measure() on a language model: the same Measurement → DataFrame path, with tokens/s, TTFT and KV-cache bytes."""

from __future__ import annotations

import math

import pytest
from tiny_lm import tiny_lm_texts

import workbench
from workbench.core.lm import lm_spec
from workbench.measurement.lm import CONTEXT, folder_bytes


@pytest.fixture(scope="module")
def lm_task(tiny_lm):
    return workbench.Task.from_text(tiny_lm, tiny_lm_texts(120), instructions=[("The for", r"\w")], seq_len=32)


def test_measure_reports_language_model_columns_per_device(tiny_lm, lm_task):
    m = workbench.measure(tiny_lm, lm_task, runtime="torch", threads=1, devices=["raspberry-pi-4", "esp32-s3"],
                          memory=False, limit=3)
    df = workbench.to_frame([m])
    assert m.error is None, m.error
    row = df.iloc[0]
    assert row["perplexity"] > 1 and row["agreement"] == 1.0 and 0 <= row["pass_rate"] <= 1
    assert row["tokens_per_s"] > 0 and row["ttft_ms"] > 0 and m.reps >= 3
    assert row["latency_ms_p50"] == pytest.approx(1e3 / row["tokens_per_s"], rel=0.5)  # ms per decoded token
    assert row["kv_cache_bytes"] == lm_spec(tiny_lm).kv_cache_bytes(CONTEXT)
    assert row["size_bytes"] == folder_bytes(tiny_lm.path) and row["realized"]
    pi, esp = df.set_index("device").loc["raspberry-pi-4"], df.set_index("device").loc["esp32-s3"]
    assert pi["tokens_per_s_est"] > 0 and pi["fits"] and pi["energy_mj_per_token_est"] > 0
    assert not esp["fits"] and math.isnan(esp["tokens_per_s_est"])


def test_a_runtime_that_fails_is_a_row_with_an_error(tiny_lm, lm_task, monkeypatch):
    import workbench.runtimes.torch_lm_runner as runner

    def broken(*a, **k):
        raise RuntimeError("kernel missing")

    monkeypatch.setattr(runner, "make_lm_runner", broken)
    m = workbench.measure(tiny_lm, lm_task, runtime="torch", memory=False, limit=2)
    assert m.error and "kernel missing" in m.error and m.tokens_per_s is None
