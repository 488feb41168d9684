"""TF-IDF feature pipelines over cleaned article text, built from a validated config.

The transformers themselves (:class:`ArticleCleaner`, :class:`BulkTfidfVectorizer`) live in the
served package :mod:`newsclf`, because a saved model's pickles name them and must load without
this one; this module chooses and configures them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.pipeline import FeatureUnion, Pipeline

from newsclf.cleaning import ArticleCleaner
from newsclf.counting import BulkTfidfVectorizer
from newsclf.steps import CLEAN, TFIDF

_ANALYZERS = {"word", "char", "char_wb"}


@dataclass(frozen=True)
class NgramConfig:
    """One TF-IDF block: which n-grams to count and how to weight them."""

    enabled: bool = True
    analyzer: str = "word"
    ngram_range: tuple[int, int] = (1, 2)
    min_df: int | float = 1
    max_df: float = 1.0
    max_features: int | None = None
    sublinear_tf: bool = True

    def __post_init__(self):
        if self.analyzer not in _ANALYZERS:
            raise ValueError(f"analyzer must be one of {sorted(_ANALYZERS)}, got {self.analyzer!r}")
        low, high = self.ngram_range
        if not (1 <= low <= high):
            raise ValueError(f"ngram_range must be [low, high] with 1 <= low <= high, got {list(self.ngram_range)}")
        if isinstance(self.min_df, float) and not 0.0 < self.min_df < 1.0:
            raise ValueError(f"min_df as a fraction must be in (0, 1), got {self.min_df}")
        if isinstance(self.min_df, int) and self.min_df < 1:
            raise ValueError(f"min_df as a count must be >= 1, got {self.min_df}")
        if not 0.0 < self.max_df <= 1.0:
            raise ValueError(f"max_df must be in (0, 1], got {self.max_df}")
        if self.max_features is not None and self.max_features < 1:
            raise ValueError(f"max_features must be >= 1, got {self.max_features}")


@dataclass(frozen=True)
class FeatureConfig:
    """Cleaning switches plus a word and a character TF-IDF block."""

    normalize_unicode: bool = True
    drop_repeated: bool = True
    drop_boilerplate: bool = True
    word: NgramConfig = field(default_factory=NgramConfig)
    char: NgramConfig = field(default_factory=lambda: NgramConfig(analyzer="char_wb", ngram_range=(2, 5), min_df=2))

    def __post_init__(self):
        if not (self.word.enabled or self.char.enabled):
            raise ValueError("at least one of word and char features must be enabled")


def _vectorizer(block: NgramConfig) -> BulkTfidfVectorizer:
    return BulkTfidfVectorizer(
        analyzer=block.analyzer,
        ngram_range=tuple(block.ngram_range),
        min_df=block.min_df,
        max_df=block.max_df,
        max_features=block.max_features,
        sublinear_tf=block.sublinear_tf,
        dtype=np.float32,
    )


def build_feature_steps(config: FeatureConfig) -> list[tuple[str, object]]:
    """Return the ``(name, transformer)`` steps that turn raw text into a sparse matrix.

    The steps are ``clean`` (an :class:`ArticleCleaner`) and ``tfidf`` (a FeatureUnion of the
    enabled blocks, whose feature names are prefixed ``word__`` or ``char__``).
    """
    cleaner = ArticleCleaner(
        normalize_unicode=config.normalize_unicode,
        drop_repeated=config.drop_repeated,
        drop_boilerplate=config.drop_boilerplate,
    )
    blocks = [
        (name, _vectorizer(block)) for name, block in (("word", config.word), ("char", config.char)) if block.enabled
    ]
    return [(CLEAN, cleaner), (TFIDF, FeatureUnion(blocks))]


def build_features(config: FeatureConfig) -> Pipeline:
    """A Pipeline from raw article text to TF-IDF features."""
    return Pipeline(build_feature_steps(config))
