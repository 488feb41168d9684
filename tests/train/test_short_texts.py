"""Tone on short texts: the sentences it is measured on, the temperature fitted on them, and real sentences."""

import json

import numpy as np
import pytest

from newsclf.model import SHORT_TEXT_TONE, NewsClassifier
from newsclf.train.data.articles import Articles
from newsclf.train.evaluation.short_texts import MIN_SENTENCES, short_text_ece, tone_sentences
from newsclf.train.fit.calibration import fit_short_text_tone
from tests.helpers import as_articles, corpus_slice

LONG = " ".join(["word"] * 40) + "."


def _articles(texts: list[str], tones: list[str | None]) -> Articles:
    n = len(texts)
    return Articles([f"a{i}" for i in range(n)], texts, ["armed_conflicts_attacks"] * n, tones, [None] * n)


def test_sentences_come_from_toned_articles_once_each_within_the_short_length():
    repeated = "Troops shelled the port city overnight, officials said."
    articles = _articles(
        [
            f"{repeated}\n\n{repeated} Talks resume in Doha on Monday, envoys said. Short one.\n{LONG}",
            "Envoys signed the treaty after three days of talks in Oman.",
            "The league final ended in a draw after extra time on Sunday.",
        ],
        ["military", "diplomatic", None],
    )
    sentences, tones = tone_sentences(articles)
    assert sentences == [
        repeated,
        "Talks resume in Doha on Monday, envoys said.",
        "Envoys signed the treaty after three days of talks in Oman.",
    ]
    assert tones == ["military", "military", "diplomatic"]


def test_an_overconfident_model_is_tempered_and_a_small_validation_is_said(small_model):
    fitted, note = fit_short_text_tone(small_model, _articles(["Envoys met in Geneva for talks."], ["diplomatic"]))
    assert fitted is None and f"fewer than {MIN_SENTENCES}" in note
    # Each sentence labelled against the model's own guess half of the time: a confident model is wrong
    # half of the time here, so the temperature must soften it.
    texts = [f"{item['title']}." for item in corpus_slice(12) if item["title"] and len(item["title"].split()) >= 6]
    guesses = [row["tone"] for row in small_model.predict(texts)]
    flipped = {"military": "diplomatic", "diplomatic": "military"}
    tones = [guess if i % 2 else flipped[guess] for i, guess in enumerate(guesses)]
    fitted, note = fit_short_text_tone(small_model, _articles(texts, tones))
    assert note == "" and fitted["temperature"] > 2 and fitted["sentences"] == len(texts)
    tempered = NewsClassifier(
        small_model.pipelines["topic"],
        small_model.pipelines["tone"],
        small_model.metadata | {SHORT_TEXT_TONE: fitted},
        small_model.tone_applies,
    )
    assert (
        short_text_ece(tempered, _articles(texts, tones))[0] < short_text_ece(small_model, _articles(texts, tones))[0]
    )


@pytest.mark.slow  # trains the default experiment; real sentences from ../shared/data
def test_the_default_models_tone_is_honest_on_real_news_sentences(shared_path, tmp_path):
    from sklearn.metrics import f1_score

    from newsclf.loading import load_model
    from newsclf.train.config import load_config
    from newsclf.train.evaluation.metrics import expected_calibration_error, reliability
    from newsclf.train.training import run
    from tests.helpers import new_store

    uri = new_store(tmp_path / "mlflow.db")
    config = load_config("default")
    result = run(config, uri)
    model = load_model(result.model_uri, uri)
    with open(shared_path / "data" / "cameo" / "cameo-train.jsonl", encoding="utf-8") as handle:
        rows = [row for row in map(json.loads, handle) if row["tone"]]
    proba = model.predict_proba([row["text"] for row in rows])["tone"]
    truth = [row["tone"] for row in rows]
    labels = model.labels("tone")
    predicted = [labels[i] for i in proba.argmax(axis=1)]
    assert expected_calibration_error(reliability(proba, truth, labels)) <= 0.08
    assert f1_score(truth, predicted, average="macro") >= 0.80
    # Articles keep their scores: texts of 60 words or more are not tempered at all.
    long_texts = [text for text in as_articles(corpus_slice(5)).texts if len(text.split()) >= 120]
    untempered = NewsClassifier(
        model.pipelines["topic"],
        model.pipelines["tone"],
        {key: value for key, value in model.metadata.items() if key != SHORT_TEXT_TONE},
        model.tone_applies,
    )
    assert np.allclose(model.predict_proba(long_texts)["tone"], untempered.predict_proba(long_texts)["tone"])


def test_the_served_model_tempers_short_texts_only(small_model):
    setting = {"temperature": 3.0, "full_up_to_words": 30, "none_from_words": 60, "sentences": 100}
    tempered = NewsClassifier(
        small_model.pipelines["topic"],
        small_model.pipelines["tone"],
        small_model.metadata | {SHORT_TEXT_TONE: setting},
        small_model.tone_applies,
    )
    short = "Artillery shelled the port as troops advanced on the city."
    long = as_articles(corpus_slice(2)).texts
    long = [text for text in long if len(text.split()) >= 120][:2]
    before, after = small_model.predict_proba([short, *long])["tone"], tempered.predict_proba([short, *long])["tone"]
    assert np.array_equal(before[1:], after[1:])  # articles keep their scores bit for bit
    assert after[0].max() < before[0].max() and after[0].argmax() == before[0].argmax()
    assert np.array_equal(small_model.predict_proba([short])["topic"], tempered.predict_proba([short])["topic"])
