"""newsclf: topic and military/diplomatic tone classifiers for news articles.

Public API::

    from train import load_model
    model = load_model("models:/news-classifier@champion")
    model.predict(["Troops shelled the city as envoys met in Doha."])
"""

from train.errors import NewsclfError
from train.loading import load_model
from train.model import NewsClassifier

__all__ = ["NewsClassifier", "NewsclfError", "load_model"]
