"""Articles as every part of training holds them, and the rules each row of data passes, in one place.

Both readers (in-memory loading, newsclf.train.data.loading, and the streamed reader,
newsclf.train.data.stream) parse rows with :func:`parse_row` and assign splits with
:func:`split_of`, so the two feeds accept and refuse the same rows.
"""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from newsclf.cleaning import article_text
from newsclf.errors import NewsclfError
from newsclf.train.config import DataConfig, SplitConfig

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


@dataclass(frozen=True)
class UnlabelledArticle:
    """One article to watch: its id, text and ISO date (None where the data has none)."""

    id: str
    text: str
    date: str | None


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
    # What the review loop (train/data/corrections.py) did: corrections applied, label issues excluded.
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


def parse_row(fields: dict[str, Any], data: DataConfig, split: SplitConfig, label: str):
    """One raw row's ``(text, topic, tone, date, split value)``; None for an empty text; the raw
    topic (a str) for a row dropped by label. ``fields`` maps the configured column names to the
    row's values (absent columns read as None). A bad row raises DataError naming ``label``."""
    title = fields.get(data.title_column) if data.title_column else None
    text = checked_text(title, fields.get(data.text_column), data, label)
    if not text:
        return None
    raw_topic = fields.get(data.topic_column)
    topic = map_label(raw_topic, "topic", data.topic_map, data.topic_drop, data.topic_labels, label)
    if topic is None:
        return str(raw_topic)
    raw_tone = fields.get(data.tone_column) if data.tone_column else None
    tone = map_label(raw_tone, "tone", data.tone_map, data.tone_drop, data.tone_labels, label)
    date = iso_date(fields.get(data.date_column)) if data.date_column else None
    split_value = fields.get(split.column) if split.mode == "column" else None
    if split.mode == "temporal":
        date = day_of(date, label)
    if split.mode == "column" and split_value not in SPLIT_NAMES:
        raise DataError(f"{label}: {split.column} is {split_value!r}; it must be one of {list(SPLIT_NAMES)}")
    return text, topic, tone, date, split_value


def day_of(date: Any, label: str) -> str:
    """The ISO day of a row's date, which a temporal split needs; a DataError naming ``label`` otherwise."""
    try:
        return datetime.date.fromisoformat(str(date)[:10]).isoformat()
    except ValueError:
        raise DataError(
            f"{label}: date {date!r} is not an ISO date (YYYY-MM-DD); a temporal split needs one on every row"
        ) from None


def split_of(day: str | None, split_value: Any, split: SplitConfig) -> str:
    """The split a parsed row goes to under a temporal or column split (stratified splits are drawn
    over all rows at once, by :func:`newsclf.train.data.loading.split_indices`)."""
    if split.mode == "temporal":
        return "train" if day <= split.train_until else "validation" if day <= split.validation_until else "test"
    return split_value
