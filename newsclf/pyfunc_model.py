"""MLflow models-from-code entry file: checks the bundled code, then builds the pyfunc model (no wrapper is pickled).

MLflow copies this file into the logged model, beside ``code/`` (the bundled ``newsclf`` package,
which MLflow puts first on sys.path) and ``artifacts/newsclf_model/``, and executes it on every
load (``mlflow.pyfunc.load_model``, ``mlflow models serve``). Before anything of ``newsclf`` is
imported, every file under ``code/`` and this file itself must have the SHA-256 that the manifest
``artifacts/newsclf_model/newsclf-model.json`` recorded when the model was logged: a missing,
changed or extra file (or a symlink) refuses the load. Until then it uses the standard library only.
Python's bytecode caches (``__pycache__``) are not checked.

This file cannot vouch for itself. Checking its own bytes catches lines added after the check
(such as code appended at the end), but whoever can edit this file, the MLmodel file that names
it, or the manifest can make a load run anything. The check catches a damaged or partly changed
bundle, not a forged model: load models only from stores whose write access you control.
"""

import hashlib
import json
import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# newsclf.folder's ARTIFACT_KEY, MANIFEST and CODE: nothing of newsclf may be imported before the check.
_MANIFEST = _HERE / "artifacts" / "newsclf_model" / "newsclf-model.json"
_CODE = _HERE / "code"


def _bundle_problem() -> str | None:
    """What is wrong with the bundled code and this file, measured against the manifest; None when all match."""
    try:
        expected = json.loads(_MANIFEST.read_text(encoding="utf-8"))["code"]
        if not isinstance(expected, dict):
            raise TypeError("not an object")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        return f"{_MANIFEST} lists no digests of the bundled code ({type(exc).__name__}: {exc})"
    found = {}
    for folder, subfolders, files in os.walk(_CODE):  # symlinked folders are listed, not entered
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        for path in (Path(folder, name) for name in files + subfolders):
            if path.is_symlink():
                return f"{path} is a symlink"
            if path.is_file():
                found[path.relative_to(_CODE).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    for name in sorted(expected.keys() | found.keys()):
        if name not in found:
            return f"{_CODE / name} is missing"
        if name not in expected:
            return f"{_CODE / name} is not in the manifest"
        if found[name] != expected[name]:
            return f"{_CODE / name} changed since the model was logged"
    if hashlib.sha256(Path(__file__).read_bytes()).hexdigest() != expected.get(f"newsclf/{Path(__file__).name}"):
        return f"{__file__} changed since the model was logged"
    return None


# Logging executes this file inside the package (bundle) it belongs to, before MLflow copies anything:
# there is nothing to check yet. Everywhere else it checks first.
if not (_HERE / "__init__.py").is_file() and (_problem := _bundle_problem()):
    # MLflow reports an ImportError raised here as "Failed to import code model from ...", one line.
    raise ImportError(
        f"refusing to run the model's bundled code: {_problem}; "
        "download the model again from a store you trust, or log it again"
    )

from mlflow.models import set_model  # noqa: E402 (only once the bundle is checked)

from newsclf.pyfunc import NewsClassifierPyfunc  # noqa: E402

set_model(NewsClassifierPyfunc())
