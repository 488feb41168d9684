"""The classifier kinds an experiment can name, registered by name as spaCy registers architectures.

A kind is a builder (config and seed in, an unfitted estimator with ``predict_proba`` out) and the
``[topic]`` / ``[tone]`` hyperparameters it reads. Adding a kind is one decorated function; a name
that is not registered is a config error. Every kind is linear, so a fitted one exposes the
per-class feature weights that :func:`newsclf.explain.class_weights` reads for explanations and
top terms (tested for each registered kind).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.svm import LinearSVC


@dataclass(frozen=True)
class ClassifierKind:
    """One registered kind: how to build it and which config fields it reads."""

    name: str
    build: Callable[[Any, int], Any]
    hyperparameters: tuple[str, ...]
    # Fitted batch by batch (partial_fit) by streaming training, which reads these hyperparameters.
    streamed: tuple[str, ...] = ()


KINDS: dict[str, ClassifierKind] = {}


def register(name: str, hyperparameters: tuple[str, ...], streamed: tuple[str, ...] = ()) -> Callable:
    """Register ``build(config, seed)`` as the classifier kind ``name``, reading ``hyperparameters``
    (``streamed`` when streaming training fits it with partial_fit; empty if it cannot)."""

    def add(build: Callable[[Any, int], Any]) -> Callable[[Any, int], Any]:
        KINDS[name] = ClassifierKind(name, build, hyperparameters, streamed)
        return build

    return add


def hyperparameters_read(kind: str, streaming: bool) -> tuple[str, ...]:
    """The ``[topic]`` / ``[tone]`` settings a kind reads when fitted in memory, or by streaming."""
    return KINDS[kind].streamed if streaming else KINDS[kind].hyperparameters


def build_classifier(config: Any, seed: int) -> Any:
    """The unfitted final step of a task pipeline for ``config.kind``."""
    return KINDS[config.kind].build(config, seed)


def _class_weight(config: Any) -> str | None:
    return None if config.class_weight == "none" else config.class_weight


@register("logistic_regression", ("C", "class_weight", "max_iter"))
def _logistic_regression(config: Any, seed: int) -> LogisticRegression:
    return LogisticRegression(
        C=config.C, class_weight=_class_weight(config), max_iter=config.max_iter, random_state=seed
    )


@register("sgd_logistic", ("alpha", "class_weight", "max_iter"), streamed=("alpha", "class_weight"))
def _sgd_logistic(config: Any, seed: int) -> SGDClassifier:
    # Log loss by SGD: the same model family as logistic regression at a fraction of lbfgs's fit time.
    return SGDClassifier(
        loss="log_loss",
        alpha=config.alpha,
        class_weight=_class_weight(config),
        max_iter=config.max_iter,
        random_state=seed,
    )


@register("linear_svc", ("C", "class_weight", "max_iter"))
def _linear_svc(config: Any, seed: int) -> CalibratedClassifierCV:
    # LinearSVC has no probabilities; sigmoid calibration on 3 folds adds them.
    svc = LinearSVC(C=config.C, class_weight=_class_weight(config), max_iter=config.max_iter, random_state=seed)
    return CalibratedClassifierCV(svc, method="sigmoid", cv=3)


def uncalibrated(classifier: Any) -> Any:
    """The classifier under a calibration :func:`calibrate` added (the classifier itself if none was added)."""
    if isinstance(classifier, CalibratedClassifierCV) and not classifier.ensemble:
        return classifier.calibrated_classifiers_[0].estimator
    return classifier
