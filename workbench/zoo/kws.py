"""Keyword spotting: MLPerf Tiny's DS-CNN on espeak-ng keywords in noise, trained locally by
data/train_kws_dscnn.py on data/kws_features.npz (data/make_kws_data.py)."""

from __future__ import annotations

from workbench.core.paths import data_file
from workbench.formats.loader import load
from workbench.task import Task


def load_task() -> Task:
    """kws: 23k-parameter DS-CNN (2.7 M MACs), 12-class held-out accuracy (~0.89) on 1,200 clips of unseen voices."""
    from safetensors.torch import load_file

    from workbench.zoo.kws_net import WEIGHTS_FILE, build_kws_dscnn, kws_splits

    model = build_kws_dscnn()
    model.load_state_dict(load_file(str(data_file(WEIGHTS_FILE))), strict=True)
    model.eval()
    splits = kws_splits()
    x_train, y_train = splits["train"]
    x_cal, _ = splits["calibration"]
    x_eval, y_eval = splits["eval"]
    handle = load(model, example_inputs=[x_eval[:4]], name="kws")
    return Task(
        name="kws",
        model=handle,
        metric="accuracy",
        example_inputs=[x_eval[:4]],
        calibration=[x_cal],
        eval_inputs=[x_eval],
        eval_labels=y_eval,
        train_inputs=[x_train],
        train_labels=y_train,
        description="Keyword spotting (MLPerf Tiny DS-CNN, 12 classes) on espeak-ng speech in noise, 49x10 MFCCs; "
                    "metric: top-1 accuracy on held-out voices and noise",
    )
