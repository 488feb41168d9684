"""Post-hoc calibration of every probability the model outputs: topic, tone and tone-applies.

Where the map is fitted: **cross-fitting on the data the model is fitted on**. Each task's
classifier is wrapped in scikit-learn's ``CalibratedClassifierCV(cv=K, ensemble=False)``, which
fits the classifier on K-1 folds, scores the held-out fold, fits the map (sigmoid, isotonic or
temperature) on those out-of-fold scores and then refits the classifier on every article. So the
map never sees a score of an article its classifier trained on, and the validation split stays
unseen: training, the search and promotion score on validation (train/evaluation/metrics.py,
train/tracking/promotion.py), so fitting the map there would grade the map on its own training data. A
held-out slice of train would have cost the classifier those articles instead.

Validation only *chooses* among the few configured methods per task (``none`` included), by log
loss, as the search chooses among grid values. The saved classifier is the scikit-learn object, so
loading, explanations (its one inner estimator's weights) and pyfunc serving need nothing new.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from newsclf.folder import TONE_APPLIES
from newsclf.model import APPLIES, NOT_APPLICABLE, SHORT_TEXT_TONE, NewsClassifier, temper
from newsclf.steps import CLASSIFIER, classifier_of
from newsclf.train.classifiers import uncalibrated
from newsclf.train.config import CalibrationConfig
from newsclf.train.data.articles import Articles
from newsclf.train.evaluation.metrics import (
    ece_if_calibrated,
    expected_calibration_error,
    metric_name,
    probability_log_loss,
    reliability,
)
from newsclf.train.evaluation.short_texts import FULL_UP_TO_WORDS, MIN_SENTENCES, NONE_FROM_WORDS, tone_sentences

NONE = "none"


@dataclass(frozen=True)
class Calibration:
    """A calibrated model, the method kept per task and why.

    ``validation_log_loss`` maps task -> method -> log loss on validation (empty when the method
    was fixed rather than chosen); ``notes`` says why a task was left uncalibrated, if it was.
    """

    model: NewsClassifier
    methods: dict[str, str]
    validation_log_loss: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        """The chosen method per task, as MLflow params and tags."""
        return {f"calibration.chosen.{task}": method for task, method in self.methods.items()}


# Fewer articles than this and an isotonic map is not considered (see calibrate).
ISOTONIC_MIN_ARTICLES = 1000


def calibrate(
    model: NewsClassifier,
    config: CalibrationConfig,
    fit: Articles,
    validation: Articles | None,
    seed: int,
    methods: Mapping[str, str] | None = None,
    held_out: bool = False,
    short_text_tone: Mapping[str, float] | None = None,
    n_jobs: int = 1,
) -> Calibration:
    """``model`` (fitted on ``fit``) with each task's probabilities calibrated by cross-fitting on ``fit``.

    With ``held_out``, ``fit`` are instead articles the model never trained on (streaming training
    holds such a slice out of train, as it cannot cross-fit): each map is fitted on the model's own
    scores of them.

    Every method of ``config.methods`` is fitted and the one with the lowest log loss on
    ``validation`` is kept per task; ``methods`` (task -> method, e.g. the choice made before a
    refit) fixes the choice instead. A task whose smallest class has fewer than 2 articles stays
    uncalibrated (said in ``notes``); with fewer than ``config.folds`` it uses that many folds.

    The tone of short texts is tempered too (:func:`fit_short_text_tone`, on ``validation``'s
    sentences); ``short_text_tone`` fixes it instead (a refit keeps the earlier fit's). ``n_jobs``
    workers fit the folds side by side (the same maps for any number).
    """
    features = _Features(model)
    chosen: dict[str, str] = {}
    losses: dict[str, dict[str, float]] = {}
    notes: dict[str, str] = {}
    calibrated: dict[str, Any] = {}
    for task, classifier in _outputs(model):
        candidates = (methods[task],) if methods is not None and task in methods else tuple(config.methods)
        x, y = features.of(task, fit)
        if methods is None and len(y) < ISOTONIC_MIN_ARTICLES and len(candidates) > 1 and "isotonic" in candidates:
            # A step function fitted on few articles maps to exact 0 and 1 and wins on a small, easy
            # validation split while misleading on anything else (scikit-learn's guide: isotonic
            # overfits below about a thousand samples).
            candidates = tuple(method for method in candidates if method != "isotonic")
            notes[task] = f"isotonic not tried: {len(y)} articles, fewer than {ISOTONIC_MIN_ARTICLES}"
        fitted = _fit_methods(classifier, x, y, candidates, config.folds, seed, held_out, n_jobs)
        if isinstance(fitted, str):
            chosen[task], notes[task] = NONE, fitted
            continue
        best = next(method for method in candidates if method in fitted)
        if len(fitted) > 1 and validation is not None:
            x_val, y_val = features.of(task, validation)
            if len(y_val):
                losses[task] = {
                    method: _log_loss(y_val, found.predict_proba(x_val), found) for method, found in fitted.items()
                }
                # Ties keep the earlier method of the list ("none" first by default): no map without a gain.
                best = min(losses[task], key=lambda method: (losses[task][method], candidates.index(method)))
        chosen[task], calibrated[task] = best, fitted[best]
    pipelines = {
        task: Pipeline(pipeline.steps[:-1] + [(CLASSIFIER, calibrated[task])]) if task in calibrated else pipeline
        for task, pipeline in model.pipelines.items()
    }
    shipped = NewsClassifier(
        pipelines["topic"],
        pipelines.get("tone"),
        model.metadata | {"calibration": dict(chosen)},
        calibrated.get(TONE_APPLIES, model.tone_applies),
    )
    if short_text_tone is None and validation is not None and set(config.methods) != {NONE}:
        short_text_tone, note = fit_short_text_tone(shipped, validation)
        if note:
            notes["tone_short_texts"] = note
    if short_text_tone is not None:
        shipped.metadata[SHORT_TEXT_TONE] = dict(short_text_tone)
    return Calibration(shipped, chosen, losses, notes)


def fit_short_text_tone(model: NewsClassifier, articles: Articles) -> tuple[dict[str, float] | None, str]:
    """The :data:`newsclf.model.SHORT_TEXT_TONE` setting that makes ``model``'s tone honest on short
    texts: the temperature with the least log loss on the sentences of ``articles`` (which it never
    trained on), each labelled with its article's tone; or None and why not."""
    from scipy.optimize import minimize_scalar

    sentences, tones = tone_sentences(articles)
    if "tone" not in model.pipelines:
        return None, ""
    if len(sentences) < MIN_SENTENCES:
        return None, f"short-text tone not tempered: {len(sentences)} validation sentences, fewer than {MIN_SENTENCES}"
    labels = model.labels("tone")
    kept = [i for i, tone in enumerate(tones) if tone in labels]
    proba = model.predict_proba([sentences[i] for i in kept])["tone"]
    truth = [tones[i] for i in kept]
    fitted = minimize_scalar(
        lambda temperature: probability_log_loss(truth, temper(proba, temperature), labels),
        bounds=(0.25, 20.0),
        method="bounded",
    )
    setting = {"temperature": round(float(fitted.x), 4), "sentences": len(kept)}
    return setting | {"full_up_to_words": FULL_UP_TO_WORDS, "none_from_words": NONE_FROM_WORDS}, ""


def before_after(
    before: NewsClassifier, after: NewsClassifier, parts: Mapping[str, Articles], n_bins: int = 10
) -> tuple[dict[str, float], dict[str, list[dict]]]:
    """ECE and log loss of the uncalibrated and calibrated models per task and split, and their bins.

    ``before`` is ``after`` without calibration (same features). Metrics: ``<split>/<task>/ece``
    and ``/log_loss`` (calibrated) and the same with ``_uncalibrated``, and ``/ece_if_calibrated``, the ECE
    a perfectly calibrated model would show on these articles (its noise floor); bins are keyed
    ``<task>/<split>_uncalibrated`` and ``<task>/<split>_calibrated``.
    """
    features = _Features(after)
    old = dict(_outputs(before))
    metrics: dict[str, float] = {}
    bins: dict[str, list[dict]] = {}
    for split, articles in parts.items():
        for task, classifier in _outputs(after):
            x, y = features.of(task, articles)
            if not len(y):
                continue
            for state, estimator in (("uncalibrated", old[task]), ("calibrated", classifier)):
                proba = estimator.predict_proba(x)
                found = reliability(proba, y, [str(label) for label in estimator.classes_], n_bins)
                suffix = "_uncalibrated" if state == "uncalibrated" else ""
                bins[f"{task}/{split}_{state}"] = found
                metrics[metric_name(split, task, "ece" + suffix)] = expected_calibration_error(found)
                metrics[metric_name(split, task, "log_loss" + suffix)] = _log_loss(y, proba, estimator)
            # proba is the calibrated model's here: the loop's last state
            metrics[metric_name(split, task, "ece_if_calibrated")] = ece_if_calibrated(proba.max(axis=1), n_bins)
    return metrics, bins


def log_before_after(before: NewsClassifier, after: NewsClassifier, parts: Mapping[str, Articles]) -> dict[str, float]:
    """A reliability diagram per output and split, before and after calibration in one
    (``<output>/reliability_<split>.png``), logged to the active run; :func:`before_after`'s metrics returned."""
    import matplotlib.pyplot as plt
    import mlflow

    from newsclf.train.evaluation.figures import reliability_figure

    metrics, bins = before_after(before, after, parts)
    for key, found in bins.items():
        task, _, name = key.partition("/")
        if not name.endswith("_calibrated"):
            continue
        split = name.removesuffix("_calibrated")
        items = sum(b["count"] for b in found)
        figure = reliability_figure(
            found, f"{task}: {split} ({items} items)", before=bins[f"{task}/{split}_uncalibrated"]
        )
        mlflow.log_figure(figure, f"{task}/reliability_{split}.png")
        plt.close(figure)
    return metrics


def _outputs(model: NewsClassifier) -> list[tuple[str, Any]]:
    """(output, classifier) for every probability the model gives: its tasks, then tone-applies."""
    outputs = [(task, classifier_of(pipeline)) for task, pipeline in model.pipelines.items()]
    return outputs + ([(TONE_APPLIES, model.tone_applies)] if model.tone_applies is not None else [])


class _Features:
    """The classifier input and labels of each output on some articles; the topic features computed
    once per set of articles, since tone-applies reads them too."""

    def __init__(self, model: NewsClassifier):
        self._model, self._cache = model, {}

    def of(self, output: str, articles: Articles) -> tuple[Any, list[str]]:
        task = "topic" if output == TONE_APPLIES else output
        scored, labels = articles.for_task(task)
        key = (task, id(articles))
        if not len(scored):  # nothing to transform (a split without articles, or without toned ones)
            return None, []
        if key not in self._cache:
            self._cache[key] = self._model.features(scored.texts)[task]
        if output == TONE_APPLIES:
            labels = [NOT_APPLICABLE if tone is None else APPLIES for tone in articles.tones]
        return self._cache[key], [str(label) for label in labels]


def _fit_methods(
    classifier: Any,
    x: Any,
    y: list[str],
    methods: Sequence[str],
    folds: int,
    seed: int,
    held_out: bool = False,
    n_jobs: int = 1,
) -> dict[str, Any] | str:
    """Each method's calibrated classifier (``none``: ``classifier`` as it is), or why none can be fitted.

    Each result is what ``CalibratedClassifierCV(base, method=..., cv=folds, ensemble=False).fit(x, y)``
    returns (tested bit for bit), but the K out-of-fold fits and the full fit are shared by all
    methods instead of repeated for each: scikit-learn's own ``_fit_calibrator`` maps them, a
    private function, usable because scikit-learn is pinned to one minor (see README).
    """
    counts = Counter(y)
    if held_out:  # every class the classifier knows, including those the held-out articles lack
        counts.update({str(label): 0 for label in uncalibrated(classifier).classes_})
    rarest, count = min(counts.items(), key=lambda item: (item[1], item[0]))
    mapped = [method for method in methods if method != NONE]
    if count < 2 and held_out:
        # A one-vs-rest map fitted on (almost) no positives would silence that class; temperature
        # scaling, one parameter shared by every class, is safe.
        methods = [method for method in methods if method in (NONE, "temperature")]
        mapped = [method for method in mapped if method == "temperature"]
        if not methods:
            return (
                f"left uncalibrated: class {rarest!r} has {count} held-out article(s), and a per-class map fitted "
                "on them would silence it (temperature scaling would not)"
            )
    elif count < 2 and mapped:
        return f"left uncalibrated: class {rarest!r} has {count} training article, and cross-fitting needs 2"
    fitted = {method: classifier for method in methods if method == NONE}
    if not mapped:
        return fitted
    from sklearn.calibration import _fit_calibrator
    from sklearn.model_selection import cross_val_predict
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils._array_api import get_namespace_and_device

    # The linear_svc kind is a sigmoid-calibrated LinearSVC already: calibrate the LinearSVC itself instead.
    wrapped = isinstance(classifier, CalibratedClassifierCV)
    base = clone(classifier.estimator if wrapped else classifier)
    splitter = StratifiedKFold(max(2, min(folds, count)), shuffle=True, random_state=seed)
    if held_out:  # x was never trained on: the fitted classifier's own scores
        full = uncalibrated(classifier)
        scores = full.decision_function(x).reshape(len(y), -1)
        encoder = LabelEncoder().fit([str(label) for label in full.classes_])
    else:
        scores = cross_val_predict(clone(base), x, y, cv=splitter, method="decision_function", n_jobs=n_jobs)
        scores = scores.reshape(len(y), -1)
        # Fitted on all of x and y as the classifier already was, unless it is the wrapped LinearSVC.
        full = clone(base).fit(x, y) if wrapped else classifier
        encoder = LabelEncoder().fit(y)
    xp = get_namespace_and_device(x)[0]
    for method in mapped:
        calibrated = CalibratedClassifierCV(base, method=method, cv=splitter, ensemble=False)
        calibrated.classes_ = encoder.classes_
        targets = encoder.transform(y) if method == "temperature" else np.asarray(y)
        calibrated.calibrated_classifiers_ = [_fit_calibrator(full, scores, targets, encoder.classes_, method, xp=xp)]
        calibrated.n_features_in_ = full.n_features_in_
        fitted[method] = calibrated
    return fitted


def _log_loss(y_true: Sequence[str], proba: np.ndarray, classifier: Any) -> float:
    return probability_log_loss(y_true, proba, [str(label) for label in classifier.classes_])
