"""The models the benchmark compares: ours (fitted as ``make train`` fits it) and its peers.

Every contender fits both tasks on the same articles (:meth:`fit` gives a :class:`Fitted`) and,
for the topic-only data sets, gives a fresh topic model behind ``fit(texts, labels)`` /
``predict(texts)`` (:meth:`topic_model`).
"""

from __future__ import annotations

import itertools
import random
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import LinearSVC

from newsclf.model import NewsClassifier
from newsclf.train.config import ExperimentConfig
from newsclf.train.data.articles import Articles
from newsclf.train.evaluation.metrics import macro_f1
from newsclf.train.fit.in_memory import fit_model

TASKS = ("topic", "tone")
# Display names of the models every section compares, in table order.
MODELS = {
    "ours": "ours (newsclf pipeline)",
    "ours_fast": "ours, fast word-only profile",
    "tfidf_svc": "TF-IDF 1-2 gram + LinearSVC, defaults",
    "fasttext": "fastText supervised, grid-tuned",
    "majority": "majority class",
}
# fastText's epochs and learning rate are chosen over this grid on a held-out part of the training
# data; everything else is fixed (FASTTEXT_FIXED).
FASTTEXT_GRID = {"epoch": (5, 10, 25, 50), "lr": (0.1, 0.25, 0.5, 1.0)}
# The settings of fastText's text-classification tutorial (fasttext.cc/docs/en/supervised-tutorial):
# word bigrams, 50 dimensions, 200k hash buckets. Its `-loss hs` is a speed-up for many labels; with
# 2-10 labels the exact softmax costs little, so it is kept. One thread and a fixed seed make a fit
# repeatable (fastText's threads update one model without locks, so more threads vary run to run).
FASTTEXT_FIXED = {"wordNgrams": 2, "dim": 50, "bucket": 200_000, "minCount": 1, "loss": "softmax", "thread": 1}


def contenders(
    config: ExperimentConfig, fast_config: ExperimentConfig | None, fasttext_grid: dict[str, tuple] | None
) -> dict[str, Any]:
    """Every model of the benchmark by name, in :data:`MODELS` order.

    ``config`` is ours (and the seed of fastText), ``fast_config`` the fast word-only profile (None
    leaves it out); fastText runs with ``fasttext_grid`` (None leaves it out) when it is installed.
    """
    found: dict[str, Any] = {
        "ours": Ours(config),
        "tfidf_svc": PerTask(lambda task: plain_tfidf_svc()),
        "majority": PerTask(lambda task: DummyClassifier(strategy="most_frequent")),
    }
    if fast_config is not None:
        found["ours_fast"] = Ours(fast_config)
    if fasttext_grid is not None and fasttext_missing_reason() is None:
        found["fasttext"] = FastTextPeer(config.seed, fasttext_grid)
    return {name: found[name] for name in MODELS if name in found}


def plain_tfidf_svc(sublinear_tf: bool = False) -> Pipeline:
    """TF-IDF of words and word pairs + LinearSVC, scikit-learn's defaults otherwise."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=sublinear_tf), LinearSVC())


def workers(config: ExperimentConfig) -> int:
    """The experiment's n_jobs as a count of workers (-1 is every core), for the results."""
    from joblib import effective_n_jobs

    return effective_n_jobs(config.n_jobs)


class Fitted:
    """Both tasks of one model fitted on the same articles: per task the fitted model (``predict``,
    ``classes_``) and the wall seconds its fit took. Saved with joblib, one file a task."""

    def __init__(self, models: dict[str, Any], seconds: dict[str, float]):
        self.models, self.seconds = models, seconds

    def predict(self, texts: list[str]) -> Any:
        """Both tasks' predictions for ``texts``."""
        return [model.predict(texts) for model in self.models.values()]

    def save(self, folder: Path) -> None:
        import joblib

        for task, model in self.models.items():
            joblib.dump(model, folder / f"{task}.joblib", compress=3)

    def load(self, folder: Path) -> Any:
        import joblib

        return [joblib.load(folder / f"{task}.joblib") for task in self.models]


