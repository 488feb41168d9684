import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from newsclf.cleaning import ArticleCleaner
from newsclf.explain import _spread_over_words, class_weights
from newsclf.features.tfidf import FeatureConfig, NgramConfig
from newsclf.folder import TONE_APPLIES
from newsclf.model import NewsClassifier
from newsclf.train.config import ClassifierConfig
from newsclf.train.fit.pipeline import build_pipeline
from tests.helpers import corpus_slice

MIXED = (
    "Artillery shelled the port overnight and troops advanced on the airfield.\n"
    "Envoys met in Geneva and signed an agreement to resume ceasefire talks."
)
FIELDS = {
    "topic",
    "topic_probability",
    "topic_probabilities",
    "tone",
    "tone_probability",
    "tone_probabilities",
    "tone_score",
    "tone_applies",
    "tone_applies_probability",
    "empty",
}


def assert_well_formed(row, model):
    assert set(row) == FIELDS
    for task in ("topic", "tone"):
        probabilities = row[f"{task}_probabilities"]
        assert list(probabilities) == model.labels(task)
        assert all(isinstance(p, float) and 0.0 <= p <= 1.0 and math.isfinite(p) for p in probabilities.values())
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert row[f"{task}_probability"] == max(probabilities.values())
        if row["empty"]:
            assert row[task] is None
        else:
            assert row[task] in model.labels(task) and probabilities[row[task]] == row[f"{task}_probability"]
    assert row["tone_score"] == row["tone_probabilities"]["military"]
    assert 0.0 <= row["tone_applies_probability"] <= 1.0
    assert row["tone_applies"] is (row["tone_applies_probability"] >= 0.5)


def test_one_text_gives_one_answer_and_many_give_a_list(small_model):
    one = small_model.predict("Rebels shelled the airport overnight.")
    many = small_model.predict(["Rebels shelled the airport overnight.", "The striker scored twice."])
    assert isinstance(one, dict) and isinstance(many, list) and len(many) == 2
    assert one == many[0]
    for row in many:
        assert_well_formed(row, small_model)
    assert small_model.predict([]) == []


def test_predictions_equal_the_pipelines_own(small_model):
    texts = [item["title"] + "\n\n" + item["text"] for item in corpus_slice(3)] + [
        "Troops crossed the border.",
        "ΑΣ ΟΔΟΣ İstanbul",
    ]
    proba = small_model.predict_proba(texts)
    for task, pipeline in small_model.pipelines.items():
        assert np.array_equal(proba[task], pipeline.predict_proba(texts))
    features = small_model.pipelines["topic"][:-1].transform(texts)
    expected_applies = small_model.tone_applies.predict_proba(features)[
        :, list(small_model.tone_applies.classes_).index("applies")
    ]
    assert np.array_equal(proba[TONE_APPLIES], expected_applies)


@pytest.mark.parametrize(
    "text", ["", "   \n\t ", None, float("nan"), pd.NA, np.nan, "Read more: the full story", "By Staff Reporter"]
)
def test_text_with_nothing_left_after_cleaning_gets_the_empty_answer(small_model, text):
    row = small_model.predict([text])[0]
    assert_well_formed(row, small_model)
    assert row["empty"] is True and row["topic"] is None and row["tone"] is None
    assert list(row["topic_probabilities"].values()) == pytest.approx(
        [1 / len(small_model.labels("topic"))] * len(small_model.labels("topic"))
    )
    assert row["tone_score"] == 0.5 and row["tone_applies"] is False and row["tone_applies_probability"] == 0.0


