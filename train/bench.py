"""Benchmarks against the real, human-labelled news in ../shared/data (never shipped).

:func:`run_benchmark` scores the project's pipeline ("ours", built from an experiment's
features, topic and tone sections) and its peers on the same splits: CEP forward in time
(train 2010-2016, score 2017), AG News and de-duplicated BBC by stratified 5-fold, CAMEO tone
cross-domain, and the cost of ours (fit time, predict throughput, memory, artifact size, load time).
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import LinearSVC

from train.config import DataConfig, ExperimentConfig, SplitConfig
from train.data import Articles, DataError, load_articles, split_by_date
from train.errors import NewsclfError
from train._timing import seconds
from train.model import NewsClassifier
from train.pipeline import build_pipeline, fit_pipeline

CEP_FILE = Path("cep") / "cep-2010-2017.jsonl"
AGNEWS_FILE = Path("agnews") / "agnews-test.jsonl"
BBC_FILE = Path("bbc") / "bbc.jsonl"
CAMEO_FILE = Path("cameo") / "cameo-train.jsonl"
DATA_FILES = (CEP_FILE, AGNEWS_FILE, BBC_FILE, CAMEO_FILE)
# The suggested development split of the CEP data, as experiments/cep.toml has it: fit on
# 2010-2016, validate on 2017.
CEP_SPLIT = SplitConfig(mode="temporal", train_until="2016-12-31", validation_until="2017-12-31")
FOLDS = 5
BENCH_EXPERIMENT = "newsclf-bench"

AGNEWS_LABELS = ("World", "Sports", "Business", "Sci/Tech")
BBC_LABELS = ("business", "entertainment", "politics", "sport", "tech")
CAMEO_LABELS = ("make_statement_appeal", "verbal_cooperation", "material_cooperation", "verbal_conflict", "material_conflict")

# Display names of the models every section compares, in table order.
MODELS = {
    "ours": "ours (newsclf pipeline)",
    "tfidf_svc": "TF-IDF 1-2 gram + LinearSVC, defaults",
    "fasttext": "fastText supervised, autotuned",
    "majority": "majority class",
}


class FastTextUnavailable(NewsclfError):
    """fastText is an optional extra; the benchmark notes its absence instead of failing."""


def real_data_file(data_dir: Path, relative: Path) -> Path:
    """A file of the shared real-data folder, or a clear error naming what is missing."""
    path = Path(data_dir) / relative
    if not path.is_file():
        raise DataError(f"real data not found: {path}; pass --data with the folder that holds cep/, bbc/, agnews/ and cameo/")
    return path


def require_data(data_dir: Path) -> None:
    """Fail with one clear line, before any work, when a file of the real-data folder is missing."""
    for relative in DATA_FILES:
        real_data_file(data_dir, relative)


def cep_articles(data_dir: Path) -> Articles:
    """The CEP items as articles, topic from its ``label`` column."""
    path = real_data_file(data_dir, CEP_FILE)
    return load_articles(DataConfig(source=str(path), topic_column="label"))[0]


def cep_development_split(cep: Articles) -> tuple[Articles, Articles]:
    """The CEP items dated up to 2016-12-31 (fit) and in 2017 (validation), by the temporal split
    training uses; an item without an ISO date is an error, as in training."""
    train, validation, _ = split_by_date(cep, CEP_SPLIT, "CEP")
    return train, validation


def deduplicate(articles: Articles) -> tuple[Articles, int]:
    """Keep the first of articles whose text is the same ignoring whitespace, case and punctuation.

    Returns the kept articles and how many were dropped. Duplicates left in would sit on both
    sides of a fold and inflate the scores.
    """
    from train.dedup import find_duplicates

    found = find_duplicates(articles.texts, threshold=1.0)
    return articles.subset(found.keep), found.removed


def fold_accuracies(
    make_model: Callable[[], Any], texts: list[str], labels: list[str], folds: int = FOLDS, seed: int = 13
) -> list[float]:
    """Accuracy on each fold of a stratified k-fold; the same seed gives every model the same folds."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    texts, labels = np.asarray(texts, dtype=object), np.asarray(labels, dtype=object)
    scores = []
    for train_index, test_index in splitter.split(texts, labels):
        model = make_model().fit(list(texts[train_index]), list(labels[train_index]))
        scores.append(float(accuracy_score(labels[test_index], model.predict(list(texts[test_index])))))
        del model  # a fastText model can take GBs: never hold two
    return scores


