"""newsclf training: data in, fitted, tracked and registered models out, and their evaluation.

The served model lives in :mod:`newsclf`; ``from train import load_model`` is kept for code written
against earlier releases.
"""

from newsclf import ModelFormatError, NewsClassifier, NewsclfError, load_model

__all__ = ["ModelFormatError", "NewsClassifier", "NewsclfError", "load_model"]
