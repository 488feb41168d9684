"""The loop that keeps a model current, measured prequentially on one dated labelled file (CEP).

Train on everything before ``start`` (a tenth of it, drawn at random, kept out as the old
reference). Then, for each month: the champion predicts it (scored against its labels, which no
model has seen), ``newsclf monitor``'s signals are computed on it (alarm or not), ``budget`` of its
articles are chosen with a strategy of ``newsclf select`` and their labels revealed, and the gate
judges the pending candidate (trained at the end of the month before, on the champion's data and
every label revealed until then) against the champion: promotion's own rule, significantly better
on this month's revealed labels and not significantly worse on the old reference. Then a new
candidate is trained on everything revealed so far. ``none`` reveals nothing and never updates.

The same loop with every update kept at once (no gate, no month of waiting) is measured beside
it, so the page shows what the gate costs or saves.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from newsclf.model import NewsClassifier
from newsclf.train.config import ExperimentConfig
from newsclf.train.data.articles import Articles, UnlabelledArticle
from newsclf.train.evaluation.comparison import compare_models
from newsclf.train.evaluation.metrics import macro_f1, task_labels
from newsclf.train.fit.in_memory import fit_model
from newsclf.train.jobs.monitor import monitor
from newsclf.train.jobs.select import choose
from newsclf.train.tracking.promotion import passes_gate

# (name, select strategy or None, by_topic): "none" reveals no label.
STRATEGIES = (
    ("none", None, False),
    ("random", "random", False),
    ("margin", "margin", False),
    ("margin by topic", "margin", True),
    ("entropy", "entropy", False),
)
TASKS = ("topic", "tone")


def loop_benchmark(
    articles: Articles,
    config: ExperimentConfig,
    start: str,
    budget: int,
    end: str = "9999-12",
    since: str = "",
    progress: Callable[[str], None] = lambda message: None,
) -> dict:
    """Every strategy through the gated loop and through the loop that keeps every update; months
    are ``YYYY-MM`` from ``start`` to ``end``, the model seeded with the articles dated from ``since``
    (ISO, empty: all) to before ``start``."""
    dated = [(date[:7], i) for i, date in enumerate(articles.dates) if date and since <= date[:10]]
    before = [i for month, i in dated if month < start]
    found = sorted({month for month, _ in dated if start <= month <= end})
    if not before or not found:
        raise ValueError(f"need articles before {start} and in the months from {start} to {end}")
    months = _calendar(found[0], found[-1])  # a month without articles is skipped, and said
    held = set(np.random.default_rng(config.seed).choice(len(before), size=len(before) // 10, replace=False))
    seed = [i for n, i in enumerate(before) if n not in held]
    reference = articles.subset([i for n, i in enumerate(before) if n in held])
    by_month = {month: [i for m, i in dated if m == month] for month in months}
    runs = {}
    for gated in (True, False):
        runs[gated] = {}
        for name, strategy, by_topic in STRATEGIES:
            if name == "none" and not gated:
                runs[gated][name] = runs[True][name]  # nothing to update, nothing to gate
                continue
            loop = _Loop(articles, config, seed, reference, gated)
            runs[gated][name] = loop.run(by_month, budget, strategy, by_topic, progress)
            row = runs[gated][name]
            progress(
                f"{name}{'' if gated else ' (every update kept)'}: topic {row['topic_macro_f1']:.4f}, "
                f"tone {row['tone_macro_f1']:.4f}, {row['updates_promoted']} updates promoted"
            )
    return {
        "seed_articles": len(seed),
        "reference_articles": len(reference),
        "months": months,
        "skipped_months": [month for month in months if not by_month[month]],
        "budget": budget,
        "strategies": runs[True],
        "every_update_kept": runs[False],
    }


def _calendar(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` (``YYYY-MM``), in order."""
    year, month = int(first[:4]), int(first[5:7])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


