"""Label-noise audit: which labels of the data are likely wrong, found from out-of-sample probabilities.

Every article gets probabilities from a model that did not train on it: K-fold cross-validation
with the experiment's own pipeline (:func:`newsclf.train.training.fit_model`), folds stratified by topic
and keeping each group of near-duplicate copies (:mod:`train.dedup`) in one fold, so a copy
cannot vouch for its own label. cleanlab then flags the articles whose given label the
out-of-sample model disputes (``find_label_issues``, pruned by the estimated noise rates) and
scores every label's quality (the probability the model gives the given label: low = likely
wrong), per task: topic on every article, tone on the articles that carry one. Near-duplicate
groups whose copies carry different labels are listed as well.

Folds are by article, not by date: on dated data an article is judged by models that also saw
later articles. The audit asks whether a label agrees with the rest of the data, not whether a
model generalises forward in time (that is what the temporal split of training measures).

The audit reads the data as training does (the experiment's source, column mapping and
corrections) but never excludes earlier label issues (``data.label_issues``): it must see every
article to say which are flagged now. It writes into a new folder, or one an earlier newsclf
folder proves it wrote (:mod:`train.outputs`), and logs the same
files to an MLflow run tagged with the data's fingerprint.
"""

from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from newsclf._files import remove_temporary
from newsclf.errors import NewsclfError
from newsclf.train.config import ExperimentConfig, flatten
from newsclf.train.data.articles import Articles, LoadReport
from newsclf.train.data.loading import load_articles
from newsclf.train.tracking.outputs import OutputFolder

ISSUES_FILE = "label_issues.jsonl"
SUMMARY_FILE = "summary.md"
CONFLICTS_FILE = "duplicate_conflicts.jsonl"
TEXT_CHARS = 300
WORST_SHOWN = 30

# Output folders of `newsclf audit`, replaced only while they hold just what an audit wrote.
_AUDIT = OutputFolder("audit", "a label audit", "newsclf audit", Path("reports") / "audit")


@dataclass(frozen=True)
class TaskAudit:
    """One task's audit: the articles with a label for it, their out-of-sample probabilities and the verdicts."""

    task: str
    labels: list[str]  # the probability columns
    indices: np.ndarray  # positions in the audited articles
    given: np.ndarray  # label index per audited row
    probabilities: np.ndarray
    quality: np.ndarray
    flagged: np.ndarray  # rows (into indices) cleanlab flags, worst first

    def noise_counts(self) -> np.ndarray:
        """Estimated articles per (given label, true label): cleanlab's joint, scaled to the article count."""
        from cleanlab.count import estimate_joint

        return estimate_joint(self.given, self.probabilities) * len(self.given)


@dataclass
class AuditReport:
    """Everything the audit found, before it is written."""

    config: ExperimentConfig
    articles: Articles
    load: LoadReport
    folds: int
    tasks: dict[str, TaskAudit] = field(default_factory=dict)
    conflicts: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def issues(self) -> list[dict]:
        """One record per flagged article and task, lowest quality first."""
        records = []
        for name, result in self.tasks.items():
            suggested = result.probabilities.argmax(axis=1)
            for row in result.flagged:
                index = int(result.indices[row])
                records.append(
                    {
                        "id": self.articles.ids[index],
                        "task": name,
                        "given": result.labels[result.given[row]],
                        "suggested": result.labels[suggested[row]],
                        "quality": round(float(result.quality[row]), 6),
                        "text": self.articles.texts[index][:TEXT_CHARS],
                    }
                )
        return sorted(records, key=lambda record: (record["quality"], record["task"], record["id"]))


@dataclass(frozen=True)
class AuditResult:
    """Where the audit went and what it found."""

    output: Path
    run_id: str
    flagged: dict[str, int]
    audited: dict[str, int]
    conflicts: int


