"""newsclf: topic and military/diplomatic tone classifiers for news articles.

Public API::

    from train import load_model
    model = load_model("models:/news-classifier@champion")   # or "runs:/...", or a model folder
    model.predict("Troops shelled the city as envoys met in Doha.")   # one dict; a list in gives a list
    model.explain(article)           # terms that pushed the topic and the tone, with weights
    model.paragraph_tones(article)   # the tone of each paragraph after cleaning
"""

from train.errors import NewsclfError
from train.loading import load_model
from train.model import NewsClassifier

__all__ = ["NewsClassifier", "NewsclfError", "load_model"]
