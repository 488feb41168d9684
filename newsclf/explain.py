"""Why a linear model chose a label: each term's share of the label's score for one article."""

from __future__ import annotations

import string
from collections import Counter, defaultdict
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from newsclf.steps import classifier_of, tfidf_of


def contributions(
    pipeline: Pipeline,
    features: Any,
    label_index: int,
    names: np.ndarray,
    cleaned: str,
    top_k: int,
    against: bool = False,
) -> list[dict[str, Any]]:
    """The ``top_k`` terms of one article (first row of ``features``) that raise class ``label_index``
    (with ``against``, those that lower it most, their weights negative, most negative first).

    A feature's weight is its TF-IDF value times the classifier's coefficient for the class; for a
    logistic regression the weights of all features plus the intercept make the class's score.
    Word features are reported as they are (kind ``word``). Character n-grams taken within words
    (``char_wb``) are summed back onto the words of ``cleaned`` they came from (kind ``char``),
    each n-gram's weight shared among its words by how often each contains it.
    """
    row = features[:1].tocsr()
    weights = row.data * class_weights(pipeline)[label_index, row.indices]
    within_words = _char_wb_blocks(pipeline)
    totals: dict[tuple[str, str], float] = defaultdict(float)
    by_block: dict[str, dict[str, float]] = defaultdict(dict)
    for column, weight in zip(row.indices, weights.tolist()):
        kind, _, term = str(names[column]).partition("__")
        if kind in within_words:
            by_block[kind][term] = weight
        else:
            totals[(term, kind)] += weight
    for block, gram_weights in by_block.items():
        for word, weight in _spread_over_words(within_words[block], gram_weights, cleaned).items():
            totals[(word, "char")] += weight
    sign = -1.0 if against else 1.0
    ranked = sorted(
        ((weight, term, kind) for (term, kind), weight in totals.items() if sign * weight > 0),
        key=lambda item: (-sign * item[0], item[1]),
    )
    return [{"term": term, "kind": kind, "weight": weight} for weight, term, kind in ranked[: max(int(top_k), 0)]]


def class_weights(pipeline: Pipeline) -> np.ndarray:
    """A ``(n_classes, n_features)`` weight matrix for a task pipeline's linear classifier.

    Binary models store one row (for the second class); it is mirrored so every class has one.
    Calibrated classifiers average the weights of their cross-validated estimators.
    """
    classifier = classifier_of(pipeline)
    if hasattr(classifier, "calibrated_classifiers_"):
        coef = np.mean([c.estimator.coef_ for c in classifier.calibrated_classifiers_], axis=0)
    else:
        coef = classifier.coef_
    coef = np.asarray(coef.toarray() if hasattr(coef, "toarray") else coef)
    return np.vstack([-coef[0], coef[0]]) if coef.shape[0] == 1 else coef


def top_terms(pipeline: Pipeline, k: int = 25) -> dict[str, list[tuple[str, float]]]:
    """The ``k`` features with the largest weight towards each class of a fitted task pipeline."""
    names = tfidf_of(pipeline).get_feature_names_out()
    labels = [str(label) for label in pipeline.classes_]
    return {
        label: [(str(names[j]), float(row[j])) for j in np.argsort(row)[::-1][:k]]
        for label, row in zip(labels, class_weights(pipeline))
    }


def _char_wb_blocks(pipeline: Pipeline) -> dict[str, Any]:
    """The vectorizers, by block name, whose n-grams never cross a word boundary."""
    blocks = getattr(tfidf_of(pipeline), "transformer_list", [])
    return {name: vectorizer for name, vectorizer in blocks if getattr(vectorizer, "analyzer", None) == "char_wb"}


def _spread_over_words(vectorizer: Any, gram_weights: dict[str, float], text: str) -> dict[str, float]:
    analyze = vectorizer.build_analyzer()
    # How often each n-gram occurs in each distinct word, times how often the word occurs.
    occurrences: dict[str, Counter] = {}
    for word, count in Counter(text.split()).items():
        found = Counter(gram for gram in analyze(word) if gram in gram_weights)
        if found:
            occurrences[word] = Counter({gram: n * count for gram, n in found.items()})
    per_gram = Counter()
    for found in occurrences.values():
        per_gram.update(found)
    shares: dict[str, float] = defaultdict(float)
    for word, found in occurrences.items():
        shown = word.lower().strip(string.punctuation) or word.lower()
        for gram, n in found.items():
            shares[shown] += gram_weights[gram] * n / per_gram[gram]
    return shares
