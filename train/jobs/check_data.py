"""``newsclf check-data``: what an experiment's data holds and what training would make of it, before
any training (spaCy's ``debug data``).

The data is read exactly as training reads it (columns, label map, drops, corrections, added
labels, de-duplication, split). The page lists the rows read and what became of them, articles
per label and split, text lengths and dates per split, and the duplicate groups whose copies
carry different labels. Labels the experiment neither lists nor maps are all listed at once, with
their counts, instead of training stopping at the first.
"""

from __future__ import annotations

from collections import Counter

from newsclf.train.config import ExperimentConfig
from newsclf.train.data.articles import SPLIT_NAMES, DataError
from newsclf.train.data.loading import load_splits
from newsclf.train.data.sources import describe, read_dataset

# Duplicate groups with conflicting labels shown; the run's data/duplicates.json has them all.
_SHOWN_CONFLICTS = 5


def check_data(config: ExperimentConfig) -> str:
    """The data check of ``config`` as Markdown; a DataError naming every unknown label when some are."""
    unknown = _unknown_labels(config)
    if unknown:
        listed = "; ".join(
            f"{task} {', '.join(f'{label!r} ({count})' for label, count in counts.most_common())}"
            for task, counts in unknown.items()
        )
        raise DataError(
            f"{describe(config.data.source)}: labels outside data.topic_labels / data.tone_labels and their maps: "
            f"{listed}; add them to the labels, map them (data.topic_map) or drop them (data.topic_drop)"
        )
    splits = load_splits(config.data, config.split, config.dedup, config.seed)
    summary = splits.summary()
    lines = [
        f"# Data check: {config.name}",
        "",
        f"- Source: `{summary['source']}`, {summary['rows_read']} rows read",
        f"- Empty texts skipped: {summary['skipped_empty_text']}",
        f"- Dropped by label: {_pairs(summary['dropped_by_label']) or 'none'}",
        f"- Duplicates removed (exact and near, threshold {config.dedup.near_threshold}): "
        f"{summary['duplicates_removed']}"
        + ("" if config.dedup.enabled else " (de-duplication is off: copies may sit in two splits)"),
        "- Duplicate groups whose copies carry different labels: "
        f"{summary['duplicate_groups_with_conflicting_labels']}",
    ]
    for group in splits.report.conflicting_groups[:_SHOWN_CONFLICTS]:
        lines.append(f"  - {group}")
    for key in ("corrections", "added_labels", "label_issues_excluded"):
        if key in summary:
            lines.append(f"- {key.replace('_', ' ').capitalize()}: {summary[key]}")
    lines += [
        "",
        f"## Split ({config.split.mode})",
        "",
        "| split | articles | words (median) | dates |",
        "|---|---:|---:|---|",
    ]
    for name in SPLIT_NAMES:
        part = summary["splits"][name]
        dates = f"{part['dates']['first']} to {part['dates']['last']}" if part["dates"] else ""
        lines.append(f"| {name} | {part['articles']} | {part['words'].get('median', '')} | {dates} |")
    for task in ("topics", "tones"):
        labels = sorted({label for name in SPLIT_NAMES for label in summary["splits"][name][task]})
        lines += [
            "",
            f"## {task.capitalize()}",
            "",
            "| label | " + " | ".join(SPLIT_NAMES) + " |",
            "|---|---:|---:|---:|",
        ]
        for label in labels:
            counts = [str(summary["splits"][name][task].get(label, 0)) for name in SPLIT_NAMES]
            lines.append(f"| {label} | " + " | ".join(counts) + " |")
    thin = [
        f"{label} ({summary['splits'][name]['topics'].get(label, 0)} in {name})"
        for label in config.data.topic_labels
        for name in ("validation", "test")
        if label not in config.data.topic_drop and summary["splits"][name]["topics"].get(label, 0) < 2
    ]
    if thin:
        lines += ["", "Topics with fewer than 2 articles in a held-out split (their scores will be noise): "]
        lines[-1] += ", ".join(thin)
    return "\n".join(lines) + "\n"


def _unknown_labels(config: ExperimentConfig) -> dict[str, Counter]:
    """Per task, the labels of the data that the experiment neither lists, maps nor drops, with counts."""
    data = config.data
    dataset = read_dataset(data.source, data.format, data.split_name)
    found: dict[str, Counter] = {}
    for task, column, mapping, drop, allowed in (
        ("topic", data.topic_column, data.topic_map, data.topic_drop, data.topic_labels),
        ("tone", data.tone_column, data.tone_map, data.tone_drop, data.tone_labels),
    ):
        if not column or column not in dataset.column_names:
            continue
        counts = Counter(
            str(value)
            for value in dataset[column]
            if value not in (None, "")
            and str(value) not in drop
            and mapping.get(str(value), str(value)) not in allowed
        )
        if counts:
            found[task] = counts
    return found


def _pairs(counts: dict) -> str:
    return ", ".join(f"{label} {count}" for label, count in counts.items())