@pytest.mark.parametrize(
    "value, read_as",
    [
        (42, "42"),
        (3.5, "3.5"),
        (True, "True"),
        (b"Troops \xff\xfe crossed", "Troops \ufffd\ufffd crossed"),
        (bytearray(b"Envoys met"), "Envoys met"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_other_values_are_read_as_text(small_model, value, read_as):
    row = small_model.predict([value])[0]
    assert_well_formed(row, small_model)
    assert row == small_model.predict([read_as])[0]
    json.dumps(row).encode("utf-8")  # the answer can always be written out


def test_collections_of_every_kind_are_accepted(small_model):
    texts = ["Troops crossed the border.", "Envoys met in Doha."]
    expected = small_model.predict(texts)
    assert small_model.predict(tuple(texts)) == expected
    assert small_model.predict(text for text in texts) == expected
    assert small_model.predict(np.array(texts, dtype=object)) == expected
    assert small_model.predict(pd.Series(texts)) == expected
    assert small_model.predict(pd.DataFrame({"id": [1, 2], "text": texts})) == expected
    with pytest.raises(TypeError, match="not a mapping"):
        small_model.predict({"text": texts[0]})


def test_a_megabyte_article_and_ten_thousand_texts_are_answered(small_model):
    article = ("Troops shelled the port overnight while envoys met in Geneva. " * 17_000)[:1_000_000]
    assert_well_formed(small_model.predict(article), small_model)
    rows = small_model.predict([f"Article {i}: troops and envoys." for i in range(10_000)])
    assert len(rows) == 10_000 and all(not row["empty"] for row in rows)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(max_size=300), max_size=6))
def test_any_unicode_gets_a_well_formed_answer(small_model, texts):
    rows = small_model.predict(texts)
    assert len(rows) == len(texts)
    for row in rows:
        assert_well_formed(row, small_model)
    json.dumps(rows, allow_nan=False)


def test_frame_has_the_scalar_fields_and_one_column_per_label(small_model):
    texts = ["Talks resume in Geneva.", "", "A flood hit the valley."]
    frame = small_model.predict_frame(texts)
    assert list(frame.columns[:4]) == ["topic", "topic_probability", "tone", "tone_probability"]
    assert {"tone_score", "tone_applies", "tone_applies_probability", "empty"} <= set(frame.columns)
    topic_columns = [f"p_topic_{label}" for label in small_model.labels("topic")]
    assert np.allclose(frame[topic_columns].sum(axis=1), 1.0)
    rows = small_model.predict(texts)
    assert frame["topic"].tolist() == [row["topic"] for row in rows]
    assert frame["tone_score"].tolist() == [row["tone_score"] for row in rows]
    assert frame["empty"].tolist() == [False, True, False]


def test_frame_adds_explanations_and_paragraph_tones_as_json_on_request(small_model):
    texts = [MIXED, ""]
    frame = small_model.predict_frame(texts, explain=3, paragraphs=True)
    assert frame.drop(columns=["topic_terms", "tone_terms", "paragraph_tones"]).equals(
        small_model.predict_frame(texts)
    )
    for task in ("topic", "tone"):
        assert [json.loads(cell) for cell in frame[f"{task}_terms"]] == [
            small_model.explain(text, 3)[task]["terms"] for text in texts
        ]
    assert json.loads(frame["paragraph_tones"][0]) == small_model.paragraph_tones(MIXED)
    assert json.loads(frame["paragraph_tones"][1]) == [] and json.loads(frame["topic_terms"][1]) == []


def test_probabilities_fall_back_to_uniform_when_every_one_vs_rest_score_underflows():
    from newsclf.model import _probabilities
    from newsclf.train.classifiers import build_classifier
    from newsclf.train.config import ClassifierConfig

    features = sparse.random(30, 10, density=0.3, format="csr", random_state=2)
    classifier = build_classifier(ClassifierConfig(kind="sgd_logistic"), seed=0).fit(
        features, [f"c{i % 3}" for i in range(30)]
    )
    classifier.intercept_[:] = -1e4  # expit gives exactly 0 for every class
    assert np.array_equal(_probabilities(classifier, features[:4]), classifier.predict_proba(features[:4]))
    assert np.allclose(_probabilities(classifier, features[:4]), 1 / 3)


def test_frame_takes_a_numpy_integer_for_explain(small_model):
    frame = small_model.predict_frame([MIXED], explain=np.int64(2))
    assert json.loads(frame["topic_terms"][0]) == small_model.explain(MIXED, 2)["topic"]["terms"]


@pytest.mark.parametrize("explain", [-1, 2.5, True, "3"])
def test_frame_refuses_an_explain_that_is_not_a_count(small_model, explain):
    with pytest.raises(ValueError, match="explain must be a whole number of terms >= 0"):
        small_model.predict_frame(["Talks resume."], explain=explain)


def test_explanation_weights_are_tfidf_times_coefficient(small_model):
    explained = small_model.explain(MIXED, top_k=5)
    prediction = small_model.predict(MIXED)
    for task in ("topic", "tone"):
        assert explained[task]["label"] == prediction[task]
        terms = explained[task]["terms"]
        assert 0 < len(terms) <= 5
        weights = [term["weight"] for term in terms]
        assert weights == sorted(weights, reverse=True) and min(weights) > 0
        assert {term["kind"] for term in terms} <= {"word", "char"}
    pipeline = small_model.pipelines["tone"]
    word = next(term for term in small_model.explain(MIXED, top_k=50)["tone"]["terms"] if term["kind"] == "word")
    features = pipeline[:-1].transform([MIXED])
    column = list(pipeline[:-1].get_feature_names_out()).index(f"word__{word['term']}")
    label = small_model.labels("tone").index(prediction["tone"])
    assert word["weight"] == pytest.approx(features[0, column] * class_weights(pipeline)[label, column])


def test_character_ngrams_are_summed_onto_the_words_they_come_from(small_model):
    vectorizer = dict(small_model.pipelines["topic"].named_steps["tfidf"].transformer_list)["char"]
    grams = {" tr": 1.0, "oop": 0.5, "ps ": 0.25}
    shares = _spread_over_words(vectorizer, grams, "Troops, troops and traps.")
    # " tr" occurs in both spellings of troops (twice) and in traps (once).
    assert shares == pytest.approx({"troops": 2 / 3 + 0.5 + 0.25, "traps": 1 / 3})
    assert sum(shares.values()) == pytest.approx(sum(grams.values()))


def test_explaining_empty_text_gives_no_terms(small_model):
    nothing = {"label": None, "terms": [], "against": []}
    assert small_model.explain("  ") == {"topic": nothing, "tone": nothing}


def test_explanations_give_the_terms_against_the_label_too(small_model):
    explained = small_model.explain("Artillery shelled the port while envoys met for ceasefire talks in Doha.")
    for task in ("topic", "tone"):
        against = [term["weight"] for term in explained[task]["against"]]
        assert against and all(weight < 0 for weight in against) and against == sorted(against)
        assert all(term["weight"] > 0 for term in explained[task]["terms"])


def test_paragraphs_are_scored_after_cleaning(small_model):
    scraped = "Heading\n" + MIXED + "\nRead more: unrelated story\n" + MIXED.splitlines()[0]
    rows = small_model.paragraph_tones(scraped)
    assert [row["text"] for row in rows] == ArticleCleaner().paragraphs(scraped)
    assert [row["paragraph"] for row in rows] == [1, 2, 3]
    for row in rows:
        single = small_model.predict(row["text"])
        assert row["tone"] == single["tone"] and row["tone_score"] == single["tone_score"]
        assert row["tone_applies_probability"] == single["tone_applies_probability"]
    assert small_model.paragraph_tones("") == []


def test_a_calibrated_svc_tone_model_predicts_and_explains():
    items = corpus_slice(6)
    texts = [item["title"] + "\n\n" + item["text"] for item in items]
    toned = [(text, item["tone"]) for text, item in zip(texts, items) if item["tone"]]
    features = FeatureConfig(char=NgramConfig(enabled=False))
    topic = build_pipeline(features, ClassifierConfig(), seed=0).fit(texts, [item["topic"] for item in items])
    tone = build_pipeline(features, ClassifierConfig(kind="linear_svc"), seed=0).fit(*zip(*toned))
    model = NewsClassifier(topic, tone)
    row = model.predict(MIXED)
    assert "tone_applies" not in row and row["tone"] in ("military", "diplomatic")
    assert model.explain(MIXED)["tone"]["terms"]


@pytest.mark.slow
def test_the_seed_article_is_military_in_some_paragraphs_and_diplomatic_in_others(shared_path):
    """The mixed article that started the project, with a model trained on the whole shipped corpus."""
    from newsclf.train.config import load_config
    from newsclf.train.fit.pipeline import fit_pipeline, fit_tone_applies
    from tests.helpers import read_corpus

    config = load_config("default", {})
    items = read_corpus()
    texts = [item["title"] + "\n\n" + item["text"] for item in items]
    tones = [item["tone"] for item in items]
    toned = [(text, tone) for text, tone in zip(texts, tones) if tone]
    topic, topic_features = fit_pipeline(
        build_pipeline(config.features, config.topic, config.seed), texts, [item["topic"] for item in items]
    )
    tone = build_pipeline(config.features, config.tone, config.seed).fit(*zip(*toned))
    model = NewsClassifier(topic, tone, tone_applies=fit_tone_applies(topic_features, tones, config.tone, config.seed))

    seed = next((shared_path / "seeds").glob("000_*.txt")).read_text(encoding="utf-8")
    rows = model.paragraph_tones(seed)
    assert (
        len(rows) == len(ArticleCleaner().paragraphs(seed)) < len([line for line in seed.splitlines() if line.strip()])
    )
    assert {row["tone"] for row in rows} == {"military", "diplomatic"}
    assert model.predict(seed)["tone_applies"] is True
    assert any(term["term"] == "military" for term in model.explain(seed)["tone"]["terms"])


@pytest.mark.parametrize("kind", ["logistic_regression", "sgd_logistic", "linear_svc"])
@pytest.mark.parametrize("classes", [2, 3])
def test_probabilities_are_scikit_learns_predict_proba_bit_for_bit(kind, classes):
    from newsclf.model import _probabilities
    from newsclf.train.classifiers import build_classifier
    from newsclf.train.config import ClassifierConfig

    rng = np.random.default_rng(0)
    features = sparse.random(60, 40, density=0.2, format="csr", dtype=np.float32, random_state=1)
    labels = [f"c{i % classes}" for i in range(60)]
    classifier = build_classifier(ClassifierConfig(kind=kind, C=1.0, alpha=1e-3), seed=0).fit(features, labels)
    probe = sparse.csr_matrix(rng.random((5, 40)).astype(np.float32))
    assert np.array_equal(_probabilities(classifier, probe), classifier.predict_proba(probe))
    assert np.array_equal(
        _probabilities(classifier, probe.astype(np.float64)), classifier.predict_proba(probe.astype(np.float64))
    )
    # Rows using few of the columns take the narrow product (only those columns of coef_).
    narrow = sparse.random(5, 40, density=0.05, format="csr", dtype=np.float32, random_state=2)
    assert np.array_equal(_probabilities(classifier, narrow), classifier.predict_proba(narrow))
