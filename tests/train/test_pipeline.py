"""Each classifier kind builds a pipeline that fits raw text and gives probabilities."""

import numpy as np
import pytest

from newsclf.explain import class_weights
from newsclf.features.tfidf import FeatureConfig, NgramConfig
from newsclf.train.classifiers import KINDS
from newsclf.train.config import ClassifierConfig
from newsclf.train.fit.pipeline import build_pipeline, fit_pipeline
from tests.helpers import corpus_slice


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_fits_text_and_gives_probabilities(kind):
    rows = corpus_slice(6)
    texts, topics = [row["text"] for row in rows], [row["topic"] for row in rows]
    features = FeatureConfig(char=NgramConfig(analyzer="char_wb", ngram_range=(3, 4)))
    pipeline = build_pipeline(features, ClassifierConfig(kind=kind, C=1.0), seed=0).fit(texts, topics)
    proba = pipeline.predict_proba(texts[:5])
    assert proba.shape == (5, len(set(topics))) and np.allclose(proba.sum(axis=1), 1.0)
    assert (pipeline.predict(texts) == np.asarray(topics)).mean() > 0.8
    # Explanations and top terms read the weights of every registered kind.
    n_features = len(pipeline.named_steps["tfidf"].get_feature_names_out())
    assert class_weights(pipeline).shape == (len(set(topics)), n_features)


def test_sgd_logistic_takes_alpha_and_the_seed():
    pipeline = build_pipeline(
        FeatureConfig(), ClassifierConfig(kind="sgd_logistic", alpha=3e-4, class_weight="none"), seed=7
    )
    classifier = pipeline.named_steps["classifier"]
    assert (classifier.loss, classifier.alpha, classifier.class_weight, classifier.random_state) == (
        "log_loss",
        3e-4,
        None,
        7,
    )


@pytest.mark.slow  # starts worker processes
def test_fitting_with_workers_gives_the_same_model_and_leaves_it_single_process():
    rows = corpus_slice(6)
    texts, topics = [row["text"] for row in rows], [row["topic"] for row in rows]
    config = ClassifierConfig(kind="sgd_logistic", alpha=1e-4)
    alone, features = fit_pipeline(build_pipeline(FeatureConfig(), config, seed=3), texts, topics, n_jobs=1)
    with_workers, _ = fit_pipeline(build_pipeline(FeatureConfig(), config, seed=3), texts, topics, n_jobs=2)
    assert (features != alone[:-1].transform(texts)).nnz == 0  # the features it was fitted on
    assert np.array_equal(
        alone.predict(texts), build_pipeline(FeatureConfig(), config, seed=3).fit(texts, topics).predict(texts)
    )
    assert np.array_equal(alone.predict_proba(texts), with_workers.predict_proba(texts))
    assert with_workers.named_steps["tfidf"].n_jobs is None and with_workers.named_steps["classifier"].n_jobs is None
