"""The import rules of the project: rooms by role, imports pointing down only, no circles.

newsclf (the served model) <- features (text to vectors) <- train (fit, track, evaluate) <- bench
(research tooling). A logged model bundles newsclf alone, so it must import nothing above it and no
library a fresh environment with mlflow and scikit-learn lacks. Inside train, every module sits in a
layer and imports only from its own layer or lower ones, and no import circle exists anywhere;
imports inside functions count, since they only hide a circle until the function runs.
"""

import ast
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT

# Folder in the repository -> the package it is installed as.
ROOMS = {"newsclf": "newsclf", "features": "newsclf.features", "train": "newsclf.train", "bench": "bench"}
ALLOWED = {
    "newsclf": {"newsclf"},
    "newsclf.features": {"newsclf", "newsclf.features"},
    "newsclf.train": {"newsclf", "newsclf.features", "newsclf.train"},
    "bench": {"newsclf", "newsclf.features", "newsclf.train", "bench"},
}
# The layers of newsclf.train, lowest first; a module is in the layer of its longest listed prefix.
TRAIN_LAYERS = [
    {"paths", "progress", "classifiers", "cluster", "data.sources"},
    {"config"},
    {"data"},
    {"evaluation"},
    {"fit"},
    {"tracking"},
    {"jobs"},
    {"training"},
    {"cli", ""},  # "": the package's own __init__, its public face
]
# `python -m newsclf`: the CLI's entry, in the served folder but never bundled with a model.
ENTRY = "newsclf.__main__"
# What the served package may import besides the standard library: scikit-learn and what it and
# MLflow install (pandas only for predict_frame and the pyfunc model).
SERVED_LIBRARIES = {"numpy", "scipy", "sklearn", "joblib", "mlflow", "pandas"}


def _modules() -> dict[str, Path]:
    """Every module of the project by its installed dotted name."""
    found = {}
    for folder, package in ROOMS.items():
        for path in sorted((PROJECT / folder).glob("**/*.py")):
            parts = list(path.relative_to(PROJECT / folder).with_suffix("").parts)
            if folder == "newsclf" and parts[0] in ("train", "features"):
                continue  # the links that install train/ and features/ inside newsclf
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _room(module: str) -> str:
    if module == ENTRY:
        return "newsclf.train"
    return max((room for room in ALLOWED if module == room or module.startswith(room + ".")), key=len)


def _imports(module: str) -> tuple[set[str], set[str]]:
    """The project modules ``module`` imports (anywhere in its file), and every top-level name it imports."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found, top = set(), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        top |= {name.split(".")[0] for name in names}
        found |= {name for name in names if name in MODULES and name != module}
    return found, top


GRAPH = {module: _imports(module)[0] for module in MODULES}


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_imports_only_point_down_between_rooms(room):
    for module, imported in GRAPH.items():
        if _room(module) == room:
            wrong = {name for name in imported if _room(name) not in ALLOWED[room]}
            assert not wrong, f"{module} imports {sorted(wrong)}"


def test_nothing_imports_the_repository_folders_by_their_own_names():
    # Installed, train/ and features/ are newsclf.train and newsclf.features: a bare `train` or
    # `features` would be whatever the user's folder holds.
    for module in MODULES:
        wrong = _imports(module)[1] & {"train", "features"}
        assert not wrong, f"{module} imports {sorted(wrong)}; import newsclf.{sorted(wrong)[0]} instead"


def _layer(module: str) -> int:
    name = "cli" if module == ENTRY else module.removeprefix("newsclf.train").removeprefix(".")
    matches = [
        (len(prefix), number)
        for number, layer in enumerate(TRAIN_LAYERS)
        for prefix in layer
        if name == prefix or (prefix and name.startswith(prefix + "."))
    ]
    assert matches, f"{module} is in no layer of TRAIN_LAYERS; add it"
    return max(matches)[1]


def test_training_modules_import_only_their_own_layer_or_lower():
    for module, imported in GRAPH.items():
        if _room(module) != "newsclf.train":
            continue
        for name in imported:
            if _room(name) == "newsclf.train" and _layer(name) > _layer(module):
                pytest.fail(f"{module} (layer {_layer(module)}) imports {name} (layer {_layer(name)})")


def test_there_is_no_import_circle():
    # Depth-first search for a back edge; the circle is reported module by module.
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        trail.append(module)
        for name in sorted(GRAPH[module]):
            if state.get(name) == 1:
                circle = trail[trail.index(name) :] + [name]
                pytest.fail("import circle: " + " -> ".join(circle))
            if name not in state:
                visit(name)
        trail.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_every_training_subpackage_says_what_it_holds():
    for module, path in MODULES.items():
        if _room(module) == "newsclf.train" and path.name == "__init__.py" and module != "newsclf.train":
            namespace: dict = {}
            exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
            modules = {item.stem for item in path.parent.glob("*.py")} - {"__init__"}
            assert namespace.get("__doc__") and sorted(namespace["__all__"]) == sorted(modules), module


def test_the_served_package_needs_only_what_mlflow_and_scikit_learn_install():
    for module in MODULES:
        if _room(module) == "newsclf":
            outside = _imports(module)[1] - SERVED_LIBRARIES - set(sys.stdlib_module_names) - {"newsclf"}
            assert not outside, f"{module} imports {sorted(outside)}"
