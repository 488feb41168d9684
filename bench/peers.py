"""The models the benchmark compares: ours (fitted as ``make train`` fits it) and its peers.

Every contender fits both tasks on the same articles (:meth:`fit` gives a :class:`Fitted`) and,
for the topic-only data sets, gives a fresh topic model behind ``fit(texts, labels)`` /
``predict(texts)`` (:meth:`topic_model`).
"""

from __future__ import annotations

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
from train.config import ExperimentConfig
from train.data import Articles
from train.training import fit_model

TASKS = ("topic", "tone")
# Display names of the models every section compares, in table order.
MODELS = {
    "ours": "ours (newsclf pipeline)",
    "tfidf_svc": "TF-IDF 1-2 gram + LinearSVC, defaults",
    "fasttext": "fastText supervised, autotuned",
    "majority": "majority class",
}


def contenders(config: ExperimentConfig, fasttext_seconds: int) -> dict[str, Any]:
    """Every model of the benchmark by name, in :data:`MODELS` order; fastText only when it is
    installed and ``fasttext_seconds`` > 0. ``config`` supplies ours (and the seed and threads of fastText)."""
    found: dict[str, Any] = {
        "ours": Ours(config),
        "tfidf_svc": PerTask(lambda task: plain_tfidf_svc()),
        "majority": PerTask(lambda task: DummyClassifier(strategy="most_frequent")),
    }
    if fasttext_seconds > 0 and fasttext_missing_reason() is None:
        found["fasttext"] = FastTextPeer(config, autotune_seconds=fasttext_seconds)
    return {name: found[name] for name in MODELS if name in found}


def plain_tfidf_svc(sublinear_tf: bool = False) -> Pipeline:
    """TF-IDF of words and word pairs + LinearSVC, scikit-learn's defaults otherwise."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=sublinear_tf), LinearSVC())


def workers(config: ExperimentConfig) -> int:
    """The experiment's n_jobs as a count of workers (-1 is every core), for fastText and the results."""
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
    """The project's model, fitted by :func:`train.training.fit_model`, the function that fits what
    ``make train`` ships: topic, tone and the tone-applies model, with the experiment's ``n_jobs``
    workers. ``validation`` is not used (ours' settings come from the experiment)."""

    def __init__(self, config: ExperimentConfig):
        self.config = config

    def fit(self, articles: Articles, validation: Articles | None = None) -> OursFitted:
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

    def fit(self, articles: Articles, validation: Articles | None = None) -> Fitted:
        models, seconds = {}, {}
        for task in TASKS:
            fit_on, labels = articles.for_task(task)
            started = time.perf_counter()
            models[task] = self._fit_task(self.make(task), fit_on, labels, validation, task)
            seconds[task] = time.perf_counter() - started
        return self._fitted(models, seconds)

    def topic_model(self) -> Any:
        return self.make("topic")

    def _fit_task(self, model, articles: Articles, labels: list, validation: Articles | None, task: str):
        return model.fit(articles.texts, labels)

    def _fitted(self, models: dict[str, Any], seconds: dict[str, float]) -> Fitted:
        return Fitted(models, seconds)


class FastTextPeer(PerTask):
    """fastText per task: autotuned (on the ``validation`` articles :meth:`fit` gets, if any), or
    trained once with the settings an earlier autotune chose (:meth:`retrained`)."""

    def __init__(self, config: ExperimentConfig, autotune_seconds: int = 30, params: dict[str, dict] | None = None):
        self.config, self.autotune_seconds, self.params = config, autotune_seconds, params
        super().__init__(self._classifier)

    def retrained(self, params: dict[str, dict]) -> FastTextPeer:
        """The same peer, training once per task with the settings an autotune chose (``tuned_params`` per task)."""
        return FastTextPeer(self.config, self.autotune_seconds, params)

    def _classifier(self, task: str) -> FastTextClassifier:
        return FastTextClassifier(
            autotune_seconds=self.autotune_seconds,
            seed=self.config.seed,
            params=self.params[task] if self.params else None,
            threads=workers(self.config),
        )

    def _fit_task(self, model, articles: Articles, labels: list, validation: Articles | None, task: str):
        if validation is None:
            return model.fit(articles.texts, labels)
        held_out, held_out_labels = validation.for_task(task)
        return model.fit(articles.texts, labels, validation=(held_out.texts, held_out_labels))

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

    def __init__(
        self, autotune_seconds: int = 30, seed: int = 13, params: dict[str, Any] | None = None, threads: int = 1
    ):
        self.autotune_seconds, self.seed, self.params, self.threads = autotune_seconds, seed, params, threads

    def fit(
        self, texts: list[str], labels: list[str], validation: tuple[list[str], list[str]] | None = None
    ) -> FastTextClassifier:
        import fasttext

        self.classes_ = sorted(set(labels))
        with tempfile.TemporaryDirectory() as tmp:
            train_file = _fasttext_file(Path(tmp) / "train.txt", texts, labels)
            if self.params is not None:
                self.model_ = fasttext.train_supervised(
                    input=str(train_file), **self.params, thread=self.threads, seed=self.seed, verbose=0
                )
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
                    input=str(train_file),
                    autotuneValidationFile=str(valid_file),
                    autotuneDuration=self.autotune_seconds,
                    thread=self.threads,
                    seed=self.seed,
                    verbose=0,
                    **_FASTTEXT_FIXED,
                )
        args = self.model_.f.getArgs()
        self.tuned_params = {
            name: getattr(args, name)
            for name in ("lr", "dim", "ws", "epoch", "minCount", "wordNgrams", "bucket", "minn", "maxn")
        }
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
    path.write_text(
        "".join(f"__label__{label.replace(' ', '_')} {_fasttext_text(text)}\n" for text, label in zip(texts, labels)),
        encoding="utf-8",
    )
    return path
