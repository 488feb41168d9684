"""Text to vectors: the feature config and the cleaning and TF-IDF steps built from it.

The step classes are defined in :mod:`newsclf` (a saved model unpickles them from there) and
re-exported here for training code.
"""

from newsclf.cleaning import ArticleCleaner
from newsclf.counting import BulkTfidfVectorizer
from newsclf.features.tfidf import FeatureConfig, NgramConfig, build_feature_steps, build_features

__all__ = [
    "ArticleCleaner",
    "BulkTfidfVectorizer",
    "FeatureConfig",
    "NgramConfig",
    "build_feature_steps",
    "build_features",
]
