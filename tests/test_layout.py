"""The import rules between the project's packages: imports only point down.

newsclf (the served model) <- features (text to vectors) <- train (fit, track, evaluate) <- bench
(research tooling). A logged model bundles newsclf alone, so it must import nothing above it and
no library a fresh environment with mlflow and scikit-learn lacks.
"""

import ast
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT

ALLOWED = {
    "newsclf": {"newsclf"},
    "features": {"newsclf", "features"},
    "train": {"newsclf", "features", "train"},
    "bench": {"newsclf", "features", "train", "bench"},
}
# What the served package may import besides the standard library: scikit-learn and what it and
# MLflow install (pandas only for predict_frame and the pyfunc model).
SERVED_LIBRARIES = {"numpy", "scipy", "sklearn", "joblib", "mlflow", "pandas"}


def _imports(package: str) -> dict[Path, set[str]]:
    """Top-level module names each file of ``package`` imports, wherever in the file."""
    found = {}
    for path in sorted((PROJECT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[path] = names
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_only_point_down(package):
    for path, names in _imports(package).items():
        wrong = (names & set(ALLOWED)) - ALLOWED[package]
        assert not wrong, f"{path.relative_to(PROJECT)} imports {sorted(wrong)}"


def test_the_served_package_needs_only_what_mlflow_and_scikit_learn_install():
    for path, names in _imports("newsclf").items():
        outside = names - SERVED_LIBRARIES - set(sys.stdlib_module_names) - {"newsclf"}
        assert not outside, f"{path.relative_to(PROJECT)} imports {sorted(outside)}"
