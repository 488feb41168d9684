"""Explanation pages of a few validation articles, logged with the training run so they open in the MLflow UI."""

from __future__ import annotations

from typing import Any

from newsclf.model import NewsClassifier
from newsclf.page import ModelSource, article_page
from newsclf.train.data.articles import Articles
from newsclf.train.evaluation.evaluate import Evaluation
from newsclf.train.tracking.registry import MODEL_ARTIFACT

# The run's artifact folder holding the pages.
PAGES_FOLDER = "explanations"
# Articles per kind of interest: at most three kinds of two, so six pages, a few hundred milliseconds.
PER_KIND = 2
MOST_CONFIDENT, LEAST_CONFIDENT, CONFIDENT_MISTAKE = "most confident", "least confident", "most confident mistake"
_KIND_PHRASE = {
    MOST_CONFIDENT: "most confident predictions",
    LEAST_CONFIDENT: "least confident predictions",
    CONFIDENT_MISTAKE: "most confident mistakes",
}


def notable_articles(predictions: list[dict[str, Any]], topics: list[str], per_kind: int = PER_KIND):
    """The indices of the articles worth a page, each with why, as ``(index, kind)`` pairs.

    The ``per_kind`` articles with the most probable predicted topic, those with the least probable
    one, and the wrongly labelled ones with the most probable topic; an article is listed once, under
    the first of these kinds it belongs to (mistakes first, as the most telling).
    """
    by_confidence = sorted(range(len(predictions)), key=lambda i: (-predictions[i]["topic_probability"], i))
    mistakes = [i for i in by_confidence if predictions[i]["topic"] != topics[i]]
    kinds = (
        (CONFIDENT_MISTAKE, mistakes[:per_kind]),
        (MOST_CONFIDENT, by_confidence[:per_kind]),
        (LEAST_CONFIDENT, by_confidence[::-1][:per_kind]),
    )
    chosen: dict[int, str] = {}
    for kind, indices in kinds:
        for index in indices:
            chosen.setdefault(index, kind)
    return list(chosen.items())


def log_explanation_pages(
    model: NewsClassifier, validation: Articles, run_id: str, evaluation: Evaluation | None = None
) -> list[str]:
    """Log the explanation page of each :func:`notable_articles` validation article to the active run, under
    ``explanations/``; returns the artifact paths. Nothing is logged when there are no validation articles.

    ``evaluation``, the run's evaluation of ``model`` on ``validation``, supplies the predictions instead
    of predicting every article again."""
    import mlflow

    if not len(validation):
        return []
    topic = evaluation.tasks.get("topic") if evaluation is not None else None
    if topic is not None and topic.proba is not None and topic.ids == list(validation.ids):
        best = topic.proba.max(axis=1).tolist()
        predictions = [{"topic": label, "topic_probability": p} for label, p in zip(topic.y_pred, best)]
    else:
        predictions = model.predict(validation.texts)
    source = ModelSource(f"runs:/{run_id}/{MODEL_ARTIFACT}", None, run_id)
    paths = []
    for number, (index, kind) in enumerate(notable_articles(predictions, validation.topics), start=1):
        tone = validation.tones[index]
        note = (
            f"Validation article {validation.ids[index]}, labelled {validation.topics[index]}"
            f"{f' and {tone}' if tone else ''}: one of this run's {_KIND_PHRASE[kind]} on validation."
        )
        page = article_page(
            model, validation.texts[index], source, title=f"article {validation.ids[index]}", note=note
        )
        path = f"{PAGES_FOLDER}/{number}-{kind.replace(' ', '-')}.html"
        mlflow.log_text(page, path)
        paths.append(path)
    return paths
