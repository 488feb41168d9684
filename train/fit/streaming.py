"""The streaming fitter: SGD classifiers updated batch by batch with ``partial_fit`` (``[fit] mode = "streaming"``).

The rows come from the streamed reader (newsclf.train.data.stream) after its scan. Then:

1. *count*: document frequencies of the hashed n-grams of the kept training articles
   (newsclf.features.hashing); the training articles' hashed counts are kept on disk for the epochs
   (``CountCache``); the validation and test articles to score on (up to ``fit.held_out_limit``
   each, a seeded sample) and a slice of training articles held out for calibration are kept in
   memory;
2. *epochs*: the cached counts, shuffled within a buffer of ``fit.shuffle_buffer`` articles,
   update the classifiers the registry builds for ``[topic]`` and ``[tone]`` (and a tone-applies
   one). After each epoch: validation macro-F1 as MLflow step metrics, a checkpoint artifact,
   early stopping.

The result is the same kind of model the in-memory fitter makes (clean -> tfidf -> classifier
pipelines in a NewsClassifier) with hashed TF-IDF blocks; the training run
(newsclf.train.training) calibrates, evaluates, logs and registers it as it does any model.
"""

from __future__ import annotations

import collections
import copy
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.pipeline import FeatureUnion, Pipeline

from newsclf._shared_tfidf import remember_features
from newsclf.features.hashing import CountCache, DocumentFrequencies, build_hashed_steps, hashed_counts, take_rows
from newsclf.model import APPLIES, NOT_APPLICABLE, NewsClassifier
from newsclf.steps import CLASSIFIER, classifier_of
from newsclf.train.classifiers import build_classifier, uncalibrated
from newsclf.train.config import ExperimentConfig, read_settings
from newsclf.train.data.articles import Articles, DataError
from newsclf.train.data.sources import scratch_prefix
from newsclf.train.data.stream import (
    CALIBRATION,
    TEST,
    TRAIN,
    VALIDATION,
    Rows,
    Scan,
    StreamingError,
    read_rows,
    release_memory,
)
from newsclf.train.evaluation.evaluate import macro_f1_scores
from newsclf.train.evaluation.metrics import metric_name, selection_score
from newsclf.train.progress import Meter

CHECKPOINT = "checkpoint.joblib"
CHECKPOINT_FOLDER = "checkpoints"
# Two slots, taken in turn by odd and even epochs; the plain folder is where earlier versions kept one.
_CHECKPOINT_SLOTS = (f"{CHECKPOINT_FOLDER}/even", f"{CHECKPOINT_FOLDER}/odd", CHECKPOINT_FOLDER)
# The share of the training articles held out for calibration (at most fit.held_out_limit), and the
# fewest worth holding out: below it the model is left uncalibrated.
_CALIBRATION_SHARE = 1 / 20
_CALIBRATION_MIN = 20

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_FOLDER",
    "fit_streaming",
    "hold_out_for_calibration",
    "resumed_state",
    "warm_start",
]


@dataclass
class _State:
    """Everything a checkpoint holds: the classifiers after ``epoch`` epochs and the best so far."""

    epoch: int
    classifiers: dict[str, Any]
    best: dict[str, Any]
    best_score: float = -1.0
    best_epoch: int = 0
    stale_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def __getstate__(self) -> dict[str, Any]:
        # Pickled with each coef_ as its non-zero columns: hashed columns no training article uses keep
        # weight 0 (about half of 2**21 on CEP), and a checkpoint is written after every epoch.
        state = dict(self.__dict__)
        state["classifiers"] = {task: _packed(found) for task, found in self.classifiers.items()}
        if self.best is not self.classifiers:  # the same dict (see _checkpoint): written once
            state["best"] = {task: _packed(found) for task, found in self.best.items()}
        else:
            state["best"] = state["classifiers"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        same = state["best"] is state["classifiers"]
        state["classifiers"] = {task: _unpacked(found) for task, found in state["classifiers"].items()}
        state["best"] = state["classifiers"] if same else {task: _unpacked(f) for task, f in state["best"].items()}
        self.__dict__.update(state)


@dataclass(frozen=True)
class _NonZeroColumns:
    """A coef_ matrix as its shape, the columns holding a non-zero weight, and those columns."""

    shape: tuple[int, int]
    columns: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, coef: np.ndarray) -> _NonZeroColumns:
        columns = np.flatnonzero(coef.any(axis=0))
        return cls(coef.shape, columns, coef[:, columns])

    def dense(self) -> np.ndarray:
        coef = np.zeros(self.shape, dtype=self.values.dtype)
        coef[:, self.columns] = self.values
        return coef


