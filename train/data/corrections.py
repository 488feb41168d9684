"""The review loop at load time: reviewed labels and drops from a corrections file, and the audit's
flagged items left out below a label-quality threshold.

A corrections file is JSON Lines or CSV (by its extension), one reviewed article per line:
``{"id": "a-17", "task": "topic", "label": "international_relations"}`` relabels, and
``{"id": "a-17", "drop": true}`` leaves the article out of the data. Labels are final labels (in
``data.topic_labels`` / ``data.tone_labels``, after any map). An id the data does not have, a label
the task does not know, or two lines for the same article and task are errors naming the line.

An article a reviewer relabelled is never excluded as a label issue: the review has settled it.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsclf._files import sha256_file
from newsclf.train.config import DataConfig
from newsclf.train.data.articles import Articles, DataError

TASKS = ("topic", "tone")
_TRUE = ("true", "1", "yes")
_FALSE = ("", "false", "0", "no")


@dataclass
class ReviewReport:
    """What the corrections file and the label-issue exclusion did to the articles."""

    corrections_file: str = ""
    corrections_sha256: str = ""
    relabelled: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    dropped: int = 0
    not_loaded: int = 0
    label_issues_file: str = ""
    label_issues_sha256: str = ""
    label_issues_threshold: float = 0.0
    label_issues_excluded: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The counts for the run's data summary; empty when neither file is configured."""
        summary: dict[str, Any] = {}
        if self.corrections_file:
            summary["corrections"] = {
                "file": self.corrections_file,
                "sha256": self.corrections_sha256,
                "relabelled": dict(sorted(self.relabelled.items())),
                "unchanged": self.unchanged,
                "dropped": self.dropped,
                "for_articles_not_loaded": self.not_loaded,
            }
        if self.label_issues_file:
            summary["label_issues_excluded"] = {
                "file": self.label_issues_file,
                "sha256": self.label_issues_sha256,
                "below_quality": self.label_issues_threshold,
                "excluded": self.label_issues_excluded,
            }
        return summary


@dataclass(frozen=True)
class _Correction:
    line: int
    item_id: str
    task: str
    label: str | None  # None: drop the article


def apply_review(articles: Articles, known_ids: list[str], config: DataConfig) -> tuple[Articles, ReviewReport]:
    """``articles`` with the configured corrections applied and flagged label issues excluded.

    ``known_ids`` are the ids of every row read (also those skipped or dropped by label), so a
    correction for an article loading left out is counted, not refused.
    """
    report = ReviewReport()
    known = set(known_ids)
    reviewed: set[str] = set()
    if config.corrections.strip():
        articles, reviewed = _apply_corrections(articles, known, config, report)
    if config.label_issues.strip():
        articles = _exclude_issues(articles, known, reviewed, config, report)
    return articles, report


def read_corrections(path: Path, config: DataConfig) -> list[_Correction]:
    """Every line of a corrections file, validated against the task labels (not yet against the data)."""
    rows = _read_rows(path, "data.corrections", "a corrections file")
    corrections: list[_Correction] = []
    seen: dict[str, dict[str, int]] = {}  # id -> task (or drop) -> line
    for line, row in rows:
        where = f"{path}: line {line}"
        item_id = _text(row.get("id"))
        if not item_id:
            raise DataError(f"{where}: no id; every line needs the id of the article it reviews")
        drop = _flag(row.get("drop"), where)
        task = _text(row.get("task"))
        label = _text(row.get("label"))
        if drop:
            if label:
                raise DataError(f"{where}: both drop and label for id {item_id!r}; keep one of them")
            task = "drop"
        else:
            if task not in TASKS:
                raise DataError(f"{where}: task {task!r} for id {item_id!r} must be one of {list(TASKS)}")
            allowed = config.topic_labels if task == "topic" else config.tone_labels
            if label not in allowed:
                raise DataError(
                    f"{where}: {task} label {label!r} for id {item_id!r} is not in data.{task}_labels "
                    f"{list(allowed)}; fix the label"
                )
        earlier = seen.setdefault(item_id, {})
        clash = earlier if drop else {k: v for k, v in earlier.items() if k in (task, "drop")}
        if clash:
            raise DataError(
                f"{where}: id {item_id!r} is also reviewed on line {min(clash.values())}; give each article "
                "either one drop or at most one label per task"
            )
        earlier[task] = line
        corrections.append(_Correction(line, item_id, task, None if drop else label))
    return corrections


