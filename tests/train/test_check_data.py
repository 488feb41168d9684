"""newsclf check-data: the data as training would read it, before any training."""

import pytest

from newsclf.train.cli import main
from newsclf.train.data.articles import DataError
from newsclf.train.jobs.check_data import check_data
from tests.helpers import corpus_slice, small_config, write_jsonl


def test_the_page_counts_labels_per_split_and_what_loading_left_out(tmp_path):
    rows = corpus_slice(10)
    rows += [rows[0] | {"id": "copy", "topic": "sports"}]  # the same text under another label
    rows += [{"id": "blank", "text": " ", "topic": "sports", "tone": None}]
    page = check_data(small_config(write_jsonl(tmp_path / "data.jsonl", rows)))
    assert f"{len(rows)} rows read" in page and "Empty texts skipped: 1" in page
    assert "Duplicate groups whose copies carry different labels: 1" in page
    assert "| split | articles |" in page and "| sports |" in page and "| military |" in page


def test_every_unknown_label_is_named_at_once(tmp_path, capsys):
    rows = corpus_slice(3) + [
        {"id": "x", "text": "A story.", "topic": "weather"},
        {"id": "y", "text": "B.", "topic": "tech"},
    ]
    config = small_config(write_jsonl(tmp_path / "data.jsonl", rows))
    with pytest.raises(DataError, match=r"topic 'tech' \(1\), 'weather' \(1\)|topic 'weather' \(1\), 'tech' \(1\)"):
        check_data(config)
    assert main(["check-data", "--data", str(tmp_path / "data.jsonl")]) == 2
    assert "labels outside data.topic_labels" in capsys.readouterr().err
