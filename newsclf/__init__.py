"""newsclf: the served model, topic and military/diplomatic tone of news articles.

Everything a saved model needs to load and predict, and nothing of training: this package is
what a logged MLflow model bundles, so it imports only scikit-learn, NumPy, SciPy and joblib
(MLflow and pandas only where those paths are used)::

    from newsclf import load_model
    model = load_model("models:/news-classifier@champion")   # or "runs:/...", or a model folder
    model.predict("Troops shelled the city as envoys met in Doha.")   # one dict; a list in gives a list
    model.explain(article)           # terms that pushed the topic and the tone, with weights
    model.paragraph_tones(article)   # the tone of each paragraph after cleaning
"""

from newsclf.errors import ModelFormatError, NewsclfError
from newsclf.loading import load_model
from newsclf.model import NewsClassifier

__all__ = ["ModelFormatError", "NewsClassifier", "NewsclfError", "load_model"]