class _Loop:
    """One strategy's run: the champion, the pending candidate, the labels revealed so far."""

    def __init__(self, articles: Articles, config: ExperimentConfig, seed: list[int], reference, gated: bool):
        self.articles, self.config, self.seed, self.reference, self.gated = articles, config, seed, reference, gated
        self.revealed: list[int] = []
        self.champion, self.mix = self._fit(seed)
        self.pending: tuple[NewsClassifier, dict] | None = None
        self.update_seconds: list[float] = []

    def run(self, by_month: dict[str, list[int]], budget: int, strategy, by_topic: bool, progress) -> dict:
        """Every month in turn; the totals and the months."""
        truth: dict[str, list] = {task: [] for task in TASKS}
        guessed: dict[str, list] = {task: [] for task in TASKS}
        months, promoted, alarms = [], 0, []
        for number, (month, window) in enumerate(by_month.items()):
            if not window:
                progress(f"{month}: no articles, skipped")
                continue
            unlabelled = [UnlabelledArticle(str(i), self.articles.texts[i], self.articles.dates[i]) for i in window]
            row = self._predict(month, window, unlabelled, truth, guessed)
            alarms += [month] if row["alarm"] else []
            if strategy is not None:
                picks = choose(self.champion, unlabelled, budget, strategy, by_topic, seed=number)
                chosen = [int(choice.article.id) for choice in picks]
                row["promoted"] = self._update(chosen)
                promoted += row["promoted"]
            months.append(row)
        scores = {
            f"{task}_macro_f1": macro_f1(
                truth[task], guessed[task], task_labels(self.champion.labels(task), truth[task])
            )
            for task in TASKS
            if truth[task]
        }
        return scores | {
            "labels_used": len(self.revealed),
            "updates_promoted": promoted,
            "alarms": alarms,
            "update_seconds_median": statistics.median(self.update_seconds) if self.update_seconds else 0.0,
            "months": months,
        }

    def _predict(
        self, month: str, window: list[int], unlabelled: list[UnlabelledArticle], truth: dict, guessed: dict
    ) -> dict:
        """Score the champion on the month, as it stood before any of the month's labels, and monitor it."""
        texts = [self.articles.texts[i] for i in window]
        predictions = self.champion.predict(texts)
        month_truth, month_guess = [], []
        for i, prediction in zip(window, predictions):
            month_truth.append(self.articles.topics[i])
            month_guess.append(prediction["topic"])
            for task in TASKS:
                label = self.articles.topics[i] if task == "topic" else self.articles.tones[i]
                if label is not None:
                    truth[task].append(label)
                    guessed[task].append(prediction[task])
        (signals,) = monitor(self.champion, unlabelled, self.mix, by=str(len(window)))
        labels = task_labels(self.champion.labels("topic"), month_truth)
        return {
            "month": month,
            "articles": len(window),
            "topic_macro_f1": macro_f1(month_truth, month_guess, labels),
            "psi": signals.psi,
            "alarm": signals.alarm,
            "promoted": False,
        }

    def _update(self, chosen: list[int]) -> bool:
        """Reveal ``chosen``; judge the pending candidate on them (gated) and train the next one; whether
        the champion changed."""
        promoted = False
        if not self.gated:
            self.revealed += chosen
            self.champion, self.mix = self._timed_fit()
            return True
        if self.pending is not None and chosen:
            candidate, mix = self.pending
            on_recent = compare_models(self.champion, candidate, self.articles.subset(chosen), seed=self.config.seed)
            on_reference = compare_models(self.champion, candidate, self.reference, seed=self.config.seed)
            if passes_gate(on_recent, on_reference):
                self.champion, self.mix, promoted = candidate, mix, True
        self.revealed += chosen
        self.pending = self._timed_fit()
        return promoted

    def _timed_fit(self) -> tuple[NewsClassifier, dict[str, float]]:
        """An update: the seed and every label revealed so far, refitted; its seconds are kept."""
        started = time.perf_counter()
        fitted = self._fit(self.seed + self.revealed)
        self.update_seconds.append(time.perf_counter() - started)
        return fitted

    def _fit(self, indices: list[int]) -> tuple[NewsClassifier, dict[str, float]]:
        """A model of the experiment's settings on ``indices``, and the topic mix it trained on."""
        trained = self.articles.subset(indices)
        model = fit_model(self.config, trained, True)
        counts = Counter(trained.topics)
        return model, {topic: n / len(trained) for topic, n in counts.items()}


