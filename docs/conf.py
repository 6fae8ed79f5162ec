"""Sphinx configuration: numpydoc docstrings, scikit-learn's look (pydata theme)."""

import os
import sys

sys.path.insert(0, os.path.abspath("."))

import sklearn_cnn  # noqa: E402  (installed package: the docs describe what users get)

project = "sklearn-cnn"
author = "the sklearn-cnn developers"
copyright = "2026, the sklearn-cnn developers"
release = version = sklearn_cnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
# The examples run while the docs build (their code, output and figures become
# the gallery).  SKLEARN_CNN_EXAMPLES_DIR lets the test suite build a copy of
# the docs; SKLEARN_CNN_EXAMPLES_QUICK=1 makes the examples small.
sphinx_gallery_conf = {
    "examples_dirs": os.environ.get(
        "SKLEARN_CNN_EXAMPLES_DIR",
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")),
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "within_subsection_order": "FileNameSortKey",
    "write_computation_times": False,
    "abort_on_example_error": True,
}
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
intersphinx_mapping = {}  # no network at build time: no cross-project links
# The class template lists methods only: the parameters (dataclass fields of
# the layer specifications included) are documented in the docstrings.
templates_path = ["_templates"]
exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-cnn {release}"
html_theme_options = {"navigation_with_keys": False}
html_static_path = []
