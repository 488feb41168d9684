"""Serving benchmark: model load time, per-article latency and batch throughput.

Each figure is the median of several runs, and each run starts from a freshly loaded model, so
nothing learnt by one run (the word cache of the shared TF-IDF path) helps the next. The
baseline is every pipeline's own ``predict_proba``, measured on the same texts in the same run.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sklearn

from bench.measure import seconds
from newsclf.loading import model_folder
from newsclf.model import NewsClassifier
from newsclf.train.paths import corpus_path

TARGETS = {"load_s": 0.5, "latency_p50_ms": 2.0, "short_items_per_s": 5000.0}
ARTICLE_WORDS = 600
SHORT_ITEMS = 10_000
BATCH_SIZE = 1_000
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def serving_benchmark(
    model: str, tracking_uri: str | None = None, runs: int = 5, progress: Callable[[str], None] = lambda message: None
) -> dict[str, Any]:
    """Measure a model (folder or MLflow URI) and return the results, targets and environment."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    articles, short = seed_sized_articles(ARTICLE_WORDS), short_items(SHORT_ITEMS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = model_folder(model, tmp, tracking_uri)
        progress(
            f"model folder {folder}; {len(articles)} articles of about {ARTICLE_WORDS} words, {len(short)} short items"
        )
        load = [seconds(lambda: NewsClassifier.load(folder)) for _ in range(runs)]
        progress(f"load {statistics.median(load):.3f}s; cold start in a new process")
        cold = [_cold_start(folder) for _ in range(runs)]
        latency, latency_cpu, latency_seen, baseline_latency, throughput, baseline_throughput = [], [], [], [], [], []
        for run in range(1, runs + 1):
            progress(f"run {run}/{runs}: latency and throughput")
            fresh = NewsClassifier.load(folder)
            wall, cpu = _latencies_ms(fresh.predict, articles)
            latency.append(wall)
            latency_cpu.append(cpu)
            latency_seen.append(_latencies_ms(fresh.predict, articles)[0])
            baseline_latency.append(_latencies_ms(lambda text, model=fresh: _baseline(model, [text]), articles)[0])
            fresh = NewsClassifier.load(folder)
            throughput.append(_items_per_second(fresh.predict, short))
            baseline_throughput.append(_items_per_second(lambda batch, model=fresh: _baseline(model, batch), short))
    p50 = _median_of(latency, 50)
    results = {
        "model": str(model),
        "runs": runs,
        "load_s": statistics.median(load),
        "cold_start_s": statistics.median(cold),
        "latency_ms": {
            "p50": p50,
            "p99": _median_of(latency, 99),
            "articles": len(articles),
            "words_per_article": _mean_words(articles),
        },
        "latency_cpu_ms": {"p50": _median_of(latency_cpu, 50), "p99": _median_of(latency_cpu, 99)},
        # The same articles a second time: every word is in the cache, the best case.
        "latency_seen_ms": {"p50": _median_of(latency_seen, 50), "p99": _median_of(latency_seen, 99)},
        "baseline_latency_ms": {"p50": _median_of(baseline_latency, 50), "p99": _median_of(baseline_latency, 99)},
        "short_items_per_s": statistics.median(throughput),
        "baseline_short_items_per_s": statistics.median(baseline_throughput),
        "short_items": {
            "count": len(short),
            "batch_size": BATCH_SIZE,
            "mean_chars": round(float(np.mean([len(t) for t in short])), 1),
        },
        "targets": TARGETS,
        "environment": machine(),
    }
    results["speedup_over_baseline"] = {
        "latency_p50": results["baseline_latency_ms"]["p50"] / p50,
        "throughput": results["short_items_per_s"] / results["baseline_short_items_per_s"],
    }
    results["met"] = {
        "load_s": results["load_s"] <= TARGETS["load_s"],
        "latency_p50_ms": p50 <= TARGETS["latency_p50_ms"],
        "short_items_per_s": results["short_items_per_s"] >= TARGETS["short_items_per_s"],
    }
    return results


def seed_sized_articles(words: int) -> list[str]:
    """Distinct articles of exactly ``words`` words, each a few shipped-corpus items in a row."""
    rows = _corpus_rows()
    random.Random(0).shuffle(rows)
    articles, paragraphs, count = [], [], 0
    for row in rows:
        for paragraph in (row["title"], row["text"]):
            paragraph_words = paragraph.split()[: words - count]
            paragraphs.append(" ".join(paragraph_words))
            count += len(paragraph_words)
        if count == words:
            articles.append("\n\n".join(paragraphs))
            paragraphs, count = [], 0
    return articles


def short_items(count: int) -> list[str]:
    """``count`` short texts (headlines and first sentences of the corpus), cycled in a fixed order."""
    rows = _corpus_rows()
    distinct = [row["title"] for row in rows] + [
        _SENTENCE_END.split(row["text"].strip(), maxsplit=1)[0] for row in rows
    ]
    return [distinct[i % len(distinct)] for i in range(count)]


def _corpus_rows() -> list[dict[str, Any]]:
    with open(corpus_path(), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _baseline(model: NewsClassifier, texts: list[str]) -> list[np.ndarray]:
    """Class probabilities the plain way: every pipeline cleans and vectorises the texts itself."""
    return [pipeline.predict_proba(texts) for pipeline in model.pipelines.values()]


def _latencies_ms(predict: Callable[[str], Any], articles: list[str]) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per article; CPU time shows what other processes on the machine cost."""
    wall, cpu = [], []
    for article in articles:
        start, start_cpu = time.perf_counter(), time.process_time()
        predict(article)
        wall.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
    return wall, cpu


def _items_per_second(predict: Callable[[list[str]], Any], items: list[str]) -> float:
    start = time.perf_counter()
    for begin in range(0, len(items), BATCH_SIZE):
        predict(items[begin : begin + BATCH_SIZE])
    return len(items) / (time.perf_counter() - start)


def _median_of(runs: list[list[float]], percentile: float) -> float:
    return float(statistics.median(np.percentile(run, percentile) for run in runs))


def _mean_words(articles: list[str]) -> int:
    return round(float(np.mean([len(article.split()) for article in articles])))


def _cold_start(folder: Path) -> float:
    """Seconds for a new Python process to import newsclf, load the model and answer one article."""
    script = (
        "import time; start = time.perf_counter()\n"
        "from newsclf.model import NewsClassifier\n"
        f"NewsClassifier.load({str(folder)!r}).predict('Troops crossed the border.')\n"
        "print(time.perf_counter() - start)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
    )
    return float(result.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    """Python, scikit-learn, cores and load average: what a timing depends on."""
    return {
        "python": platform.python_version(),
        "scikit_learn": sklearn.__version__,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