def _packed(classifier: Any) -> Any:
    coef = getattr(classifier, "coef_", None)
    if not isinstance(coef, np.ndarray) or coef.ndim != 2:
        return classifier
    packed = copy.copy(classifier)
    packed.coef_ = _NonZeroColumns.of(coef)
    return packed


def _unpacked(classifier: Any) -> Any:
    if isinstance(getattr(classifier, "coef_", None), _NonZeroColumns):
        classifier.coef_ = classifier.coef_.dense()
    return classifier


def fit_streaming(
    config: ExperimentConfig, scanned: Scan, state: _State | None, metadata: dict, progress: Callable[[str], None]
) -> tuple[NewsClassifier, dict[str, Articles], _State]:
    """Count, then run the epochs (from ``state``'s, when resuming): the best epoch's model, uncalibrated;
    the held-out articles (``validation``, ``test``, ``calibration``) it is to be calibrated and scored
    on; and the final state."""
    (_, cleaner), (_, features) = build_hashed_steps(config.features, config.fit.n_features)
    progress("counting document frequencies of the hashed n-grams")
    with tempfile.TemporaryDirectory(prefix=scratch_prefix("counts")) as scratch:
        cache = CountCache(Path(scratch) / "counts", [block.n_features for _, block in features.transformer_list])
        held_out = _count(config, scanned, features, cleaner, cache, progress)
        remember_features(text for articles in held_out.values() for text in articles.texts)
        cache.close()
        progress(
            f"{cache.rows:,} training articles' hashed counts kept on disk for the epochs "
            f"({cache.path.stat().st_size / 2**20:,.0f} MB, removed at the end)"
        )
        classifiers = _new_classifiers(config, scanned)
        state = state or _State(0, classifiers, copy.deepcopy(classifiers))
        _fit_epochs(config, scanned, features, cleaner, cache, state, held_out["validation"], progress)
    state.classifiers = state.best  # the last epoch's classifiers are not needed any more: free them
    model = _model(cleaner, features, state.best, metadata)
    release_memory()
    return model, held_out, state


def has_tone(config: ExperimentConfig, scanned: Scan) -> bool:
    """Whether the tone task is trained: the data has a tone column and a training article carries one."""
    return bool(config.data.tone_column) and bool((scanned.tone[scanned.split == TRAIN] >= 0).any())


def _new_classifiers(config: ExperimentConfig, scanned: Scan) -> dict:
    """The registry's classifiers for ``[topic]`` and ``[tone]`` (and tone-applies, with ``[tone]``'s settings),
    their ``balanced`` class weights computed from the scan (partial_fit sees one batch at a time)."""
    train = scanned.split == TRAIN
    topics = scanned.topic[train]
    if len(set(topics.tolist())) < 2:
        raise DataError(
            "task topic: the training split has fewer than two classes; add articles of the missing labels"
        )
    classifiers = {"topic": _classifier(config.topic, config.seed, topics, config.data.topic_labels)}
    if has_tone(config, scanned):
        tones = scanned.tone[train]
        toned = tones[tones >= 0]
        if len(set(toned.tolist())) < 2:
            raise DataError("task tone: the training split has fewer than two tones; add articles of the missing tone")
        classifiers["tone"] = _classifier(config.tone, config.seed, toned, config.data.tone_labels)
        if (tones < 0).any():
            applies = np.where(tones >= 0, 0, 1)
            classifiers["tone_applies"] = _classifier(config.tone, config.seed, applies, (APPLIES, NOT_APPLICABLE))
    return classifiers


def _classifier(settings, seed: int, codes: np.ndarray, labels: tuple[str, ...]):
    """The registered classifier of ``settings`` with its class weights as the mapping partial_fit needs:
    scikit-learn's ``balanced`` rule (n / (k * count)) over the labels present in ``codes``."""
    from sklearn.utils.class_weight import compute_class_weight

    classifier = build_classifier(settings, seed)
    if settings.class_weight == "balanced":
        present = np.unique(codes)
        weights = compute_class_weight("balanced", classes=present, y=codes)
        classifier.set_params(class_weight={labels[i]: float(w) for i, w in zip(present.tolist(), weights)})
    return classifier


