import json

import pytest

from bench import serving
from bench.__main__ import main


def test_articles_are_distinct_and_seed_sized():
    articles = serving.seed_sized_articles(600)
    assert len(articles) > 100 and len(set(articles)) == len(articles)
    assert {len(article.split()) for article in articles} == {600}
    short = serving.short_items(50)
    assert len(short) == 50 and max(map(len, short)) < 400


@pytest.mark.slow
def test_serving_writes_every_figure_and_verdict(small_model_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(serving, "SHORT_ITEMS", 500)
    assert main(["serving", "--model", str(small_model_folder), "--runs", "1", "--output", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "serving.json").read_text())
    assert results["load_s"] > 0 and results["cold_start_s"] > results["load_s"]
    assert 0 < results["latency_ms"]["p50"] <= results["latency_ms"]["p99"]
    assert results["latency_ms"]["words_per_article"] == 600 and results["short_items"]["count"] == 500
    assert results["short_items_per_s"] > 0 and results["baseline_short_items_per_s"] > 0
    assert set(results["met"]) == set(results["targets"]) == {"load_s", "latency_p50_ms", "short_items_per_s"}
    assert results["met"]["load_s"] == (results["load_s"] <= 0.5)
    assert "short items/s" in capsys.readouterr().out
