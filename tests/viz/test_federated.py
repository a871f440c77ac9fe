import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.viz import federated_curves


def frame(label, acc, sent):
    df = pd.DataFrame({"round": [1, 2], "accuracy": acc, "upload_bytes": sent,
                       "upload_bytes_cumulative": pd.Series(sent).cumsum(), "update": [label, label]})
    df.attrs.update(initial_accuracy=0.1, metric="accuracy")
    return df


def test_two_panels_one_line_per_update_starting_at_round_zero():
    fig = federated_curves([frame("fp32", [0.5, 0.7], [400, 400]), frame("q8", [0.45, 0.68], [100, 100])])
    assert [t.name for t in fig.data] == ["fp32", "fp32", "q8", "q8"]
    assert list(fig.data[0].x) == [0, 1, 2] and list(fig.data[3].x) == [0, 100, 200]
    assert fig.layout.xaxis2.type == "log" and "measured" in fig.layout.xaxis2.title.text


def test_refuses_a_frame_that_is_not_a_simulation():
    with pytest.raises(WorkbenchError, match="simulate"):
        federated_curves(pd.DataFrame({"x": [1]}))