class Ours:
    """The project's model, fitted by :func:`newsclf.train.training.fit_model`, the function that fits what
    ``make train`` ships: topic, tone and the tone-applies model, with the experiment's ``n_jobs``
    workers."""

    def __init__(self, config: ExperimentConfig):
        self.config = config

    def fit(self, articles: Articles) -> OursFitted:
        marks: list[float] = []
        started = time.perf_counter()
        model = fit_model(
            self.config, articles, has_tone=True, progress=lambda message: marks.append(time.perf_counter())
        )
        ended = time.perf_counter()
        # fit_model reports each step as it starts it: topic, then tone, then the tone-applies
        # model, whose fit counts in tone's seconds.
        tone_started = marks[1] if len(marks) > 1 else ended
        return OursFitted(model, {"topic": tone_started - started, "tone": ended - tone_started})

    def topic_model(self) -> _OursTopic:
        return _OursTopic(self.config)


class OursFitted(Fitted):
    """Ours fitted: the task pipelines of the whole model, which predicts, saves and loads as shipped."""

    def __init__(self, model: NewsClassifier, seconds: dict[str, float]):
        super().__init__(dict(model.pipelines), seconds)
        self.model = model

    def predict(self, texts: list[str]) -> Any:
        return self.model.predict_proba(texts)

    def save(self, folder: Path) -> None:
        self.model.save(folder)

    def load(self, folder: Path) -> Any:
        return NewsClassifier.load(folder)


class _OursTopic:
    """Ours on topic-only data: ``fit`` returns the topic pipeline of a fit_model fit without tone."""

    def __init__(self, config: ExperimentConfig):
        self.config = config

    def fit(self, texts: list[str], labels: list[str]) -> Pipeline:
        none = [None] * len(texts)
        articles = Articles([str(i) for i in range(len(texts))], list(texts), list(labels), none, none)
        return fit_model(self.config, articles, has_tone=False).pipelines["topic"]


class PerTask:
    """A peer: a fresh model per task from ``make(task)``, fitted on that task's articles alone."""

    def __init__(self, make: Callable[[str], Any]):
        self.make = make

    def fit(self, articles: Articles) -> Fitted:
        models, seconds = {}, {}
        for task in TASKS:
            fit_on, labels = articles.for_task(task)
            started = time.perf_counter()
            models[task] = self.make(task).fit(fit_on.texts, labels)
            seconds[task] = time.perf_counter() - started
        return self._fitted(models, seconds)

    def topic_model(self) -> Any:
        return self.make("topic")

    def _fitted(self, models: dict[str, Any], seconds: dict[str, float]) -> Fitted:
        return Fitted(models, seconds)


class FastTextPeer(PerTask):
    """fastText per task: epochs and learning rate chosen over ``grid`` on a held-out part of each
    training set, or trained once with settings chosen earlier (:meth:`retrained`)."""

    def __init__(self, seed: int, grid: dict[str, tuple], params: dict[str, dict] | None = None):
        self.seed, self.grid, self.params = seed, grid, params
        super().__init__(self._classifier)

    def retrained(self, params: dict[str, dict]) -> FastTextPeer:
        """The same peer, training once per task with the settings a grid search chose (``tuned_params`` per task)."""
        return FastTextPeer(self.seed, self.grid, params)

    def _classifier(self, task: str) -> FastTextClassifier:
        return FastTextClassifier(self.grid, seed=self.seed, params=self.params[task] if self.params else None)

    def _fitted(self, models: dict[str, Any], seconds: dict[str, float]) -> Fitted:
        return FastTextFitted(models, seconds)


class FastTextFitted(Fitted):
    """fastText fitted: saved in its own binary format, one file a task."""

    def save(self, folder: Path) -> None:
        for task, model in self.models.items():
            model.save(folder / f"{task}.bin")

    def load(self, folder: Path) -> Any:
        import fasttext

        return [fasttext.load_model(str(folder / f"{task}.bin")) for task in self.models]


