"""One scikit-learn Pipeline per task: article cleaner, TF-IDF features, linear classifier."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from newsclf.features.tfidf import FeatureConfig, build_feature_steps
from newsclf.model import APPLIES, NOT_APPLICABLE
from newsclf.steps import CLASSIFIER, classifier_of, features_of
from newsclf.train.classifiers import build_classifier
from newsclf.train.config import ClassifierConfig


def build_pipeline(features: FeatureConfig, classifier: ClassifierConfig, seed: int) -> Pipeline:
    """An unfitted Pipeline from raw text to class probabilities."""
    return Pipeline(build_feature_steps(features) + [(CLASSIFIER, build_classifier(classifier, seed))])


def fit_pipeline(pipeline: Pipeline, texts: Sequence[str], labels: Sequence[str], n_jobs: int = 1):
    """Fit ``pipeline``; return it and the features it was fitted on (to fit more on them, not recompute).

    ``n_jobs`` workers fit the TF-IDF blocks side by side and the one-vs-rest SGD classes; the
    result is the same for any ``n_jobs``. The fitted pipeline is left single-process, so
    predicting with it never starts workers.
    """
    parallel = [f"{name}__n_jobs" for name, step in pipeline.steps if isinstance(step, (FeatureUnion, SGDClassifier))]
    if n_jobs != 1:
        pipeline.set_params(**dict.fromkeys(parallel, n_jobs))
    try:
        features = features_of(pipeline).fit_transform(texts, labels)
        classifier_of(pipeline).fit(features, labels)
    finally:
        pipeline.set_params(**dict.fromkeys(parallel, None))
    return pipeline, features


def fit_tone_applies(topic_features, tones: Sequence[str | None], classifier: ClassifierConfig, seed: int):
    """A classifier over the topic pipeline's features: does the tone axis apply to an article?

    Trained on every article (``topic_features``, one row each), ``applies`` where it carries a
    tone label and ``not_applicable`` where the tone is null. Returns None when the articles do
    not have both kinds.
    """
    labels = [NOT_APPLICABLE if tone is None else APPLIES for tone in tones]
    if len(set(labels)) < 2:
        return None
    return build_classifier(classifier, seed).fit(topic_features, labels)
