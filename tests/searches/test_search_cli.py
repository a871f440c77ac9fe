"""`workbench search SPEC.yaml`: a spec file runs headless, resumes, and bad specs are one clear line."""

from __future__ import annotations

import workbench
from workbench.cli import main


def test_search_spec_runs_headless_and_a_rerun_measures_nothing(tmp_path, capsys):
    spec = workbench.Space(prune=[0, 0.5], structure="channel", bits=[32, 8], limit=60).save(
        tmp_path / "s.yaml", task="digits-cnn", objectives={"accuracy": "max", "size_bytes": "min"}, n_trials=4,
        store=str(tmp_path / "r.sqlite"))
    assert main(["search", str(spec), "--no-memory", "--no-progress", "--csv", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    assert "4 trials" in out and "Pareto front" in out and "baseline" in out
    assert (tmp_path / "t.csv").read_text().startswith("task,variant") or "trial" in (tmp_path / "t.csv").read_text()
    assert main(["search", str(spec), "--no-memory", "--no-progress"]) == 0
    assert "(0 measured now" in capsys.readouterr().out


def test_a_bad_spec_is_one_clear_error(tmp_path, capsys):
    p = tmp_path / "s.yaml"
    p.write_text("space: {bits: [8]}\n")
    assert main(["search", str(p), "--no-progress"]) == 2
    assert "names no task" in capsys.readouterr().err
