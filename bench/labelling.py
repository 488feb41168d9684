"""Which articles to label, measured: a prequential loop on one dated labelled corpus (CEP).

Fit on everything before ``start``; then month by month: predict the month (scored against its
labels, which the model has not seen), choose ``budget`` of its articles with a strategy of
``newsclf select``, reveal their labels and refit on all labels so far. Each strategy runs the same
loop; ``none`` never adds a label. Reported: topic and tone macro-F1 over all the months' articles.

This measures the choosing alone: the model is refit from scratch each month (cep-fast fits in
seconds), and there is no monitoring or gated promotion in the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from newsclf.train.config import ExperimentConfig
from newsclf.train.data.articles import Articles, UnlabelledArticle
from newsclf.train.evaluation.metrics import macro_f1, task_labels
from newsclf.train.fit.in_memory import fit_model
from newsclf.train.jobs.select import choose

# (name, select strategy or None, by_topic): "none" adds no label.
STRATEGIES = (
    ("none", None, False),
    ("random", "random", False),
    ("margin", "margin", False),
    ("margin by topic", "margin", True),
    ("entropy", "entropy", False),
)


def labelling_benchmark(
    articles: Articles,
    config: ExperimentConfig,
    since: str,
    start: str,
    end: str,
    budget: int,
    progress: Callable[[str], None] = lambda message: None,
) -> dict:
    """The loop for every strategy: articles dated [since, start) seed the model, months [start, end] are
    predicted then labelled (``budget`` a month). Dates are ISO; months are ``YYYY-MM``."""
    dated = [(date[:7], i) for i, date in enumerate(articles.dates) if date and since <= date[:10]]
    seed = [i for month, i in dated if month < start]
    months = sorted({month for month, _ in dated if start <= month <= end})
    results = {}
    for name, strategy, by_topic in STRATEGIES:
        started, known = time.perf_counter(), list(seed)
        truth: dict[str, list] = {"topic": [], "tone": []}
        guessed: dict[str, list] = {"topic": [], "tone": []}
        for number, month in enumerate(months):
            model = fit_model(config, articles.subset(known), True)
            window = [i for m, i in dated if m == month]
            predictions = model.predict([articles.texts[i] for i in window])
            for i, prediction in zip(window, predictions):
                truth["topic"].append(articles.topics[i])
                guessed["topic"].append(prediction["topic"])
                if articles.tones[i] is not None:
                    truth["tone"].append(articles.tones[i])
                    guessed["tone"].append(prediction["tone"])
            if strategy is not None:
                unlabelled = [UnlabelledArticle(str(i), articles.texts[i], articles.dates[i]) for i in window]
                chosen = choose(model, unlabelled, budget, strategy, by_topic, seed=number)
                known += [int(choice.article.id) for choice in chosen]
        scores = {
            f"{task}_macro_f1": macro_f1(truth[task], guessed[task], task_labels(model.labels(task), truth[task]))
            for task in truth
        }
        results[name] = scores | {"labels_used": len(known) - len(seed), "seconds": time.perf_counter() - started}
        progress(f"{name}: topic {scores['topic_macro_f1']:.4f}, tone {scores['tone_macro_f1']:.4f}")
    return {"seed_articles": len(seed), "months": months, "budget": budget, "strategies": results}


def labelling_page(results: dict, about: dict[str, str]) -> str:
    """The Markdown page of :func:`labelling_benchmark`'s results."""
    months = results["months"]
    lines = [
        "# Which articles to label: a prequential loop on CEP",
        "",
        f"Seeded with {results['seed_articles']:,} labelled articles, then month by month from {months[0]} to "
        f"{months[-1]} ({len(months)} months): predict the month, choose {results['budget']} of its articles, "
        "reveal their labels, refit on all labels so far. Macro-F1 over every month's articles, each scored by "
        "the model from before its labels were seen. Written by bench/labelling.py.",
        "",
        "| strategy | topic macro-F1 | tone macro-F1 | labels used | seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in results["strategies"].items():
        lines.append(
            f"| {name} | {row['topic_macro_f1']:.4f} | {row['tone_macro_f1']:.4f} | {row['labels_used']:,} "
            f"| {row['seconds']:.0f} |"
        )
    lines += ["", *(f"- {key}: {value}" for key, value in about.items())]
    return "\n".join(lines) + "\n"
