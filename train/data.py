"""Labelled articles in, de-duplicated train / validation / test splits out."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsclf._files import sha256_file
from newsclf.cleaning import article_text
from newsclf.errors import NewsclfError
from train.config import DataConfig, DedupConfig, SplitConfig
from train.sources import describe, read_dataset

SPLIT_NAMES = ("train", "validation", "test")


class DataError(NewsclfError):
    """Data that cannot be trained on as it is."""


@dataclass(frozen=True)
class Articles:
    """Labelled articles, column-wise. ``tones`` holds None where the tone does not apply,
    ``dates`` (ISO strings) None where the data has no date."""

    ids: list[str]
    texts: list[str]
    topics: list[str]
    tones: list[str | None]
    dates: list[str | None]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> Articles:
        """The articles at ``indices``, in that order."""
        return Articles(*([column[i] for i in indices] for column in self._columns()))

    def with_tone(self) -> Articles:
        """Only the articles that carry a tone label."""
        return self.subset([i for i, tone in enumerate(self.tones) if tone is not None])

    def for_task(self, task: str) -> tuple[Articles, list]:
        """The articles that carry a label for ``task`` (``topic`` or ``tone``), and those labels."""
        if task == "tone":
            toned = self.with_tone()
            return toned, toned.tones
        return self, self.topics

    def concat(self, other: Articles) -> Articles:
        """These articles followed by ``other``'s."""
        return Articles(*(mine + theirs for mine, theirs in zip(self._columns(), other._columns())))

    def _columns(self) -> tuple[list, ...]:
        return (self.ids, self.texts, self.topics, self.tones, self.dates)


@dataclass
class LoadReport:
    """What loading did to the rows: skipped, dropped by label, removed as duplicates."""

    source: str
    fingerprint: str = ""
    rows: int = 0
    skipped_empty: int = 0
    dropped_by_label: dict[str, int] = field(default_factory=dict)
    duplicates_removed: int = 0
    duplicate_groups: list[dict[str, Any]] = field(default_factory=list)
    conflicting_groups: list[dict[str, Any]] = field(default_factory=list)
    # What the review loop (train/corrections.py) did: corrections applied, label issues excluded.
    review: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Splits:
    """Train, validation and test articles, where they came from, and what loading did."""

    train: Articles
    validation: Articles
    test: Articles
    report: LoadReport
    has_tone: bool

    def summary(self) -> dict[str, Any]:
        """Counts per label and split, text lengths and date ranges: the data summary artifact."""
        summary: dict[str, Any] = {
            "source": self.report.source,
            "fingerprint": self.report.fingerprint,
            "rows_read": self.report.rows,
            "skipped_empty_text": self.report.skipped_empty,
            "dropped_by_label": self.report.dropped_by_label,
            "duplicates_removed": self.report.duplicates_removed,
            "duplicate_groups_with_conflicting_labels": len(self.report.conflicting_groups),
            **self.report.review,
            "splits": {},
        }
        for name in SPLIT_NAMES:
            articles: Articles = getattr(self, name)
            words = sorted(len(text.split()) for text in articles.texts)
            dates = sorted(d for d in articles.dates if d)
            summary["splits"][name] = {
                "articles": len(articles),
                "topics": dict(sorted(Counter(articles.topics).items())),
                "tones": dict(sorted(Counter(t or "none" for t in articles.tones).items())),
                "words": {
                    q: words[int(p * (len(words) - 1))]
                    for q, p in (("min", 0), ("p10", 0.1), ("median", 0.5), ("p90", 0.9), ("max", 1))
                }
                if words
                else {},
                "dates": {"first": dates[0], "last": dates[-1]} if dates else None,
            }
        return summary


