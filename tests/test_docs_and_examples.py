"""The documentation's code runs, every example writes its pictures, and the
docs build without a single warning."""

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
                   "install.rst", "scaling_out.rst"]
EXAMPLE_PICTURES = {
    "plot_learning_curves.py": ["learning_curves.png"],
    "plot_filters_and_feature_maps.py": ["filters_and_feature_maps.png"],
    "plot_confusion_matrix.py": ["confusion_matrix.png", "misclassified.png"],
    "plot_grid_search.py": ["grid_search.png"],
    "plot_features_pipeline.py": ["features_pipeline.png"],
}


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


@pytest.mark.parametrize("script", sorted(EXAMPLE_PICTURES))
def test_every_example_writes_its_pictures(script, tmp_path):
    subprocess.run([sys.executable, str(EXAMPLES / script), "--out", str(tmp_path),
                    "--quick"], check=True, capture_output=True, timeout=300)
    for name in EXAMPLE_PICTURES[script]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_examples_list_is_complete():
    assert {path.name for path in EXAMPLES.glob("plot_*.py")} == set(EXAMPLE_PICTURES)


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    pytest.importorskip("pydata_sphinx_theme")
    source = tmp_path / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns(
        "_build", "generated", "_generated"))
    subprocess.run([sys.executable, str(EXAMPLES / "run_all.py"), "--quick", "--out",
                    str(source / "_generated")], check=True, capture_output=True,
                   timeout=600)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         str(source), str(tmp_path / "html")], capture_output=True, text=True,
        timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "html" / "user_guide.html").exists()