def resumed_state(client, config: ExperimentConfig, run_id: str) -> _State:
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
    settings = read_settings(config)
    changed = sorted(key for key, value in settings.items() if run.data.params.get(key, str(value)) != str(value))
    if changed:
        raise StreamingError(
            f"run {run_id} was trained with other settings than {config.name} ({changed[0]} was "
            f"{run.data.params[changed[0]]!r}, now {settings[changed[0]]!r}); resume it with the same "
            "--experiment, --data and --set, or start a new run"
        )
    found = []
    with tempfile.TemporaryDirectory() as folder:
        for slot in _CHECKPOINT_SLOTS:
            try:
                path = client.download_artifacts(run_id, f"{slot}/{CHECKPOINT}", f"{folder}/{len(found)}")
                state = joblib.load(path)
            except (MlflowException, OSError):
                continue  # not written (yet)
            except Exception:  # a truncated or foreign file fails inside pickle in many ways
                state = None
            found.append(state)
    states = [state for state in found if isinstance(state, _State)]
    if not states:
        raise StreamingError(
            f"run {run_id} has no usable checkpoint ("
            + ("it stopped before its first epoch ended" if not found else f"{CHECKPOINT} is damaged or not newsclf's")
            + "); start a new run"
        )
    state = max(states, key=lambda state: state.epoch)
    if state.best is state.classifiers:  # written once (see _checkpoint); the epochs change only one
        state.best = copy.deepcopy(state.classifiers)
    return state


def _count(
    config: ExperimentConfig,
    scanned: Scan,
    features: FeatureUnion,
    cleaner,
    cache: CountCache,
    progress: Callable[[str], None],
) -> dict[str, Articles]:
    """The count pass: set each hashed block's idf, keep the training articles' counts in ``cache``
    for the epochs; return the held-out articles to score and calibrate on. Cleaning and hashing, most
    of its time, runs on the cluster's workers under ``newsclf train --cluster`` (newsclf.train.cluster)."""
    from newsclf.train.cluster import ordered_map

    rng = np.random.default_rng(config.seed)
    chosen = {}
    for code, name in ((VALIDATION, "validation"), (TEST, "test"), (CALIBRATION, "calibration")):
        where = np.flatnonzero(scanned.split == code)
        if len(where) > config.fit.held_out_limit:
            where = np.sort(rng.choice(where, config.fit.held_out_limit, replace=False))
        chosen[name] = np.zeros(len(scanned.split), dtype=bool)
        chosen[name][where] = True
    held_out = {name: Articles([], [], [], [], []) for name in chosen}
    frequencies = DocumentFrequencies(features)
    meter = Meter("counting", progress, total=len(scanned.split))
    read: collections.deque[Rows] = collections.deque()  # the batches being hashed, in order

    def training_texts() -> Iterator[list[str]]:
        for rows in read_rows(config):
            read.append(rows)
            yield [rows.texts[i] for i in np.flatnonzero(scanned.split[rows.positions] == TRAIN)]

    for counts in ordered_map(_hashed_counts, training_texts(), cleaner, features.transformer_list):
        rows = read.popleft()
        positions = np.array(rows.positions)
        if counts is not None:
            cache.append(frequencies.add(counts))
        for name, mask in chosen.items():
            for i in np.flatnonzero(mask[positions]).tolist():
                articles = held_out[name]
                for column, value in zip(
                    articles._columns(), (rows.ids[i], rows.texts[i], rows.topics[i], rows.tones[i], rows.dates[i])
                ):
                    column.append(value)
        meter.advance(len(positions))
    frequencies.apply(config.features)
    release_memory()
    return held_out


def _hashed_counts(texts: list[str], cleaner, blocks) -> list | None:
    """The hashed blocks' count matrices of ``texts`` after cleaning (None for none): the count pass's
    work per batch, which a cluster's workers can do."""
    return hashed_counts(list(cleaner.transform(texts)), blocks) if texts else None


