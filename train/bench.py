"""Benchmarks against the real, human-labelled news in ../shared/data (never shipped)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from train.config import DataConfig
from train.data import Articles, DataError, load_articles

CEP_FILE = Path("cep") / "cep-2010-2017.jsonl"


def real_data_file(data_dir: Path, relative: Path) -> Path:
    """A file of the shared real-data folder, or a clear error naming what is missing."""
    path = Path(data_dir) / relative
    if not path.is_file():
        raise DataError(f"real data not found: {path}; pass --data with the folder that holds cep/, bbc/, agnews/ and cameo/")
    return path


def cep_articles(data_dir: Path) -> Articles:
    """The CEP items as articles, topic from its ``label`` column."""
    path = real_data_file(data_dir, CEP_FILE)
    return load_articles(DataConfig(source=str(path), topic_column="label"))[0]


def corpus_realism(data_dir: Path) -> dict[str, Any]:
    """Train a plain TF-IDF (1-2 grams) + LinearSVC on the shipped corpus alone; score on CEP 2017.

    Measures whether the hand-written corpus teaches what real news looks like.
    """
    corpus, _, _ = load_articles(DataConfig())
    cep = cep_articles(data_dir)
    test = cep.subset([i for i, date in enumerate(cep.dates) if date.startswith("2017")])
    toned_corpus, toned_test = corpus.with_tone(), test.with_tone()
    started = time.perf_counter()
    results: dict[str, Any] = {"corpus_items": len(corpus), "cep_2017_items": len(test), "cep_2017_toned_items": len(toned_test)}
    for task, train_set, test_set in (("topic", corpus, test), ("tone", toned_corpus, toned_test)):
        model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC())
        y_train = train_set.tones if task == "tone" else train_set.topics
        y_test = test_set.tones if task == "tone" else test_set.topics
        predicted = model.fit(train_set.texts, y_train).predict(test_set.texts)
        results[f"{task}_macro_f1"] = float(f1_score(y_test, predicted, average="macro"))
        results[f"{task}_per_class_f1"] = dict(zip(sorted(set(y_test)), map(float, f1_score(y_test, predicted, labels=sorted(set(y_test)), average=None))))
    results["seconds"] = round(time.perf_counter() - started, 2)
    return results



def evaluation_speed(data_dir: Path, items: int = 10_000, repeats: int = 3) -> dict[str, Any]:
    """Wall time of offline evaluation on the latest ``items`` CEP items, median of ``repeats`` runs.

    The model is the default experiment fitted on the shipped corpus and saved as a folder; the
    CEP items are written in the corpus format to a temporary file; runs log into a temporary
    MLflow store. Measured in the same run: plain prediction (the floor any evaluation pays) and
    the report alone (computing and writing, no data loading, no MLflow), so ratios show the cost
    evaluation adds.
    """
    import json
    import statistics
    import tempfile

    from train.config import load_config
    from train.evaluation_run import EvaluationRequest, evaluate
    from train.model import NewsClassifier
    from train.pipeline import build_pipeline
    from train.report import evaluate_articles, write_report

    cep = cep_articles(data_dir)
    latest = cep.subset(range(max(0, len(cep) - items), len(cep)))
    config = load_config("default")
    corpus, _, _ = load_articles(config.data)
    toned = corpus.with_tone()
    model = NewsClassifier(
        build_pipeline(config.features, config.topic, config.seed).fit(corpus.texts, corpus.topics),
        build_pipeline(config.features, config.tone, config.seed).fit(toned.texts, toned.tones),
    )
    timings: dict[str, list[float]] = {"predict": [], "report": [], "evaluate": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder, data = model.save(Path(tmp) / "model"), Path(tmp) / "cep-latest.jsonl"
        with open(data, "w", encoding="utf-8") as handle:
            for row in zip(latest.ids, latest.texts, latest.topics, latest.tones):
                handle.write(json.dumps(dict(zip(("id", "text", "topic", "tone"), row))) + "\n")
        for repeat in range(repeats):
            started = time.perf_counter()
            model.predict_proba(latest.texts)
            timings["predict"].append(time.perf_counter() - started)
            started = time.perf_counter()
            write_report(evaluate_articles(model, latest), Path(tmp) / f"report-{repeat}")
            timings["report"].append(time.perf_counter() - started)
            request = EvaluationRequest(str(folder), data=str(data), output=Path(tmp) / f"evaluation-{repeat}")
            started = time.perf_counter()
            evaluate(request, f"sqlite:///{Path(tmp) / 'mlflow.db'}")
            timings["evaluate"].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    return {
        "items": len(latest),
        "toned_items": sum(tone is not None for tone in latest.tones),
        "repeats": repeats,
        "bootstrap_resamples": 1000,
        "seconds_median": {name: round(value, 2) for name, value in medians.items()},
        "seconds_all": {name: [round(value, 2) for value in values] for name, values in timings.items()},
        "report_over_predict": round(medians["report"] / medians["predict"], 2),
        "evaluate_over_predict": round(medians["evaluate"] / medians["predict"], 2),
    }
