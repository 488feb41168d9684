"""New labels folded into training: ``data.added_labels`` (``newsclf train --add-labels``).

Each file is what ``newsclf select`` wrote, labelled by a reviewer: one article per line with the
experiment's columns (``id``, text, topic, and tone where one applies). An id the data does not
have is a new article and joins the train split, after the split is drawn, so validation and test
stay as the champion's. An id the data already has is a correction: its labels replace the data's,
in whichever split it sits, and the run says how many. A line without text must be such a
correction. An unknown id without text, a label outside the experiment's labels, or one id on two
lines are errors naming the line, before anything is trained.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from newsclf._files import sha256_file
from newsclf.train.config import DataConfig, SplitConfig
from newsclf.train.data.articles import SPLIT_NAMES, Articles, DataError, Splits, map_label, parse_row
from newsclf.train.data.sources import read_dataset


@dataclasses.dataclass(frozen=True)
class _Label:
    where: str
    item_id: str
    topic: str
    tone: str | None
    article: tuple | None  # (text, topic, tone, date) for a line with text


def add_labels(splits: Splits, data: DataConfig) -> Splits:
    """``splits`` with the labels of ``data.added_labels`` applied: corrections in place, new
    articles appended to train; the counts go to the load report's ``added_labels``."""
    labels = _read(data)
    index = {item_id: (name, row) for name in SPLIT_NAMES for row, item_id in enumerate(getattr(splits, name).ids)}
    columns = {name: [list(column) for column in getattr(splits, name)._columns()] for name in SPLIT_NAMES}
    corrected: Counter = Counter()
    unchanged = 0
    new = Articles([], [], [], [], [])
    for label in labels:
        place = index.get(label.item_id)
        if place is None:
            if label.article is None:
                raise DataError(
                    f"{label.where}: id {label.item_id!r} is not in the training data and the line has no "
                    f"{data.text_column!r}; add the article's text or remove the line"
                )
            _append(new, label)
            continue
        split, row = place
        _, _, topics, tones, _ = columns[split]
        tone = label.tone if label.tone is not None else tones[row]
        if (topics[row], tones[row]) == (label.topic, tone):
            unchanged += 1
            continue
        topics[row], tones[row] = label.topic, tone
        corrected[split] += 1
    rebuilt = {name: Articles(*columns[name]) for name in SPLIT_NAMES}
    splits.report.review["added_labels"] = {
        "files": {path: sha256_file(Path(path)) for path in data.added_labels},
        "new_articles": len(new),
        "new_topics": dict(sorted(Counter(new.topics).items())),
        "corrections": dict(sorted(corrected.items())),
        "unchanged": unchanged,
    }
    return dataclasses.replace(
        splits, train=rebuilt["train"].concat(new), validation=rebuilt["validation"], test=rebuilt["test"]
    )


def _append(articles: Articles, label: _Label) -> None:
    """Add the article of a line with text to ``articles``."""
    for column, value in zip(articles._columns(), (label.item_id, *label.article)):
        column.append(value)


def _read(data: DataConfig) -> list[_Label]:
    """Every line of every added file, parsed and checked; one id on two lines is refused."""
    seen: dict[str, str] = {}
    labels: list[_Label] = []
    for path in data.added_labels:
        if not Path(path).exists():
            raise DataError(f"labels file not found: {path}; pass --add-labels with the labelled files")
        dataset = read_dataset(path)
        columns = set(dataset.column_names)
        for required in (data.id_column, data.topic_column):
            if not required or required not in columns:
                raise DataError(
                    f"{path}: added labels need the columns {data.id_column!r} and {data.topic_column!r} "
                    f"(found {sorted(columns)}); label the file newsclf select wrote, or map them with data.*"
                )
        for number, fields in enumerate(dataset, start=1):
            where = f"{path}: line {number}"
            item_id = fields.get(data.id_column)
            if item_id is None or str(item_id) == "":
                raise DataError(f"{where}: no {data.id_column!r}; every added label names its article")
            item_id = str(item_id)
            if item_id in seen:
                raise DataError(f"{where}: id {item_id!r} was already labelled at {seen[item_id]}; keep one line")
            seen[item_id] = where
            labels.append(_parse(fields, data, f"{where} (id {item_id})", item_id))
    return labels


def _parse(fields: dict, data: DataConfig, where: str, item_id: str) -> _Label:
    parsed = parse_row(fields, data, SplitConfig(), where)
    if isinstance(parsed, str):
        raise DataError(f"{where}: topic {parsed!r} is dropped by data.topic_drop; give a label training keeps")
    if parsed is not None:
        text, topic, tone, date, _ = parsed
        return _Label(where, item_id, topic, tone, (text, topic, tone, date))
    # No text: a correction, whose labels are checked on their own.
    topic = map_label(fields.get(data.topic_column), "topic", data.topic_map, (), data.topic_labels, where)
    raw_tone = fields.get(data.tone_column) if data.tone_column else None
    tone = map_label(raw_tone, "tone", data.tone_map, data.tone_drop, data.tone_labels, where)
    return _Label(where, item_id, topic, tone, None)


def added_articles(data: DataConfig) -> Articles:
    """Every labelled article of ``data.added_labels``, for an update that reads no corpus (a streaming
    warm start): a line without text is refused, since it corrects an article of the corpus."""
    articles = Articles([], [], [], [], [])
    for label in _read(data):
        if label.article is None:
            raise DataError(
                f"{label.where}: no {data.text_column!r}; a streaming update reads the new articles only, so a "
                "correction of a corpus article needs its text (or train in memory)"
            )
        _append(articles, label)
    if not articles:
        raise DataError(f"{', '.join(data.added_labels)}: no labelled articles to update with")
    return articles
