"""Every path the project knows, in one place."""

from __future__ import annotations

from pathlib import Path

from newsclf.errors import NewsclfError

PACKAGE_DIR = Path(__file__).resolve().parent
# In a source checkout (or an editable install) the data and experiments sit beside the
# packages; a wheel carries copies inside the package under _shipped/.
_SOURCE_ROOT = PACKAGE_DIR.parent
_SHIPPED = PACKAGE_DIR / "_shipped"

CORPUS_FILENAME = "news_corpus.jsonl"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# Generated reports, relative to the folder newsclf runs in (like mlflow.db).
EVALUATION_REPORTS_DIR = Path("reports") / "evaluation"
DEFAULT_MODEL_URI = "models:/news-classifier@champion"


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise NewsclfError(f"project files not found at {candidates[0]}; reinstall the package (pip install .)")


def corpus_path() -> Path:
    """The JSON Lines corpus that ships with the project."""
    return _first_existing(_SOURCE_ROOT / "data" / CORPUS_FILENAME, _SHIPPED / "data" / CORPUS_FILENAME)


def experiments_dir() -> Path:
    """The folder of experiment TOML files that ships with the project."""
    return _first_existing(_SOURCE_ROOT / "experiments", _SHIPPED / "experiments")
