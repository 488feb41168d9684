import json

import joblib
import numpy as np
import pytest

from tests.conftest import corpus_slice
from train.config import ClassifierConfig
from train.loading import load_model
from train.model import MANIFEST, ModelFormatError, NewsClassifier
from train.pipeline import build_pipeline
from features.tfidf import FeatureConfig, NgramConfig

FEATURES = FeatureConfig(char=NgramConfig(enabled=False))


@pytest.fixture(scope="module")
def model() -> NewsClassifier:
    items = corpus_slice(6)
    texts = [item["title"] + "\n\n" + item["text"] for item in items]
    toned = [(t, item["tone"]) for t, item in zip(texts, items) if item["tone"]]
    topic = build_pipeline(FEATURES, ClassifierConfig(), seed=0).fit(texts, [item["topic"] for item in items])
    tone = build_pipeline(FEATURES, ClassifierConfig(kind="linear_svc"), seed=0).fit(*zip(*toned))
    return NewsClassifier(topic, tone, metadata={"experiment": "unit"})


def test_predict_gives_labels_and_probabilities_that_sum_to_one(model):
    rows = model.predict(["Rebels shelled the airport overnight.", "", None, b"\xff\xfe bytes"])
    assert len(rows) == 4
    for row in rows:
        assert row["topic"] in model.labels("topic") and row["tone"] in ("military", "diplomatic")
        assert sum(row["topic_probabilities"].values()) == pytest.approx(1.0)
        assert sum(row["tone_probabilities"].values()) == pytest.approx(1.0)
        assert row["topic_probability"] == max(row["topic_probabilities"].values())


def test_a_single_string_is_refused_rather_than_split_into_characters(model):
    with pytest.raises(TypeError, match="wrap a single text in a list"):
        model.predict("one article")


def test_frame_has_one_column_per_label(model):
    frame = model.predict_frame(["Talks resume in Geneva.", "A flood hit the valley."])
    assert list(frame.columns[:4]) == ["topic", "topic_probability", "tone", "tone_probability"]
    assert {f"p_topic_{label}" for label in model.labels("topic")} <= set(frame.columns)
    topic_columns = [f"p_topic_{label}" for label in model.labels("topic")]
    assert np.allclose(frame[topic_columns].sum(axis=1), 1.0)


def test_round_trip_keeps_predictions_labels_and_metadata(model, tmp_path):
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    texts = ["Envoys agreed a prisoner exchange.", "The striker scored twice."]
    assert loaded.predict(texts) == model.predict(texts)
    assert loaded.metadata == {"experiment": "unit"} and loaded.tasks == ["topic", "tone"]
    # Each pipeline is a plain joblib file too.
    assert list(joblib.load(tmp_path / "m" / "topic.joblib").predict(texts)) == [r["topic"] for r in model.predict(texts)]


def _edit_manifest(folder, **changes):
    path = folder / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "other"}, "format 'other' is not 'newsclf-model'"),
        ({"format_version": 99}, "format version 99 is not supported"),
        ({"scikit_learn_version": "0.24.2"}, "saved with scikit-learn 0.24.2"),
        ({"tasks": {}}, "no topic task"),
    ],
)
def test_unknown_formats_and_versions_are_refused(model, tmp_path, changes, message):
    model.save(tmp_path / "m")
    _edit_manifest(tmp_path / "m", **changes)
    with pytest.raises(ModelFormatError, match=message):
        NewsClassifier.load(tmp_path / "m")


def test_a_changed_file_is_refused_before_unpickling(model, tmp_path):
    model.save(tmp_path / "m")
    with open(tmp_path / "m" / "tone.joblib", "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelFormatError, match="SHA-256 does not match"):
        NewsClassifier.load(tmp_path / "m")


def test_folders_that_are_not_models_are_refused(tmp_path):
    with pytest.raises(ModelFormatError, match="not a newsclf model folder"):
        NewsClassifier.load(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(ModelFormatError, match="unreadable manifest"):
        NewsClassifier.load(tmp_path)
