"""``newsclf monitor``: is the model ageing? Signals per window of unlabelled, dated articles.

Per window (a month, an ISO week, or N articles in file order): the predicted topic mix against
the mix the model trained on (the population stability index, PSI, and a chi-square test's
p-value), the mean confidence of the topic and tone predictions (for a calibrated model, the
accuracy its probabilities predict), the share of word occurrences whose word the model's
vocabulary lacks, and the unseen words that grew most (a new disease's name, say).

The alarm rule, chosen on the Current Events Portal (a model of ``cep-fast``'s settings trained on
2010-2011, monitored month by month over 2012-2017): **PSI of the predicted topic mix >= 0.25**.
It fired in the five months (2012-12 to 2013-04, PSI 0.35 to 0.62) whose true topic mix had
shifted most (true-label PSI 0.7 to 1.9), from the first of them, and in none of the other 67
(largest 0.23, 2013-05, that shift's tail). The chi-square p-value is reported but raises no alarm:
with a few hundred articles a month it is below 0.01 in most months of that period.
"""

from __future__ import annotations

import datetime
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from newsclf._files import remove_temporary
from newsclf.errors import NewsclfError
from newsclf.model import NewsClassifier
from newsclf.steps import cleaner_of, tfidf_of
from newsclf.train.config import DataConfig
from newsclf.train.data.articles import UnlabelledArticle
from newsclf.train.data.loading import load_splits, load_unlabelled
from newsclf.train.data.sources import describe
from newsclf.train.jobs.evaluate import experiment_of, resolve_model
from newsclf.train.tracking.outputs import OutputFolder
from newsclf.train.tracking.runs import connect, liveness, run_config

ALARM_PSI = 0.25
# PSI reads log(p / q): a topic missing from one side counts as this share, not zero.
_PSI_FLOOR = 1e-4
# Unseen words listed per window, and the fewest articles one must be in to be listed.
_NEW_TERMS, _NEW_TERM_MIN_ARTICLES = 10, 3
REPORT, WINDOWS, FIGURE = "monitor.md", "windows.json", "signals.png"

__all__ = ["ALARM_PSI", "Window", "monitor", "population_stability", "run_monitor", "write_monitor"]


@dataclass
class Window:
    """The signals of one window of articles."""

    window: str
    articles: int
    topic_mix: dict[str, float]
    psi: float
    chi_square_p: float
    topic_confidence: float
    tone_confidence: float | None
    unseen_word_share: float | None  # None: a hashed model has no vocabulary to miss words from
    new_terms: list[tuple[str, int]] = field(default_factory=list)
    alarm: bool = False


def population_stability(current: np.ndarray, reference: np.ndarray) -> float:
    """The population stability index of two distributions over the same labels (0: the same)."""
    current, reference = np.clip(current, _PSI_FLOOR, None), np.clip(reference, _PSI_FLOOR, None)
    return float(((current - reference) * np.log(current / reference)).sum())


def windows_of(articles: list[UnlabelledArticle], by: str) -> list[tuple[str, list[UnlabelledArticle]]]:
    """The articles grouped by ``month``, ISO ``week`` or every N (a number) in file order; dated windows
    in time order. An article without a usable date is an error naming it when grouping by date."""
    if by.isdigit():
        size = int(by)
        return [
            (f"articles {start + 1}-{min(start + size, len(articles))}", articles[start : start + size])
            for start in range(0, len(articles), size)
        ]
    groups: dict[str, list[UnlabelledArticle]] = {}
    for article in articles:
        try:
            day = datetime.date.fromisoformat(str(article.date)[:10])
        except ValueError:
            raise NewsclfError(
                f"article {article.id}: date {article.date!r} is not an ISO date (YYYY-MM-DD); monitoring by "
                f"{by} needs one on every article (or pass --by N to watch every N articles)"
            ) from None
        year, week, _ = day.isocalendar()
        groups.setdefault(f"{year}-W{week:02d}" if by == "week" else day.isoformat()[:7], []).append(article)
    return sorted(groups.items())


