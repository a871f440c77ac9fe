"""The default task: a MobileNet-style CNN on scikit-learn's digits, trained locally by data/train_digits_cnn.py."""

from __future__ import annotations

from workbench.core.paths import data_file
from workbench.formats.loader import load
from workbench.task import Task


def load_task() -> Task:
    """digits-cnn: 136k-parameter CNN, held-out accuracy (~0.99) on 450 digits."""
    from safetensors.torch import load_file

    from workbench.zoo.digits_net import WEIGHTS_FILE, build_digits_cnn, digits_splits

    model = build_digits_cnn()
    model.load_state_dict(load_file(str(data_file(WEIGHTS_FILE))), strict=True)
    model.eval()
    splits = digits_splits(seed=0)
    x_train, y_train = splits["train"]
    x_cal, _ = splits["calibration"]
    x_eval, y_eval = splits["eval"]
    handle = load(model, example_inputs=[x_eval[:4]], name="digits-cnn")
    return Task(
        name="digits-cnn",
        model=handle,
        metric="accuracy",
        example_inputs=[x_eval[:4]],
        calibration=[x_cal],
        eval_inputs=[x_eval],
        eval_labels=y_eval,
        train_inputs=[x_train],
        train_labels=y_train,
        description="MobileNet-style CNN, scikit-learn digits upscaled to 32x32; metric: held-out top-1 accuracy",
    )