def load_articles(
    config: DataConfig, split_column: str = "", tone_optional: bool = False
) -> tuple[Articles, LoadReport, list[str] | None]:
    """Read, map and validate labelled articles.

    Returns the articles, a report of skipped and dropped rows, and the values of
    ``split_column`` for each kept article (None when no split column is asked for). With
    ``tone_optional``, data without the tone column loads with no tones instead of failing.
    """
    where = describe(config.source)
    dataset = read_dataset(config.source, config.format, config.split_name)
    columns = set(dataset.column_names)
    require_columns(columns, config, split_column, where, tone_optional)

    def column(name: str) -> list:
        return dataset[name] if name and name in columns else [None] * len(dataset)

    ids = [str(i) if i is not None else f"row-{n + 1}" for n, i in enumerate(column(config.id_column))]
    _require_unique_ids(ids, where, config.id_column)
    rows = zip(
        ids,
        column(config.title_column),
        dataset[config.text_column],
        dataset[config.topic_column],
        column(config.tone_column),
        column(config.date_column),
        column(split_column),
    )
    path = Path(where)
    # A file's own bytes are the stable identity; for folders and the hub, datasets' fingerprint.
    fingerprint = sha256_file(path) if path.is_file() else dataset._fingerprint
    report = LoadReport(source=where, fingerprint=fingerprint, rows=len(dataset))
    dropped: Counter = Counter()
    kept = Articles([], [], [], [], [])
    split_values: list[str] = []
    for row, (item_id, title, body, raw_topic, raw_tone, date, split_value) in enumerate(rows, start=1):
        label = f"{where}: row {row} (id {item_id})"
        text = checked_text(title, body, config, label)
        if not text:
            report.skipped_empty += 1
            continue
        topic = map_label(raw_topic, "topic", config.topic_map, config.topic_drop, config.topic_labels, label)
        if topic is None:
            dropped[str(raw_topic)] += 1
            continue
        tone = map_label(raw_tone, "tone", config.tone_map, config.tone_drop, config.tone_labels, label)
        for values, value in zip(kept._columns(), (item_id, text, topic, tone, iso_date(date))):
            values.append(value)
        split_values.append(split_value)
    report.dropped_by_label = dict(sorted(dropped.items()))
    if config.corrections.strip() or config.label_issues.strip():
        from train.corrections import apply_review

        kept, review = apply_review(kept, ids, config)
        report.review = review.as_dict()
    if not kept:
        raise DataError(
            f"{where}: no articles left; the data is empty, every {config.text_column!r} is blank, "
            "or every label is dropped"
        )
    return kept, report, (split_values if split_column else None)


def require_columns(
    columns: set[str], config: DataConfig, split_column: str, where: str, tone_optional: bool = False
) -> None:
    """Refuse data without the configured text, topic, tone (unless optional and absent) or split column."""
    required = [("data.text_column", config.text_column), ("data.topic_column", config.topic_column)]
    if config.tone_column and not (tone_optional and config.tone_column not in columns):
        required.append(("data.tone_column", config.tone_column))
    if split_column:
        required.append(("split.column", split_column))
    for key, name in required:
        if name not in columns:
            hint = '; set data.tone_column = "" if the data has no tone' if key == "data.tone_column" else ""
            raise DataError(f"{where}: column {name!r} ({key}) not found; the data has {sorted(columns)}{hint}")


def checked_text(title: Any, body: Any, config: DataConfig, label: str) -> str:
    """A row's article text (title first); a title or text that is not text is an error naming ``label``."""
    for key, name, value in (
        ("data.title_column", config.title_column, title),
        ("data.text_column", config.text_column, body),
    ):
        if value is not None and not isinstance(value, str):
            raise DataError(
                f"{label}: {name!r} ({key}) holds a {type(value).__name__}, not text; "
                "fix the row or map the right column"
            )
    return article_text(title, body)


def _require_unique_ids(ids: list[str], where: str, id_column: str) -> None:
    """Ids name articles in reports, duplicates files and evaluations: two articles may not share one."""
    first_row: dict[str, int] = {}
    for row, item_id in enumerate(ids, start=1):
        if item_id in first_row:
            raise DataError(
                f"{where}: id {item_id!r} is on rows {first_row[item_id]} and {row}; ids must be unique, "
                f'so fix the {id_column!r} column or set data.id_column = "" to number the rows'
            )
        first_row[item_id] = row


def load_splits(
    data: DataConfig,
    split: SplitConfig,
    dedup: DedupConfig,
    seed: int,
    progress: Callable[[str], None] = lambda message: None,
) -> Splits:
    """Load, map, validate, de-duplicate and split the configured data."""
    articles, report, split_values = load_articles(data, split.column if split.mode == "column" else "")
    if dedup.enabled:
        progress(f"looking for duplicates among {len(articles)} articles")
        keep = _deduplicate(articles, dedup, report)
        articles = articles.subset(keep)
        split_values = None if split_values is None else [split_values[i] for i in keep]
    if split.mode == "temporal":
        train, validation, test = split_by_date(articles, split, report.source)
    elif split.mode == "column":
        train, validation, test = _split_by_column(articles, split_values, split.column, report.source)
    else:
        train, validation, test = split_articles(articles, split, seed)
    return Splits(train, validation, test, report, has_tone=bool(data.tone_column))


