import json

import pytest

from newsclf.train.config import DataConfig, DedupConfig, SplitConfig
from newsclf.train.data.articles import DataError
from newsclf.train.data.loading import load_articles, load_splits
from newsclf.train.data.sources import SourceError
from tests.helpers import write_jsonl

ROWS = [
    {"id": "a", "title": "Heading", "text": "Body.", "topic": "sports", "tone": None},
    {"id": "b", "text": "Only a body.", "topic": "law_crime", "tone": "military"},
    {"id": "c", "title": "", "text": "   ", "topic": "sports", "tone": None},
]


def _data(tmp_path, rows, **options):
    return DataConfig(source=str(write_jsonl(tmp_path / "d.jsonl", rows)), **options)


def test_title_and_text_are_joined_and_blank_rows_skipped(tmp_path):
    articles, report, split_values = load_articles(_data(tmp_path, ROWS))
    assert articles.texts == ["Heading\n\nBody.", "Only a body."]
    assert articles.tones == [None, "military"] and articles.ids == ["a", "b"]
    assert report.skipped_empty == 1 and report.rows == 3 and split_values is None
    assert len(report.fingerprint) == 64


def test_columns_and_labels_map_rename_merge_and_drop(tmp_path):
    rows = [
        {"body": "Chip maker unveils a phone.", "label": "Sci/Tech"},
        {"body": "Shares fall on rate fears.", "label": "Business"},
        {"body": "Markets rally after the vote.", "label": "Markets"},
        {"body": "Envoys meet in Geneva.", "label": "World"},
    ]
    config = _data(
        tmp_path,
        rows,
        text_column="body",
        topic_column="label",
        tone_column="",
        topic_map={"Sci/Tech": "science_technology", "Business": "business_economy", "Markets": "business_economy"},
        topic_drop=("World",),
    )
    articles, report, _ = load_articles(config)
    assert articles.topics == ["science_technology", "business_economy", "business_economy"]
    assert articles.tones == [None] * 3 and report.dropped_by_label == {"World": 1}
    assert articles.ids == ["row-1", "row-2", "row-3"]


def test_tone_labels_map_and_drop(tmp_path):
    rows = [{"text": "a", "topic": "sports", "tone": "force"}, {"text": "b", "topic": "sports", "tone": "other"}]
    articles, _, _ = load_articles(_data(tmp_path, rows, tone_map={"force": "military"}, tone_drop=("other",)))
    assert articles.tones == ["military", None]


@pytest.mark.parametrize(
    "rows, options, message",
    [
        (
            [{"text": "x", "topic": "gardening", "tone": None}],
            {},
            r"row 1 \(id row-1\): topic 'gardening' is not in data.topic_labels or data.topic_map",
        ),
        ([{"text": "x", "topic": "sports", "tone": "angry"}], {}, "tone 'angry' is not in data.tone_labels"),
        (
            [{"body": "x", "topic": "sports", "tone": None}],
            {},
            r"column 'text' \(data.text_column\) not found; the data has \['body', 'tone', 'topic'\]",
        ),
        ([{"text": "x", "topic": "sports"}], {}, r"column 'tone' \(data.tone_column\) not found.*tone_column = \"\""),
        ([{"text": "x", "topic": None, "tone": None}], {}, "no topic; every article needs one"),
        ([{"text": "", "topic": "sports", "tone": None}], {}, "no articles left"),
        ([{"text": "x", "topic": "World", "tone": None}], {"topic_drop": ("World",)}, "no articles left"),
    ],
)
def test_bad_rows_are_refused_naming_row_or_column(tmp_path, rows, options, message):
    with pytest.raises(DataError, match=message):
        load_articles(_data(tmp_path, rows, **options))