def audit(
    config: ExperimentConfig,
    output: Path,
    tracking_uri: str,
    folds: int = 5,
    progress: Callable[[str], None] = lambda message: None,
) -> AuditResult:
    """Audit the labels of the experiment's data; write ``output`` and log it as an MLflow run.

    The store, the output folder and the data are checked before any run starts.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    from newsclf.train.tracking.runs import connect, liveness

    if folds < 2:
        raise NewsclfError(f"--folds must be at least 2, got {folds}")
    # A new SQLite store is not created (MlflowClient would) when the output is refused: nothing to ask it yet.
    client = MlflowClient(tracking_uri) if connect(tracking_uri) else None
    _AUDIT.check(output, tracking_uri, client)
    report = audit_labels(config, folds, progress)

    progress("writing the audit and logging the MLflow run")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(config.tracking.experiment)
    staging = _AUDIT.new_staging(output)
    try:
        with (
            mlflow.start_run(run_name=f"audit {config.name}") as run,
            liveness(tracking_uri, run.info.run_id),
        ):
            written = _write(report, staging, run.info.run_id)
            _log_run(report, staging)
            _AUDIT.put_in_place(staging, written, output)
    finally:
        remove_temporary(staging)
    return AuditResult(
        output,
        run.info.run_id,
        {name: len(result.flagged) for name, result in report.tasks.items()},
        {name: len(result.indices) for name, result in report.tasks.items()},
        len(report.conflicts),
    )


def audit_labels(
    config: ExperimentConfig, folds: int = 5, progress: Callable[[str], None] = lambda message: None
) -> AuditReport:
    """Load the experiment's data (corrections applied, earlier label issues not excluded), get
    out-of-sample probabilities by grouped K-fold, and run cleanlab per task. No MLflow, no files."""
    started = time.perf_counter()
    data = replace(config.data, label_issues="", exclude_label_issues=0.0)
    articles, load, _ = load_articles(data)
    report = audit_articles(config, articles, load, folds, progress)
    report.seconds = time.perf_counter() - started
    return report


def audit_articles(
    config: ExperimentConfig,
    articles: Articles,
    load: LoadReport,
    folds: int = 5,
    progress: Callable[[str], None] = lambda message: None,
) -> AuditReport:
    """The audit of articles already loaded (``load`` says where from); tone is audited when the
    experiment's data has a tone column."""
    from newsclf.train.data.dedup import find_duplicates

    started = time.perf_counter()
    has_tone = bool(config.data.tone_column)
    progress(f"looking for near-duplicate groups among {len(articles)} articles")
    found = find_duplicates(articles.texts, config.dedup.near_threshold, config.dedup.shingle_size)
    groups = np.arange(len(articles))
    for group in found.groups:
        groups[list(group.indices)] = group.indices[0]
    _require_auditable(articles, groups, folds, has_tone)
    probabilities = out_of_sample_probabilities(config, articles, groups, folds, has_tone, progress)
    report = AuditReport(config, articles, load, folds, conflicts=_conflicts(articles, found.groups))
    for task, (labels, indices, proba) in probabilities.items():
        progress(f"finding {task} label issues among {len(indices)} articles")
        report.tasks[task] = _label_issues(task, labels, indices, proba, articles)
    report.seconds = time.perf_counter() - started
    return report


