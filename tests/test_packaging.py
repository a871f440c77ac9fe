"""Setup stays honest: pyproject and environment.yml agree, the README's two commands are what CI runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    # Same set of requirements, plus the CPU torch pin first and the package itself.
    assert pip[0] == "torch==2.13.0"
    assert "-e ." in pip
    assert {_norm(d) for d in deps} == {_norm(d) for d in pip
                                        if d not in ("torch==2.13.0", "-e .") and not d.startswith("--")}
    # PyTorch's CPU index, so the pin resolves to 2.13.0+cpu rather than PyPI's CUDA build (Binder).
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip


def test_binder_post_build_installs_what_the_makefile_installs_without_dependencies():
    post = (ROOT / "postBuild").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for pin in re.findall(r'--no-deps "([^"]+)"', makefile):
        assert pin in post, pin
    assert "--no-deps" in post


def test_torch_range_admits_the_cpu_wheel_and_jupyter_client_is_capped():
    from packaging.requirements import Requirement

    deps = {Requirement(d).name: Requirement(d) for d in
            tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert deps["torch"].specifier.contains("2.13.0+cpu", prereleases=False)
    assert not deps["jupyter-client"].specifier.contains("8.10.0")
    for name in ["onnx", "onnxscript", "onnxruntime", "ai-edge-litert", "litert-torch", "ai-edge-quantizer",
                 "torch-pruning", "plotly", "anywidget", "pandas", "ipywidgets", "jupyterlab", "voila",
                 "scikit-learn", "tqdm"]:
        assert name in deps, name
    assert "tflite-runtime" not in deps  # optional extra runtime only


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    makefile = (ROOT / "Makefile").read_text()
    # The CPU wheel is installed before the package, so pip never resolves a CUDA torch.
    assert makefile.index("torch==2.13.0+cpu") < makefile.index('install --quiet -e')


def test_layout():
    for p in ["README.md", "environment.yml", "pyproject.toml", "notebooks", "workbench", "data", "tests",
              "dashboards", "benchmarks", ".ci/run"]:
        assert (ROOT / p).exists(), p


def test_venv_is_ignored():
    assert ".venv/" in (ROOT / ".gitignore").read_text().splitlines()
