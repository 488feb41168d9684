"""Labelled articles in, de-duplicated train / validation / test splits out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from newsclf._files import sha256_file
from newsclf.train.config import DataConfig, DedupConfig, SplitConfig
from newsclf.train.data.added import add_labels
from newsclf.train.data.articles import (
    SPLIT_NAMES,
    Articles,
    DataError,
    LoadReport,
    Splits,
    UnlabelledArticle,
    checked_text,
    day_of,
    iso_date,
    parse_row,
    require_columns,
    split_of,
)
from newsclf.train.data.sources import describe, read_dataset


def load_articles(
    config: DataConfig, split_column: str = "", tone_optional: bool = False
) -> tuple[Articles, LoadReport, list[str] | None]:
    """Read, map and validate labelled articles.

    Returns the articles, a report of skipped and dropped rows, and the values of
    ``split_column`` for each kept article (None when no split column is asked for). With
    ``tone_optional``, data without the tone column loads with no tones instead of failing.
    Rows are parsed by :func:`newsclf.train.data.articles.parse_row`, as the streamed reader parses them.
    """
    where = describe(config.source)
    dataset = read_dataset(config.source, config.format, config.split_name)
    columns = set(dataset.column_names)
    require_columns(columns, config, split_column, where, tone_optional)
    split = SplitConfig(mode="column", column=split_column) if split_column else SplitConfig()
    wanted = [
        name
        for name in (
            config.title_column,
            config.text_column,
            config.topic_column,
            config.tone_column,
            config.date_column,
            split_column,
        )
        if name and name in columns
    ]
    values = [dataset[name] for name in wanted]
    raw_ids = dataset[config.id_column] if config.id_column in columns else [None] * len(dataset)
    ids = [str(i) if i is not None else f"row-{n + 1}" for n, i in enumerate(raw_ids)]
    path = Path(where)
    # A file's own bytes are the stable identity; for folders and the hub, datasets' fingerprint.
    fingerprint = sha256_file(path) if path.is_file() else dataset._fingerprint
    report = LoadReport(source=where, fingerprint=fingerprint, rows=len(dataset))
    dropped: Counter = Counter()
    kept = Articles([], [], [], [], [])
    rows: list[int] = []
    split_values: list[str] = []
    for row, (item_id, *row_values) in enumerate(zip(ids, *values), start=1):
        parsed = parse_row(dict(zip(wanted, row_values)), config, split, f"{where}: row {row} (id {item_id})")
        if parsed is None:
            report.skipped_empty += 1
            continue
        if isinstance(parsed, str):
            dropped[parsed] += 1
            continue
        text, topic, tone, date, split_value = parsed
        for column, value in zip(kept._columns(), (item_id, text, topic, tone, date)):
            column.append(value)
        rows.append(row)
        split_values.append(split_value)
    _require_unique_ids(kept.ids, rows, where, config.id_column)
    report.dropped_by_label = dict(sorted(dropped.items()))
    if config.corrections.strip() or config.label_issues.strip():
        from newsclf.train.data.corrections import apply_review

        kept, review = apply_review(kept, ids, config)
        report.review = review.as_dict()
    if not kept:
        raise DataError(
            f"{where}: no articles left; the data is empty, every {config.text_column!r} is blank, "
            "or every label is dropped"
        )
    return kept, report, (split_values if split_column else None)


def _require_unique_ids(ids: list[str], rows: list[int], where: str, id_column: str) -> None:
    """Ids name articles in reports, duplicates files and evaluations: two articles may not share one
    (rows skipped as empty or dropped by label are not articles, as in the streamed reader)."""
    first_row: dict[str, int] = {}
    for row, item_id in zip(rows, ids):
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
    splits = Splits(train, validation, test, report, has_tone=bool(data.tone_column))
    if data.added_labels:
        splits = add_labels(splits, data)
    return splits


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
        parts[split_of(day_of(raw, f"{where}: id {item_id}"), None, config)].append(i)
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
    from newsclf.train.data.dedup import find_duplicates

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


def load_unlabelled(config: DataConfig) -> list[UnlabelledArticle]:
    """Articles without labels (for monitoring): id, text (title first) and ISO date, through ``datasets``
    as labelled data is read; ``config`` names the columns (its label columns are not read)."""
    where = describe(config.source)
    dataset = read_dataset(config.source, config.format, config.split_name)
    columns = set(dataset.column_names)
    if config.text_column not in columns:
        raise DataError(
            f"{where}: column {config.text_column!r} (data.text_column) not found; the data has {sorted(columns)}"
        )

    def column(name: str) -> list:
        return dataset[name] if name and name in columns else [None] * len(dataset)

    articles = []
    for row, (item_id, title, body, date) in enumerate(
        zip(
            column(config.id_column),
            column(config.title_column),
            dataset[config.text_column],
            column(config.date_column),
        ),
        start=1,
    ):
        item_id = str(item_id) if item_id is not None else f"row-{row}"
        text = checked_text(title, body, config, f"{where}: row {row} (id {item_id})")
        if text:
            articles.append(UnlabelledArticle(item_id, text, iso_date(date)))
    return articles