def monitor(
    model: NewsClassifier,
    articles: list[UnlabelledArticle],
    training_mix: Mapping[str, float],
    by: str = "month",
    progress: Callable[[str], None] = lambda message: None,
) -> list[Window]:
    """The signals of every window of ``articles`` against the model's ``training_mix`` (topic -> share)."""
    from scipy.stats import chisquare

    labels = model.labels("topic")
    reference = np.array([training_mix.get(label, 0.0) for label in labels], dtype=float)
    reference /= reference.sum()
    words = _word_vocabulary(model)
    cleaner = cleaner_of(model.pipelines["topic"])
    found = []
    for name, members in windows_of(articles, by):
        progress(f"window {name}: {len(members)} articles")
        texts = [article.text for article in members]
        proba = model.predict_proba(texts)
        counts = np.bincount(proba["topic"].argmax(axis=1), minlength=len(labels))
        mix = counts / counts.sum()
        # Half an article added to every count, so a topic the window lacks does not void the test.
        expected = reference * (counts.sum() + 0.5 * len(labels))
        window = Window(
            window=name,
            articles=len(members),
            topic_mix={label: float(share) for label, share in zip(labels, mix)},
            psi=population_stability(mix, reference),
            chi_square_p=float(chisquare(counts + 0.5, expected).pvalue),
            topic_confidence=float(proba["topic"].max(axis=1).mean()),
            tone_confidence=float(proba["tone"].max(axis=1).mean()) if "tone" in proba else None,
            unseen_word_share=None,
        )
        if words is not None:
            window.unseen_word_share, window.new_terms = _unseen(list(cleaner.transform(texts)), words)
        window.alarm = window.psi >= ALARM_PSI
        found.append(window)
    if not found:
        raise NewsclfError("no articles to monitor; pass a file that holds some")
    return found


def _word_vocabulary(model: NewsClassifier):
    """The topic model's word block (its vocabulary, analyzer and max_df); None for hashed words."""
    for _, block in tfidf_of(model.pipelines["topic"]).transformer_list:
        if getattr(block, "analyzer", None) == "word" and hasattr(block, "vocabulary_"):
            return block
    return None


def _unseen(cleaned, block) -> tuple[float, list[tuple[str, int]]]:
    """The share of word occurrences the vocabulary lacks, and the unseen words in most articles.

    A word in more than ``max_df`` of the window's articles is left out: the vocabulary dropped such
    words (the, of) for being too common in training, not for being new."""
    vocabulary, analyzer = block.vocabulary_, block.build_analyzer()
    occurrences: Counter = Counter()
    documents: Counter = Counter()
    total = 0
    for text in cleaned:
        words = [term for term in analyzer(text) if " " not in term]
        total += len(words)
        unseen = [word for word in words if word not in vocabulary]
        occurrences.update(unseen)
        documents.update(set(unseen))
    limit = block.max_df * len(cleaned) if isinstance(block.max_df, float) else block.max_df
    new = {word: n for word, n in documents.items() if n <= limit}
    missing = sum(occurrences[word] for word in new)
    ranked = sorted(new.items(), key=lambda item: (-item[1], item[0]))[:_NEW_TERMS]
    return (missing / total if total else 0.0), [(word, n) for word, n in ranked if n >= _NEW_TERM_MIN_ARTICLES]


def write_monitor(windows: list[Window], folder: Path, header: Mapping[str, str]) -> list[Path]:
    """``monitor.md``, ``windows.json`` and ``signals.png`` (each signal over the windows, alarms marked)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WINDOWS).write_text(json.dumps([asdict(window) for window in windows], indent=2) + "\n")
    _figure(windows, folder / FIGURE)
    alarms = [window.window for window in windows if window.alarm]
    lines = [f"# Monitoring {header.get('model', 'the model')}", ""]
    lines += [f"- {key}: {value}" for key, value in header.items()]
    lines += [
        "",
        f"**Alarm rule:** PSI of the predicted topic mix against the training mix >= {ALARM_PSI}. "
        + (f"Alarms: {', '.join(alarms)}." if alarms else "No alarm."),
        "",
        f"![signals]({FIGURE})",
        "",
        "| window | articles | PSI | chi-square p | topic confidence | tone confidence | unseen words | alarm |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for window in windows:
        lines.append(
            f"| {window.window} | {window.articles} | {window.psi:.3f} | {window.chi_square_p:.1e} "
            f"| {window.topic_confidence:.3f} | {_number(window.tone_confidence)} "
            f"| {_number(window.unseen_word_share)} | {'**alarm**' if window.alarm else ''} |"
        )
    grown = [window for window in windows if window.new_terms]
    if grown:
        lines += ["", "## Unseen words in most articles", ""]
        lines += [
            f"- {window.window}: " + ", ".join(f"{word} ({n})" for word, n in window.new_terms) for window in grown
        ]
    (folder / REPORT).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [folder / REPORT, folder / WINDOWS, folder / FIGURE]


def _number(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _figure(windows: list[Window], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(windows))
    figure, axes = plt.subplots(3, 1, figsize=(max(6, 0.25 * len(windows) + 3), 7), sharex=True)
    axes[0].plot(x, [window.psi for window in windows], marker="o")
    axes[0].axhline(ALARM_PSI, color="red", linestyle="--", label=f"alarm at {ALARM_PSI}")
    axes[0].set_ylabel("topic-mix PSI")
    axes[0].legend(loc="upper left")
    axes[1].plot(x, [window.topic_confidence for window in windows], marker="o", label="topic")
    if windows[0].tone_confidence is not None:
        axes[1].plot(x, [window.tone_confidence for window in windows], marker="o", label="tone")
    axes[1].set_ylabel("mean confidence")
    axes[1].legend(loc="lower left")
    axes[2].plot(x, [np.nan if w.unseen_word_share is None else w.unseen_word_share for w in windows], marker="o")
    axes[2].set_ylabel("unseen word share")
    for axis in axes:
        for i, window in enumerate(windows):
            if window.alarm:
                axis.axvspan(i - 0.5, i + 0.5, color="red", alpha=0.12)
    axes[2].set_xticks(x, [window.window for window in windows], rotation=90, fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def training_mix(model: NewsClassifier, client, tracking_uri: str) -> dict[str, float]:
    """The topic mix the model trained on: from its metadata, else rebuilt from its training run's data."""
    if model.metadata.get("topic_mix"):
        return dict(model.metadata["topic_mix"])
    config = run_config(client, model.metadata.get("run_id")) if client is not None else None
    if config is None:
        raise NewsclfError(
            "the topic mix this model trained on is unknown (no topic_mix in its metadata and no readable "
            "training run); retrain it with this version of newsclf, which records it"
        )
    topics = Counter(load_splits(config.data, config.split, config.dedup, config.seed).train.topics)
    total = sum(topics.values())
    return {topic: n / total for topic, n in topics.items()}


