"""Hashed TF-IDF features for streaming training: the article cleaner, then word and character
n-grams hashed into a fixed number of columns, weighted by an IDF counted in one streaming pass.

The blocks read the same ``[features]`` settings as the in-memory ones (analyzer, n-gram range,
sublinear tf, ``min_df`` / ``max_df`` applied to the hashed columns' document counts);
``max_features`` has no meaning for hashed columns and is ignored. Two n-grams that hash to one
column share its count and its document frequency: at 2**20 columns a few per cent of a large
corpus's rare n-grams do, which costs little accuracy and keeps memory independent of the corpus.
"""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import FeatureUnion

from features.tfidf import FeatureConfig, NgramConfig, build_feature_steps
from newsclf.hashing import HashedTfidfVectorizer
from newsclf.steps import TFIDF


def build_hashed_steps(config: FeatureConfig, n_features: int) -> list[tuple[str, object]]:
    """The ``clean`` and ``tfidf`` steps, with a hashed block per enabled ``[features]`` block (idf not yet set)."""
    clean = build_feature_steps(config)[0]  # the in-memory pipeline's cleaner, as configured
    blocks = [
        (name, _hashed(block, n_features))
        for name, block in (("word", config.word), ("char", config.char))
        if block.enabled
    ]
    return [clean, (TFIDF, FeatureUnion(blocks))]


def _hashed(block: NgramConfig, n_features: int) -> HashedTfidfVectorizer:
    return HashedTfidfVectorizer(
        analyzer=block.analyzer,
        ngram_range=tuple(block.ngram_range),
        n_features=n_features,
        sublinear_tf=block.sublinear_tf,
        dtype=np.float32,
    )


class DocumentFrequencies:
    """Per-column document counts of each hashed block, added up batch by batch (memory: one
    int64 per column and block, whatever the number of documents)."""

    def __init__(self, union: FeatureUnion):
        self._blocks = union.transformer_list
        self.counts = [np.zeros(vectorizer.n_features, dtype=np.int64) for _, vectorizer in self._blocks]
        self.documents = 0

    def add(self, cleaned_texts: list[str]) -> None:
        """Count the documents each column occurs in (a column appears once per row of a count matrix)."""
        for counts, (_, vectorizer) in zip(self.counts, self._blocks):
            counts += np.bincount(vectorizer.counts(cleaned_texts).indices, minlength=len(counts))
        self.documents += len(cleaned_texts)

    def apply(self, config: FeatureConfig) -> None:
        """Set each block's ``idf_`` from the counts and its ``min_df`` / ``max_df``."""
        settings = {"word": config.word, "char": config.char}
        for counts, (name, vectorizer) in zip(self.counts, self._blocks):
            block = settings[name]
            min_df = block.min_df if isinstance(block.min_df, int) else block.min_df * self.documents
            vectorizer.set_document_frequencies(counts, self.documents, min_df=min_df, max_df=block.max_df)
