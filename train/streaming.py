"""Training on corpora larger than memory (``[fit] mode = "streaming"``).

No list of all texts is ever built. The source is read through ``datasets`` (Arrow, memory-mapped)
in batches, several times:

1. *scan*: every row is checked and mapped as in-memory loading checks it, cleaned, fingerprinted
   for de-duplication (train/streaming_dedup.py) and assigned a split; per article only a few
   bytes (labels, split, fingerprints) are kept;
2. *count*: document frequencies of the hashed n-grams of the kept training articles
   (features/hashing.py) and the class counts that give the class weights; the validation and
   test articles to score on are kept (up to ``fit.held_out_limit`` each, a seeded sample);
3. *epochs*: the kept training articles, shuffled within a buffer of ``fit.shuffle_buffer``,
   update SGD logistic classifiers (topic, tone, tone-applies) with ``partial_fit``. After each
   epoch: validation macro-F1 as MLflow step metrics, a checkpoint artifact, early stopping.

The model is the same kind ``fit_model`` makes (clean -> tfidf -> classifier pipelines in a
NewsClassifier) with hashed TF-IDF blocks, logged, registered and promoted as in-memory training
does. ``resume`` continues a run from its last checkpoint, in the same MLflow run.
"""

from __future__ import annotations

import copy
import glob
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from features.hashing import DocumentFrequencies, build_hashed_steps
from newsclf.cleaning import ArticleCleaner
from newsclf.errors import NewsclfError
from newsclf.model import APPLIES, NOT_APPLICABLE, NewsClassifier
from newsclf.steps import CLASSIFIER
from train.config import DataConfig, ExperimentConfig, flatten
from train.data import (
    SPLIT_NAMES,
    Articles,
    DataError,
    LoadReport,
    Splits,
    checked_text,
    iso_date,
    map_label,
    require_columns,
)
from train.sources import SourceError, detect_format, read_dataset
from train.sources import describe as describe_source
from train.streaming_dedup import StreamingDeduplicator

CHECKPOINT = "checkpoint.joblib"
CHECKPOINT_FOLDER = "checkpoints"
_TRAIN, _VALIDATION, _TEST, _DROPPED = 0, 1, 2, -1
_NO_TONE = -1
_GLOB_MARKS = "*?["
# Seconds between progress lines.
_PROGRESS_EVERY = 2.0


class StreamingError(NewsclfError):
    """Data or a run that streaming training cannot go on with."""


@dataclass
class _Rows:
    """One batch of checked rows: their position among all good rows, and their fields."""

    positions: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    tones: list[str | None] = field(default_factory=list)
    dates: list[str | None] = field(default_factory=list)
    split_values: list[Any] = field(default_factory=list)


@dataclass
class _Scan:
    """What the scan pass learnt, a few bytes per article."""

    report: LoadReport
    split: np.ndarray  # _TRAIN / _VALIDATION / _TEST, or _DROPPED for a removed copy
    topic: np.ndarray  # index into topic_labels
    tone: np.ndarray  # index into tone_labels, _NO_TONE where there is none
    bad_rows: int = 0
    bad_examples: list[str] = field(default_factory=list)
    dedup: dict[str, int] = field(default_factory=dict)
    dedup_bytes_per_article: int = 0


def iter_batches(data: DataConfig, batch_size: int, split_column: str = "") -> Iterator[tuple[str, list[dict]]]:
    """``(where, rows)`` batches of raw rows, each row a dict with ``_row`` (its 1-based number in
    ``where``): every file a glob in ``data.source`` matches, in name order, or the one source."""
    for where in _sources(data):
        try:
            dataset = read_dataset(where, data.format, data.split_name)
        except SourceError:
            if detect_format(where, data.format) == "json":
                _require_json_lines(Path(describe_source(where)))
            raise
        require_columns(set(dataset.column_names), data, split_column, where)
        row = 0
        for batch in dataset.iter(batch_size=batch_size):
            names = list(batch)
            rows = []
            for values in zip(*(batch[name] for name in names)):
                row += 1
                rows.append(dict(zip(names, values), _row=row))
            yield where, rows


def _require_json_lines(path: Path) -> None:
    """Name the first line of a JSON Lines file that is not JSON (datasets' own error names none)."""
    import json

    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except ValueError as exc:
                raise StreamingError(
                    f"{path}: line {number} is not valid JSON ({exc.msg}); fix or remove the line "
                    "(skip_bad_rows skips rows that parse but cannot be used, not broken JSON)"
                ) from None


