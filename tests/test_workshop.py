"""The notebooks are a course: each states objectives, prerequisites and duration, links the glossary, has
exercises (one in the middle as well as at the end) each followed by an empty cell for the participant and a
collapsed solution that Run All neither runs nor shows, and ends with takeaways.

The format (docs/workshop.md, "Writing a notebook", says the same for authors):

- first cell: ``# NN · Title``, then ``**Objectives**`` (a bullet list), ``**Prerequisites**`` and
  ``**Duration**`` (``45 min``; the Run All time, full and in fast mode, measured), and a link to
  ``GLOSSARY.md``;
- an exercise: a markdown cell headed ``## Exercise …`` / ``### Your turn …``; next, an empty code cell (comments
  only); next, a markdown cell tagged ``solution`` holding ``<details><summary>Solution</summary>`` and one
  fenced ``python`` block that ends by checking its answer (an ``assert``);
- last cell: ``## Takeaways`` with bullets.

`tests/test_notebooks.py` executes every notebook with each solution put into its participant cell, so the
solutions run and check themselves; `solution_only_names_used_later` keeps Run All working without them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
GLOSSARY = ROOT / "notebooks" / "GLOSSARY.md"
EXERCISE = re.compile(r"^#{2,3} (Exercise|Your turn)\b", re.M)
SOLUTION = re.compile(r"<details>\s*<summary>\s*Solution[^<]*</summary>(.*?)</details>", re.S)
FENCE = re.compile(r"```python\n(.*?)```", re.S)
# The terms the issue found used unexplained, and the others the series leans on.
TERMS = ("LiteRT", "QDQ", "p50", "MatMulNBits", "Straight-through estimator", "Roofline", "Hyperperiod", "KV cache",
         "DVFS", "Leakage", "Pareto front", "Hypervolume", "Perplexity", "Fast mode", "Parity", "Manifest")


def is_exercise(cell) -> bool:
    return cell.cell_type == "markdown" and bool(EXERCISE.search(cell.source))


def is_solution(cell) -> bool:
    return "solution" in cell.metadata.get("tags", [])


def is_empty_code(cell) -> bool:
    return cell.cell_type == "code" and all(not ln.strip() or ln.lstrip().startswith("#")
                                            for ln in cell.source.splitlines())


def solution_code(cell) -> str:
    """The code inside a solution cell's collapsed ``<details>`` block."""
    found = SOLUTION.search(cell.source)
    assert found, "a solution cell holds <details><summary>Solution</summary> ... </details>"
    blocks = FENCE.findall(found.group(1))
    assert len(blocks) == 1, "a solution holds one ```python block"
    return blocks[0]


def with_solutions(nb):
    """The notebook with each solution's code in the participant cell before it (what the tests execute)."""
    nb = nbformat.from_dict(nb)
    for i, cell in enumerate(nb.cells):
        if is_solution(cell):
            nb.cells[i - 1].source = solution_code(cell)
    return nb


def names(code: str, ctx: type) -> set[str]:
    tree = ast.parse("\n".join(ln for ln in code.splitlines() if not ln.lstrip().startswith(("%", "!"))))
    found = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}
    if ctx is ast.Store:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return found


def solution_only_names_used_later(nb) -> set[str]:
    """Names a later regular cell reads that only a solution defines (Run All, solutions unopened, would fail)."""
    defined: set[str] = set()
    only: set[str] = set()
    bad: set[str] = set()
    for cell in nb.cells:
        if is_solution(cell):
            only |= names(solution_code(cell), ast.Store) - defined
        elif cell.cell_type == "code":
            bad |= (names(cell.source, ast.Load) & only) - defined
            defined |= names(cell.source, ast.Store)
    return bad