def log_monitor(windows: list[Window], written: list[Path], params: Mapping[str, Any]) -> None:
    """One step per window of every signal, the files and ``params``, on the active MLflow run."""
    import mlflow

    mlflow.log_params(params)
    mlflow.set_tag("newsclf.kind", "monitor")
    for step, window in enumerate(windows):
        values = {"psi": window.psi, "chi_square_p": window.chi_square_p, "topic_confidence": window.topic_confidence}
        values |= {"alarm": float(window.alarm), "articles": float(window.articles)}
        if window.tone_confidence is not None:
            values["tone_confidence"] = window.tone_confidence
        if window.unseen_word_share is not None:
            values["unseen_word_share"] = window.unseen_word_share
        mlflow.log_metrics({f"monitor/{key}": value for key, value in values.items()}, step=step)
    for path in written:
        mlflow.log_artifact(str(path), "monitor")
    mlflow.log_metric("monitor/alarms", float(sum(window.alarm for window in windows)))


_MONITOR = OutputFolder("monitor", "a monitoring report", "newsclf monitor", Path("reports") / "monitor" / "mine")


def run_monitor(
    model_uri: str,
    data: DataConfig,
    tracking_uri: str,
    by: str = "month",
    output: Path | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> tuple[Path, str, list[Window]]:
    """Monitor ``model_uri`` on the unlabelled articles of ``data``: the report folder (``output``, by
    default reports/monitor/<model>), an MLflow run in the model's experiment; returns both and the windows.

    The store, the output folder, the model and the data are checked before the run starts."""
    import mlflow
    from mlflow.tracking import MlflowClient

    if not (by in ("month", "week") or (by.isdigit() and int(by) > 0)):
        raise NewsclfError(f"--by {by}: pass month, week or a number of articles per window")
    connect(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    progress(f"loading {model_uri}")
    candidate = resolve_model(model_uri, client, tracking_uri)
    output = output or Path("reports") / "monitor" / candidate.slug
    _MONITOR.check(output, tracking_uri, client)
    articles = load_unlabelled(data)
    mix = training_mix(candidate.model, client, tracking_uri)
    windows = monitor(candidate.model, articles, mix, by, progress)
    header = {"model": model_uri, "data": describe(data.source), "windows": f"by {by}", "articles": str(len(articles))}
    staging = _MONITOR.new_staging(output)
    try:
        experiment_id = experiment_of(client, candidate.run_id)
        with (
            mlflow.start_run(experiment_id=experiment_id, run_name=f"monitor {candidate.slug}") as run,
            liveness(tracking_uri, run.info.run_id),
        ):
            written = write_monitor(windows, staging, header | {"MLflow run": run.info.run_id})
            log_monitor(windows, written, {"model": model_uri, "data": header["data"], "by": by})
            _MONITOR.put_in_place(staging, [path.name for path in written], output)
    finally:
        remove_temporary(staging)
    return output, run.info.run_id, windows
