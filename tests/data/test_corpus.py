"""The shipped corpus: schema, labels, counts, noise and no near-duplicates."""

from collections import Counter

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from newsclf.cleaning import ArticleCleaner
from newsclf.train.config import TONES, TOPICS
from tests.helpers import read_corpus

KEYS = {"id", "date", "title", "text", "topic", "tone"}


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return read_corpus()


def test_every_item_has_the_schema(corpus):
    import datetime

    for item in corpus:
        assert set(item) == KEYS, item["id"]
        assert all(isinstance(item[key], str) and item[key].strip() for key in ("id", "title", "text")), item["id"]
        datetime.date.fromisoformat(item["date"])
        assert item["topic"] in TOPICS, item["id"]
        assert item["tone"] is None or item["tone"] in TONES, item["id"]


def test_ids_are_unique(corpus):
    duplicates = [key for key, n in Counter(item["id"] for item in corpus).items() if n > 1]
    assert duplicates == []


def test_minimum_counts(corpus):
    topics = Counter(item["topic"] for item in corpus)
    tones = Counter(item["tone"] for item in corpus if item["tone"])
    assert len(corpus) >= 600
    assert set(topics) == set(TOPICS) and min(topics.values()) >= 40, topics
    assert sum(tones.values()) >= 250 and min(tones[t] for t in TONES) >= 100, tones
    assert len({item["topic"] for item in corpus if item["tone"]}) >= 8, "tone should occur across topics"
    full = sum(len([p for p in item["text"].split("\n\n") if p.strip()]) >= 3 for item in corpus)
    assert full >= 200


def test_dates_span_several_years(corpus):
    assert len({item["date"][:4] for item in corpus}) >= 8


def test_at_least_one_item_in_ten_carries_scraped_noise(corpus):
    """Noise is whatever the cleaner removes: repeats, bylines, agency tags, 'Read more' lines."""
    cleaner, plain = ArticleCleaner(), ArticleCleaner(drop_repeated=False, drop_boilerplate=False)
    noisy = [item["id"] for item in corpus if cleaner.paragraphs(item["text"]) != plain.paragraphs(item["text"])]
    assert len(noisy) >= 0.1 * len(corpus), len(noisy)


def test_no_two_items_are_near_duplicates(corpus):
    """Jaccard similarity of word 5-gram shingles after cleaning stays below 0.5 for every pair."""
    texts = ArticleCleaner().transform([item["title"] + "\n" + item["text"] for item in corpus])
    shingles = CountVectorizer(ngram_range=(5, 5), binary=True).fit_transform(texts)
    shingles = shingles.astype(np.float32)
    overlap = (shingles @ shingles.T).toarray()
    sizes = np.diag(overlap)
    jaccard = overlap / (sizes[:, None] + sizes[None, :] - overlap + 1e-9)
    np.fill_diagonal(jaccard, 0)
    pairs = [
        (corpus[i]["id"], corpus[j]["id"], round(float(jaccard[i, j]), 2))
        for i, j in zip(*np.nonzero(np.triu(jaccard) >= 0.5))
    ]
    assert pairs == []
