"""Shared fixtures: small slices of the shipped corpus and throwaway MLflow stores."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

from train.config import config_from_dict
from train.paths import corpus_path

SHARED = Path(os.environ.get("NEWSCLF_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def read_corpus() -> list[dict]:
    with open(corpus_path(), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def corpus_slice(per_topic: int) -> list[dict]:
    """The first ``per_topic`` items of every topic, so every split sees every topic."""
    by_topic: dict[str, list[dict]] = defaultdict(list)
    for item in read_corpus():
        if len(by_topic[item["topic"]]) < per_topic:
            by_topic[item["topic"]].append(item)
    return [item for items in by_topic.values() for item in items]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """A 100-article JSON Lines file: 10 per topic, with both tones present."""
    return write_jsonl(tmp_path / "small.jsonl", corpus_slice(10))


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def small_config(source: Path, **sections) -> object:
    """The default experiment, pointed at ``source``, with cheaper features and any overrides."""
    raw = {
        "name": "test",
        "data": {"source": str(source)},
        "features": {"char": {"ngram_range": [3, 4]}},
        "tracking": {"experiment": "test-experiment", "registered_model": "test-model"},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return config_from_dict(raw)


def train_into_new_store(folder: Path):
    """Train ``small_config`` on 10 articles per topic into a new SQLite store in ``folder``."""
    from train.training import train

    config = small_config(write_jsonl(folder / "small.jsonl", corpus_slice(10)))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return config, uri, train(config, uri)


@pytest.fixture
def shared_path() -> Path:
    """../shared beside the project (or $NEWSCLF_SHARED): real data and the seed article.

    Skipped where it is absent, except in CI (.ci/run sets NEWSCLF_REQUIRE_SHARED=1), where it must be there.
    """
    if not SHARED.is_dir():
        message = f"{SHARED} is missing; set NEWSCLF_SHARED to the folder holding data/ and seeds/"
        if os.environ.get("NEWSCLF_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED


def as_articles(items: list[dict]):
    """Corpus rows as Articles, title and text joined as load_articles does."""
    from train.data import Articles

    return Articles(
        [item["id"] for item in items], [item["title"] + "\n\n" + item["text"] for item in items],
        [item["topic"] for item in items], [item["tone"] for item in items], [None] * len(items),
    )


def tiny_classifier(items: list[dict]):
    """A NewsClassifier fitted in memory on ``items`` with word features only: fast, still real."""
    from features.tfidf import FeatureConfig, NgramConfig
    from train.config import ClassifierConfig
    from train.model import NewsClassifier
    from train.pipeline import build_pipeline

    articles = as_articles(items)
    features = FeatureConfig(char=NgramConfig(enabled=False))
    toned = articles.with_tone()
    topic = build_pipeline(features, ClassifierConfig(), seed=0).fit(articles.texts, articles.topics)
    tone = build_pipeline(features, ClassifierConfig(), seed=0).fit(toned.texts, toned.tones)
    return NewsClassifier(topic, tone, metadata={"experiment": "unit"})


@pytest.fixture(scope="session")
def tiny_model():
    """Trained on 6 articles per topic of the shipped corpus."""
    return tiny_classifier(corpus_slice(6))


def build_small_model(per_topic: int = 6):
    """A NewsClassifier fitted in memory on a corpus slice: word and char_wb features, tone-applies model."""
    from features.tfidf import FeatureConfig, NgramConfig
    from train.config import ClassifierConfig
    from train.model import NewsClassifier
    from train.pipeline import build_pipeline, fit_pipeline, fit_tone_applies

    features = FeatureConfig(char=NgramConfig(analyzer="char_wb", ngram_range=(2, 4), min_df=2))
    items = corpus_slice(per_topic)
    texts = [item["title"] + "\n\n" + item["text"] for item in items]
    tones = [item["tone"] for item in items]
    toned = [(text, tone) for text, tone in zip(texts, tones) if tone]
    topic, topic_features = fit_pipeline(build_pipeline(features, ClassifierConfig(), seed=0), texts, [item["topic"] for item in items])
    tone = build_pipeline(features, ClassifierConfig(), seed=0).fit(*zip(*toned))
    applies = fit_tone_applies(topic_features, tones, ClassifierConfig(), seed=0)
    return NewsClassifier(topic, tone, metadata={"experiment": "unit"}, tone_applies=applies)


@pytest.fixture(scope="session")
def small_model():
    """One small fitted model for the whole test session; tests must not change it."""
    return build_small_model()


@pytest.fixture(scope="session")
def small_model_folder(small_model, tmp_path_factory) -> Path:
    """``small_model`` saved as a model folder."""
    return small_model.save(tmp_path_factory.mktemp("model") / "newsclf_model")

