"""Accuracy-aware int8: an int8 export that fails parity keeps its most fragile quantisers float, smallest set
first, and the manifest says which, how they were ranked and what it cost.

The fast tests use a tiny MLP with one fragile activation: a constant outlier channel (1000, read by no
weight, like a transformer's outlier dimensions) dominates the static int8 range of the tensor between two
linear layers, so every other channel of it rounds to zero. Only that one tensor needs to stay float.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench
from workbench.artifacts.accuracy_control import AccuracyControl, keep_float_qdq, qdq_units, rank_qdq
from workbench.artifacts.parity import Tolerance
from workbench.core.errors import WorkbenchError


class Fragile(torch.nn.Module):
    """x (B, 8) -> Linear(8, 16) -> ReLU -> Linear(16, 16) -> Linear(16, 4), weights set by hand: the logits are
    x[:, :4] (the ReLU pair passes x through), and fc2's channel 0 is a constant 1000 that fc3 never reads."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(8, 16), torch.nn.Linear(16, 16), torch.nn.Linear(16, 4)
        eye = torch.eye(8)
        with torch.no_grad():
            for layer in (self.fc1, self.fc2, self.fc3):
                layer.weight.zero_()
                layer.bias.zero_()
            self.fc1.weight.copy_(torch.cat([eye, -eye]))  # relu(x), relu(-x)
            self.fc2.weight[1:9, :8] = eye  # channels 1..8: relu(x) - relu(-x) = x
            self.fc2.weight[1:9, 8:] = -eye
            self.fc2.bias[0] = 1000.0  # the outlier channel ...
            self.fc3.weight[:, 1:5] = torch.eye(4)  # ... that fc3 never reads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.fc2(torch.relu(self.fc1(x))))