def _sources(data: DataConfig) -> list[str]:
    """The files of a glob source, sorted; otherwise the source itself."""
    source = data.source
    if source.startswith("hub:") or not any(mark in source for mark in _GLOB_MARKS):
        return [source]
    files = sorted(path for path in glob.glob(str(Path(source).expanduser()), recursive=True) if Path(path).is_file())
    if not files:
        raise StreamingError(f"data.source {source!r} matches no file; check the pattern")
    for path in files:
        detect_format(path, data.format)  # an unknown suffix is an error before anything is read
    return files


def read_rows(config: ExperimentConfig, scan: _Scan | None = None) -> Iterator[_Rows]:
    """Checked rows in batches of ``fit.batch_size``, in data order; positions count the good rows.

    A row that cannot be used (not text, a label neither allowed nor mapped, no topic, a bad date
    under a temporal split) stops with one line naming its file and row, or with
    ``fit.skip_bad_rows`` is skipped and counted in ``scan``. Empty texts and dropped labels are
    skipped and counted as in-memory loading counts them.
    """
    data, fit = config.data, config.fit
    split_column = config.split.column if config.split.mode == "column" else ""
    position = 0
    rows = _Rows()
    dropped: Counter = Counter()
    for where, raw_rows in iter_batches(data, fit.batch_size, split_column):
        for raw in raw_rows:
            if scan is not None:
                scan.report.rows += 1
            try:
                parsed = _parse_row(raw, data, config, where)
            except DataError as exc:
                if not fit.skip_bad_rows:
                    raise
                if scan is not None:
                    scan.bad_rows += 1
                    if len(scan.bad_examples) < 20:
                        scan.bad_examples.append(str(exc))
                continue
            if parsed is None:
                if scan is not None:
                    scan.report.skipped_empty += 1
                continue
            if isinstance(parsed, str):
                dropped[parsed] += 1
                continue
            rows.positions.append(position)
            for values, value in zip(
                (rows.ids, rows.texts, rows.topics, rows.tones, rows.dates, rows.split_values), parsed
            ):
                values.append(value)
            position += 1
        if len(rows.positions) >= fit.batch_size:
            yield rows
            rows = _Rows()
    if rows.positions:
        yield rows
    if scan is not None:
        scan.report.dropped_by_label = dict(sorted(dropped.items()))


def _parse_row(raw: dict, data: DataConfig, config: ExperimentConfig, where: str):
    """The row's (id, text, topic, tone, date, split value); None for an empty text; the raw label
    (a str) for a row dropped by label. Raises DataError naming file and row for a bad row."""
    row = raw["_row"]
    item_id = raw.get(data.id_column) if data.id_column else None
    item_id = str(item_id) if item_id is not None else f"row-{row}"
    label = f"{where}: row {row} (id {item_id})"
    title = raw.get(data.title_column) if data.title_column else None
    body = raw.get(data.text_column)
    text = checked_text(title, body, data, label)
    if not text:
        return None
    raw_topic = raw.get(data.topic_column)
    topic = map_label(raw_topic, "topic", data.topic_map, data.topic_drop, data.topic_labels, label)
    if topic is None:
        return str(raw_topic)
    raw_tone = raw.get(data.tone_column) if data.tone_column else None
    tone = map_label(raw_tone, "tone", data.tone_map, data.tone_drop, data.tone_labels, label)
    date = iso_date(raw.get(data.date_column)) if data.date_column else None
    split_value = raw.get(config.split.column) if config.split.mode == "column" else None
    if config.split.mode == "temporal":
        import datetime

        try:
            date = datetime.date.fromisoformat(str(date)[:10]).isoformat()
        except ValueError:
            raise DataError(
                f"{label}: date {date!r} is not an ISO date (YYYY-MM-DD); a temporal split needs one on every row"
            ) from None
    if config.split.mode == "column" and split_value not in SPLIT_NAMES:
        raise DataError(f"{label}: {config.split.column} is {split_value!r}; it must be one of {list(SPLIT_NAMES)}")
    return item_id, text, topic, tone, date, split_value