def hold_out_for_calibration(scanned: Scan, config: ExperimentConfig) -> int:
    """Move a seeded sample of the training articles out of the epochs, for calibration; how many.

    In-memory training calibrates by cross-fitting (train/fit/calibration.py), which refits the
    classifier K times: impossible in one streaming pass. Instead the maps are fitted on the final
    classifiers' scores of training articles they never saw: ``_CALIBRATION_SHARE`` of them, at most
    ``fit.held_out_limit`` (10,000 of 700,000 train articles costs the classifiers nothing
    measurable; 5% of a small corpus costs a little). None with ``calibration.methods = ["none"]``.
    """
    if tuple(config.calibration.methods) == ("none",):
        return 0
    train = np.flatnonzero(scanned.split == TRAIN)
    size = min(config.fit.held_out_limit, int(len(train) * _CALIBRATION_SHARE))
    if size < _CALIBRATION_MIN:
        return 0
    rng = np.random.default_rng([config.seed, CALIBRATION])
    scanned.split[rng.choice(train, size, replace=False)] = CALIBRATION
    return size


def _fit_epochs(
    config: ExperimentConfig,
    scanned: Scan,
    features: FeatureUnion,
    cleaner,
    cache: CountCache,
    state: _State,
    validation: Articles,
    progress: Callable[[str], None],
) -> None:
    """Epochs of shuffled partial_fit from ``state.epoch`` on, on the training articles' counts in
    ``cache`` (in data order); validation and a checkpoint after each."""
    import mlflow

    fit = config.fit
    train = np.flatnonzero(scanned.split == TRAIN)
    # Labels of the cached rows; tone code -1 (none) picks the None at the end.
    topics = np.array(config.data.topic_labels, dtype=object)[scanned.topic[train]]
    tone_codes = scanned.tone[train]
    tones = np.array([*config.data.tone_labels, None], dtype=object)[tone_codes]
    classes = {
        "topic": list(config.data.topic_labels),
        "tone": list(config.data.tone_labels),
        "tone_applies": [APPLIES, NOT_APPLICABLE],
    }
    while state.epoch < fit.epochs and state.stale_epochs < fit.patience:
        epoch = state.epoch + 1
        rng = np.random.default_rng([config.seed, epoch])
        meter = Meter(f"epoch {epoch}/{fit.epochs}", progress, total=len(train))
        done = 0
        for pieces in cache.chunks(fit.shuffle_buffer):
            chunk = slice(done, done + sum(piece[0].shape[0] for piece in pieces))
            labels = (topics[chunk], tones[chunk], tone_codes[chunk])
            meter.advance(_update(state.classifiers, pieces, labels, features, fit.batch_size, classes, rng))
            done = chunk.stop
        # The served model's own scoring, as every evaluation (validation articles cleaned and hashed each epoch).
        scores = macro_f1_scores(_model(cleaner, features, state.classifiers, {}), validation)
        score = selection_score(scores)
        mlflow.log_metrics(
            {metric_name("learning_curve", "validation", task, "macro_f1"): value for task, value in scores.items()}
            | {metric_name("learning_curve", "validation", "score"): score},
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
        release_memory()
        progress(
            f"epoch {epoch}: validation score {score:.4f} ({', '.join(f'{t} {v:.4f}' for t, v in scores.items())}); "
            f"best {state.best_score:.4f} at epoch {state.best_epoch}"
        )
    if state.stale_epochs >= fit.patience and state.epoch < fit.epochs:
        progress(f"stopped early: no better validation score for {fit.patience} epochs")
    mlflow.log_metric(metric_name("learning_curve", "best_epoch"), state.best_epoch)


def _update(classifiers, pieces, labels, features: FeatureUnion, batch_size: int, classes, rng) -> int:
    """partial_fit every classifier on a chunk of articles (the cached counts of :meth:`CountCache.chunks`,
    and the articles' topics, tones and tone codes), shuffled, ``batch_size`` at a time."""
    from scipy import sparse

    topics, tones, tone_codes = labels
    vectorizers = [vectorizer for _, vectorizer in features.transformer_list]
    order = rng.permutation(len(topics))
    for start in range(0, len(order), batch_size):
        # Sorted within the batch (partial_fit shuffles a batch's articles itself), so rows are gathered in order.
        chosen = np.sort(order[start : start + batch_size])
        # What features.transform gives for these articles' texts (FeatureUnion stacks its blocks so).
        blocks = take_rows(pieces, chosen)
        matrix = sparse.hstack(
            [vectorizer.weighted(block) for vectorizer, block in zip(vectorizers, blocks)], format="csr"
        )
        del blocks
        classifiers["topic"].partial_fit(matrix, topics[chosen], classes=classes["topic"])
        toned = np.flatnonzero(tone_codes[chosen] >= 0)
        if "tone" in classifiers and len(toned):
            classifiers["tone"].partial_fit(matrix[toned], tones[chosen][toned], classes=classes["tone"])
        if "tone_applies" in classifiers:
            applies = np.where(tone_codes[chosen] >= 0, APPLIES, NOT_APPLICABLE)
            classifiers["tone_applies"].partial_fit(matrix, applies, classes=classes["tone_applies"])
    return len(order)


def _checkpoint(state: _State) -> None:
    """The state after an epoch, as a checkpoint artifact of the run, in the slot the epoch before did
    not use: a kill while one is written leaves the other whole to resume from."""
    import mlflow

    if state.best_epoch == state.epoch:  # the best are this epoch's classifiers: written once, not twice
        state = replace(state, best=state.classifiers)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CHECKPOINT
        joblib.dump(state, path)
        mlflow.log_artifact(str(path), _CHECKPOINT_SLOTS[state.epoch % 2])


def _model(cleaner, features: FeatureUnion, classifiers, metadata: dict) -> NewsClassifier:
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


def warm_start(
    champion: NewsClassifier, articles: Articles, config: ExperimentConfig, progress: Callable[[str], None]
) -> tuple[NewsClassifier, NewsClassifier]:
    """The champion updated with ``articles`` alone, no pass over the corpus it learnt from: its
    classifiers continue ``partial_fit`` for ``fit.epochs`` shuffled passes over them, through its own
    cleaning and hashed features, and keep their calibration maps. Returns the calibrated model and
    the same without calibration."""
    topic = champion.pipelines["topic"]
    steps = topic.steps[:-1]
    cleaner, features = steps[0][1], steps[1][1]
    outputs = {task: classifier_of(pipeline) for task, pipeline in champion.pipelines.items()}
    if champion.tone_applies is not None:
        outputs["tone_applies"] = champion.tone_applies
    inner = {task: copy.deepcopy(uncalibrated(classifier)) for task, classifier in outputs.items()}
    matrix = features.transform(cleaner.transform(articles.texts))
    topics = np.array(articles.topics, dtype=object)
    tones = np.array(articles.tones, dtype=object)
    has_tone = np.array([tone is not None for tone in articles.tones])
    rng = np.random.default_rng(config.seed)
    for epoch in range(1, config.fit.epochs + 1):
        order = rng.permutation(len(articles))
        for start in range(0, len(order), config.fit.batch_size):
            chosen = np.sort(order[start : start + config.fit.batch_size])
            inner["topic"].partial_fit(matrix[chosen], topics[chosen])
            toned = chosen[has_tone[chosen]]
            if "tone" in inner and len(toned):
                inner["tone"].partial_fit(matrix[toned], tones[toned])
            if "tone_applies" in inner:
                applies = np.where(has_tone[chosen], APPLIES, NOT_APPLICABLE)
                inner["tone_applies"].partial_fit(matrix[chosen], applies)
        progress(f"warm start: pass {epoch}/{config.fit.epochs} over {len(articles)} new articles")
    calibrated = {task: _with_estimator(outputs[task], inner[task]) for task in inner}

    def model(classifiers: dict) -> NewsClassifier:
        pipelines = {task: Pipeline([*steps, (CLASSIFIER, classifiers[task])]) for task in champion.pipelines}
        return NewsClassifier(
            pipelines["topic"], pipelines.get("tone"), dict(champion.metadata), classifiers.get("tone_applies")
        )

    return model(calibrated), model(inner)


def _with_estimator(classifier: Any, estimator: Any) -> Any:
    """``classifier`` with its inner estimator replaced: a calibration wrapper keeps its maps around the new one."""
    if classifier is uncalibrated(classifier):
        return estimator
    wrapped = copy.deepcopy(classifier)
    wrapped.calibrated_classifiers_[0].estimator = estimator
    return wrapped
