"""Over-the-air update size: full, deflated and bsdiff delta; a 4-bit update ships fewer bytes than an 8-bit one."""

from __future__ import annotations

import os

import bsdiff4
import pytest

from workbench.core.errors import WorkbenchError
from workbench.plan import update_size


def test_columns_and_delta_of_a_small_change(tmp_path):
    old = os.urandom(50_000)
    new = old[:20_000] + b"patched!" + old[20_008:]
    (tmp_path / "v1.bin").write_bytes(old)
    df, fig = update_size(tmp_path / "v1.bin", new, label="v2")
    row = df.iloc[0]
    assert (row["update"], row["old_bytes"], row["full_bytes"]) == ("v2", 50_000, 50_000)
    assert row["deflated_bytes"] > 49_000                                   # random bytes do not deflate
    assert row["delta_bytes"] < 1_000 and row["best_method"] in ("delta", "delta_deflated")
    assert row["best_bytes"] == min(row[c] for c in ("full_bytes", "deflated_bytes", "delta_bytes",
                                                     "delta_deflated_bytes"))
    assert row["saving"] == pytest.approx(1 - row["best_bytes"] / 50_000)
    assert len(fig.data) == 4


def test_delta_reproduces_the_file():
    old, new = b"abc" * 1000, b"abd" * 1000 + b"tail"
    assert bsdiff4.patch(old, bsdiff4.diff(old, new)) == new
    df, _ = update_size(old, {"a": new, "b": old})
    assert list(df["update"]) == ["a", "b"] and df.set_index("update").loc["b", "delta_bytes"] < 200   # headers only


def test_large_files_skip_the_delta():
    df, _ = update_size(b"x" * 1000, b"y" * 1000, max_delta_bytes=100)
    assert df["delta_bytes"].isna().all() and df["best_method"].item() == "deflated"


def test_bad_input(tmp_path, digits):
    with pytest.raises(WorkbenchError, match="not a file"):
        update_size(tmp_path / "missing.tflite", b"x")
    with pytest.raises(WorkbenchError, match="same labels"):
        update_size({"a": b"x"}, {"b": b"y"})
    with pytest.raises(WorkbenchError, match="old is a mapping"):
        update_size({"a": b"x"}, b"y")
    with pytest.raises(WorkbenchError, match="level"):
        update_size(b"x", b"y", level=12)
    from workbench.compression import Quantize, compress

    variant = compress(digits.model, Quantize(8), task=digits)              # in-memory torch variant: no file
    with pytest.raises(WorkbenchError, match="realize"):
        update_size(variant, b"y")


def test_four_bit_update_ships_fewer_bytes_than_eight_bit(digits):
    """The deployed model is v1 at b bits; v2 is the same model after a short quantisation-aware fine-tune,
    at the same b bits. Both realised for LiteRT (int8: static, calibrated; int4: dynamic-range weights)."""
    from workbench.compression import Quantize, Recover, compress
    from workbench.realize import realize

    old, new = {}, {}
    for b in (8, 4):
        v1 = compress(digits.model, Quantize(b), task=digits)
        v2 = compress(digits.model, Quantize(b), Recover(steps=60), task=digits)
        old[f"int{b}"], new[f"int{b}"] = realize(v1, "litert", digits), realize(v2, "litert", digits)
        assert new[f"int{b}"].realized, new[f"int{b}"].note
    df, _ = update_size(old, new)
    by = df.set_index("update")
    for col in ("full_bytes", "deflated_bytes", "delta_bytes", "best_bytes"):
        assert by.loc["int4", col] < by.loc["int8", col], col
    # After a fine-tune most 4-bit codes stay put (the delta beats deflate); most int8 codes move.
    assert by.loc["int4", "best_method"].startswith("delta")
    assert by.loc["int4", "best_bytes"] < 0.5 * by.loc["int8", "best_bytes"]
