"""What the label audit (``newsclf audit``) finds on the real CEP data, and what acting on it changes.

Three measurements, all with the experiment's own pipeline and the audit's own code:

1. Planted noise: CEP 2010-2016 with a share of topic labels flipped at random (seeded) to another
   topic; precision and recall of the audit's flagged topic set against the flips. The real
   labels are noisy too, so precision against the flips alone is a lower bound: flagged items that
   are not flips are also counted separately as those the audit of the unflipped data flags.
2. Acting on it: the audit of the real 2010-2016 labels, then the model fitted on 2010-2016 with
   and without the flagged items (through ``[data] label_issues`` / ``exclude_label_issues``,
   the path training uses), scored on 2017 (validation; the later test period is never read).
3. Cost: wall time and peak memory of auditing every CEP item (2010-2017, topic and tone).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.datasets import CEP_FILE, cep_development_split, real_data_file
from bench.measure import peak_rss_increase
from newsclf.train.config import ExperimentConfig
from newsclf.train.data.articles import Articles, LoadReport
from newsclf.train.data.loading import load_articles
from newsclf.train.evaluation.evaluate import macro_f1_scores
from newsclf.train.fit.in_memory import fit_model
from newsclf.train.jobs.audit import AuditReport, audit_articles, audit_labels

# Exclusion thresholds compared on 2017: every flagged item, and only the clearest ones.
THRESHOLDS = (1.0, 0.1)


def flip_topics(articles: Articles, share: float, seed: int) -> tuple[Articles, set[str]]:
    """``articles`` with ``share`` of the topic labels, chosen at random, changed to another topic
    drawn at random; returns them and the ids flipped."""
    rng = random.Random(seed)
    labels = sorted(set(articles.topics))
    chosen = rng.sample(range(len(articles)), round(share * len(articles)))
    topics = list(articles.topics)
    for index in chosen:
        topics[index] = rng.choice([label for label in labels if label != topics[index]])
    flipped = Articles(articles.ids, articles.texts, topics, articles.tones, articles.dates)
    return flipped, {articles.ids[index] for index in chosen}


def flagged_ids(report: AuditReport, task: str) -> set[str]:
    """The ids the audit flags for ``task``."""
    return {record["id"] for record in report.issues() if record["task"] == task}


def detection_scores(flagged: set[str], planted: set[str]) -> dict[str, float]:
    """Precision and recall of ``flagged`` against the ``planted`` errors."""
    hits = len(flagged & planted)
    return {
        "flagged": len(flagged),
        "planted": len(planted),
        "found": hits,
        "precision": hits / len(flagged) if flagged else 0.0,
        "recall": hits / len(planted) if planted else 0.0,
    }


def audit_benchmark(
    data_dir: Path,
    config: ExperimentConfig,
    share: float = 0.05,
    seed: int = 0,
    folds: int = 5,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """The three measurements of the module docstring, as one JSON-ready mapping."""
    path = real_data_file(data_dir, CEP_FILE)
    data = replace(config.data, source=str(path), corrections="", label_issues="", exclude_label_issues=0.0)
    config = replace(config, data=data)
    train, validation = cep_development_split(load_articles(config.data)[0])
    load = LoadReport(source=f"{path} (2010-2016)", fingerprint="")
    results: dict[str, Any] = {"items_2010_2016": len(train), "items_2017": len(validation), "folds": folds}

    progress(f"1/3: auditing the real 2010-2016 labels ({len(train)} items)")
    real = audit_articles(config, train, load, folds, progress)
    topic_only = replace(config, data=replace(config.data, tone_column=""))
    progress(f"1/3: flipping {share:.0%} of the topic labels (seed {seed}) and auditing again")
    noisy, planted = flip_topics(train, share, seed)
    flipped = audit_articles(topic_only, noisy, load, folds, progress)
    found = flagged_ids(flipped, "topic")
    already = flagged_ids(real, "topic")
    results["planted"] = detection_scores(found, planted) | {
        "share": share,
        "seed": seed,
        "flagged_not_planted_also_flagged_without_flips": len((found - planted) & already),
    }
    results["real_flagged"] = {task: len(result.flagged) for task, result in real.tasks.items()}
    results["real_audited"] = {task: len(result.indices) for task, result in real.tasks.items()}

    progress("2/3: fitting on 2010-2016 with and without the flagged items, scoring on 2017")
    results["retrain"] = _retrain(config, real, train, validation, progress)

    progress(f"3/3: auditing all {len(train) + len(validation)} CEP items, timing it and its peak memory")
    started = time.perf_counter()
    full, peak = peak_rss_increase(lambda: audit_labels(config, folds, progress))
    results["full_audit"] = {
        "items": len(full.articles),
        "seconds": time.perf_counter() - started,
        "peak_memory_mb": peak / 2**20,
        "flagged": {task: len(result.flagged) for task, result in full.tasks.items()},
        "duplicate_conflicts": len(full.conflicts),
    }
    results["worst_real"] = real.issues()[:10]
    return results


def _retrain(
    config: ExperimentConfig,
    real: AuditReport,
    train: Articles,
    validation: Articles,
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    """2017 macro-F1 per task of the model fitted on all of 2010-2016, and on it without the audit's
    flagged items below each threshold (excluded at load time, as ``[data] exclude_label_issues`` does)."""
    has_tone = bool(config.data.tone_column)
    rows = [{"variant": "all 2010-2016 items", "excluded": 0, "items": len(train)}]
    rows[0] |= macro_f1_scores(fit_model(config, train, has_tone), validation)
    with tempfile.TemporaryDirectory() as folder:
        issues = Path(folder) / "label_issues.jsonl"
        issues.write_text("".join(json.dumps(record) + "\n" for record in real.issues()), encoding="utf-8")
        for threshold in THRESHOLDS:
            data = replace(config.data, label_issues=str(issues), exclude_label_issues=threshold)
            kept, _ = cep_development_split(load_articles(data)[0])
            progress(f"fitting without the flagged items of quality < {threshold} ({len(train) - len(kept)} left out)")
            row = {"variant": f"flagged items of quality < {threshold} left out", "excluded": len(train) - len(kept)}
            rows.append(row | {"items": len(kept)} | macro_f1_scores(fit_model(config, kept, has_tone), validation))
    return rows


def audit_page(results: dict[str, Any], about: dict[str, str]) -> str:
    """The measurements as bench/audit.md."""
    planted, full = results["planted"], results["full_audit"]
    lines = [
        "# Label audit on CEP",
        "",
        f"Command: {about['command']}  ",
        f"When: {about['when']}; {about['code']}",
        "",
        f"Out-of-sample probabilities by {results['folds']}-fold cross-validation with the `cep` experiment's "
        "pipeline (folds by article, grouped by near-duplicates: not a forward-in-time check), then "
        "cleanlab's `find_label_issues` and self-confidence label quality.",
        "",
        "## Planted noise: is a flipped label found?",
        "",
        f"CEP 2010-2016 ({results['items_2010_2016']} items), {planted['share']:.0%} of the topic labels "
        f"({planted['planted']}) flipped to another topic at random (seed {planted['seed']}).",
        "",
        "| flagged | flips found | precision | recall |",
        "|---|---|---|---|",
        f"| {planted['flagged']} | {planted['found']} | {planted['precision']:.3f} | {planted['recall']:.3f} |",
        "",
        f"The real labels are noisy as well: of the {planted['flagged'] - planted['found']} flagged items that are "
        f"not flips, {planted['flagged_not_planted_also_flagged_without_flips']} are flagged by the audit of the "
        "unflipped data too, so precision against the flips alone understates it.",
        "",
        "## Acting on it: 2017 macro-F1 with and without the flagged items",
        "",
        "The audit of the real 2010-2016 labels flags "
        + ", ".join(
            f"{count} of {results['real_audited'][task]} {task} labels"
            for task, count in results["real_flagged"].items()
        )
        + ". Models fitted on 2010-2016, scored on 2017 (validation; no test set is read):",
        "",
        "| training data | items left out | items | topic macro-F1 | tone macro-F1 |",
        "|---|---|---|---|---|",
    ]
    base = results["retrain"][0]
    for row in results["retrain"]:
        cells = []
        for task in ("topic", "tone"):
            value = row.get(task)
            delta = "" if row is base or value is None else f" ({value - base[task]:+.3f})"
            cells.append("-" if value is None else f"{value:.3f}{delta}")
        lines.append(f"| {row['variant']} | {row['excluded']} | {row['items']} | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        "## Cost: auditing every CEP item",
        "",
        "| items | wall time | peak memory | flagged | near-duplicate conflicts |",
        "|---|---|---|---|---|",
        f"| {full['items']} | {full['seconds']:.0f} s | {full['peak_memory_mb']:.0f} MB | "
        + ", ".join(f"{task} {count}" for task, count in full["flagged"].items())
        + f" | {full['duplicate_conflicts']} |",
        "",
        "One run, on this machine's 2 shared cores; memory is the peak resident size above the level before.",
        "",
        "## The 10 worst real labels (2010-2016)",
        "",
        "| quality | task | id | given | suggested | text |",
        "|---|---|---|---|---|---|",
    ]
    for record in results["worst_real"]:
        text = record["text"][:120].replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {record['quality']:.3f} | {record['task']} | {record['id']} | {record['given']} | "
            f"{record['suggested']} | {text} |"
        )
    return "\n".join(lines) + "\n"
