"""``python -m bench speed``: where users wait, side by side with a plain scikit-learn peer measured in
the same run (``make bench-speed``).

Sections, each reported as medians of ``runs`` repetitions, ours and the peer interleaved:

- **hashing**: tokenizing and hashing streaming.toml's features (word 1-3 + char_wb 3-5, 2**20 columns
  each) of CEP items, articles per CPU-second: ours (compiled) against scikit-learn's HashingVectorizer;
- **streaming**: a whole ``newsclf train --experiment streaming`` on CEP (CPU seconds of the process)
  against scikit-learn with the same features hashed once and kept in memory, TfidfTransformer and
  SGDClassifier.partial_fit over the same batches and epochs, for topic and tone (both with one
  BLAS thread: OpenBLAS's idle threads would spin on CPU time that neither needs);
- **predict**: whole-process wall time of ``newsclf predict`` of one article from a ``cep`` and a
  ``cep-fast`` model folder (and ``cep`` through ``models:/``) against a Python process that
  joblib-loads a TF-IDF 1-2 + LinearSVC pipeline fitted on CEP and predicts the article;
- **latency**: in-process p50 per 600-word article, ``cep`` and ``cep-fast`` against that pipeline;
- **load**: loading the ``cep`` model through ``models:/`` (a new process each time);
- **train**: ``newsclf train`` of the default experiment (the shipped corpus), wall seconds.

Everything it trains goes into a temporary folder, removed afterwards.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.datasets import CEP_FILE, real_data_file
from bench.serving import ARTICLE_WORDS, machine, seed_sized_articles
from newsclf.errors import NewsclfError

# The must-holds of issue #25, as ratios to the peer measured in the same run (or seconds).
TARGETS = {
    "hashing_articles_per_cpu_s": 20_000,
    "streaming_cpu_ratio": 1.0,
    "predict_cep_ratio": 1.3,
    "latency_cep_ratio": 4.0,
    "latency_cep_fast_ratio": 1.2,
    "load_cep_s": 2.0,
    "train_s": 30.0,
}
_HASHING_ITEMS = 10_000
_ONE_ARTICLE = (
    "Troops crossed the border overnight and shelled the port, while envoys met in Geneva to discuss a "
    "ceasefire and the exchange of prisoners."
)


def speed_benchmark(
    data_dir: Path,
    sections: tuple[str, ...],
    runs: int,
    progress: Callable[[str], None],
    streaming_articles: int = 0,
) -> dict[str, Any]:
    """Run the chosen ``sections``; the results with the targets and the machine's load. ``streaming_articles``
    runs the streaming section on that many synthetic articles (bench scale's) instead of CEP itself."""
    cep = real_data_file(data_dir, CEP_FILE).resolve()  # the children run in their own folders
    results: dict[str, Any] = {"runs": runs, "load_average_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="newsclf-speed-") as scratch:
        folder = Path(scratch)
        models: dict[str, Path] = {}
        store = folder / "store"
        store.mkdir()
        if {"predict", "latency", "load"} & set(sections):
            for experiment in ("cep", "cep-fast"):
                progress(f"training {experiment} on CEP for the model folders")
                models[experiment] = _trained_folder(experiment, cep, store)
            progress("fitting the TF-IDF 1-2 + LinearSVC pipeline on CEP")
            models["baseline"] = _baseline_pipeline(cep, folder / "baseline.joblib")
        for section in sections:
            progress(f"section {section}")
            results[section] = _SECTIONS[section](
                cep=cep, folder=folder, store=store, models=models, runs=runs, streaming_articles=streaming_articles
            )
    results["load_average_after"] = os.getloadavg()[0]
    results["environment"] = machine()
    results["targets"] = TARGETS
    return results


def _hashing(cep: Path, runs: int, **_: Any) -> dict[str, Any]:
    from sklearn.feature_extraction.text import HashingVectorizer

    from newsclf.cleaning import ArticleCleaner
    from newsclf.hashing import HashedTfidfVectorizer

    texts = list(ArticleCleaner().transform(_cep_texts(cep)[:_HASHING_ITEMS]))
    blocks = (("word", (1, 3)), ("char_wb", (3, 5)))
    ours = [HashedTfidfVectorizer(analyzer=a, ngram_range=r, n_features=2**20) for a, r in blocks]
    theirs = [
        HashingVectorizer(analyzer=a, ngram_range=r, n_features=2**20, alternate_sign=False, norm=None)
        for a, r in blocks
    ]
    ours_rates, theirs_rates = [], []
    for _ in range(runs):
        ours_rates.append(len(texts) / _cpu_seconds(lambda: [block.counts(texts) for block in ours]))
        theirs_rates.append(len(texts) / _cpu_seconds(lambda: [block.transform(texts) for block in theirs]))
    return {
        "items": len(texts),
        "mean_words": round(float(np.mean([len(text.split()) for text in texts])), 1),
        "ours_articles_per_cpu_s": statistics.median(ours_rates),
        "scikit_learn_articles_per_cpu_s": statistics.median(theirs_rates),
    }


def _streaming(cep: Path, folder: Path, runs: int, streaming_articles: int, **_: Any) -> dict[str, Any]:
    corpus, topic_column = cep, "label"
    if streaming_articles:  # bench scale's synthetic articles: four CEP items each, dated by the first
        from bench.scale import build_corpus

        corpus, topic_column = build_corpus(cep, streaming_articles, folder / "synthetic.jsonl"), "topic"
    ours, theirs = [], []
    for run in range(runs):
        store = folder / f"streaming-{run}"
        store.mkdir()
        command = [_newsclf(), "train", "--experiment", "streaming", "--data", str(corpus)]
        command += ["--set", f"data.topic_column={topic_column}", "--tracking-uri", f"sqlite:///{store}/mlflow.db"]
        # A fresh datasets cache each run: every run converts the corpus to Arrow, none reuses another's.
        cpu, output = _child_cpu(command, cwd=store, environment={"HF_DATASETS_CACHE": str(store / "hf-cache")})
        scores = _scores(output)
        epochs = max(int(epoch) for epoch in _matches(r"epoch (\d+): validation score", output))
        ours.append({"cpu_s": cpu, "epochs": epochs} | scores)
        script = f"from bench.speed import streaming_peer; streaming_peer({str(corpus)!r}, {epochs}, {topic_column!r})"
        cpu, output = _child_cpu([sys.executable, "-c", script], cwd=Path.cwd())
        theirs.append({"cpu_s": cpu} | json.loads(output.strip().splitlines()[-1]))
    return {
        "articles": _count_lines(corpus),
        "corpus": "CEP" if not streaming_articles else "synthetic CEP articles",
        "ours": _medians(ours),
        "scikit_learn": _medians(theirs),
        "ours_runs": ours,
        "scikit_learn_runs": theirs,
    }


def streaming_peer(cep_file: str, epochs: int, topic_column: str = "label", n_features: int = 2**20) -> None:
    """The peer of the streaming section, run in its own process: prints its validation macro-F1 as JSON.

    streaming.toml's split (train 2010-2016, validation 2017), features hashed once and kept, TF-IDF from
    TfidfTransformer (scikit-learn's way of weighting hashed counts), then SGDClassifier.partial_fit over
    shuffled batches of 2,000 for ``epochs`` epochs, with streaming.toml's alphas and balanced class weights.
    """
    from scipy import sparse
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import f1_score
    from sklearn.utils.class_weight import compute_class_weight
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # as newsclf trains: idle OpenBLAS threads spin on CPU time

    rows = _rows(Path(cep_file))
    train = [row for row in rows if row["date"] <= "2016-12-31"]
    validation = [row for row in rows if "2017-01-01" <= row["date"] <= "2017-12-31"]
    hashers = [
        HashingVectorizer(
            analyzer=analyzer, ngram_range=ngrams, n_features=n_features, alternate_sign=False, norm=None
        )
        for analyzer, ngrams in (("word", (1, 3)), ("char_wb", (3, 5)))
    ]

    def hashed(items):
        return sparse.hstack([hasher.transform([row["text"] for row in items]) for hasher in hashers], format="csr")

    weighting = TfidfTransformer(sublinear_tf=True)
    train_x = weighting.fit_transform(hashed(train))
    validation_x = weighting.transform(hashed(validation))
    scores = {}
    for task, column, alpha in (("topic", topic_column, 3e-6), ("tone", "tone", 1e-5)):
        keep = np.array([bool(row.get(column)) for row in train])
        x, y = train_x[keep], np.array([row[column] for row in train if row.get(column)])
        classes = np.unique(y)
        weights = dict(zip(classes, compute_class_weight("balanced", classes=classes, y=y)))
        model = SGDClassifier(loss="log_loss", alpha=alpha, class_weight=weights, random_state=0)
        rng = np.random.default_rng(0)
        for _ in range(epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(y), 2000):
                batch = order[start : start + 2000]
                model.partial_fit(x[batch], y[batch], classes=classes)
        held = np.array([bool(row.get(column)) for row in validation])
        truth = [row[column] for row in validation if row.get(column)]
        scores[f"{task}_macro_f1"] = f1_score(truth, model.predict(validation_x[held]), average="macro")
    print(json.dumps(scores))


def _predict(folder: Path, store: Path, models: dict[str, Path], runs: int, **_: Any) -> dict[str, Any]:
    article = folder / "article.txt"
    article.write_text(_ONE_ARTICLE, encoding="utf-8")
    commands = {
        experiment: [_newsclf(), "predict", "--model", str(models[experiment]), str(article)]
        for experiment in ("cep", "cep-fast")
    }
    commands["cep_models_uri"] = [_newsclf(), "predict", "--model", "models:/news-classifier-cep/1", str(article)]
    commands["cep_models_uri"] += ["--tracking-uri", f"sqlite:///{store}/mlflow.db"]
    peer = (
        "import joblib, sys; pipeline = joblib.load(sys.argv[1]); "
        "print(pipeline.predict([open(sys.argv[2], encoding='utf-8').read()])[0])"
    )
    commands["scikit_learn"] = [sys.executable, "-c", peer, str(models["baseline"]), str(article)]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=folder)
            times[name].append(time.perf_counter() - started)
    return {f"{name}_s": statistics.median(values) for name, values in times.items()} | {"runs_s": times}


def _latency(models: dict[str, Path], runs: int, **_: Any) -> dict[str, Any]:
    import joblib

    from newsclf.model import NewsClassifier

    articles = seed_sized_articles(ARTICLE_WORDS)
    peer = joblib.load(models["baseline"])
    predictors = {
        "cep": NewsClassifier.load(models["cep"]).predict,
        "cep_fast": NewsClassifier.load(models["cep-fast"]).predict,
        "scikit_learn": lambda text: peer.predict([text]),
    }
    p50: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(runs):
        for name, predict in predictors.items():
            predict(articles[-1])  # first-use work (lookup tables) is not an article's latency
            per_article = []
            for article in articles:
                started = time.perf_counter()
                predict(article)
                per_article.append(1000 * (time.perf_counter() - started))
            p50[name].append(float(np.percentile(per_article, 50)))
    return {"articles": len(articles), "words": ARTICLE_WORDS} | {
        f"{name}_p50_ms": statistics.median(values) for name, values in p50.items()
    }


def _load(store: Path, runs: int, **_: Any) -> dict[str, Any]:
    script = (
        "import sys, time; from newsclf.loading import load_model; import mlflow; started = time.perf_counter(); "
        "load_model('models:/news-classifier-cep/1', tracking_uri=sys.argv[1]); print(time.perf_counter() - started)"
    )
    seconds = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", script, f"sqlite:///{store}/mlflow.db"], check=True, capture_output=True, cwd=store
        )
        seconds.append(float(result.stdout.decode().strip().splitlines()[-1]))
    return {"cep_models_uri_s": statistics.median(seconds), "runs_s": seconds}