def corpus_realism(data_dir: Path) -> dict[str, Any]:
    """Train a plain TF-IDF (1-2 grams) + LinearSVC on the shipped corpus alone; score on CEP 2017.

    Measures whether the hand-written corpus teaches what real news looks like.
    """
    corpus, _, _ = load_articles(DataConfig())
    test = cep_development_split(cep_articles(data_dir))[1]
    started = time.perf_counter()
    results: dict[str, Any] = {"corpus_items": len(corpus), "cep_2017_items": len(test), "cep_2017_toned_items": len(test.with_tone())}
    for task in ("topic", "tone"):
        (train_set, y_train), (test_set, y_test) = corpus.for_task(task), test.for_task(task)
        model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC())
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
            timings["predict"].append(seconds(lambda: model.predict_proba(latest.texts)))
            timings["report"].append(seconds(lambda: write_report(evaluate_articles(model, latest), Path(tmp) / f"report-{repeat}")))
            request = EvaluationRequest(str(folder), data=str(data), output=Path(tmp) / f"evaluation-{repeat}")
            timings["evaluate"].append(seconds(lambda: evaluate(request, f"sqlite:///{Path(tmp) / 'mlflow.db'}")))
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


def run_benchmark(
    data_dir: Path,
    config: ExperimentConfig,
    fasttext_seconds: int = 30,
    repeats: int = 3,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Every section of the benchmark; returns a JSON-ready dict (see bench/results.md for its reading).

    ``config`` supplies ours: its features, topic and tone sections and seed (its data and split
    sections are not used). ``fasttext_seconds`` bounds each fastText autotune (0 leaves fastText
    out); ``repeats`` is how many times each timing is measured (medians are reported).
    """
    data_dir = Path(data_dir)
    require_data(data_dir)
    peers = _peers(config, fasttext_seconds)
    results: dict[str, Any] = {"notes": []}
    if "fasttext" not in peers:
        reason = _fasttext_missing_reason() or "switched off (fastText autotune budget of 0 s)"
        results["notes"].append(f"fastText not run: {reason}")
    else:
        results["notes"].append(
            "fastText's autotune tunes learning rate, word n-grams, character n-grams and hash buckets; dim (100) and epochs (5) "
            "are held at its defaults, because unbounded it ran out of memory (24 GB) on CEP and one-thread refits took minutes"
        )
    cep = cep_articles(data_dir)
    progress(f"CEP forward in time ({len(cep)} items)")
    results["cep_temporal"], tuned_fasttext = _cep_temporal(cep, peers)
    progress("AG News, stratified 5-fold")
    results["agnews"] = _folds_section(_load(data_dir, AGNEWS_FILE, AGNEWS_LABELS), peers, config.seed, progress)
    progress("BBC, de-duplicated, stratified 5-fold")
    bbc, removed = deduplicate(_load(data_dir, BBC_FILE, BBC_LABELS))
    results["bbc"] = _folds_section(bbc, peers, config.seed, progress) | {"duplicates_removed": removed}
    progress("cost: each model fitted on all CEP items")
    results["cost"], fitted = _cost(cep, config, peers, tuned_fasttext, repeats)
    progress("CAMEO tone, cross-domain")
    results["cameo"] = _cameo(_load(data_dir, CAMEO_FILE, CAMEO_LABELS), fitted)
    progress("corpus realism")
    results["corpus_realism"] = corpus_realism(data_dir)
    results["targets"] = _targets(results)
    return results


# --- peers -------------------------------------------------------------------------------------


def _peers(config: ExperimentConfig, fasttext_seconds: int) -> dict[str, dict[str, Callable[[], Any]]]:
    """Per model name, a factory of unfitted models for each task (AG News and BBC use ``topic``)."""
    peers: dict[str, dict[str, Callable[[], Any]]] = {
        "ours": {task: (lambda task=task: _Ours(build_pipeline(config.features, getattr(config, task), config.seed), config.n_jobs)) for task in ("topic", "tone")},
        "tfidf_svc": {task: (lambda: make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LinearSVC())) for task in ("topic", "tone")},
        "majority": {task: (lambda: DummyClassifier(strategy="most_frequent")) for task in ("topic", "tone")},
    }
    if fasttext_seconds > 0 and _fasttext_missing_reason() is None:
        peers["fasttext"] = {task: (lambda: FastTextClassifier(autotune_seconds=fasttext_seconds, seed=config.seed, threads=_workers(config))) for task in ("topic", "tone")}
    return {name: peers[name] for name in MODELS if name in peers}


def _workers(config: ExperimentConfig) -> int:
    """The experiment's n_jobs as a count of workers (-1 is every core), for fastText and the results."""
    from joblib import effective_n_jobs

    return effective_n_jobs(config.n_jobs)


class _Ours:
    """Our pipeline behind fit/predict, fitted with the experiment's ``n_jobs`` workers; ``fit`` returns the fitted pipeline."""

    def __init__(self, pipeline: Pipeline, n_jobs: int):
        self.pipeline, self.n_jobs = pipeline, n_jobs

    def fit(self, texts: list[str], labels: list[str]) -> Pipeline:
        return fit_pipeline(self.pipeline, texts, labels, self.n_jobs)[0]

    def predict(self, texts: list[str]):
        return self.pipeline.predict(texts)


def _fasttext_missing_reason() -> str | None:
    try:
        import fasttext  # noqa: F401
    except ImportError as exc:
        return f"the optional extra is not installed ({exc}); pip install -e '.[bench]'"
    return None


# A set value keeps a setting out of fastText's autotune; these are its defaults. Unbounded, it tried
# dim up to 1000 with up to 10M hash buckets and was killed for memory (24 GB) on CEP, and its
# epochs (up to 100) made one single-thread refit take minutes. Fixing bucket as well crashed
# fastText 0.9.2's autotune (a division error) here, so the buckets stay tuned.
_FASTTEXT_FIXED = {"dim": 100, "epoch": 5}


class FastTextClassifier:
    """fastText supervised with its own autotune, behind fit/predict on raw texts.

    Autotune gets the validation texts passed to :meth:`fit`, else a stratified 10% of the
    training texts; ``dim`` and ``epoch`` stay at fastText's defaults to bound memory and time.
    With ``params`` (from :attr:`tuned_params` of an earlier fit) it trains once with those
    settings instead. It runs ``threads`` threads, as many as ours has fit workers, for a like-for-like cost.
    """

    def __init__(self, autotune_seconds: int = 30, seed: int = 13, params: dict[str, Any] | None = None, threads: int = 1):
        self.autotune_seconds, self.seed, self.params, self.threads = autotune_seconds, seed, params, threads

    def fit(self, texts: list[str], labels: list[str], validation: tuple[list[str], list[str]] | None = None) -> "FastTextClassifier":
        import fasttext

        with tempfile.TemporaryDirectory() as tmp:
            train_file = _fasttext_file(Path(tmp) / "train.txt", texts, labels)
            if self.params is not None:
                self.model_ = fasttext.train_supervised(input=str(train_file), **self.params, thread=self.threads, seed=self.seed, verbose=0)
            else:
                if validation is None:
                    held_out = max(len(set(labels)), round(0.1 * len(labels)))  # at least one item per class
                    texts, valid_texts, labels, valid_labels = train_test_split(
                        texts, labels, test_size=held_out, stratify=labels, random_state=self.seed
                    )
                    train_file = _fasttext_file(Path(tmp) / "train.txt", texts, labels)
                    validation = (valid_texts, valid_labels)
                valid_file = _fasttext_file(Path(tmp) / "valid.txt", *validation)
                self.model_ = fasttext.train_supervised(
                    input=str(train_file), autotuneValidationFile=str(valid_file), autotuneDuration=self.autotune_seconds,
                    thread=self.threads, seed=self.seed, verbose=0, **_FASTTEXT_FIXED,
                )
        args = self.model_.f.getArgs()
        self.tuned_params = {name: getattr(args, name) for name in ("lr", "dim", "ws", "epoch", "minCount", "wordNgrams", "bucket", "minn", "maxn")}
        self.tuned_params["loss"] = args.loss.name
        return self

    def predict(self, texts: list[str]) -> list[str]:
        # A list goes through multilinePredict: fastText's single-text path breaks on NumPy 2.
        labels, _ = self.model_.predict([_fasttext_text(text) for text in texts])
        return [label[0].removeprefix("__label__") for label in labels]

    def save(self, path: Path) -> None:
        self.model_.save_model(str(path))


def _fasttext_text(text: str) -> str:
    # fastText splits on whitespace only: lower-case and set punctuation apart, as its examples do.
    return " ".join(re.sub(r"([^\w\s])", r" \1 ", text.casefold()).split())


def _fasttext_file(path: Path, texts: list[str], labels: list[str]) -> Path:
    path.write_text("".join(f"__label__{label.replace(' ', '_')} {_fasttext_text(text)}\n" for text, label in zip(texts, labels)), encoding="utf-8")
    return path


# --- sections ----------------------------------------------------------------------------------


def _load(data_dir: Path, relative: Path, labels: tuple[str, ...]) -> Articles:
    path = real_data_file(data_dir, relative)
    tone_column = "tone" if relative == CAMEO_FILE else ""  # only CAMEO carries a tone
    return load_articles(DataConfig(source=str(path), topic_column="label", tone_column=tone_column, topic_labels=labels))[0]


def _cep_temporal(cep: Articles, peers) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Topic and tone, fitted on 2010-2016 and scored on 2017; also fastText's tuned settings per task."""
    train, test = cep_development_split(cep)
    section: dict[str, Any] = {"train_items": len(train), "test_items": len(test), "test_items_with_tone": len(test.with_tone())}
    tuned: dict[str, dict[str, Any]] = {}
    for task in ("topic", "tone"):
        (task_train, y_train), (task_test, y_test) = train.for_task(task), test.for_task(task)
        section[task] = {}
        for name, factories in peers.items():
            model = factories[task]()
            started = time.perf_counter()
            if name == "fasttext":
                model.fit(task_train.texts, y_train, validation=(task_test.texts, y_test))
                tuned[task] = model.tuned_params
            else:
                model.fit(task_train.texts, y_train)
            fit_seconds = time.perf_counter() - started
            predicted = model.predict(task_test.texts)
            section[task][name] = {
                "macro_f1": float(f1_score(y_test, predicted, average="macro", zero_division=0)),
                "accuracy": float(accuracy_score(y_test, predicted)),
                "fit_seconds": fit_seconds,
            }
    if tuned:
        section["fasttext_tuned_params"] = tuned
    return section, tuned


def _folds_section(articles: Articles, peers, seed: int, progress: Callable[[str], None]) -> dict[str, Any]:
    section: dict[str, Any] = {"items": len(articles), "folds": FOLDS, "accuracy": {}}
    for name, factories in peers.items():
        started = time.perf_counter()
        scores = fold_accuracies(factories["topic"], articles.texts, articles.topics, FOLDS, seed)
        section["accuracy"][name] = {"mean": statistics.fmean(scores), "std": statistics.stdev(scores), "folds": scores}
        progress(f"  {name}: {statistics.fmean(scores):.4f} ({time.perf_counter() - started:.0f}s)")
    return section


def _cost(cep: Articles, config: ExperimentConfig, peers, tuned_fasttext, repeats: int):
    """Fit both tasks on every CEP item ``repeats`` times per model; time, memory, size, load, throughput.

    Returns the section and, per model, its last fitted models (CAMEO scores their tone model).
    """
    probe = cep_development_split(cep)[1].texts
    toned = cep.with_tone()
    models = {name: factories for name, factories in peers.items() if name != "majority"}
    if "fasttext" in models:
        models["fasttext"] = {task: (lambda task=task: FastTextClassifier(seed=config.seed, params=tuned_fasttext[task], threads=_workers(config))) for task in ("topic", "tone")}
    section: dict[str, Any] = {"items": len(cep), "items_with_tone": len(toned), "repeats": repeats}
    fitted: dict[str, Any] = {}
    for name, factories in models.items():
        timings: dict[str, list[float]] = {"topic": [], "tone": []}
        for _ in range(repeats):
            fit = {}
            for task, texts, labels in (("topic", cep.texts, cep.topics), ("tone", toned.texts, toned.tones)):
                started = time.perf_counter()
                fit[task] = factories[task]().fit(texts, labels)
                timings[task].append(time.perf_counter() - started)
        fitted[name] = fit
        _, peak = _peak_rss_increase(lambda: {task: factories[task]().fit(*data) for task, data in
                                              (("topic", (cep.texts, cep.topics)), ("tone", (toned.texts, toned.tones)))})
        totals = [topic + tone for topic, tone in zip(timings["topic"], timings["tone"])]
        predict = [seconds(lambda: [model.predict(probe) for model in fit.values()]) for _ in range(repeats)]
        size, load = _artifact(name, fit, repeats)
        section[name] = {
            "fit_seconds_both_tasks": statistics.median(totals),
            "fit_seconds_topic": statistics.median(timings["topic"]),
            "fit_seconds_tone": statistics.median(timings["tone"]),
            "fit_seconds_all_runs": totals,
            "predict_items_per_second": len(probe) / statistics.median(predict),
            "peak_memory_increase_mib": peak / 2**20,
            "artifact_mib": size / 2**20,
            "load_seconds": load,
        }
    fitted["majority"] = {"tone": peers["majority"]["tone"]().fit(toned.texts, toned.tones)}  # costs nothing; scored on CAMEO
    baseline = section.get("tfidf_svc", {}).get("fit_seconds_both_tasks")
    if baseline:
        for name in models:
            section[name]["fit_time_ratio_to_tfidf_svc"] = section[name]["fit_seconds_both_tasks"] / baseline
    section["cpu_count"] = os.cpu_count()
    section["n_jobs"] = _workers(config)
    return section, fitted


def _artifact(name: str, fit: dict[str, Any], repeats: int) -> tuple[int, float]:
    """Bytes on disk of the saved models, and the median seconds to load them back."""
    import joblib

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if name == "ours":
            NewsClassifier(fit["topic"], fit["tone"]).save(folder)
            load = lambda: NewsClassifier.load(folder)  # noqa: E731
        elif name == "fasttext":
            import fasttext

            for task, model in fit.items():
                model.save(folder / f"{task}.bin")
            load = lambda: [fasttext.load_model(str(folder / f"{task}.bin")) for task in fit]  # noqa: E731
        else:
            for task, model in fit.items():
                joblib.dump(model, folder / f"{task}.joblib", compress=3)
            load = lambda: [joblib.load(folder / f"{task}.joblib") for task in fit]  # noqa: E731
        size = sum(path.stat().st_size for path in folder.iterdir())
        return size, statistics.median(seconds(load) for _ in range(repeats))


def _cameo(cameo: Articles, fitted: dict[str, dict[str, Any]]) -> dict[str, Any]:
    toned = cameo.with_tone()
    section: dict[str, Any] = {"items_with_tone": len(toned), "trained_on": "CEP 2010-2017, items with a tone", "tone": {}}
    for name in (name for name in MODELS if name in fitted):
        predicted = fitted[name]["tone"].predict(toned.texts)
        section["tone"][name] = {
            "macro_f1": float(f1_score(toned.tones, predicted, average="macro", zero_division=0)),
            "accuracy": float(accuracy_score(toned.tones, predicted)),
        }
    return section


def _targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met."""
    cep, cost = results["cep_temporal"], results["cost"]
    rows = []
    for task, bar in (("topic", 0.78), ("tone", 0.94)):
        ours = cep[task]["ours"]["macro_f1"]
        best_peer = max(score["macro_f1"] for name, score in cep[task].items() if name != "ours")
        rows.append({"target": f"CEP 2017 {task} macro-F1 >= {bar} and ahead of every peer", "value": ours, "met": ours >= bar and ours > best_peer})
    cameo = results["cameo"]["tone"]["ours"]["macro_f1"]
    rows.append({"target": "CAMEO cross-domain tone macro-F1 >= 0.85", "value": cameo, "met": cameo >= 0.85})
    fit = cost["ours"]["fit_seconds_both_tasks"]
    rows.append({"target": f"fit both tasks on all {cost['items']} CEP items <= 10 s", "value": fit, "met": fit <= 10.0})
    for section, label in (("agnews", "AG News"), ("bbc", "BBC")):
        scores = results[section]["accuracy"]
        ours = scores["ours"]["mean"]
        rows.append({"target": f"{label} 5-fold accuracy ahead of every peer", "value": ours,
                     "met": all(ours > score["mean"] for name, score in scores.items() if name != "ours")})
    return rows


# --- measuring ---------------------------------------------------------------------------------


def _peak_rss_increase(action: Callable[[], Any], interval: float = 0.005) -> tuple[Any, int]:
    """Run ``action``; return its result and the peak resident memory above the level before it.

    Sampled from /proc for this process and its fit workers, so native buffers (liblinear,
    fastText) count too; freed memory is handed back to the OS first so earlier work does not
    hide this one's peak.
    """
    _stop_idle_workers()
    gc.collect()
    _trim_heap()
    baseline = peak = _rss()
    done = threading.Event()

    def watch():
        nonlocal peak
        while not done.wait(interval):
            peak = max(peak, _rss())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = action()
    finally:
        done.set()
        watcher.join()
    return result, max(peak, _rss()) - baseline


def _rss() -> int:
    """Resident memory of this process and its child processes (fit workers), in bytes."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            total = int(handle.read().split()[1])
    except OSError:  # not Linux: fall back to the process high-water mark
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for pid in _child_pids():
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
                total += int(handle.read().split()[1])
        except OSError:  # the child has just exited
            continue
    return total * os.sysconf("SC_PAGE_SIZE")


def _stop_idle_workers() -> None:
    # joblib keeps fit workers alive between fits; left running, their memory would sit in the
    # baseline rather than in the peak of the fit that needs them.
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def _child_pids() -> list[str]:
    pids = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += (task / "children").read_text(encoding="ascii").split()
        except OSError:
            continue
    return pids


def _trim_heap() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


# --- reporting ---------------------------------------------------------------------------------


def results_markdown(results: dict[str, Any], about: dict[str, str], settings: str = "") -> str:
    """The benchmark as a page a reader understands without the code.

    ``about`` carries the provenance lines (command, date, commit, versions); ``settings`` is
    ours' configuration as TOML, shown at the end.
    """
    cep, cost = results["cep_temporal"], results["cost"]
    names = [name for name in MODELS if name in cep["topic"]]
    lines = ["# newsclf on real news: benchmark results", ""]
    lines += [f"- **{key}**: {value}" for key, value in about.items()]
    lines += [f"- **note**: {note}" for note in results["notes"]]
    lines += [
        "",
        "Every model in a table was fitted and scored on exactly the same items in the same run.",
        "",
        "## Targets",
        "",
        "| target | ours | met |",
        "|---|---|---|",
    ]
    lines += [f"| {row['target']} | {row['value']:.3f} | {'yes' if row['met'] else '**no**'} |" for row in results["targets"]]
    lines += [
        "",
        f"## 1. CEP forward in time: fit on 2010-2016 ({cep['train_items']:,} items), score on 2017 ({cep['test_items']:,} items)",
        "",
        "Wikipedia Current Events Portal summaries. Topic: 10 classes. Tone: military vs diplomatic, fitted and scored on "
        f"the items that carry one ({cep['test_items_with_tone']:,} in 2017). 2017 is the validation year: ours' settings "
        "and fastText's autotune were both chosen on it, so these are validation scores; a later, unseen period judges the "
        "models separately.",
        "",
        "| model | topic macro-F1 | topic accuracy | tone macro-F1 | tone accuracy | fit s (topic + tone) |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        topic, tone = cep["topic"][name], cep["tone"][name]
        lines.append(
            f"| {MODELS[name]} | {topic['macro_f1']:.3f} | {topic['accuracy']:.3f} | {tone['macro_f1']:.3f} | "
            f"{tone['accuracy']:.3f} | {topic['fit_seconds'] + tone['fit_seconds']:.1f} |"
        )
    for number, (key, title) in enumerate((("agnews", "AG News test split"), ("bbc", "BBC News, de-duplicated")), start=2):
        section = results[key]
        extra = f", after removing {section['duplicates_removed']} duplicates (same text ignoring whitespace, case and punctuation)" if "duplicates_removed" in section else ""
        lines += [
            "",
            f"## {number}. {title}: stratified {section['folds']}-fold accuracy ({section['items']:,} items{extra})",
            "",
            "Title and text. Ours uses the topic settings chosen on CEP, not re-tuned here; fastText autotunes on 10% of each "
            "fold's training part. Same folds for every model.",
            "",
            "| model | mean accuracy | std over folds | per fold |",
            "|---|---|---|---|",
        ]
        for name in names:
            score = section["accuracy"][name]
            lines.append(f"| {MODELS[name]} | {score['mean']:.4f} | {score['std']:.4f} | {', '.join(f'{s:.3f}' for s in score['folds'])} |")
    cameo = results["cameo"]
    lines += [
        "",
        f"## 4. CAMEO, cross-domain tone: fitted on {cameo['trained_on']}, scored on the {cameo['items_with_tone']:,} cameo-train sentences with a tone",
        "",
        "Tone from CAMEO's hand-coded event class (verbal_cooperation -> diplomatic, material_conflict -> military). "
        "Nothing from CAMEO is used for fitting.",
        "",
        "| model | tone macro-F1 | tone accuracy |",
        "|---|---|---|",
    ]
    lines += [f"| {MODELS[name]} | {score['macro_f1']:.3f} | {score['accuracy']:.3f} |" for name, score in cameo["tone"].items()]
    costed = [name for name in names if name in cost]
    lines += [
        "",
        f"## 5. Cost: both tasks fitted on all {cost['items']:,} CEP items ({cost['items_with_tone']:,} with a tone for tone)",
        "",
        f"Medians of {cost['repeats']} run(s) in this process; ours fits with {cost['n_jobs']} worker(s) (n_jobs) and fastText with as many "
        "threads; LinearSVC (liblinear) has no parallel fit. "
        f"{cost['cpu_count']} cores shared with other work. fastText retrains with the settings its autotune chose on 2017. "
        "Peak memory: resident memory above the level before one fit of both tasks, sampled every 5 ms (native buffers included). "
        "Throughput: both tasks predicted for the 2017 items.",
        "",
        "| | " + " | ".join(MODELS[name] for name in costed) + " |",
        "|---|" + "---|" * len(costed),
    ]
    rows = (
        ("fit both tasks, s", "fit_seconds_both_tasks", "{:.2f}"),
        ("fit time vs TF-IDF + LinearSVC", "fit_time_ratio_to_tfidf_svc", "{:.1f}x"),
        ("fit topic, s", "fit_seconds_topic", "{:.2f}"),
        ("fit tone, s", "fit_seconds_tone", "{:.2f}"),
        ("predict, items/s (both tasks)", "predict_items_per_second", "{:,.0f}"),
        ("peak memory while fitting, MiB", "peak_memory_increase_mib", "{:.0f}"),
        ("artifact size on disk, MiB", "artifact_mib", "{:.1f}"),
        ("load time, s", "load_seconds", "{:.3f}"),
    )
    for label, key, form in rows:
        lines.append(f"| {label} | " + " | ".join(form.format(cost[name][key]) if key in cost[name] else "-" for name in costed) + " |")
    realism = results["corpus_realism"]
    lines += [
        "",
        "## 6. Corpus realism: TF-IDF 1-2 gram + LinearSVC fitted on the shipped corpus alone, scored on CEP 2017",
        "",
        f"Shipped corpus ({realism['corpus_items']} hand-written articles) -> CEP 2017: topic macro-F1 "
        f"{realism['topic_macro_f1']:.3f}, tone macro-F1 {realism['tone_macro_f1']:.3f}.",
        "",
    ]
    if settings:
        lines += ["## Ours' settings", "", "Chosen on CEP 2017 only (see tuning.md).", "", "```toml", settings.rstrip(), "```", ""]
    return "\n".join(lines)


def flat_metrics(results: dict[str, Any]) -> dict[str, float]:
    """The benchmark's numbers as MLflow metric names, e.g. ``cep_topic_macro_f1_ours``."""
    metrics: dict[str, float] = {}
    cep = results["cep_temporal"]
    for task in ("topic", "tone"):
        for name, score in cep[task].items():
            metrics.update({f"cep_{task}_{key}_{name}": value for key, value in score.items()})
    for section in ("agnews", "bbc"):
        for name, score in results[section]["accuracy"].items():
            metrics[f"{section}_accuracy_{name}"] = score["mean"]
            metrics[f"{section}_accuracy_std_{name}"] = score["std"]
    for name, score in results["cameo"]["tone"].items():
        metrics.update({f"cameo_tone_{key}_{name}": value for key, value in score.items()})
    for name, cost in results["cost"].items():
        if isinstance(cost, dict):
            metrics.update({f"cost_{key}_{name}": value for key, value in cost.items() if isinstance(value, (int, float))})
    metrics["targets_met"] = sum(row["met"] for row in results["targets"])
    return metrics


def log_benchmark(results: dict[str, Any], markdown: str, config: ExperimentConfig, data_dir: Path, tracking_uri: str) -> str:
    """Log one run to the ``newsclf-bench`` MLflow experiment: ours' settings, every number, both files; returns its id."""
    import mlflow

    from train._files import sha256_file
    from train.config import flatten

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(BENCH_EXPERIMENT)
    with mlflow.start_run(run_name=f"bench {config.name}") as run:
        mlflow.log_params({key: str(value) for key, value in flatten(config).items() if key.split(".")[0] in ("seed", "features", "topic", "tone")})
        mlflow.set_tags({f"data_sha256.{relative.parent}": sha256_file(Path(data_dir) / relative) for relative in DATA_FILES})
        mlflow.log_metrics(flat_metrics(results))
        mlflow.log_dict(results, "results.json")
        mlflow.log_text(markdown, "results.md")
    return run.info.run_id
