"""The documentation's code runs, every example draws its figures, and the
docs (with the sphinx-gallery of the examples) build without a single warning."""

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from sklearn.exceptions import ConvergenceWarning

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
PAGES_WITH_CODE = ["quick_start.rst", "user_guide.rst", "threads_and_reproducibility.rst",
                   "install.rst", "scaling_out.rst", "deployment.rst"]
# Figures each example draws.
EXAMPLE_FIGURES = {
    "plot_learning_curves.py": 1,
    "plot_filters_and_feature_maps.py": 1,
    "plot_confusion_matrix.py": 2,
    "plot_grid_search.py": 1,
    "plot_features_pipeline.py": 1,
    "plot_time_series.py": 3,
    "plot_training_recipes.py": 1,
}
QUICK = {"SKLEARN_CNN_EXAMPLES_QUICK": "1", "MPLBACKEND": "Agg"}


def python_blocks(page):
    """The bodies of the page's ``.. code-block:: python`` directives."""
    text = (DOCS / page).read_text()
    blocks = []
    for match in re.finditer(r"^\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", text,
                             re.MULTILINE):
        lines = [line[4:] for line in match.group(1).splitlines()]
        blocks.append("\n".join(lines).strip() + "\n")
    return blocks


@pytest.mark.parametrize("page", PAGES_WITH_CODE)
def test_every_code_block_in_the_docs_runs(page, tmp_path, monkeypatch):
    blocks = python_blocks(page)
    assert blocks, f"no python code blocks found in {page}"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for block in blocks:
            exec(compile(block, f"{page}", "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("script", sorted(EXAMPLE_FIGURES))
def test_every_example_runs_and_draws(script, tmp_path):
    """As a plain script, in quick mode: it draws its figures."""
    runner = ("import runpy, sys, matplotlib.pyplot as plt; "
              "runpy.run_path(sys.argv[1], run_name='__main__'); "
              "print('figures:', len(plt.get_fignums()))")
    result = subprocess.run([sys.executable, "-c", runner, str(EXAMPLES / script)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, **QUICK})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"figures: {EXAMPLE_FIGURES[script]}" in result.stdout


def test_examples_list_is_complete():
    assert {path.name for path in EXAMPLES.glob("plot_*.py")} == set(EXAMPLE_FIGURES)


def test_docs_build_without_warnings(tmp_path):
    """The README's one docs command, on a copy of docs/, examples in quick mode."""
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    pytest.importorskip("pydata_sphinx_theme")
    pytest.importorskip("sphinx_gallery")
    source = tmp_path / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns(
        "_build", "generated", "auto_examples", "sg_execution_times.rst"))
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         str(source), str(tmp_path / "html")], capture_output=True, text=True,
        timeout=600, env={**os.environ, **QUICK, "PYTHONWARNINGS": "ignore",
                          "SKLEARN_CNN_EXAMPLES_DIR": str(EXAMPLES)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = tmp_path / "html"
    assert (html / "user_guide.html").exists()
    # The gallery: every example's page, its code, its figures, its download.
    for script, n_figures in EXAMPLE_FIGURES.items():
        page = (html / "auto_examples" / script.replace(".py", ".html")).read_text()
        assert "sphx-glr-download" in page
        for number in range(1, n_figures + 1):
            image = f"sphx_glr_{script[:-3]}_{number:03d}.png"
            assert image in page
            assert (html / "_images" / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
