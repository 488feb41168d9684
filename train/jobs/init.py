"""``newsclf init``: an experiment file written from a look at the user's own data.

The columns are guessed from their names and values: the text (the longest strings), a title
(short strings named like one), the topic (few distinct values, named like a label), a tone (values
that are tone labels), a date (values that read as ISO dates) and an id (unique values). The
topic's labels are the data's own, listed with their counts; a label too rare to be split into
train, validation and test is dropped, and the file says so. The split is temporal when every row
has a date (train on the oldest 70%, validate on the next 15%), stratified by topic otherwise. Every
guess is a commented line the user can change before ``newsclf train --experiment FILE``.
"""

from __future__ import annotations

import datetime
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from newsclf.errors import NewsclfError
from newsclf.train.config import TONES, ConfigError, load_config
from newsclf.train.data.articles import iso_date
from newsclf.train.data.sources import describe, read_dataset

# Labels with fewer rows than this cannot be spread over train, validation and test.
MIN_LABEL_ROWS = 5
# A column with more distinct values than this (or than half its rows) is not a label column.
_MAX_LABELS = 50
_NAMES = {
    "title": ("title", "headline", "heading", "subject"),
    "topic": ("topic", "label", "category", "section", "class", "topic_label"),
    "date": ("date", "published", "published_at", "datetime", "time", "timestamp", "day"),
    "id": ("id", "uid", "guid", "article_id", "doc_id", "url"),
}


@dataclass(frozen=True)
class Guess:
    """The columns found in the data, with what each was guessed from."""

    text: str
    title: str
    topic: str
    tone: str
    date: str
    id: str
    labels: dict[str, int]
    tones: dict[str, int]
    rows: int
    days: list[str]  # every row's ISO day, sorted (empty without a date column)

    @property
    def dates(self) -> tuple[str, str] | None:
        """The first and last day, or None."""
        return (self.days[0], self.days[-1]) if self.days else None


def guess_columns(source: str) -> Guess:
    """Read ``source`` (JSON Lines, CSV, Parquet, a save_to_disk folder) and guess its columns."""
    dataset = read_dataset(source)
    rows = len(dataset)
    columns = {name: dataset[name] for name in dataset.column_names}
    strings = {name: values for name, values in columns.items() if _mostly_strings(values)}
    text = _text_column(strings, source)
    labelled = {name: values for name, values in strings.items() if name != text and _few_values(values, rows)}
    tone = next((name for name, values in labelled.items() if _tone_values(values)), "")
    topic = _named("topic", [name for name in labelled if name != tone]) or _fewest_distinct(labelled, tone)
    if not topic:
        raise NewsclfError(
            f"{describe(source)}: no column looks like a topic label (text, at most {_MAX_LABELS} distinct "
            "values); add one, or write the experiment file by hand (docs/your-data.md)"
        )
    title = _named("title", [name for name in strings if name not in (text, topic, tone)])
    named = _by_name("date", columns)
    date = next((name for name in named + [n for n in columns if n not in named] if _dates(columns[name])), "")
    unique = [name for name in columns if len({str(v) for v in columns[name]}) == rows and name not in (text, title)]
    item_id = _named("id", unique)
    day = sorted(iso_date(value)[:10] for value in columns[date]) if date else []
    return Guess(
        text=text,
        title=title,
        topic=topic,
        tone=tone,
        date=date,
        id=item_id,
        labels=dict(Counter(str(v) for v in columns[topic] if v not in (None, "")).most_common()),
        tones=dict(Counter(str(v) for v in columns[tone] if v not in (None, "")).most_common()) if tone else {},
        rows=rows,
        days=day,
    )


def write_experiment(source: str, output: Path) -> Guess:
    """Write the experiment file for ``source`` to ``output`` (never over an existing file), checked by
    loading it as training will; returns the guess."""
    if output.exists():
        raise NewsclfError(f"{output} exists; pass --output with a new file name, or delete it first")
    if not output.parent.is_dir():
        raise NewsclfError(f"cannot write {output}: folder {output.parent} does not exist; create it first")
    guess = guess_columns(source)
    data_path = Path(describe(source)).resolve()
    try:
        relative = os.path.relpath(data_path, output.resolve().parent)
    except ValueError:  # another drive
        relative = str(data_path)
    text = _toml(guess, relative, output.stem)
    staging = output.with_name(f".{output.stem}.partial.toml")
    staging.write_text(text, encoding="utf-8")
    try:
        load_config(staging)  # what training will read must be a valid experiment
    except ConfigError as exc:
        staging.unlink()
        raise NewsclfError(
            f"{describe(source)}: the guessed experiment is not valid ({exc}); write it by hand (docs/your-data.md)"
        ) from None
    staging.rename(output)
    return guess