def scan(config: ExperimentConfig, progress: Callable[[str], None]) -> _Scan:
    """The scan pass: check every row, de-duplicate, assign splits and labels (see the module docstring)."""
    report = LoadReport(source=describe_source(config.data.source), fingerprint=_fingerprint(config.data))
    result = _Scan(report, np.empty(0, np.int8), np.empty(0, np.int8), np.empty(0, np.int8))
    dedup = (
        StreamingDeduplicator(config.dedup.near_threshold, config.dedup.shingle_size, seed=config.seed)
        if config.dedup.enabled
        else None
    )
    dedup_cleaner = ArticleCleaner()  # the cleaner in-memory de-duplication uses, whatever [features] says
    topic_index = {label: i for i, label in enumerate(config.data.topic_labels)}
    tone_index = {label: i for i, label in enumerate(config.data.tone_labels)}
    rng = np.random.default_rng(config.seed)
    splits, topics, tones = [], [], []
    meter = _Meter("scan", progress)
    for rows in read_rows(config, result):
        if dedup is not None:
            dedup.add(list(dedup_cleaner.transform(rows.texts)))
        splits.append(_assign_splits(rows, config, rng))
        topics.append(np.array([topic_index[t] for t in rows.topics], dtype=np.int8))
        tones.append(np.array([_NO_TONE if t is None else tone_index[t] for t in rows.tones], dtype=np.int8))
        meter.advance(len(rows.positions))
    if not splits:
        raise DataError(
            f"{report.source}: no articles left; the data is empty, every {config.data.text_column!r} is blank, "
            "or every label is dropped"
        )
    result.split, result.topic, result.tone = np.concatenate(splits), np.concatenate(topics), np.concatenate(tones)
    if dedup is not None:
        keep, result.dedup = dedup.keep()
        result.dedup_bytes_per_article = dedup.bytes_per_article
        result.split[~keep] = _DROPPED
        report.duplicates_removed = int((~keep).sum())
    return result


def _fingerprint(data: DataConfig) -> str:
    """The SHA-256 of the source file (of the files' own SHA-256s for a glob); empty for the hub."""
    import hashlib

    from newsclf._files import sha256_file

    files = [Path(where) for where in _sources(data) if not where.startswith("hub:")]
    files = [path if path.is_absolute() else Path(describe_source(str(path))) for path in files]
    if len(files) == 1 and files[0].is_file():
        return sha256_file(files[0])
    digest = hashlib.sha256()
    for path in files:
        digest.update((sha256_file(path) if path.is_file() else str(path)).encode())
    return digest.hexdigest() if files else ""


def _assign_splits(rows: _Rows, config: ExperimentConfig, rng: np.random.Generator) -> np.ndarray:
    """Split codes: by date (temporal), the data's own column, or at random with the configured
    fractions (``stratified`` is not possible without every label in memory: the fractions hold
    per topic only on average)."""
    split = config.split
    if split.mode == "temporal":
        return np.array(
            [
                _TRAIN if day <= split.train_until else _VALIDATION if day <= split.validation_until else _TEST
                for day in rows.dates
            ],
            dtype=np.int8,
        )
    if split.mode == "column":
        return np.array([SPLIT_NAMES.index(value) for value in rows.split_values], dtype=np.int8)
    draw = rng.random(len(rows.positions))
    return np.where(
        draw < split.validation, _VALIDATION, np.where(draw < split.validation + split.test, _TEST, _TRAIN)
    ).astype(np.int8)


