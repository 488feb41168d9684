"""A model with its own tone labels (say hawkish / dovish) shows and returns those labels: before, its
explanation page said it had no tone task while listing tone terms, and predictions had no tone_score."""

from newsclf.model import NewsClassifier
from newsclf.page import ModelSource, article_page
from tests.helpers import corpus_slice, tiny_classifier

OURS = {"military": "hawkish", "diplomatic": "dovish"}


def _model(tone_labels):
    items = [item | {"tone": OURS.get(item["tone"], item["tone"])} for item in corpus_slice(6)]
    fitted = tiny_classifier(items)
    return NewsClassifier(fitted.pipelines["topic"], fitted.pipelines["tone"], {"tone_labels": tone_labels})


def test_tone_score_is_the_probability_of_the_first_of_the_experiments_tone_labels():
    model = _model(["hawkish", "dovish"])
    assert model.tone_poles == ("hawkish", "dovish")
    prediction = model.predict("Artillery shelled the port as troops advanced on the city.")
    assert prediction["tone_score"] == prediction["tone_probabilities"]["hawkish"]
    assert _model(["dovish", "hawkish"]).tone_poles == ("dovish", "hawkish")
    paragraphs = model.paragraph_tones("Troops advanced.\n\nEnvoys met in Geneva to talk.")
    assert all("tone_score" in row for row in paragraphs)


def test_the_page_names_the_models_own_tone_labels():
    source = ModelSource("models:/own-tones/1", "1", "0123abcd")
    page = article_page(_model(["hawkish", "dovish"]), "Artillery shelled the port as troops advanced.", source)
    assert "no tone task" not in page and "military" not in page and "diplomatic" not in page
    assert "0 dovish" in page and "hawkish 1" in page and "hawkish paragraph" in page
