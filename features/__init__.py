"""Text to vectors: the article cleaner and the TF-IDF feature pipelines."""

from features.cleaning import ArticleCleaner
from features.tfidf import FeatureConfig, NgramConfig, build_feature_steps, build_features

__all__ = ["ArticleCleaner", "FeatureConfig", "NgramConfig", "build_feature_steps", "build_features"]