@dataclass
class _State:
    """Everything a checkpoint holds: the classifiers after ``epoch`` epochs and the best so far."""

    epoch: int
    classifiers: dict[str, SGDClassifier]
    best: dict[str, SGDClassifier]
    best_score: float = -1.0
    best_epoch: int = 0
    stale_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def train_streaming(
    config: ExperimentConfig, tracking_uri: str, progress: Callable[[str], None], resume: str | None = None
):
    """Streaming training of ``config`` into a new MLflow run, or into run ``resume`` from its last checkpoint."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from train.metrics import selection_score
    from train.promotion import promote
    from train.registry import log_model, register
    from train.tracking import connect, end_stale_runs, git_commit, liveness
    from train.training import TrainResult, log_promotion

    review = [key for key in ("corrections", "label_issues") if str(getattr(config.data, key, "")).strip()]
    if review:
        raise StreamingError(
            f"data.{review[0]} is applied by in-memory loading only; train in memory or apply it to the data first"
        )
    if connect(tracking_uri):
        client = MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name(config.tracking.experiment)
        for stale in end_stale_runs(client, [experiment.experiment_id] if experiment else []):
            progress(f"marked run {stale.run_id} ({stale.name}) KILLED: {stale.reason}")
    client = MlflowClient(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(config.tracking.experiment)
    state = _resumed_state(client, config, resume) if resume else None
    with (
        mlflow.start_run(run_id=resume, run_name=None if resume else config.name) as run,
        liveness(tracking_uri, run.info.run_id),
    ):
        try:
            mlflow.log_params(flatten(config))
        except MlflowException:
            raise StreamingError(
                f"run {resume} was trained with other settings than {config.name}; resume it with the same "
                "--experiment, --data and --set, or start a new run"
            ) from None
        mlflow.set_tags({"git_commit": git_commit(), "newsclf.fit_mode": "streaming"})
        progress("scanning the data: checking rows, de-duplicating, assigning splits")
        scanned = scan(config, progress)
        _log_scan(scanned, config)
        (_, cleaner), (_, features) = build_hashed_steps(config.features, config.fit.n_features)
        progress("counting document frequencies of the hashed n-grams")
        held_out = _count(config, scanned, features, cleaner, progress)
        has_tone = bool(config.data.tone_column) and bool((scanned.tone[scanned.split == _TRAIN] >= 0).any())
        classifiers = _new_classifiers(config, scanned, has_tone)
        state = state or _State(0, classifiers, copy.deepcopy(classifiers))
        _fit_epochs(config, scanned, features, cleaner, state, held_out["validation"], progress)
        model = _model(config, cleaner, features, state.best, {"experiment": config.name, "run_id": run.info.run_id})
        progress(f"evaluating the epoch-{state.best_epoch} model on validation and test")
        metrics = _evaluate(model, {name: held_out[name] for name in ("validation", "test")})
        info = log_model(model, held_out["validation"].texts[:2] or held_out["test"].texts[:2])
        score = selection_score(
            {task: metrics[key] for task in model.tasks if (key := f"validation_{task}_macro_f1") in metrics}
        )
        mlflow.log_metric("validation_score", score)
        name = config.tracking.registered_model
        progress(f"registering {name}")
        version = register(
            info.model_uri, name, {"validation_score": f"{score:.6f}", "data_fingerprint": scanned.report.fingerprint}
        )
        empty = Articles([], [], [], [], [])
        splits = Splits(empty, held_out["validation"], held_out["test"], scanned.report, has_tone=has_tone)
        promotion = promote(model, version, splits, config, tracking_uri)
        log_promotion(promotion, name, version, tracking_uri)
        mlflow.set_tags({"registered_version": version, "promoted": str(promotion.promoted).lower()})
    progress(f"done: {name} version {version}" + ("" if promotion.promoted else f" not promoted: {promotion.reason}"))
    return TrainResult(
        run.info.run_id, name, version, promotion.promoted, metrics | {"validation_score": score}, promotion.reason
    )


def _resumed_state(client, config: ExperimentConfig, run_id: str) -> _State:
    """The last checkpoint of ``run_id``, after checking the run can be continued."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise StreamingError(
            f"run {run_id!r} not found in the tracking store; pass the id of a killed streaming run"
        ) from None
    if run.info.status == "FINISHED":
        raise StreamingError(f"run {run_id} finished; there is nothing to resume, start a new run instead")
    experiment = client.get_experiment(run.info.experiment_id)
    if experiment.name != config.tracking.experiment:
        raise StreamingError(
            f"run {run_id} belongs to experiment {experiment.name!r}, not {config.tracking.experiment!r}; "
            "resume it with the experiment file it was started with"
        )
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(run_id, f"{CHECKPOINT_FOLDER}/{CHECKPOINT}", folder)
        except (MlflowException, OSError):
            raise StreamingError(
                f"run {run_id} has no checkpoint (it stopped before its first epoch ended); start a new run"
            ) from None
        state = joblib.load(path)
    if not isinstance(state, _State):
        raise StreamingError(f"run {run_id}: {CHECKPOINT} is not a newsclf streaming checkpoint; start a new run")
    return state