@pytest.fixture(scope="module")
def fragile(tmp_path_factory):
    """The model as an ONNX file (the TorchScript exporter: a second, not the dynamo exporter's ~20 s here)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8)).astype(np.float32)
    labels = rng.integers(0, 4, 256)
    x[np.arange(256), labels] += 2.5  # a clear margin: int8 noise alone flips no answer
    path = tmp_path_factory.mktemp("fragile") / "fragile.onnx"
    torch.onnx.export(Fragile().eval(), (torch.from_numpy(x[:2]),), str(path), input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                      dynamo=False)
    return workbench.Task.from_model(workbench.load(path, example_inputs=[x[:2]]), [x], labels=labels,
                                     name="fragile")


def _fragile_tensor(art) -> str:
    """The tensor between fc2 and fc3 in the exported graph: the one quantiser that breaks int8."""
    (unit,) = art.manifest["accuracy_control"]["kept_float"]
    return unit["name"]


def test_all_int8_fails_and_the_refusal_stays_available(fragile, tmp_path):
    with pytest.raises(WorkbenchError, match="failed parity"):
        workbench.export(fragile.model, "onnx-int8", tmp_path, task=fragile, accuracy_control=False)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_the_one_fragile_tensor_is_kept_float_and_recorded(fragile, tmp_path):
    art = workbench.export(fragile.model, "onnx-int8", tmp_path, task=fragile)
    ac = art.manifest["accuracy_control"]
    source = art.parity["source"]["accuracy"]
    assert art.parity["passed"] and ac["after"]["accuracy"] >= source - 0.01
    assert ac["before"]["accuracy"] < source - 0.1  # measured: 0.92 -> 0.71 all-int8, 0.92 with it float
    (unit,) = ac["kept_float"]  # the smallest set: one tensor of the graph's quantisers
    assert unit["kind"] == "activation" and ac["quantisers"] > 3
    assert ac["ranking"]["top"][0]["name"] == unit["name"]  # ranked most fragile
    assert any(t["passed"] and t["scope"] == "parity" and t["kept_float"] == 1 for t in ac["tries"])
    assert art.manifest["recipe"]["kept_float"] == [unit["name"]]
    assert ac["cost"]["size_bytes"] == art.size_bytes and 0.5 < ac["cost"]["size_ratio"] < 2.0
    assert ac["cost"]["latency_ms_p50"] > 0 and ac["cost"]["latency"].startswith("measured")
    assert any("accuracy control kept 1 of" in n for n in art.manifest["notes"])
    # the file really holds that tensor in float: it has no QuantizeLinear on it any more
    import onnx

    model = onnx.load(str(art.path))
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] == unit["name"] for n in model.graph.node)
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) >= ac["quantisers"] - 1


def test_the_one_pass_ranking_puts_the_fragile_tensor_first(fragile, tmp_path):
    """With more units than `greedy_units`, the search ranks in one pass (`rank_qdq`) and takes the smallest
    passing prefix: here the first."""
    cfg = AccuracyControl(greedy_units=1, measure_latency=False)
    art = workbench.export(fragile.model, "onnx-int8", tmp_path, task=fragile, accuracy_control=cfg)
    ac = art.manifest["accuracy_control"]
    assert ac["ranking"]["method"].startswith("error each quantiser adds")
    assert len(ac["kept_float"]) == 1 and "latency_ms_p50" not in ac["cost"]
    assert [t["kept_float"] for t in ac["tries"] if t["scope"] == "parity"][-1] == 1


def test_rank_and_keep_float_on_the_qdq_file(fragile, tmp_path):
    from workbench.compression.quantize import Quantize
    from workbench.compression.quantize_files import realize_onnx
    from workbench.formats.convert import to_onnx

    qdq = realize_onnx(to_onnx(fragile.model), Quantize(8, activations=8), tmp_path / "q.onnx",
                       calibration=fragile.calibration, mode="static")
    units = qdq_units(qdq)
    scores = rank_qdq(qdq, fragile.calibration, samples=8)
    worst, runner_up = list(scores.values())[:2]
    assert set(scores) == {u.name for u in units} and worst > 10 * runner_up  # the outlier tensor stands out
    first = next(iter(scores))
    out = keep_float_qdq(qdq, [first], tmp_path / "kf.onnx")
    assert {u.name for u in qdq_units(out)} == {u.name for u in units} - {first}
    with pytest.raises(WorkbenchError, match="no activation quantiser"):
        keep_float_qdq(qdq, ["no-such-tensor"], tmp_path / "x.onnx")


def test_an_unreachable_tolerance_is_refused_at_once_with_the_figures(fragile, tmp_path):
    strict = Tolerance(metric_drop=0.0, agreement=1.0, max_rel_error=1e-9)
    with pytest.raises(WorkbenchError) as err:
        workbench.export(fragile.model, "onnx-int8", tmp_path / "out", task=fragile, tolerance=strict)
    msg = str(err.value)
    assert "failed parity on 256 evaluation samples in onnxruntime" in msg  # the all-int8 figures first
    assert "Accuracy control could not recover it: even with all" in msg and msg.endswith("Nothing was written.")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"max_tries": 0}, "max_tries must be a positive int"),
    ({"max_float_fraction": 1.5}, r"max_float_fraction must be in \(0, 1\]"),
    ({"ranking_limit": 0}, "ranking_limit"),
    ({"greedy_rounds": True}, "greedy_rounds"),
])
def test_bad_configs_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AccuracyControl(**kwargs)


def test_a_bad_accuracy_control_option_is_refused(fragile, tmp_path):
    with pytest.raises(WorkbenchError, match="accuracy_control must be True, False or"):
        workbench.export(fragile.model, "onnx-int8", tmp_path, task=fragile, accuracy_control="yes")


@pytest.mark.slow
@pytest.mark.parametrize("task_name, target", [
    ("silero-vad", "onnx-int8-dynamic"),  # measured: frame accuracy 0.41 -> 0.95, conv3 + conv4 float
    ("silero-vad", "tflite-int8"),        # measured: 0.59 -> 0.98, final_conv's output float
    ("minilm", "onnx-int8"),              # measured: accuracy 0.52 -> ~0.87, ~30 of 219 activations float
])
def test_zoo_int8_exports_pass_parity_with_accuracy_control(task_name, target, tmp_path):
    task = workbench.zoo.load(task_name)
    art = workbench.export(task.model, target, tmp_path, task=task)
    ac = art.manifest["accuracy_control"]
    assert art.parity["passed"] and ac["kept_float"]
    assert len(ac["kept_float"]) <= 0.5 * ac["quantisers"]
    m = art.parity["metric"]
    assert ac["before"][m] < ac["after"][m] and art.parity["source"][m] - art.parity["artifact"][m] <= 0.03
