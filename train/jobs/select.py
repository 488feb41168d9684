"""``newsclf select``: the unlabelled articles most worth a label, with why each was chosen.

Uncertainty ranks them: the entropy of the topic probabilities (``entropy``, the default: in the
loop bench on CEP 2015-2017, bench/loop.md, it scored best behind the gate, topic and tone) or the
gap between the two most probable topics (``margin``); where the tone axis applies (P(applies) >= 0.5),
the tone's uncertainty counts too, the larger of the two deciding. Diversity keeps the budget from
being spent on one story: near-duplicates (the MinHash rule training de-duplicates by) collapse to
their most uncertain copy, and ``by_topic`` takes the most uncertain article of each predicted topic
in turn. ``random`` (a seeded sample of the same collapsed articles) is the baseline to beat.

Each selected line carries the article (id, text, date) and the model's guess, so a reviewer adds
``topic`` (and ``tone``, where one applies) and the file is a labelled corpus file as training reads it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from newsclf.batch import check_output, write_jsonl
from newsclf.errors import NewsclfError
from newsclf.folder import TONE_APPLIES
from newsclf.model import NewsClassifier
from newsclf.train.config import DataConfig, DedupConfig
from newsclf.train.data.articles import UnlabelledArticle
from newsclf.train.data.dedup import find_duplicates
from newsclf.train.data.loading import load_unlabelled
from newsclf.train.jobs.evaluate import resolve_model
from newsclf.train.tracking.runs import connect

STRATEGIES = ("margin", "entropy", "random")

__all__ = ["STRATEGIES", "Choice", "choose", "run_select"]


@dataclass(frozen=True)
class Choice:
    """One article chosen for labelling, its uncertainty (0 sure, 1 unsure) and why it was chosen."""

    article: UnlabelledArticle
    score: float
    why: str
    guess: dict


def choose(
    model: NewsClassifier,
    articles: list[UnlabelledArticle],
    budget: int,
    strategy: str = "entropy",
    by_topic: bool = False,
    dedup: DedupConfig | None = None,
    seed: int = 0,
) -> list[Choice]:
    """The ``budget`` articles most worth a label (see the module docstring), most uncertain first."""
    if strategy not in STRATEGIES:
        raise NewsclfError(f"strategy {strategy!r}: choose one of {list(STRATEGIES)}")
    if budget < 1:
        raise NewsclfError(f"budget {budget}: pass at least 1 article to select")
    if not articles:
        raise NewsclfError("no articles to select from; pass a file that holds some")
    texts = [article.text for article in articles]
    proba = model.predict_proba(texts)
    topic_labels = model.labels("topic")
    topic_score = _uncertainty(proba["topic"], "entropy" if strategy == "entropy" else "margin")
    score, tone_score = topic_score, None
    if "tone" in proba:
        tone_score = _uncertainty(proba["tone"], "entropy" if strategy == "entropy" else "margin")
        applies = proba.get(TONE_APPLIES, np.ones(len(texts)))
        score = np.maximum(topic_score, np.where(applies >= 0.5, tone_score, 0.0))
    # Near-duplicates collapse to their most uncertain copy.
    dedup = dedup or DedupConfig()
    found = find_duplicates(texts, threshold=dedup.near_threshold, shingle_size=dedup.shingle_size)
    copies = np.zeros(len(texts), dtype=int)
    candidates = set(range(len(texts)))
    for group in found.groups:
        kept = max(group.indices, key=lambda i: (score[i], -i))
        candidates -= set(group.indices) - {kept}
        copies[kept] = len(group.indices) - 1
    order = sorted(candidates, key=lambda i: (-score[i], i))
    if strategy == "random":
        order = list(np.random.default_rng(seed).permutation(sorted(candidates)))
    if by_topic:
        order = _round_robin(order, proba["topic"].argmax(axis=1))
    chosen = []
    for i in order[:budget]:
        best = np.argsort(-proba["topic"][i])[:2]
        reasons = [
            f"topic {strategy if strategy != 'random' else 'margin'}: {topic_labels[best[0]]} "
            f"{proba['topic'][i, best[0]]:.2f} vs {topic_labels[best[1]]} {proba['topic'][i, best[1]]:.2f}"
        ]
        if tone_score is not None and score[i] > topic_score[i]:
            reasons.append(f"tone uncertain ({tone_score[i]:.2f})")
        if strategy == "random":
            reasons.insert(0, "random sample")
        if copies[i]:
            reasons.append(f"stands for {copies[i]} near-duplicate(s)")
        guess = {"topic": topic_labels[best[0]], "topic_probability": float(proba["topic"][i, best[0]])}
        if "tone" in proba:
            tones = model.labels("tone")
            guess |= {"tone": tones[int(proba["tone"][i].argmax())], "tone_probability": float(proba["tone"][i].max())}
        if TONE_APPLIES in proba:
            guess["tone_applies_probability"] = float(proba[TONE_APPLIES][i])
        chosen.append(Choice(articles[i], float(score[i]), "; ".join(reasons), guess))
    return chosen


def _uncertainty(proba: np.ndarray, kind: str) -> np.ndarray:
    """1 - (p1 - p2), or the entropy over log(k): 0 for a sure prediction, 1 for a coin toss."""
    if kind == "entropy":
        clipped = np.clip(proba, 1e-12, 1.0)
        return -(clipped * np.log(clipped)).sum(axis=1) / math.log(proba.shape[1])
    top = np.sort(proba, axis=1)[:, -2:]
    return 1.0 - (top[:, 1] - top[:, 0])


def _round_robin(order: list[int], topics: np.ndarray) -> list[int]:
    """``order`` interleaved by predicted topic: the first of each topic, then the second of each, ..."""
    queues: dict[int, list[int]] = {}
    for i in order:
        queues.setdefault(int(topics[i]), []).append(i)
    interleaved = []
    for depth in range(max(len(queue) for queue in queues.values())):
        interleaved += [queue[depth] for queue in queues.values() if depth < len(queue)]
    return interleaved


def run_select(
    model_uri: str,
    data: DataConfig,
    budget: int,
    output: str,
    tracking_uri: str,
    strategy: str = "entropy",
    by_topic: bool = False,
    seed: int = 0,
    progress: Callable[[str], None] = lambda message: None,
) -> list[Choice]:
    """Choose from the unlabelled articles of ``data`` and write them to ``output`` (JSON Lines,
    replaced only when complete); the model, the data and the output are checked first."""
    from mlflow.tracking import MlflowClient

    check_output(output)
    connect(tracking_uri)
    progress(f"loading {model_uri}")
    model = resolve_model(model_uri, MlflowClient(tracking_uri), tracking_uri).model
    articles = load_unlabelled(data)
    progress(f"scoring {len(articles)} articles")
    chosen = choose(model, articles, budget, strategy, by_topic, seed=seed)
    rows = (
        {"id": c.article.id, "text": c.article.text, "date": c.article.date, "guess": c.guess, "score": c.score}
        | {"why": c.why}
        for c in chosen
    )
    write_jsonl(rows, str(Path(output)), None)
    return chosen