def fasttext_missing_reason() -> str | None:
    """Why fastText cannot run here, or None when it can."""
    try:
        import fasttext  # noqa: F401
    except ImportError as exc:
        return f"the optional extra is not installed ({exc}); pip install -e '.[bench]'"
    return None


class FastTextClassifier:
    """fastText supervised behind fit/predict on raw texts, its epochs and learning rate chosen on validation.

    :meth:`fit` holds out a stratified 10% of the training texts, trains once per point of ``grid``
    (epoch x lr) on the rest with :data:`FASTTEXT_FIXED`, keeps the point of best macro-F1 on the
    held-out part (a tie goes to the earlier point: fewer epochs, lower rate), and trains on all
    the texts with it. No wall-clock budget: the same data and seed give the same model. With
    ``params`` (:attr:`tuned_params` of an earlier fit) it trains once with those settings.
    """

    def __init__(self, grid: dict[str, tuple] = FASTTEXT_GRID, seed: int = 13, params: dict[str, Any] | None = None):
        self.grid, self.seed, self.params = grid, seed, params

    def fit(self, texts: list[str], labels: list[str]) -> FastTextClassifier:
        self.classes_ = sorted(set(labels))
        self.validation_scores: dict[str, float] = {}
        if self.params is None:
            held_out = max(len(self.classes_), round(0.1 * len(labels)))  # at least one item per class
            fit_texts, valid_texts, fit_labels, valid_labels = train_test_split(
                texts, labels, test_size=held_out, stratify=labels, random_state=self.seed
            )
            best = -1.0
            for epoch, lr in itertools.product(self.grid["epoch"], self.grid["lr"]):
                model = self._train(fit_texts, fit_labels, {"epoch": epoch, "lr": lr})
                score = macro_f1(valid_labels, _predict(model, valid_texts), self.classes_)
                self.validation_scores[f"epoch={epoch} lr={lr}"] = score
                if score > best:
                    best, chosen = score, {"epoch": epoch, "lr": lr}
                del model
            self.params = chosen
        self.model_ = self._train(texts, labels, self.params)
        self.tuned_params = dict(self.params)
        return self

    def predict(self, texts: list[str]) -> list[str]:
        return _predict(self.model_, texts)

    def save(self, path: Path) -> None:
        self.model_.save_model(str(path))

    def _train(self, texts: list[str], labels: list[str], params: dict[str, Any]):
        import fasttext

        # fastText reads its file in order with a decaying learning rate, so data sorted by label (BBC's
        # file, and the k-fold indices into it) leaves the last label's block to dominate: fed in file
        # order it scored 0.44-0.55 on BBC. The training lines are shuffled, with the seed.
        order = list(range(len(texts)))
        random.Random(self.seed).shuffle(order)
        with tempfile.TemporaryDirectory() as tmp:
            train_file = _fasttext_file(Path(tmp) / "train.txt", [texts[i] for i in order], [labels[i] for i in order])
            return fasttext.train_supervised(
                input=str(train_file), **FASTTEXT_FIXED, **params, seed=self.seed, verbose=0
            )


def _predict(model, texts: list[str]) -> list[str]:
    # A list goes through multilinePredict: fastText's single-text path breaks on NumPy 2.
    labels, _ = model.predict([_fasttext_text(text) for text in texts])
    return [label[0].removeprefix("__label__") for label in labels]


def _fasttext_text(text: str) -> str:
    # The tutorial's preprocessing: fastText splits on whitespace only, so lower-case and set punctuation apart.
    return " ".join(re.sub(r"([^\w\s])", r" \1 ", text.casefold()).split())


def _fasttext_file(path: Path, texts: list[str], labels: list[str]) -> Path:
    path.write_text(
        "".join(f"__label__{label.replace(' ', '_')} {_fasttext_text(text)}\n" for text, label in zip(texts, labels)),
        encoding="utf-8",
    )
    return path
