"""LLM memory planner: parameter counts against published figures, GLM-130B memory, configs, bad input."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.plan import GPUS, PRESETS, llm_memory
from workbench.plan.llm import shape_from

GLM_130B = dict(num_layers=70, hidden_size=12288, num_attention_heads=96, vocab_size=150528,
                ffn_hidden_size=32768, gated_ffn=True)


@pytest.fixture(scope="module")
def glm():
    df, fig = llm_memory(**GLM_130B, bits=(16, 8, 4))
    return df.set_index("bits"), fig


def test_glm_130b_weights_are_about_260_gb_fp16_and_65_gb_int4(glm):
    df, _ = glm
    assert 128e9 < df.loc[16, "params"] < 131e9                     # "130B"
    assert df.loc[16, "weight_gb"] == pytest.approx(260, rel=0.02)
    assert df.loc[4, "weight_gb"] == pytest.approx(65, rel=0.08)    # 69.1: linear 4-bit + scales, embeddings fp16
    assert df.loc[8, "weight_gb"] == pytest.approx(130, rel=0.03)


def test_glm_130b_fits_four_24gb_cards_at_int4_but_not_int8(glm):
    df, _ = glm
    assert df.loc[4, "n_gpu-24gb"] == 4
    assert df.loc[8, "n_gpu-24gb"] > 4
    assert df.loc[16, "n_gpu-40gb"] == 8                           # the paper's 8 x A100-40G at fp16
    usable = GPUS["gpu-24gb"][0] * 0.9 / 1e9
    assert df.loc[4, "total_gb"] <= 4 * usable < df.loc[8, "total_gb"]


def test_kv_cache_formula(glm):
    df, _ = glm
    kv = 2 * 70 * 1 * 2048 * 96 * 128 * 2 / 1e9                    # 2 x layers x batch x seq x kv_heads x head_dim x B
    assert df.loc[4, "kv_cache_gb"] == pytest.approx(kv)
    parts = df["weight_gb"] + df["kv_cache_gb"] + df["activation_gb"]
    assert df["total_gb"].to_numpy() == pytest.approx(parts.to_numpy())


def test_figure_has_memory_bars_and_device_heatmap(glm):
    _, fig = glm
    assert [t.type for t in fig.data] == ["bar", "bar", "bar", "heatmap"]
    assert "gpu-24gb" in list(fig.data[-1].y)


@pytest.mark.parametrize("name, published", [
    ("Llama-2-7B", 6_738_415_616), ("Llama-2-13B", 13_015_864_320), ("Llama-2-70B", 68_976_648_192),
    ("Mistral-7B", 7_241_732_096), ("TinyLlama-1.1B", 1_100_048_384)])
def test_presets_match_published_parameter_counts(name, published):
    df, _ = llm_memory(**PRESETS[name], bits=(16,), devices=[])
    assert df["params"].iloc[0] == published


def test_gqa_shrinks_kv_cache():
    mha, _ = llm_memory(**{**PRESETS["Llama-2-70B"], "num_kv_heads": 64}, bits=(16,), devices=[])
    gqa, _ = llm_memory(**PRESETS["Llama-2-70B"], bits=(16,), devices=[])
    assert mha["kv_cache_gb"].iloc[0] == pytest.approx(8 * gqa["kv_cache_gb"].iloc[0])
    assert mha["params"].iloc[0] > gqa["params"].iloc[0]


def test_untied_head_adds_vocab_by_hidden():
    tied, _ = llm_memory(**GLM_130B, tie_word_embeddings=True, bits=(16,), devices=[])
    untied, _ = llm_memory(**GLM_130B, tie_word_embeddings=False, bits=(16,), devices=[])
    assert untied["params"].iloc[0] - tied["params"].iloc[0] == 150528 * 12288


def test_group_size_and_embedding_options():
    base, _ = llm_memory(**GLM_130B, bits=(4,), devices=[])
    coarse, _ = llm_memory(**GLM_130B, bits=(4,), group_size=None, devices=[])
    all_q, _ = llm_memory(**GLM_130B, bits=(4,), quantize_embeddings=True, devices=[])
    assert coarse["weight_gb"].iloc[0] < base["weight_gb"].iloc[0]           # fewer scales
    assert all_q["weight_gb"].iloc[0] < base["weight_gb"].iloc[0]
    assert base["bits_per_param"].iloc[0] == pytest.approx(4.3, abs=0.05)


def test_config_json_path_dict_and_object(tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 32000, "rms_norm_eps": 1e-5,
           "tie_word_embeddings": False}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    from transformers import LlamaConfig

    counts = {llm_memory(src, bits=(16,), devices=[])[0]["params"].iloc[0]
              for src in (cfg, tmp_path, tmp_path / "config.json", LlamaConfig(**cfg))}
    assert counts == {7_241_732_096}                                          # Mistral-7B's shape
    df, _ = llm_memory(cfg, num_layers=16, bits=(16,), devices=[])           # explicit fields win
    assert df["params"].iloc[0] < 7_241_732_096


def test_minilm_parameter_count_equals_the_loaded_model():
    from workbench import zoo

    task = zoo.load("minilm")
    hf_config = task.model.module.bert.config                                # transformers BertConfig
    df, _ = llm_memory(hf_config, bits=(32,), devices=[])
    assert df["params"].iloc[0] == task.model.num_params == 22_713_216
    assert df["weight_gb"].iloc[0] == pytest.approx(task.model.num_params * 4 / 1e9)


def test_devices_profiles_and_mcu_split():
    df, _ = llm_memory(**PRESETS["MiniLM-L6 (22.7M)"], bits=(16, 8), devices=["raspberry-pi-4", "stm32h7"])
    row = df.set_index("bits").loc[8]
    assert row["n_raspberry-pi-4"] == 1 and "raspberry-pi-4" in row["fits_on"]
    assert row["fit_raspberry-pi-4"] == "fits" and "raspberry-pi-4" not in row["does_not_fit"]
    # 2 MB of flash < 35 MB of weights: an MCU holds the weights alone or not at all (no count of boards)
    assert pd.isna(row["n_stm32h7"]) and row["does_not_fit"] == "stm32h7"
    assert row["fit_stm32h7"].startswith(f"does not fit: needs {row['weight_gb'] * 1e3:.3g} MB of flash for the "
                                         "weights (has 1.89 MB usable) and ")
    short, _ = llm_memory(**PRESETS["MiniLM-L6 (22.7M)"], bits=(8,), max_seq_len=16, devices=["stm32h7"])
    assert "RAM" not in short["fit_stm32h7"].iloc[0]                        # 16 tokens: the 1 MB SRAM holds the rest
    assert set(df.attrs["hardware"]) == set(GPUS) | {"raspberry-pi-4", "stm32h7"}


def test_a_7b_model_does_not_fit_an_esp32_it_is_not_counted_in_boards():
    df, fig = llm_memory(**PRESETS["Llama-2-7B"], bits=(16, 4), devices=["esp32-s3", "jetson-orin-nano"])
    row = df.set_index("bits").loc[4]
    usable_flash = 8 * 2**20 * 0.9
    assert pd.isna(row["n_esp32-s3"]) and "esp32-s3" in row["does_not_fit"] and "esp32-s3" not in row["fits_on"]
    why = row["fit_esp32-s3"]
    assert why.startswith("does not fit: needs ")
    # the reason states what the model needs against what the board has: 3.86 GB of weights vs 7.55 MB of flash,
    # and the KV cache + workspace against its 512 KB of SRAM
    assert f"{row['weight_gb']:.3g} GB of flash for the weights (has {usable_flash / 1e6:.3g} MB usable)" in why
    assert f"{(row['kv_cache_gb'] + row['activation_gb']):.3g} GB of RAM" in why and "(has 472 KB usable)" in why
    # the accelerators are still counted (split evenly); the Jetson holds the 4-bit model alone, not the fp16 one
    assert row["n_gpu-24gb"] == 1 and row["n_jetson-orin-nano"] == 1
    assert df.set_index("bits").loc[16, "fit_jetson-orin-nano"].startswith("does not fit: needs 14.7 GB of memory")
    # the map says so instead of a count of hundreds
    heat = fig.data[-1]
    cells = dict(zip(heat.y, heat.text))
    assert list(cells["esp32-s3"]) == ["does not fit", "does not fit"]
    assert list(cells["jetson-orin-nano"]) == ["does not fit", "1"]
    assert "needs" in dict(zip(heat.y, heat.customdata))["esp32-s3"][1]


@pytest.mark.parametrize("kwargs, match", [
    ({"config": {"num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 10}}, "hidden size"),
    ({**GLM_130B, "hidden_size": -5}, "hidden_size must be a positive integer"),
    ({**GLM_130B, "num_kv_heads": 7}, "must divide"),
    ({**GLM_130B, "bits": (7,)}, "bits must be"),
    ({**GLM_130B, "max_seq_len": 0}, "max_seq_len"),
    ({**GLM_130B, "usable_fraction": 1.5}, "usable_fraction"),
    ({**GLM_130B, "hidden_size": 1000}, "not a multiple"),
    ({**GLM_130B, "colour": "red"}, "Unknown shape argument"),
    ({"config": 3.0}, "config must be"),
])
def test_bad_input_gives_clear_errors(kwargs, match):
    with pytest.raises(WorkbenchError, match=match):
        llm_memory(**kwargs)


def test_missing_config_file(tmp_path):
    with pytest.raises(WorkbenchError, match="cannot read"):
        llm_memory(tmp_path / "nope.json")


def test_shape_from_chatglm_multi_query():
    s = shape_from({"model_type": "chatglm", "hidden_size": 4096, "num_layers": 28, "num_attention_heads": 32,
                    "multi_query_attention": True, "multi_query_group_num": 2, "padded_vocab_size": 65024,
                    "ffn_hidden_size": 13696, "tie_word_embeddings": False})
    assert (s.num_kv_heads, s.gated_ffn, s.head_dim) == (2, True, 128)
    assert math.isclose(s.params()["total"] / 1e9, 6.24, abs_tol=0.03)      # ChatGLM2-6B: 6.24B