def _log_scan(scanned: _Scan, config: ExperimentConfig) -> None:
    """Counts per split and label, what de-duplication and the bad rows removed, on the active run."""
    import mlflow

    report = scanned.report
    summary: dict[str, Any] = {
        "source": report.source,
        "rows_read": report.rows,
        "skipped_empty_text": report.skipped_empty,
        "dropped_by_label": report.dropped_by_label,
        "bad_rows_skipped": scanned.bad_rows,
        "bad_row_examples": scanned.bad_examples,
        "duplicates_removed": report.duplicates_removed,
        "deduplication": scanned.dedup | {"bytes_per_article": scanned.dedup_bytes_per_article},
        "splits": {},
    }
    for code, name in enumerate(SPLIT_NAMES):
        chosen = scanned.split == code
        topics = Counter(scanned.topic[chosen].tolist())
        tones = Counter(scanned.tone[chosen].tolist())
        summary["splits"][name] = {
            "articles": int(chosen.sum()),
            "topics": {config.data.topic_labels[i]: n for i, n in sorted(topics.items())},
            "tones": {("none" if i < 0 else config.data.tone_labels[i]): n for i, n in sorted(tones.items())},
        }
    mlflow.log_dict(summary, "data/summary.json")
    mlflow.log_metrics(
        {
            "data_rows_read": report.rows,
            "data_skipped_empty_rows": report.skipped_empty,
            "data_dropped_by_label": sum(report.dropped_by_label.values()),
            "data_duplicates_removed": report.duplicates_removed,
            "data_bad_rows_skipped": scanned.bad_rows,
        }
    )
    if not (scanned.split == _TRAIN).any() or not (scanned.split == _VALIDATION).any():
        raise DataError(
            f"{report.source}: the split leaves {int((scanned.split == _TRAIN).sum())} train and "
            f"{int((scanned.split == _VALIDATION).sum())} validation articles; move the cut-offs or add articles"
        )


def _count(
    config: ExperimentConfig, scanned: _Scan, features: FeatureUnion, cleaner, progress: Callable[[str], None]
) -> dict[str, Articles]:
    """The count pass: set each hashed block's idf; return the held-out articles to score on."""
    rng = np.random.default_rng(config.seed)
    chosen = {}
    for code, name in ((_VALIDATION, "validation"), (_TEST, "test")):
        where = np.flatnonzero(scanned.split == code)
        if len(where) > config.fit.held_out_limit:
            where = np.sort(rng.choice(where, config.fit.held_out_limit, replace=False))
        chosen[name] = np.zeros(len(scanned.split), dtype=bool)
        chosen[name][where] = True
    held_out = {name: Articles([], [], [], [], []) for name in chosen}
    frequencies = DocumentFrequencies(features)
    meter = _Meter("counting", progress, total=len(scanned.split))
    for rows in read_rows(config):
        positions = np.array(rows.positions)
        train = scanned.split[positions] == _TRAIN
        if train.any():
            frequencies.add(list(cleaner.transform([rows.texts[i] for i in np.flatnonzero(train)])))
        for name, mask in chosen.items():
            for i in np.flatnonzero(mask[positions]).tolist():
                articles = held_out[name]
                for column, value in zip(
                    articles._columns(), (rows.ids[i], rows.texts[i], rows.topics[i], rows.tones[i], rows.dates[i])
                ):
                    column.append(value)
        meter.advance(len(positions))
    frequencies.apply(config.features)
    return held_out


def _class_weights(codes: np.ndarray, labels: tuple[str, ...], setting: str) -> dict[str, float] | None:
    """``balanced`` weights (n / (k * count)) from the counting pass, over the labels present."""
    if setting == "none":
        return None
    counts = Counter(codes.tolist())
    total = sum(counts.values())
    return {labels[i]: total / (len(counts) * n) for i, n in counts.items()}


def _new_classifiers(config: ExperimentConfig, scanned: _Scan, has_tone: bool) -> dict[str, SGDClassifier]:
    train = scanned.split == _TRAIN
    topics = scanned.topic[train]
    if len(set(topics.tolist())) < 2:
        raise DataError(
            "task topic: the training split has fewer than two classes; add articles of the missing labels"
        )
    classifiers = {
        "topic": _sgd(
            config.topic, config.seed, _class_weights(topics, config.data.topic_labels, config.topic.class_weight)
        )
    }
    if has_tone:
        tones = scanned.tone[train]
        toned = tones[tones >= 0]
        if len(set(toned.tolist())) < 2:
            raise DataError("task tone: the training split has fewer than two tones; add articles of the missing tone")
        classifiers["tone"] = _sgd(
            config.tone, config.seed, _class_weights(toned, config.data.tone_labels, config.tone.class_weight)
        )
        if (tones < 0).any():
            applies = np.where(tones >= 0, 0, 1)
            classifiers["tone_applies"] = _sgd(
                config.tone, config.seed, _class_weights(applies, (APPLIES, NOT_APPLICABLE), config.tone.class_weight)
            )
    return classifiers