def _train(folder: Path, runs: int, **_: Any) -> dict[str, Any]:
    found = []
    for run in range(runs):
        store = folder / f"default-{run}"
        store.mkdir()
        started = time.perf_counter()
        result = subprocess.run(
            [_newsclf(), "train", "--tracking-uri", f"sqlite:///{store}/mlflow.db"],
            check=True,
            capture_output=True,
            text=True,
            cwd=store,
        )
        found.append({"seconds": time.perf_counter() - started} | _test_scores(result.stdout))
    return _medians(found) | {"runs": found}


_SECTIONS = {
    "hashing": _hashing,
    "streaming": _streaming,
    "predict": _predict,
    "latency": _latency,
    "load": _load,
    "train": _train,
}


def _trained_folder(experiment: str, cep: Path, store: Path) -> Path:
    from newsclf.loading import model_folder

    command = [_newsclf(), "train", "--experiment", experiment, "--data", str(cep)]
    _child_cpu(command + ["--tracking-uri", f"sqlite:///{store}/mlflow.db"], cwd=store)
    name = f"news-classifier-{experiment}"
    return model_folder(f"models:/{name}/1", store / f"{experiment}-folder", f"sqlite:///{store}/mlflow.db")


def _baseline_pipeline(cep: Path, path: Path) -> Path:
    import joblib

    from bench.peers import plain_tfidf_svc

    rows = _rows(cep)
    joblib.dump(plain_tfidf_svc().fit([row["text"] for row in rows], [row["label"] for row in rows]), path)
    return path


