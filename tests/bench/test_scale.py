"""The scale benchmark's pieces: the synthetic corpus, the experiment it trains, the table."""

from __future__ import annotations

import json
import os

from bench.scale import _tree_rss, build_corpus, experiment_file, markdown
from newsclf.train.config import load_config
from tests.helpers import corpus_slice, write_jsonl


def _cep_like(tmp_path):
    rows = [
        {"text": item["text"], "label": item["topic"], "tone": item["tone"], "date": f"2015-01-{n % 28 + 1:02d}"}
        for n, item in enumerate(corpus_slice(2))
    ]
    return write_jsonl(tmp_path / "cep.jsonl", rows)


def test_corpus_articles_are_four_sentences_labelled_by_the_first(tmp_path):
    corpus = build_corpus(_cep_like(tmp_path), 30, tmp_path / "articles.jsonl")
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 30 and len({row["id"] for row in rows}) == 30
    sources = {json.loads(line)["text"]: json.loads(line) for line in _cep_like(tmp_path).read_text().splitlines()}
    first = next(text for text in sources if rows[0]["text"].startswith(text))
    assert rows[0]["topic"] == sources[first]["label"]


def test_experiment_is_streaming_toml_on_the_corpus_in_either_mode(tmp_path):
    corpus = tmp_path / "articles.jsonl"
    streaming = load_config(experiment_file(tmp_path, corpus, "streaming", epochs=2, batch_size=500))
    assert (streaming.fit.mode, streaming.fit.epochs, streaming.fit.batch_size) == ("streaming", 2, 500)
    assert streaming.data.source == str(corpus) and streaming.split.mode == "stratified"
    assert streaming.features == load_config("streaming").features
    assert (
        load_config(experiment_file(tmp_path, corpus, "in_memory", epochs=2, batch_size=500)).fit.mode == "in_memory"
    )


def test_table_and_process_tree_memory():
    row = {
        "articles": 1000,
        "mode": "streaming",
        "seconds": 10.0,
        "cpu_seconds": 9.0,
        "peak_rss_bytes": 2**30,
        "peak_anonymous_bytes": 2**29,
        "artifact_bytes": 2**20,
        "output": "topic: validation macro-F1 0.5",
    }
    assert "| 1,000 | streaming | 0.2 min | 0.1 min | 100 | 1.00 GB | 0.50 GB | 1 MB |" in markdown([row], 3, 100)
    total, anonymous = _tree_rss(os.getpid())
    assert total >= anonymous > 0