def _sgd(settings, seed: int, class_weight: dict[str, float] | None) -> SGDClassifier:
    # Logistic loss, so the model has probabilities; partial_fit takes class weights only as a mapping.
    return SGDClassifier(loss="log_loss", alpha=settings.alpha, class_weight=class_weight, random_state=seed)


def _fit_epochs(
    config: ExperimentConfig,
    scanned: _Scan,
    features: FeatureUnion,
    cleaner,
    state: _State,
    validation: Articles,
    progress: Callable[[str], None],
) -> None:
    """Epochs of shuffled partial_fit from ``state.epoch`` on, validation and a checkpoint after each."""
    import mlflow

    from train.metrics import macro_f1, selection_score, task_labels

    fit = config.fit
    total = int((scanned.split == _TRAIN).sum())
    classes = {
        "topic": list(config.data.topic_labels),
        "tone": list(config.data.tone_labels),
        "tone_applies": [APPLIES, NOT_APPLICABLE],
    }
    validation_features = None
    while state.epoch < fit.epochs and state.stale_epochs < fit.patience:
        epoch = state.epoch + 1
        rng = np.random.default_rng([config.seed, epoch])
        meter = _Meter(f"epoch {epoch}/{fit.epochs}", progress, total=total)
        buffer: list[tuple[str, str, str | None]] = []
        for rows in read_rows(config):
            for i, position in enumerate(rows.positions):
                if scanned.split[position] == _TRAIN:
                    buffer.append((rows.texts[i], rows.topics[i], rows.tones[i]))
            if len(buffer) >= fit.shuffle_buffer:
                meter.advance(_update(state.classifiers, buffer, cleaner, features, fit.batch_size, classes, rng))
                buffer = []
        meter.advance(_update(state.classifiers, buffer, cleaner, features, fit.batch_size, classes, rng))
        if validation_features is None:
            validation_features = features.transform(cleaner.transform(validation.texts))
        scores = {}
        for task in ("topic", "tone"):
            if task not in state.classifiers:
                continue
            labelled = np.array(
                [label is not None for label in (validation.topics if task == "topic" else validation.tones)]
            )
            if not labelled.any():
                continue
            y_true = [
                label
                for label, keep in zip(validation.topics if task == "topic" else validation.tones, labelled)
                if keep
            ]
            classifier = state.classifiers[task]
            predicted = [str(label) for label in classifier.predict(validation_features[np.flatnonzero(labelled)])]
            scores[task] = macro_f1(y_true, predicted, task_labels([str(c) for c in classifier.classes_], y_true))
        score = selection_score(scores)
        mlflow.log_metrics(
            {f"epoch_validation_{task}_macro_f1": value for task, value in scores.items()}
            | {"epoch_validation_score": score},
            step=epoch,
        )
        state.history.append({"epoch": epoch, "validation_score": score} | scores)
        state.epoch = epoch
        if score > state.best_score:
            state.best_score, state.best_epoch, state.stale_epochs = score, epoch, 0
            state.best = copy.deepcopy(state.classifiers)
        else:
            state.stale_epochs += 1
        _checkpoint(state)
        progress(
            f"epoch {epoch}: validation score {score:.4f} ({', '.join(f'{t} {v:.4f}' for t, v in scores.items())}); "
            f"best {state.best_score:.4f} at epoch {state.best_epoch}"
        )
    if state.stale_epochs >= fit.patience and state.epoch < fit.epochs:
        progress(f"stopped early: no better validation score for {fit.patience} epochs")
    mlflow.log_metric("best_epoch", state.best_epoch)