def test_there_is_a_glossary_with_the_terms_the_series_uses():
    text = GLOSSARY.read_text()
    headings = set(re.findall(r"^### (.+?)\s*$", text, re.M))
    assert not [t for t in TERMS if t not in headings], f"GLOSSARY.md lacks {[t for t in TERMS if t not in headings]}"


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_the_course_scaffolding(path):
    nb = nbformat.read(path, as_version=4)
    head = nb.cells[0]
    assert head.cell_type == "markdown" and re.match(rf"# {path.name[:2]} · \S", head.source), \
        f"{path.name}: the first cell opens with '# {path.name[:2]} · Title'"
    objectives = re.search(r"\*\*Objectives\*\*.*?\n((?:\s*[-*] .+\n?){2,})", head.source, re.S)
    assert objectives, f"{path.name}: **Objectives** with at least two bullets in the first cell"
    assert "**Prerequisites**" in head.source, f"{path.name}: **Prerequisites** in the first cell"
    duration = re.search(r"\*\*Duration\*\*(.*)", head.source)
    assert duration and re.search(r"\b\d+ min\b", duration.group(1)) and "fast mode" in duration.group(1), \
        f"{path.name}: '**Duration** 45 min ... (Run All ... fast mode ...)' on one line, in minutes"
    assert not re.search(r"\b\d+(\.\d+)? ?(h|hours?)\b", duration.group(1)), f"{path.name}: durations in minutes"
    assert "GLOSSARY.md" in head.source, f"{path.name}: the first cell links notebooks/GLOSSARY.md"
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.source.lstrip().startswith("## Takeaways") and \
        len(re.findall(r"^\s*[-*] ", last.source, re.M)) >= 2, f"{path.name}: ends with '## Takeaways' and bullets"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_have_a_participant_cell_and_a_closed_solution(path):
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    exercises = [i for i, c in enumerate(cells) if is_exercise(c)]
    assert len(exercises) >= 2, f"{path.name}: an exercise in the middle as well as at the end"
    sections_after_first = [c for c in cells[exercises[0] + 1:exercises[-1]]
                            if c.cell_type == "markdown" and re.match(r"#{2,3} ", c.source) and not is_exercise(c)]
    assert sections_after_first, f"{path.name}: the first exercise sits in the middle, with teaching after it"
    for i in exercises:
        assert i + 2 < len(cells), f"{path.name}: exercise at cell {i} has no participant cell and solution"
        assert is_empty_code(cells[i + 1]), f"{path.name}: cell {i + 1}, after an exercise, is an empty code cell"
        assert is_solution(cells[i + 2]), f"{path.name}: cell {i + 2}, after the participant cell, is the solution"
    for i, c in enumerate(cells):
        if is_solution(c):
            assert c.cell_type == "markdown", f"{path.name}: cell {i}: a solution is a markdown cell (Run All skips it)"
            assert "<details open" not in c.source, f"{path.name}: cell {i}: a solution starts closed"
            assert i >= 2 and is_exercise(cells[i - 2]) and is_empty_code(cells[i - 1]), \
                f"{path.name}: cell {i}: a solution follows an exercise and its empty participant cell"
            code = solution_code(c)
            ast.parse(code)
            assert "assert " in code, f"{path.name}: cell {i}: a solution ends by checking its answer (assert)"
            assert len(code.strip().splitlines()) <= 10, f"{path.name}: cell {i}: keep solutions short"
    assert not solution_only_names_used_later(nb), \
        f"{path.name}: later cells use names only a solution defines: {solution_only_names_used_later(nb)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_glossary_links_resolve(path):
    anchors = {slug(h) for h in re.findall(r"^#{1,4} (.+?)\s*$", GLOSSARY.read_text(), re.M)}
    nb = nbformat.read(path, as_version=4)
    links = {a for c in nb.cells if c.cell_type == "markdown" for a in re.findall(r"GLOSSARY\.md#([\w\-]+)", c.source)}
    assert not links - anchors, f"{path.name}: glossary links to missing terms {sorted(links - anchors)}"


