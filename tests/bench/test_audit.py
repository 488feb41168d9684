"""The label-audit benchmark's helpers on tiny in-memory data, and its page."""

import pytest

from bench.__main__ import main
from bench.audit import audit_page, detection_scores, flip_topics
from tests.helpers import as_articles, corpus_slice


def test_flips_are_seeded_change_the_label_and_touch_the_share_asked():
    articles = as_articles(corpus_slice(10))
    flipped, ids = flip_topics(articles, 0.05, seed=3)
    assert len(ids) == 5
    assert flip_topics(articles, 0.05, seed=3)[1] == ids and flip_topics(articles, 0.05, seed=4)[1] != ids
    for item_id, before, after in zip(articles.ids, articles.topics, flipped.topics):
        assert (before != after) == (item_id in ids)
        assert after in set(articles.topics)
    assert flipped.texts == articles.texts and flipped.tones == articles.tones


def test_detection_scores_count_precision_and_recall():
    scores = detection_scores({"a", "b", "c", "d"}, {"a", "b", "e"})
    assert scores == {"flagged": 4, "planted": 3, "found": 2, "precision": 0.5, "recall": pytest.approx(2 / 3)}
    assert detection_scores(set(), {"a"})["precision"] == 0.0


def test_the_page_shows_every_measurement_and_deltas_against_the_baseline():
    results = {
        "items_2010_2016": 1000,
        "items_2017": 200,
        "folds": 5,
        "planted": {
            "flagged": 80,
            "planted": 50,
            "found": 40,
            "precision": 0.5,
            "recall": 0.8,
            "share": 0.05,
            "seed": 0,
            "flagged_not_planted_also_flagged_without_flips": 30,
        },
        "real_flagged": {"topic": 60, "tone": 5},
        "real_audited": {"topic": 1000, "tone": 400},
        "retrain": [
            {"variant": "all 2010-2016 items", "excluded": 0, "items": 1000, "topic": 0.700, "tone": 0.900},
            {"variant": "flagged left out", "excluded": 65, "items": 935, "topic": 0.710, "tone": 0.890},
        ],
        "full_audit": {
            "items": 1200,
            "seconds": 12.0,
            "peak_memory_mb": 300.0,
            "flagged": {"topic": 70},
            "duplicate_conflicts": 2,
        },
        "worst_real": [
            {"quality": 0.001, "task": "topic", "id": "x", "given": "sports", "suggested": "law_crime", "text": "a|b"}
        ],
    }
    page = audit_page(results, {"command": "`python -m bench audit`", "when": "now", "code": "git x"})
    assert "| 80 | 40 | 0.500 | 0.800 |" in page
    assert "| flagged left out | 65 | 935 | 0.710 (+0.010) | 0.890 (-0.010) |" in page
    assert "| 1200 | 12 s | 300 MB | topic 70 | 2 |" in page
    assert "a\\|b" in page


def test_missing_data_is_one_line_before_any_work(tmp_path, capsys):
    assert main(["audit", "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("bench: error: real data not found")
    assert main(["audit", "--data", str(tmp_path), "--share", "2"]) == 2
