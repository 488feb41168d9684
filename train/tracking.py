"""MLflow tracking shared by training and evaluation: the store check, the code version, the data inputs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from newsclf.errors import NewsclfError
from train.config import DataConfig
from train.data import Splits
from train.paths import PACKAGE_DIR
from train.sources import describe, detect_format, parse_hub


def connect(tracking_uri: str) -> None:
    """Fail with one line when the tracking store cannot be used."""
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri).search_experiments(max_results=1)
    except Exception as exc:  # MLflow raises many types for an unusable store
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise NewsclfError(
            f"tracking store {tracking_uri} is unreachable ({reason}); start it or pass --tracking-uri"
        ) from None


def git_commit() -> str:
    """The project's git commit, ``-dirty`` when the work tree has changes; ``unknown`` outside git."""
    try:
        result = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), "status", "--porcelain"], capture_output=True, text=True, timeout=5
        )
        return result.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def log_data_report(splits: Splits, data: DataConfig) -> None:
    """Dataset inputs per split, the data summary, and what de-duplication removed, on the active run."""
    import mlflow
    import pandas as pd

    report = splits.report
    source = _dataset_source(data)
    stem = Path(report.source).stem
    for context, articles in (("training", splits.train), ("validation", splits.validation), ("test", splits.test)):
        if not len(articles):
            continue
        frame = pd.DataFrame(
            {
                "id": articles.ids,
                "text": articles.texts,
                "topic": articles.topics,
                "tone": articles.tones,
                "date": articles.dates,
            }
        )
        dataset = mlflow.data.from_pandas(frame, source=source, name=f"{stem}-{context}", targets="topic")
        mlflow.log_input(dataset, context=context)
    mlflow.log_dict(splits.summary(), "data/summary.json")
    mlflow.log_dict(
        {
            "removed": report.duplicates_removed,
            "groups": len(report.duplicate_groups),
            "groups_with_conflicting_labels": report.conflicting_groups,
            "sample_groups": report.duplicate_groups[:50],
        },
        "data/duplicates.json",
    )
    mlflow.log_metrics(
        {
            "data_rows_read": report.rows,
            "data_skipped_empty_rows": report.skipped_empty,
            "data_dropped_by_label": sum(report.dropped_by_label.values()),
            "data_duplicates_removed": report.duplicates_removed,
        }
    )


def _dataset_source(data: DataConfig):
    """Where the data came from, as the Hugging Face load call that read it."""
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

    fmt = detect_format(data.source, data.format)
    if fmt == "hub":
        name, revision = parse_hub(data.source)
        return HuggingFaceDatasetSource(path=name, revision=revision, split=data.split_name)
    if fmt == "disk":
        return HuggingFaceDatasetSource(path=describe(data.source), split=data.split_name)
    return HuggingFaceDatasetSource(path=fmt, data_files=describe(data.source), split="train")