def read_label_issues(path: Path) -> list[dict[str, Any]]:
    """The lines of an audit's ``label_issues.jsonl``: id, task and a quality in [0, 1] each."""
    issues = []
    for line, row in _read_rows(path, "data.label_issues", "an audit's label_issues.jsonl", jsonl_only=True):
        quality = row.get("quality")
        if "id" not in row or isinstance(quality, bool) or not isinstance(quality, (int, float)):
            raise DataError(
                f"{path}: line {line}: not a label issue (needs id and a numeric quality); "
                "point data.label_issues at the label_issues.jsonl `newsclf audit` wrote"
            )
        if not 0.0 <= quality <= 1.0:
            raise DataError(f"{path}: line {line}: quality {quality} is not in [0, 1]; the file is not an audit's")
        issues.append({"id": str(row["id"]), "task": row.get("task"), "quality": float(quality), "line": line})
    return issues


def _apply_corrections(
    articles: Articles, known: set[str], config: DataConfig, report: ReviewReport
) -> tuple[Articles, set[str]]:
    path = Path(config.corrections)
    corrections = read_corrections(path, config)
    report.corrections_file, report.corrections_sha256 = str(path), sha256_file(path)
    _require_known([(c.line, c.item_id) for c in corrections], known, path, "corrections")
    position = {item_id: i for i, item_id in enumerate(articles.ids)}
    topics, tones = list(articles.topics), list(articles.tones)
    dropped: set[int] = set()
    relabelled: Counter = Counter()
    for correction in corrections:
        index = position.get(correction.item_id)
        if index is None:
            report.not_loaded += 1
            continue
        if correction.label is None:
            dropped.add(index)
            continue
        column = topics if correction.task == "topic" else tones
        if column[index] == correction.label:
            report.unchanged += 1
        else:
            column[index] = correction.label
            relabelled[correction.task] += 1
    report.relabelled, report.dropped = dict(relabelled), len(dropped)
    relabelled_articles = Articles(articles.ids, articles.texts, topics, tones, articles.dates)
    keep = [i for i in range(len(articles)) if i not in dropped]
    reviewed = {c.item_id for c in corrections}
    return relabelled_articles.subset(keep), reviewed


def _exclude_issues(
    articles: Articles, known: set[str], reviewed: set[str], config: DataConfig, report: ReviewReport
) -> Articles:
    path = Path(config.label_issues)
    issues = read_label_issues(path)
    report.label_issues_file, report.label_issues_sha256 = str(path), sha256_file(path)
    report.label_issues_threshold = config.exclude_label_issues
    _require_known([(issue["line"], issue["id"]) for issue in issues], known, path, "label issues")
    excluded = {
        issue["id"]
        for issue in issues
        if issue["quality"] < config.exclude_label_issues and issue["id"] not in reviewed
    }
    keep = [i for i, item_id in enumerate(articles.ids) if item_id not in excluded]
    report.label_issues_excluded = len(articles) - len(keep)
    return articles.subset(keep)


def _require_known(lines: list[tuple[int, str]], known: set[str], path: Path, what: str) -> None:
    for line, item_id in lines:
        if item_id not in known:
            raise DataError(
                f"{path}: line {line}: id {item_id!r} is not in the data; the {what} file belongs to other data "
                "(or the data changed since): fix or remove the line"
            )


def _read_rows(path: Path, key: str, kind: str, jsonl_only: bool = False) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise DataError(f"{key} file not found: {path}; set {key} to {kind} (or remove the key)")
    csv_file = path.suffix.lower() == ".csv" and not jsonl_only
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would become part of "id".
        with open(path, encoding="utf-8-sig", newline="" if csv_file else None) as handle:
            if csv_file:
                reader = csv.DictReader(handle)
                if not reader.fieldnames or "id" not in reader.fieldnames:
                    raise DataError(f"{path}: the CSV header must name an id column (and task, label or drop)")
                rows, first_line = [], reader.line_num + 1
                for row in reader:
                    rows.append((first_line, row))  # where the record starts: a quoted field may span lines
                    first_line = reader.line_num + 1
                return rows
            rows = []
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except ValueError as exc:
                    raise DataError(f"{path}: line {number}: not JSON ({exc}); fix the line") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}: line {number}: not a JSON object; fix the line")
                rows.append((number, row))
            return rows
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save {kind} as UTF-8") from None


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise DataError(f"{where}: drop {value!r} must be true or false")
