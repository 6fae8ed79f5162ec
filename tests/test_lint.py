"""The code stays clean under the configured linters, and the declared
runtime dependencies are exactly what the package imports."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "sklearn_cnn"

# Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"sklearn": "scikit-learn"}
# Optional imports and the extra that declares them: matplotlib only inside
# functions that draw, onnx and skl2onnx only by sklearn_cnn.onnx.
OPTIONAL = {"matplotlib": "plot", "onnx": "onnx", "skl2onnx": "onnx"}


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_cython_lint_is_clean():
    executable = shutil.which("cython-lint") or str(Path(sys.executable).parent /
                                                    "cython-lint")
    sources = sorted(str(p) for p in (PACKAGE / "_kernels").glob("*.p[yx]*"))
    result = subprocess.run([executable, *sources], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def imported_top_level_modules():
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"sklearn_cnn"}


def declared(section):
    """Distribution names in a list of pyproject.toml (without version bounds)."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(rf"^{section} = \[(.*?)\]", text, re.MULTILINE | re.DOTALL).group(1)
    return {re.split(r"[<>=\[ ]", item)[0] for item in re.findall(r'"([^"]+)"', block)}


def test_declared_dependencies_match_imports():
    imported = imported_top_level_modules()
    required = {DISTRIBUTIONS.get(name, name) for name in imported if name not in OPTIONAL}
    assert required == declared("dependencies")
    for name, extra in OPTIONAL.items():
        assert name in imported and name in declared(extra)