def split_articles(articles: Articles, config: SplitConfig, seed: int) -> tuple[Articles, Articles, Articles]:
    """Stratified (by topic) train / validation / test split, reproducible for a seed."""
    train_idx, val_idx, test_idx = split_indices(articles.topics, config, seed)
    return articles.subset(train_idx), articles.subset(val_idx), articles.subset(test_idx)


def split_indices(topics, config: SplitConfig, seed: int) -> tuple[list[int], list[int], list[int]]:
    """The train / validation / test positions of :func:`split_articles` for articles of these
    ``topics`` (any values that sort as the topic names do: streaming training passes codes)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    topics = np.asarray(topics)
    held_out = config.validation + config.test
    try:
        train_idx, rest_idx = train_test_split(
            np.arange(len(topics)), test_size=held_out, stratify=topics, random_state=seed
        )
        val_idx, test_idx = train_test_split(
            rest_idx, test_size=config.test / held_out, stratify=topics[rest_idx], random_state=seed
        )
    except ValueError as exc:
        raise DataError(
            f"cannot split {len(topics)} articles stratified by topic ({exc}); add articles to the rare topics"
        ) from None
    return train_idx.tolist(), val_idx.tolist(), test_idx.tolist()


def split_by_date(articles: Articles, config: SplitConfig, where: str) -> tuple[Articles, Articles, Articles]:
    """Train up to ``config.train_until``, validation up to ``config.validation_until``, test after (may be empty)."""
    parts: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for i, (item_id, raw) in enumerate(zip(articles.ids, articles.dates)):
        try:
            day = datetime.date.fromisoformat(str(raw)[:10]).isoformat()
        except ValueError:
            raise DataError(
                f"{where}: id {item_id}: date {raw!r} is not an ISO date (YYYY-MM-DD); "
                "a temporal split needs one on every row"
            ) from None
        name = "train" if day <= config.train_until else "validation" if day <= config.validation_until else "test"
        parts[name].append(i)
    if not parts["train"] or not parts["validation"]:
        raise DataError(
            f"{where}: a temporal split at {config.train_until} / {config.validation_until} leaves "
            f"{len(parts['train'])} train and {len(parts['validation'])} validation articles; move the cut-offs"
        )
    return tuple(articles.subset(parts[name]) for name in SPLIT_NAMES)


def _split_by_column(articles: Articles, values: list, column: str, where: str) -> tuple[Articles, Articles, Articles]:
    parts: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for i, (item_id, value) in enumerate(zip(articles.ids, values)):
        if value not in parts:
            raise DataError(f"{where}: id {item_id}: {column} is {value!r}; it must be one of {list(SPLIT_NAMES)}")
        parts[value].append(i)
    if not parts["train"] or not parts["validation"]:
        raise DataError(f"{where}: column {column!r} must mark at least one train and one validation article")
    return tuple(articles.subset(parts[name]) for name in SPLIT_NAMES)


def _deduplicate(articles: Articles, config: DedupConfig, report: LoadReport) -> list[int]:
    """Indices to keep; records the removed copies, a sample of groups and label conflicts in ``report``."""
    from train.dedup import find_duplicates

    found = find_duplicates(articles.texts, threshold=config.near_threshold, shingle_size=config.shingle_size)
    report.duplicates_removed = found.removed
    for group in found.groups:
        entry = {
            "exact": group.exact,
            "ids": [articles.ids[i] for i in group.indices],
            "topics": [articles.topics[i] for i in group.indices],
            "tones": [articles.tones[i] for i in group.indices],
            "first_text": articles.texts[group.indices[0]][:200],
        }
        report.duplicate_groups.append(entry)
        if len(set(entry["topics"])) > 1 or len(set(entry["tones"])) > 1:
            report.conflicting_groups.append(entry)
    return found.keep


def iso_date(value: Any) -> str | None:
    """Dates as ISO strings; datasets parses ISO dates in JSON into datetimes at midnight."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def map_label(
    value: Any, task: str, mapping: dict[str, str], drop: tuple[str, ...], allowed: tuple[str, ...], where: str
) -> str | None:
    """A row's ``task`` label after the experiment's map: None for no label or a dropped one; an error
    naming ``where`` for a label that is neither allowed nor mapped."""
    if value is None or value == "":
        if task == "topic":
            raise DataError(f"{where}: no topic; every article needs one")
        return None
    value = str(value)
    if value in drop:
        return None
    value = mapping.get(value, value)
    if value not in allowed:
        raise DataError(
            f"{where}: {task} {value!r} is not in data.{task}_labels or data.{task}_map; map, drop or fix it"
        )
    return value