def loop_page(results: dict, about: dict[str, str]) -> str:
    """The Markdown page of :func:`loop_benchmark`'s results."""
    months = results["months"]
    names = list(results["strategies"])
    lines = [
        "# Keeping the model current: monitor, select, update, gate, month by month on CEP",
        "",
        f"Trained on {results['seed_articles']:,} labelled articles from before {months[0]} "
        f"({results['reference_articles']:,} more kept out as the old reference), then month by month from "
        f"{months[0]} to {months[-1]} ({len(months)} months): the champion predicts the month (scored), the "
        f"monitor checks it, {results['budget']} of its articles are chosen and their labels revealed, the "
        "candidate trained a month earlier replaces the champion only if significantly better on those labels "
        "and not significantly worse on the old reference (promotion's rule), and a new candidate is trained "
        "on everything revealed so far. Macro-F1 over every month's articles. Written by bench/loop.py.",
        "",
        "| strategy | topic macro-F1 | tone macro-F1 | labels used | updates promoted | alarms | update s (median) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in results["strategies"].items():
        lines.append(
            f"| {name} | {row['topic_macro_f1']:.4f} | {row['tone_macro_f1']:.4f} | {row['labels_used']:,} "
            f"| {row['updates_promoted']} | {len(row['alarms'])} | {row['update_seconds_median']:.2f} |"
        )
    lines += [
        "",
        "## Every update kept (no gate)",
        "",
        "The same months with each month's labels folded in at once and the refitted model always kept.",
        "",
        "| strategy | topic macro-F1 | tone macro-F1 | labels used |",
        "|---|---:|---:|---:|",
    ]
    for name, row in results["every_update_kept"].items():
        lines.append(f"| {name} | {row['topic_macro_f1']:.4f} | {row['tone_macro_f1']:.4f} | {row['labels_used']:,} |")
    lines += [
        "",
        "## Month by month (gated)",
        "",
        "Topic macro-F1 of the champion on each month; `*` after it: a candidate was promoted at the month's "
        "end. PSI and alarm are the monitor's, for the model that was never updated.",
        "",
        "| month | articles | PSI | alarm | " + " | ".join(names) + " |",
        "|---|---:|---:|---|" + "---:|" * len(names),
    ]
    rows = {name: {row["month"]: row for row in results["strategies"][name]["months"]} for name in names}
    for month in months:
        first = rows["none"].get(month)
        if first is None:
            continue
        cells = [
            f"{rows[name][month]['topic_macro_f1']:.3f}{'*' if rows[name][month]['promoted'] else ''}"
            for name in names
        ]
        alarm = "yes" if first["alarm"] else ""
        lines.append(f"| {month} | {first['articles']} | {first['psi']:.2f} | {alarm} | " + " | ".join(cells) + " |")
    if results["skipped_months"]:
        lines += ["", f"Months without articles, skipped: {', '.join(results['skipped_months'])}."]
    lines += ["", *(f"- {key}: {value}" for key, value in about.items())]
    return "\n".join(lines) + "\n"


def log_loop(results: dict, page: str, experiment: str, tracking_uri: str) -> list[str]:
    """One MLflow run per gated strategy in ``experiment``: a step per month, the totals, the page."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    run_ids = []
    for name, row in results["strategies"].items():
        with mlflow.start_run(run_name=f"loop {name}") as run:
            mlflow.log_params({"strategy": name, "budget": results["budget"], "months": len(results["months"])})
            for step, month in enumerate(row["months"]):
                numbers = {key: float(month[key]) for key in ("topic_macro_f1", "psi", "alarm", "promoted")}
                mlflow.log_metrics({f"month/{key}": value for key, value in numbers.items()}, step=step)
            mlflow.log_metrics(
                {
                    key: float(row[key])
                    for key in ("topic_macro_f1", "tone_macro_f1", "labels_used", "updates_promoted")
                }
            )
            mlflow.log_text(page, "loop.md")
            run_ids.append(run.info.run_id)
    return run_ids
