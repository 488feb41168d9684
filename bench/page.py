"""The benchmark's results as a page a reader understands without the code, and as one MLflow run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.datasets import DATA_FILES
from bench.peers import MODELS
from train.config import ExperimentConfig

BENCH_EXPERIMENT = "newsclf-bench"


def results_markdown(results: dict[str, Any], about: dict[str, str], settings: str = "") -> str:
    """The benchmark as a page a reader understands without the code.

    ``about`` carries the provenance lines (command, date, commit, versions); ``settings`` is
    ours' configuration as TOML, shown at the end.
    """
    cep, cost = results["cep_temporal"], results["cost"]
    names = [name for name in MODELS if name in cep["topic"]]
    lines = ["# newsclf on real news: benchmark results", ""]
    lines += [f"- **{key}**: {value}" for key, value in about.items()]
    lines += [f"- **note**: {note}" for note in results["notes"]]
    lines += [
        "",
        "Every model in a table was fitted and scored on exactly the same items in the same run.",
        "",
        "## Targets",
        "",
        "| target | ours | met |",
        "|---|---|---|",
    ]
    lines += [
        f"| {row['target']} | {row['value']:.3f} | {'yes' if row['met'] else '**no**'} |" for row in results["targets"]
    ]
    lines += [
        "",
        f"## 1. CEP forward in time: fit on 2010-2016 ({cep['train_items']:,} items), "
        f"score on 2017 ({cep['test_items']:,} items)",
        "",
        "Wikipedia Current Events Portal summaries. Topic: 10 classes. Tone: military vs diplomatic, fitted and "
        f"scored on the items that carry one ({cep['test_items_with_tone']:,} in 2017). 2017 is the validation year: "
        "ours' settings and fastText's autotune were both chosen on it, so these are validation scores; a later, "
        "unseen period judges the models separately.",
        "",
        "| model | topic macro-F1 | topic accuracy | tone macro-F1 | tone accuracy | fit s (topic + tone) |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        topic, tone = cep["topic"][name], cep["tone"][name]
        lines.append(
            f"| {MODELS[name]} | {topic['macro_f1']:.3f} | {topic['accuracy']:.3f} | {tone['macro_f1']:.3f} | "
            f"{tone['accuracy']:.3f} | {topic['fit_seconds'] + tone['fit_seconds']:.1f} |"
        )
    for number, (key, title) in enumerate(
        (("agnews", "AG News test split"), ("bbc", "BBC News, de-duplicated")), start=2
    ):
        section = results[key]
        extra = (
            f", after removing {section['duplicates_removed']} duplicates "
            "(same text ignoring whitespace, case and punctuation)"
            if "duplicates_removed" in section
            else ""
        )
        lines += [
            "",
            f"## {number}. {title}: stratified {section['folds']}-fold accuracy ({section['items']:,} items{extra})",
            "",
            "Title and text. Ours uses the topic settings chosen on CEP, not re-tuned here; fastText autotunes on 10% "
            "of each fold's training part. Same folds for every model.",
            "",
            "| model | mean accuracy | std over folds | per fold |",
            "|---|---|---|---|",
        ]
        for name in names:
            score = section["accuracy"][name]
            per_fold = ", ".join(f"{fold:.3f}" for fold in score["folds"])
            lines.append(f"| {MODELS[name]} | {score['mean']:.4f} | {score['std']:.4f} | {per_fold} |")
    cameo = results["cameo"]
    lines += [
        "",
        f"## 4. CAMEO, cross-domain tone: fitted on {cameo['trained_on']}, "
        f"scored on the {cameo['items_with_tone']:,} cameo-train sentences with a tone",
        "",
        "Tone from CAMEO's hand-coded event class (verbal_cooperation -> diplomatic, material_conflict -> military). "
        "Nothing from CAMEO is used for fitting.",
        "",
        "| model | tone macro-F1 | tone accuracy |",
        "|---|---|---|",
    ]
    lines += [
        f"| {MODELS[name]} | {score['macro_f1']:.3f} | {score['accuracy']:.3f} |"
        for name, score in cameo["tone"].items()
    ]
    costed = [name for name in names if name in cost]
    lines += [
        "",
        f"## 5. Cost: both tasks fitted on all {cost['items']:,} CEP items "
        f"({cost['items_with_tone']:,} with a tone for tone)",
        "",
        f"Medians of {cost['repeats']} run(s) in this process; ours fits with {cost['n_jobs']} worker(s) (n_jobs) "
        "and fastText with as many threads; LinearSVC (liblinear) has no parallel fit. "
        f"{cost['cpu_count']} cores shared with other work. "
        "fastText retrains with the settings its autotune chose on 2017. "
        "Peak memory: resident memory above the level before one fit of both tasks, sampled every 5 ms "
        "(native buffers included). "
        "Throughput: both tasks predicted for the 2017 items. "
        "Ours is the model `make train` ships, fitted by the same function: topic, tone and the tone-applies model "
        "(its fit counts in tone's, its prediction in the throughput, its file in the size and load time).",
        "",
        "| | " + " | ".join(MODELS[name] for name in costed) + " |",
        "|---|" + "---|" * len(costed),
    ]
    rows = (
        ("fit both tasks, s", "fit_seconds_both_tasks", "{:.2f}"),
        ("fit time vs TF-IDF + LinearSVC", "fit_time_ratio_to_tfidf_svc", "{:.1f}x"),
        ("fit topic, s", "fit_seconds_topic", "{:.2f}"),
        ("fit tone, s", "fit_seconds_tone", "{:.2f}"),
        ("predict, items/s (both tasks)", "predict_items_per_second", "{:,.0f}"),
        ("peak memory while fitting, MiB", "peak_memory_increase_mib", "{:.0f}"),
        ("artifact size on disk, MiB", "artifact_mib", "{:.1f}"),
        ("load time, s", "load_seconds", "{:.3f}"),
    )
    for label, key, form in rows:
        lines.append(
            f"| {label} | "
            + " | ".join(form.format(cost[name][key]) if key in cost[name] else "-" for name in costed)
            + " |"
        )
    realism = results["corpus_realism"]
    lines += [
        "",
        "## 6. Corpus realism: TF-IDF 1-2 gram + LinearSVC fitted on the shipped corpus alone, scored on CEP 2017",
        "",
        f"Shipped corpus ({realism['corpus_items']} hand-written articles) -> CEP 2017: topic macro-F1 "
        f"{realism['topic_macro_f1']:.3f}, tone macro-F1 {realism['tone_macro_f1']:.3f}.",
        "",
    ]
    if settings:
        lines += [
            "## Ours' settings",
            "",
            "Chosen on CEP 2017 only (see tuning.md).",
            "",
            "```toml",
            settings.rstrip(),
            "```",
            "",
        ]
    return "\n".join(lines)


def flat_metrics(results: dict[str, Any]) -> dict[str, float]:
    """The benchmark's numbers as MLflow metric names, e.g. ``cep_topic_macro_f1_ours``."""
    metrics: dict[str, float] = {}
    cep = results["cep_temporal"]
    for task in ("topic", "tone"):
        for name, score in cep[task].items():
            metrics.update({f"cep_{task}_{key}_{name}": value for key, value in score.items()})
    for section in ("agnews", "bbc"):
        for name, score in results[section]["accuracy"].items():
            metrics[f"{section}_accuracy_{name}"] = score["mean"]
            metrics[f"{section}_accuracy_std_{name}"] = score["std"]
    for name, score in results["cameo"]["tone"].items():
        metrics.update({f"cameo_tone_{key}_{name}": value for key, value in score.items()})
    for name, cost in results["cost"].items():
        if isinstance(cost, dict):
            metrics.update(
                {f"cost_{key}_{name}": value for key, value in cost.items() if isinstance(value, (int, float))}
            )
    metrics["targets_met"] = sum(row["met"] for row in results["targets"])
    return metrics


def log_benchmark(
    results: dict[str, Any], markdown: str, config: ExperimentConfig, data_dir: Path, tracking_uri: str
) -> str:
    """Log one run to the ``newsclf-bench`` MLflow experiment: ours' settings, every number, both files.

    Returns the run's id.
    """
    import mlflow

    from newsclf._files import sha256_file
    from train.config import flatten

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(BENCH_EXPERIMENT)
    with mlflow.start_run(run_name=f"bench {config.name}") as run:
        mlflow.log_params(
            {
                key: str(value)
                for key, value in flatten(config).items()
                if key.split(".")[0] in ("seed", "features", "topic", "tone")
            }
        )
        mlflow.set_tags(
            {f"data_sha256.{relative.parent}": sha256_file(Path(data_dir) / relative) for relative in DATA_FILES}
        )
        mlflow.log_metrics(flat_metrics(results))
        mlflow.log_dict(results, "results.json")
        mlflow.log_text(markdown, "results.md")
    return run.info.run_id