def test_the_checks_catch_a_solution_that_runs_on_run_all():
    """A shown, runnable solution (the old `source_hidden` code cell) is refused; a name only it defines is caught."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Exercise\nCount them."),
        nbformat.v4.new_code_cell(""),
        nbformat.v4.new_markdown_cell("<details><summary>Solution</summary>\n\n```python\nn = 2\nassert n == 2\n```\n"
                                      "</details>", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("print(n)"),
    ])
    assert solution_only_names_used_later(nb) == {"n"}
    assert with_solutions(nb).cells[1].source.startswith("n = 2")
    assert not is_empty_code(nbformat.v4.new_code_cell("# Solution\nx = 1"))


def test_make_lab_serves_the_notebooks_and_prints_the_address(tmp_path):
    import json
    import os
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = f"--no-browser --port={port} --port-retries=0 --ip=127.0.0.1 --IdentityProvider.token=wb-test"
    log = tmp_path / "lab.log"
    with log.open("w") as out:  # a file, not a pipe: a server that logs more than a pipe holds would block
        proc = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for localhost
    try:
        listed, deadline = None, time.monotonic() + 120
        while listed is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            if f"http://127.0.0.1:{port}/lab?token=" not in log.read_text():
                continue
            try:
                with direct.open(f"http://127.0.0.1:{port}/api/contents/?token=wb-test", timeout=30) as r:
                    listed = {item["name"] for item in json.load(r)["content"]}
            except OSError:
                continue  # printed the address a moment before it listens
        assert listed is not None, log.read_text()[-2000:]
        assert {p.name for p in NOTEBOOKS} | {"GLOSSARY.md"} <= listed
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_make_wheelhouse_lists_this_environment_and_setup_can_install_from_it_offline():
    """`make wheelhouse` writes pip freeze's list and builds wheels of it; WHEELHOUSE= makes setup index-free.

    Downloading the 2.8 GB is not done here; the dry run shows the commands, and `make -p` the exported pip
    settings that turn every pip call of `make setup` offline.
    """
    import subprocess

    dry = subprocess.run(["make", "-n", "wheelhouse", "WHEELHOUSE=wh"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert "pip freeze --exclude-editable" in dry and "pip wheel" in dry and "--no-deps" in dry
    assert "setuptools>=68" in dry  # the editable install's build backend, offline
    db = subprocess.run(["make", "-pn", "setup", "WHEELHOUSE=wh"], cwd=ROOT, capture_output=True, text=True).stdout
    assert re.search(r"^export PIP_NO_INDEX := 1$", db, re.M) or "PIP_NO_INDEX := 1" in db
    assert f"PIP_FIND_LINKS := {ROOT / 'wh'}" in db


def test_make_reset_removes_results_and_keeps_the_notebooks(tmp_path):
    """Between groups: stores, search journals and reports go; the participants' notebooks stay."""
    import os
    import subprocess
    import sys

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "results").mkdir()
    kept = tmp_path / "notebooks" / "04_sweeps.ipynb"
    gone = [tmp_path / "notebooks" / n for n in ("nb04-results.sqlite", "nb04-results.sqlite.optuna.log",
                                                  "nb04-report.html")] + [tmp_path / "results" / "kws.sqlite"]
    for f in [kept, *gone]:
        f.write_text("x")
    subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "reset"], cwd=tmp_path, check=True,
                   capture_output=True)
    assert kept.exists() and not [f for f in gone if f.exists()]
    cache = tmp_path / "cache"
    (cache / "onnx").mkdir(parents=True)
    subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "reset-cache", f"PY={sys.executable}"],
                   cwd=ROOT, check=True, capture_output=True, env={**os.environ, "WORKBENCH_CACHE": str(cache)})
    assert not cache.exists()


def test_the_instructors_guide_covers_every_notebook_with_its_header_duration():
    guide = (ROOT / "docs" / "workshop.md").read_text()
    for path in NOTEBOOKS:
        head = nbformat.read(path, as_version=4).cells[0].source
        minutes = re.search(r"\*\*Duration\*\*\D*(\d+) min", head).group(1)
        row = re.search(rf"^\| {path.name[:2]} · [^|]+\| (\d+) min \|", guide, re.M)
        assert row, f"docs/workshop.md: no duration row for {path.name}"
        assert row.group(1) == minutes, f"docs/workshop.md says {row.group(1)} min for {path.name}, it says {minutes}"
        assert re.search(rf"^### {path.name[:2]} · ", guide, re.M), f"docs/workshop.md: no notes on {path.name}"
    for topic in ("make reset", "make wheelhouse", "WORKBENCH_FAST", "09:00"):
        assert topic in guide, topic