def _cep_texts(cep: Path) -> list[str]:
    texts = [row["text"] for row in _rows(cep)]
    random.Random(0).shuffle(texts)
    return texts


def _count_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def _rows(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _newsclf() -> str:
    return str(Path(sys.executable).parent / "newsclf")


def _cpu_seconds(action: Callable[[], Any]) -> float:
    started = time.process_time()
    action()
    return time.process_time() - started


def _child_cpu(command: list[str], cwd: Path, environment: dict[str, str] | None = None) -> tuple[float, str]:
    """CPU seconds (user + system) of a child process and what it printed (stdout and stderr)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=os.environ | (environment or {}))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise NewsclfError(f"{' '.join(command[:4])} failed (exit {result.returncode}): {last}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), result.stderr + result.stdout


def _matches(pattern: str, text: str) -> list[str]:
    import re

    return re.findall(pattern, text)


def _scores(output: str) -> dict[str, float]:
    """Validation macro-F1 per task from newsclf train's closing lines."""
    return {
        f"{task}_macro_f1": float(value)
        for task, value in _matches(r"(topic|tone): validation macro-F1 ([0-9.]+)", output)
    }


def _test_scores(output: str) -> dict[str, float]:
    return {
        f"{task}_test_macro_f1": float(value)
        for task, value in _matches(r"(topic|tone): .*test macro-F1 ([0-9.]+)", output)
    }


def _medians(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def markdown(results: dict[str, Any]) -> str:
    """The page: one row per figure, ours against its peer, and whether each target holds."""
    lines = [
        "# Speed: where users wait",
        "",
        f"`make bench-speed`: medians of {results['runs']} runs, ours and its peer interleaved in one run, "
        f"on {results['environment']['cpus']} cores; load average {results['load_average_before']:.2f} before, "
        f"{results['load_average_after']:.2f} after. Targets are issue #25's.",
        "",
        "| figure | ours | peer | ours / peer | target | holds |",
        "|---|---:|---:|---:|---|:---:|",
    ]
    for name, ours, peer, target, holds in _figures(results):
        ratio = f"{ours / peer:.2f}" if peer else ""
        peer_text = _number(peer) if peer else ""
        lines.append(f"| {name} | {_number(ours)} | {peer_text} | {ratio} | {target} | {_verdict(holds)} |")
    if "streaming" in results:
        ours, peer = results["streaming"]["ours"], results["streaming"]["scikit_learn"]
        lines += [
            "",
            f"Streaming validation macro-F1 on 2017: ours topic {ours['topic_macro_f1']:.3f} / tone "
            f"{ours['tone_macro_f1']:.3f} ({ours['epochs']:g} epochs, early stopping); scikit-learn topic "
            f"{peer['topic_macro_f1']:.3f} / tone {peer['tone_macro_f1']:.3f} over the same epochs.",
        ]
    if "train" in results:
        topic, tone = results["train"]["topic_test_macro_f1"], results["train"]["tone_test_macro_f1"]
        lines += ["", f"`make train` test macro-F1: topic {topic:.3f}, tone {tone:.3f}."]
    return "\n".join(lines) + "\n"


def _verdict(holds: bool | None) -> str:
    return "" if holds is None else "yes" if holds else "no"


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"


def _figures(results: dict[str, Any]):
    """(figure, ours, peer or None, target as text, whether it holds or None) per row of the page."""
    if "hashing" in results:
        found = results["hashing"]
        ours = found["ours_articles_per_cpu_s"]
        target = TARGETS["hashing_articles_per_cpu_s"]
        yield (
            f"tokenizing and hashing CEP items ({found['mean_words']} words), articles per CPU-second",
            ours,
            found["scikit_learn_articles_per_cpu_s"],
            f">= {target:,}",
            ours >= target,
        )
    if "streaming" in results:
        found = results["streaming"]
        ours, peer = found["ours"]["cpu_s"], found["scikit_learn"]["cpu_s"]
        target = TARGETS["streaming_cpu_ratio"]
        corpus = f"{found.get('articles', 0):,} {found.get('corpus', 'CEP')}"
        yield f"`newsclf train` streaming.toml, {corpus}, CPU-s", ours, peer, f"<= {target}x", ours / peer <= target
    if "predict" in results:
        found, target = results["predict"], TARGETS["predict_cep_ratio"]
        peer = found["scikit_learn_s"]
        for name in ("cep", "cep-fast"):
            ours = found[f"{name}_s"]
            yield (
                f"`newsclf predict` one article, {name} folder, wall s",
                ours,
                peer,
                f"<= {target}x",
                ours / peer <= target,
            )
        if "cep_models_uri_s" in found:  # no target of its own: what MLflow adds
            ours = found["cep_models_uri_s"]
            yield "`newsclf predict` one article, cep through models:/, wall s", ours, peer, "", None
    if "latency" in results:
        found = results["latency"]
        peer = found["scikit_learn_p50_ms"]
        for name, key, target in (
            ("cep", "cep", "latency_cep_ratio"),
            ("cep-fast", "cep_fast", "latency_cep_fast_ratio"),
        ):
            ours = found[f"{key}_p50_ms"]
            yield (
                f"p50 per {found['words']}-word article in process, {name}, ms",
                ours,
                peer,
                f"<= {TARGETS[target]}x",
                ours / peer <= TARGETS[target],
            )
    if "load" in results:
        seconds = results["load"]["cep_models_uri_s"]
        yield (
            "load cep through models:/, s",
            seconds,
            None,
            f"<= {TARGETS['load_cep_s']} s",
            seconds <= TARGETS["load_cep_s"],
        )
    if "train" in results:
        seconds = results["train"]["seconds"]
        yield (
            "`newsclf train` default corpus, wall s",
            seconds,
            None,
            f"<= {TARGETS['train_s']} s",
            seconds <= TARGETS["train_s"],
        )
