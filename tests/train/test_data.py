import json

import pytest

from tests.conftest import write_jsonl
from train.config import DataConfig, SplitConfig
from train.data import DataError, load_articles, load_splits

ROWS = [
    {"id": "a", "title": "Heading", "text": "Body.", "topic": "sports", "tone": None},
    {"id": "b", "text": "Only a body.", "topic": "law_crime", "tone": "military"},
    {"id": "c", "title": "", "text": "   ", "topic": "sports", "tone": None},
]


def test_title_and_text_are_joined_and_blank_rows_skipped(tmp_path):
    articles, path, skipped = load_articles(DataConfig(source=str(write_jsonl(tmp_path / "d.jsonl", ROWS))))
    assert articles.texts == ["Heading\n\nBody.", "Only a body."]
    assert articles.tones == [None, "military"]
    assert articles.ids == ["a", "b"]
    assert skipped == 1 and path.name == "d.jsonl"


def test_columns_can_be_renamed(tmp_path):
    rows = [{"body": "Text.", "label": "sports"}, {"body": "More.", "label": "law_crime"}]
    config = DataConfig(source=str(write_jsonl(tmp_path / "d.jsonl", rows)), text_column="body", topic_column="label")
    articles, _, _ = load_articles(config)
    assert articles.topics == ["sports", "law_crime"] and articles.tones == [None, None]
    assert articles.ids == ["row-1", "row-2"]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "data file not found"),
        ("", "cannot read as JSON Lines|no articles"),
        ('{"text": "x", "topic": "sports"\n', "cannot read as JSON Lines"),
        (json.dumps({"text": "x", "topic": "gardening"}) + "\n", r"row 1 \(id row-1\): topic 'gardening' is not in data.topic_labels"),
        (json.dumps({"text": "x", "topic": "sports", "tone": "angry"}) + "\n", "tone 'angry' is not in data.tone_labels"),
        (json.dumps({"body": "x", "topic": "sports"}) + "\n", "column 'text' not found"),
        (json.dumps({"text": "", "topic": "sports"}) + "\n", "no articles with text"),
    ],
)
def test_bad_data_is_refused_with_the_reason(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_articles(DataConfig(source=str(path)))


def test_splits_are_stratified_disjoint_and_reproducible(small_corpus):
    first = load_splits(DataConfig(source=str(small_corpus)), SplitConfig(validation=0.2, test=0.2), seed=3)
    again = load_splits(DataConfig(source=str(small_corpus)), SplitConfig(validation=0.2, test=0.2), seed=3)
    ids = [set(s.ids) for s in (first.train, first.validation, first.test)]
    assert sum(map(len, ids)) == len(small_corpus.read_text().splitlines()) and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert all(first.validation.topics.count(topic) == 2 for topic in set(first.validation.topics))
    assert first.test.ids == again.test.ids and len(first.fingerprint) == 64


def test_too_few_articles_per_topic_cannot_be_split(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": f"t{i}", "topic": "sports" if i else "law_crime"} for i in range(5)])
    with pytest.raises(DataError, match="cannot split 5 articles"):
        load_splits(DataConfig(source=str(path)), SplitConfig(), seed=1)