def _toml(guess: Guess, data_path: str, name: str) -> str:
    rare = [label for label, count in guess.labels.items() if count < MIN_LABEL_ROWS]
    kept = [label for label in guess.labels if label not in rare]
    lines = [
        f"# Written by `newsclf init` from {data_path} ({guess.rows} rows). Check each guess, then:",
        f"#   newsclf train --experiment {name}.toml",
        f'description = "{name}: topic{" and tone" if guess.tone else ""} on {Path(data_path).name}"',
        "seed = 13",
        "",
        "[data]",
        f"source = {json.dumps(data_path)}",
        f"text_column = {json.dumps(guess.text)}    # the longest text values",
        f"title_column = {json.dumps(guess.title)}" + ("" if guess.title else '    # none found; "" = no title'),
        f"topic_column = {json.dumps(guess.topic)}    # {len(guess.labels)} distinct values",
        f"tone_column = {json.dumps(guess.tone)}"
        + (f"    # {_counts(guess.tones)}" if guess.tone else '    # none found: "" trains the topic model only'),
        f"date_column = {json.dumps(guess.date)}"
        + (f"    # {guess.dates[0]} to {guess.dates[1]}" if guess.dates else "    # none found"),
        f"id_column = {json.dumps(guess.id)}" + ("" if guess.id else '    # none found: "" numbers the rows'),
        *([f"tone_labels = {json.dumps(_tone_labels(guess))}"] if guess.tone else []),
        "# The topic labels, with how many rows have each:",
        "topic_labels = [",
        *(f"  {json.dumps(label)},  # {guess.labels[label]}" for label in kept),
        "]",
    ]
    if rare:
        lines += [
            f"# Fewer than {MIN_LABEL_ROWS} rows each: too few to spread over train, validation and test.",
            f"topic_drop = {json.dumps(rare)}",
        ]
    lines += ['# Merge or rename labels here, e.g. tech = "science_technology"', "[data.topic_map]", ""]
    lines += _split(guess)
    lines += [
        "",
        "[tracking]",
        f'experiment = "news-classifier-{name}"',
        f'registered_model = "news-classifier-{name}"',
    ]
    return "\n".join(lines) + "\n"


def _split(guess: Guess) -> list[str]:
    days = guess.days
    if not days or days[0] == days[-1]:
        return ["[split]            # stratified by topic: no date on every row", "validation = 0.15", "test = 0.15"]
    train_until = days[int(0.7 * (len(days) - 1))]
    later = [day for day in days if day > train_until]
    validation_until = later[int(0.5 * (len(later) - 1))] if later else train_until
    if validation_until <= train_until:
        return [
            "[split]            # stratified by topic: the dates do not spread",
            "validation = 0.15",
            "test = 0.15",
        ]
    return [
        "[split]            # by date: the oldest 70% of the rows train, the next 15% validate, the newest test",
        'mode = "temporal"',
        f'train_until = "{train_until}"',
        f'validation_until = "{validation_until}"',
    ]


def _tone_labels(guess: Guess) -> list[str]:
    known = [tone for tone in TONES if tone in guess.tones]
    return known + [tone for tone in guess.tones if tone not in known]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{label} {count}" for label, count in counts.items())


def _mostly_strings(values: list) -> bool:
    present = [value for value in values if value is not None]
    return bool(present) and sum(isinstance(value, str) for value in present) >= 0.9 * len(present)


def _text_column(strings: dict[str, list], source: str) -> str:
    if not strings:
        raise NewsclfError(f"{describe(source)}: no text column (no column holds strings)")
    lengths = {
        name: sum(len(value) for value in values if isinstance(value, str)) / max(len(values), 1)
        for name, values in strings.items()
    }
    return max(lengths, key=lengths.get)


def _few_values(values: list, rows: int) -> bool:
    distinct = {value for value in values if value not in (None, "")}
    return 2 <= len(distinct) <= min(_MAX_LABELS, max(2, rows // 2))


def _tone_values(values: list) -> bool:
    distinct = {str(value).lower() for value in values if value not in (None, "")}
    return bool(distinct) and distinct <= set(TONES)


def _by_name(role: str, names) -> list[str]:
    """``names`` that read as ``role`` (exact names first, then names containing one), in that order."""
    names = list(names)
    exact = [name for name in names if name.lower() in _NAMES[role]]
    partial = [name for name in names if name not in exact and any(word in name.lower() for word in _NAMES[role])]
    return exact + partial


def _named(role: str, names: list[str]) -> str:
    found = _by_name(role, names)
    return found[0] if found else ""


def _fewest_distinct(labelled: dict[str, list], tone: str) -> str:
    candidates = {name: len(set(values)) for name, values in labelled.items() if name != tone}
    return min(candidates, key=candidates.get) if candidates else ""


def _dates(values: list) -> bool:
    try:
        return all(value is not None and datetime.date.fromisoformat(iso_date(value)[:10]) for value in values)
    except (TypeError, ValueError):
        return False