def test_an_empty_file_is_refused(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises((DataError, SourceError)):
        load_articles(DataConfig(source=str(tmp_path / "empty.jsonl")))


def _ids(splits):
    return [set(part.ids) for part in (splits.train, splits.validation, splits.test)]


def test_stratified_splits_are_disjoint_and_reproducible(small_corpus):
    data, split = DataConfig(source=str(small_corpus)), SplitConfig(validation=0.2, test=0.2)
    first, again = (load_splits(data, split, DedupConfig(), seed=3) for _ in range(2))
    train, validation, test = _ids(first)
    assert len(train | validation | test) == len(small_corpus.read_text().splitlines())
    assert not (train & validation or train & test or validation & test)
    assert all(first.validation.topics.count(topic) == 2 for topic in set(first.validation.topics))
    assert first.test.ids == again.test.ids


def _dated_rows(n=30):
    topics = ["sports", "law_crime", "business_economy"]
    return [
        {
            "id": f"r{i}",
            "text": f"Story number {i} about {topics[i % 3]} with its own words {i * 7}.",
            "topic": topics[i % 3],
            "tone": None,
            "date": f"20{10 + i // 3:02d}-0{1 + i % 3}-15",
        }
        for i in range(n)
    ]


def test_temporal_split_respects_time(tmp_path):
    split = SplitConfig(mode="temporal", train_until="2015-12-31", validation_until="2016-12-31")
    splits = load_splits(_data(tmp_path, _dated_rows()), split, DedupConfig(), seed=0)
    assert max(splits.train.dates) <= "2015-12-31" < min(splits.validation.dates)
    assert max(splits.validation.dates) <= "2016-12-31" < min(splits.test.dates)
    assert len(splits.train) == 18 and len(splits.validation) == 3 and len(splits.test) == 9


def test_temporal_split_needs_parseable_dates(tmp_path):
    rows = _dated_rows()
    rows[4]["date"] = "last Tuesday"
    split = SplitConfig(mode="temporal", train_until="2015-12-31", validation_until="2016-12-31")
    with pytest.raises(DataError, match="id r4: date 'last Tuesday' is not an ISO date"):
        load_splits(_data(tmp_path, rows), split, DedupConfig(), seed=0)


def test_split_column_is_followed_and_checked(tmp_path):
    rows = [dict(row, split=["train", "train", "validation", "test"][i % 4]) for i, row in enumerate(_dated_rows(12))]
    splits = load_splits(_data(tmp_path, rows), SplitConfig(mode="column"), DedupConfig(), seed=0)
    assert splits.validation.ids == ["r2", "r6", "r10"] and splits.test.ids == ["r3", "r7", "r11"]
    rows[5]["split"] = "holdout"
    with pytest.raises(DataError, match=r"id r5\): split is 'holdout'"):
        load_splits(_data(tmp_path, rows), SplitConfig(mode="column"), DedupConfig(), seed=0)


def test_duplicates_are_removed_before_splitting_and_conflicts_reported(tmp_path):
    rows = _dated_rows()
    story = rows[0]["text"] + " It was reported by several agencies across the region on the same day."
    rows[0]["text"] = story
    rows += [
        dict(rows[0], id="copy-exact", text=story.upper()),
        dict(rows[0], id="copy-near", text=story.replace("same day", "same afternoon"), topic="law_crime"),
    ]
    split = SplitConfig(mode="temporal", train_until="2015-12-31", validation_until="2016-12-31")
    splits = load_splits(_data(tmp_path, rows), split, DedupConfig(), seed=0)
    all_ids = set().union(*_ids(splits))
    assert "copy-exact" not in all_ids and "copy-near" not in all_ids and "r0" in all_ids
    assert splits.report.duplicates_removed == 2
    assert splits.report.conflicting_groups[0]["ids"] == ["r0", "copy-exact", "copy-near"]
    assert splits.summary()["duplicates_removed"] == 2
    kept = load_splits(_data(tmp_path, rows), split, DedupConfig(enabled=False), seed=0)
    assert kept.report.duplicates_removed == 0 and "copy-near" in set().union(*_ids(kept))


def test_summary_counts_labels_lengths_and_dates(tmp_path):
    split = SplitConfig(mode="temporal", train_until="2015-12-31", validation_until="2016-12-31")
    summary = load_splits(_data(tmp_path, _dated_rows()), split, DedupConfig(), seed=0).summary()
    train = summary["splits"]["train"]
    assert train["articles"] == 18 and train["topics"] == {"business_economy": 6, "law_crime": 6, "sports": 6}
    assert train["dates"] == {"first": "2010-01-15", "last": "2015-03-15"}
    assert train["words"]["min"] >= 9 and json.dumps(summary)


def test_too_few_articles_per_topic_cannot_be_split(tmp_path):
    rows = [{"text": f"text {i}", "topic": "sports" if i else "law_crime", "tone": None} for i in range(5)]
    with pytest.raises(DataError, match="cannot split 5 articles"):
        load_splits(_data(tmp_path, rows), SplitConfig(), DedupConfig(), seed=1)


def test_bbc_known_duplicates_are_found(shared_path):
    """The BBC set holds 103 exact duplicate articles, as published."""
    config = DataConfig(
        source=str(shared_path / "data" / "bbc" / "bbc.jsonl"),
        topic_column="label",
        tone_column="",
        topic_labels=("business", "entertainment", "politics", "sport", "tech"),
    )
    exact = load_splits(config, SplitConfig(), DedupConfig(near_threshold=1.0), seed=0)
    assert exact.report.duplicates_removed == 103
    assert all(group["exact"] for group in exact.report.duplicate_groups)