def _update(classifiers, buffer, cleaner, features, batch_size, classes, rng) -> int:
    """partial_fit every classifier on the buffered articles, shuffled, ``batch_size`` at a time."""
    order = rng.permutation(len(buffer))
    for start in range(0, len(order), batch_size):
        chosen = [buffer[i] for i in order[start : start + batch_size]]
        matrix = features.transform(cleaner.transform([text for text, _, _ in chosen]))
        topics = [topic for _, topic, _ in chosen]
        classifiers["topic"].partial_fit(matrix, topics, classes=classes["topic"])
        tones = [tone for _, _, tone in chosen]
        toned = [i for i, tone in enumerate(tones) if tone is not None]
        if "tone" in classifiers and toned:
            classifiers["tone"].partial_fit(matrix[toned], [tones[i] for i in toned], classes=classes["tone"])
        if "tone_applies" in classifiers:
            applies = [NOT_APPLICABLE if tone is None else APPLIES for tone in tones]
            classifiers["tone_applies"].partial_fit(matrix, applies, classes=classes["tone_applies"])
    return len(buffer)


def _checkpoint(state: _State) -> None:
    """The state after an epoch, as the run's checkpoint artifact (replacing the previous one)."""
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CHECKPOINT
        joblib.dump(state, path)
        mlflow.log_artifact(str(path), CHECKPOINT_FOLDER)


def _model(config: ExperimentConfig, cleaner, features: FeatureUnion, classifiers, metadata: dict) -> NewsClassifier:
    """The NewsClassifier of the chosen classifiers: clean -> hashed tfidf -> classifier per task."""
    steps = [("clean", cleaner), ("tfidf", features)]
    pipelines = {
        task: Pipeline(steps + [(CLASSIFIER, classifiers[task])]) for task in ("topic", "tone") if task in classifiers
    }
    return NewsClassifier(
        pipelines["topic"],
        pipelines.get("tone"),
        metadata | {"fit_mode": "streaming"},
        classifiers.get("tone_applies"),
    )


def _evaluate(model: NewsClassifier, parts: dict[str, Articles]) -> dict[str, float]:
    """Metrics and reports of ``model`` on the held-out articles, logged; the tone-applies scores too."""
    import matplotlib.pyplot as plt
    import mlflow

    from train.figures import confusion_figure
    from train.metrics import report_text, task_metrics

    metrics: dict[str, float] = {}
    for split_name, articles in parts.items():
        if not len(articles):
            continue
        proba = model.predict_proba(articles.texts)
        for task in model.tasks:
            labels = model.labels(task)
            task_labels = articles.topics if task == "topic" else articles.tones
            keep = [i for i, label in enumerate(task_labels) if label is not None]
            if not keep:
                continue
            y_true = [task_labels[i] for i in keep]
            task_proba = proba[task][keep]
            metrics |= {
                f"{split_name}_{task}_{key}": value for key, value in task_metrics(y_true, task_proba, labels).items()
            }
            mlflow.log_text(report_text(y_true, task_proba, labels), f"{task}/classification_report_{split_name}.txt")
            figure = confusion_figure(y_true, task_proba, labels, f"{task}: {split_name} ({len(keep)} articles)")
            mlflow.log_figure(figure, f"{task}/confusion_matrix_{split_name}.png")
            plt.close(figure)
        if "tone_applies" in proba:
            applies = proba["tone_applies"]
            y_true = [NOT_APPLICABLE if tone is None else APPLIES for tone in articles.tones]
            two = np.stack([applies, 1 - applies], axis=1)
            metrics |= {
                f"{split_name}_tone_applies_{key}": value
                for key, value in task_metrics(y_true, two, [APPLIES, NOT_APPLICABLE]).items()
            }
    mlflow.log_metrics(metrics)
    return metrics


class _Meter:
    """Progress of one pass: articles done, articles/s and the time left, at most every two seconds."""

    def __init__(self, what: str, progress: Callable[[str], None], total: int | None = None):
        self._what, self._progress, self._total = what, progress, total
        self._done, self._start, self._last = 0, time.perf_counter(), time.perf_counter()

    def advance(self, n: int) -> None:
        self._done += n
        now = time.perf_counter()
        finished = self._total is not None and self._done >= self._total
        if now - self._last < _PROGRESS_EVERY and not finished:
            return
        self._last = now
        rate = self._done / max(now - self._start, 1e-9)
        line = (
            f"{self._what}: {self._done:,}"
            + (f"/{self._total:,}" if self._total else "")
            + f" articles, {rate:,.0f}/s"
        )
        if self._total and rate > 0:
            line += f", ETA {_duration((self._total - self._done) / rate)}"
        self._progress(line)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