def out_of_sample_probabilities(
    config: ExperimentConfig,
    articles: Articles,
    groups: np.ndarray,
    folds: int,
    has_tone: bool,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
    """Per task: its labels, the positions of the articles that carry one, and for each of those the
    probabilities of a model fitted (by :func:`newsclf.train.fit.in_memory.fit_model`) on the other folds.

    Folds are stratified by topic and never split a group (equal ``groups`` values).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    from newsclf.train.fit.in_memory import fit_model

    tasks = {"topic": articles.topics} | ({"tone": articles.tones} if has_tone else {})
    labels = {task: sorted({label for label in values if label is not None}) for task, values in tasks.items()}
    rows = {
        task: np.array([i for i, label in enumerate(values) if label is not None]) for task, values in tasks.items()
    }
    result = {task: np.zeros((len(articles), len(labels[task]))) for task in tasks}
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    with warnings.catch_warnings():
        # A topic rarer than the fold count cannot be in every fold; its articles are still judged
        # by the folds that hold it, so scikit-learn's warning about it is expected here.
        warnings.filterwarnings("ignore", message="The least populated class in y has only")
        split = list(splitter.split(np.zeros(len(articles)), articles.topics, groups))
    for number, (fit_on, held_out) in enumerate(split, start=1):
        progress(f"fold {number}/{folds}: fitting on {len(fit_on)} articles, judging {len(held_out)}")
        model = fit_model(config, articles.subset(fit_on), has_tone)
        for task, values in tasks.items():
            judged = [i for i in held_out if values[i] is not None]
            if judged:
                columns = [labels[task].index(label) for label in model.labels(task)]
                texts = [articles.texts[i] for i in judged]
                result[task][np.ix_(judged, columns)] = model.pipelines[task].predict_proba(texts)
    return {task: (labels[task], rows[task], result[task][rows[task]]) for task in tasks}


def _label_issues(task: str, labels: list[str], indices: np.ndarray, proba: np.ndarray, articles: Articles):
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    values = articles.topics if task == "topic" else articles.tones
    given = np.array([labels.index(values[i]) for i in indices])
    quality = get_label_quality_scores(given, proba)
    # One process: its worker pool would inherit the command's SIGTERM handler, and for tens of
    # thousands of articles the pruning takes well under a second anyway.
    flagged = find_label_issues(given, proba, return_indices_ranked_by="self_confidence", n_jobs=1)
    return TaskAudit(task, labels, indices, given, proba, quality, np.asarray(flagged, dtype=int))


def _require_auditable(articles: Articles, groups: np.ndarray, folds: int, has_tone: bool) -> None:
    """Too few articles, groups or classes for K folds, said as one line before any fit."""
    distinct = len(set(groups.tolist()))
    if distinct < folds:
        raise NewsclfError(
            f"the data has {distinct} distinct stories (near-duplicates counted once), fewer than {folds} folds; "
            "pass a smaller --folds or add articles"
        )
    largest = max(Counter(articles.topics).values())
    if largest < folds:  # scikit-learn's stratified folds need one class with an article per fold
        raise NewsclfError(
            f"the most common topic has {largest} articles, fewer than {folds} folds; "
            f"pass --folds {max(largest, 2)} or fewer, or add articles"
        )
    for task, values in (("topic", articles.topics), ("tone", articles.tones if has_tone else [])):
        present = Counter(label for label in values if label is not None)
        if (task == "topic" or has_tone) and len(present) < 2:
            hint = '; set data.tone_column = "" if the data has no tone' if task == "tone" else ""
            raise NewsclfError(
                f"task {task}: the data has classes {sorted(present)}; an audit needs at least two{hint}"
            )


def _conflicts(articles: Articles, groups) -> list[dict]:
    """Near-duplicate groups whose copies carry different topic or tone labels."""
    found = []
    for group in groups:
        ids = [articles.ids[i] for i in group.indices]
        topics = [articles.topics[i] for i in group.indices]
        tones = [articles.tones[i] for i in group.indices]
        if len(set(topics)) > 1 or len(set(tones)) > 1:
            text = articles.texts[group.indices[0]][:TEXT_CHARS]
            found.append({"ids": ids, "topics": topics, "tones": tones, "exact": group.exact, "text": text})
    return found


def _write(report: AuditReport, folder: Path, run_id: str) -> list[str]:
    issues = report.issues()
    with open(folder / ISSUES_FILE, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in issues)
    with open(folder / CONFLICTS_FILE, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(group, ensure_ascii=False) + "\n" for group in report.conflicts)
    (folder / SUMMARY_FILE).write_text(summary_markdown(report, issues, run_id), encoding="utf-8")
    return [ISSUES_FILE, CONFLICTS_FILE, SUMMARY_FILE]


def summary_markdown(report: AuditReport, issues: list[dict], run_id: str) -> str:
    """The audit as a page: counts per task, the estimated noise matrices, the worst items, how to review."""
    load, config = report.load, report.config
    dated = any(report.articles.dates)
    lines = [
        f"# Label audit: {config.name}",
        "",
        f"- Data: {load.source} (SHA-256 {load.fingerprint[:12]}), {len(report.articles)} articles",
        f"- Out-of-sample probabilities: {report.folds}-fold cross-validation with the experiment's pipeline, "
        "folds stratified by topic, near-duplicate copies kept in one fold",
        "- Time: folds are by article, not by date; an article is judged by models that also saw later ones. "
        "This checks that a label agrees with the rest of the data, not forward-in-time generalisation."
        if dated
        else "- Time: the data has no dates; folds are by article.",
        f"- MLflow run: {run_id} (experiment {config.tracking.experiment}); {report.seconds:.0f} s",
    ]
    if "corrections" in load.review:
        corrections = load.review["corrections"]
        lines.append(
            f"- Corrections applied first: {corrections['file']} ({sum(corrections['relabelled'].values())} "
            f"relabelled, {corrections['dropped']} dropped)"
        )
    lines += ["", "## Counts", "", "| task | articles audited | flagged | share | flagged quality (median) |"]
    lines.append("|---|---|---|---|---|")
    for name, result in report.tasks.items():
        flagged = result.quality[result.flagged]
        median = f"{float(np.median(flagged)):.3f}" if len(flagged) else "-"
        share = len(flagged) / max(len(result.indices), 1)
        lines.append(f"| {name} | {len(result.indices)} | {len(flagged)} | {share:.1%} | {median} |")
    lines.append(f"\nNear-duplicate groups with conflicting labels: {len(report.conflicts)} (in `{CONFLICTS_FILE}`).")
    for name, result in report.tasks.items():
        lines += _noise_section(name, result)
    lines += ["", f"## The {WORST_SHOWN} worst items", "", "| quality | task | id | given | suggested | text |"]
    lines.append("|---|---|---|---|---|---|")
    for record in issues[:WORST_SHOWN]:
        text = record["text"][:140].replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {record['quality']:.3f} | {record['task']} | {record['id']} | {record['given']} | "
            f"{record['suggested']} | {text} |"
        )
    lines += ["", _REVIEW_HELP.format(issues=ISSUES_FILE)]
    return "\n".join(lines) + "\n"


def _noise_section(name: str, result: TaskAudit) -> list[str]:
    counts = result.noise_counts()
    labels = result.labels
    lines = [
        "",
        f"## Estimated noise matrix: {name}",
        "",
        "Rows: the given label; columns: the label cleanlab estimates is true; cells: estimated articles. "
        "Off the diagonal is noise: a given label hiding another true one.",
        "",
        "| given \\ true | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for row, label in enumerate(labels):
        lines.append(f"| {label} | " + " | ".join(f"{counts[row, col]:.0f}" for col in range(len(labels))) + " |")
    pairs = sorted(
        ((counts[r, c], labels[r], labels[c]) for r in range(len(labels)) for c in range(len(labels)) if r != c),
        reverse=True,
    )
    top = [f"{given} hiding {true} (~{count:.0f})" for count, given, true in pairs[:5] if count >= 0.5]
    if top:
        lines += ["", "Largest: " + "; ".join(top) + "."]
    return lines


_REVIEW_HELP = """## How to review

1. Read `{issues}` from the top (lowest quality first). For each line decide: the given label is
   right (do nothing), another label is right, or the article does not belong in the data.
2. Write your decisions to a corrections file (JSON Lines or CSV), one line per decision:
   `{{"id": "...", "task": "topic", "label": "international_relations"}}` or `{{"id": "...", "drop": true}}`.
3. Name it in the experiment, `[data] corrections = "path/to/corrections.jsonl"`, and train again:
   the run counts what it changed and logs the file with its SHA-256.
4. Or, without review, leave the flagged items out: `[data] label_issues = "path/to/{issues}"` and
   `exclude_label_issues = 0.1` drop every flagged article whose quality is below 0.1 (articles
   you corrected are kept). Compare the validation scores of both runs before keeping it.
"""


def _log_run(report: AuditReport, folder: Path) -> None:
    import mlflow

    from newsclf.train.tracking.runs import log_articles_input, log_review_files, run_tags

    load = report.load
    description = f"Label audit (cleanlab, {report.folds} folds) of experiment {report.config.name}'s data"
    mlflow.set_tags(run_tags(report.config, load) | {"newsclf.kind": "audit", "mlflow.note.content": description})
    mlflow.log_params(flatten(report.config) | {"audit.folds": report.folds})
    data = replace(report.config.data, label_issues="", exclude_label_issues=0.0)
    log_articles_input(report.articles, data, load, "audit")
    log_review_files(data, load)
    counts = {"audit.duplicate_conflicts": len(report.conflicts)}
    for name, result in report.tasks.items():
        counts[f"audit.{name}.articles"] = len(result.indices)
        counts[f"audit.{name}.flagged"] = len(result.flagged)
    mlflow.log_params(counts)
    mlflow.log_metric("audit/seconds", report.seconds)
    mlflow.log_artifacts(str(folder))
