"""The benchmark's results as a page a reader understands without the code, and as one MLflow run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.datasets import DATA_FILES
from bench.peers import MODELS
from newsclf.train.config import ExperimentConfig

BENCH_EXPERIMENT = "newsclf-bench"


def results_markdown(results: dict[str, Any], about: dict[str, str], settings: str = "") -> str:
    """The benchmark as a page a reader understands without the code.

    ``about`` carries the provenance lines (command, date, commit, versions); ``settings`` is
    ours' configuration as TOML, shown at the end.
    """
    cep = results["cep_temporal"]
    names = [name for name in MODELS if name in cep["topic"]]
    lines = ["# newsclf on real news: benchmark results", ""]
    lines += [f"- **{key}**: {value}" for key, value in about.items()]
    lines += [f"- **note**: {note}" for note in results["notes"]]
    experiments = results.get("experiments", {})
    lines += [
        "",
        "Every model in a table was fitted and scored on exactly the same items in the same run. "
        + "; ".join(f"{MODELS[name]}: `experiments/{experiment}.toml`" for name, experiment in experiments.items())
        + ".",
        "",
        "## Targets",
        "",
        "| target | value | met |",
        "|---|---|---|",
    ]
    lines += [
        f"| {row['target']} | {row['value']:.3f} | {'yes' if row['met'] else '**no**'} |" for row in results["targets"]
    ]
    lines += _accuracy_vs_cost(results, names)
    lines += _rolling(results, names)
    lines += [
        "",
        f"## 2. CEP forward in time: fit on 2010-2016 ({cep['train_items']:,} items), "
        f"score on 2017 ({cep['test_items']:,} items)",
        "",
        "Wikipedia Current Events Portal summaries. Topic: 10 classes. Tone: military vs diplomatic, fitted and "
        f"scored on the items that carry one ({cep['test_items_with_tone']:,} in 2017). 2017 is the validation year: "
        "ours' settings were chosen on it (bench/tuning.md), so ours' numbers here are validation scores; fastText "
        "chose its settings on a held-out part of 2010-2016. A later, unseen period judges the models separately.",
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
    if "fasttext_tuned_params" in cep:
        lines += ["", "fastText's choice: " + _settings(cep["fasttext_tuned_params"]) + "."]
    for number, (key, title) in enumerate(
        (("agnews", "AG News test split"), ("bbc", "BBC News, de-duplicated")), start=3
    ):
        lines += _folds(results[key], number, title, names)
    lines += _cameo(results["cameo"])
    lines += _cost(results["cost"], names)
    realism = results["corpus_realism"]
    lines += [
        "",
        "## 7. Corpus realism: TF-IDF 1-2 gram + LinearSVC fitted on the shipped corpus alone, scored on CEP 2017",
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


def _accuracy_vs_cost(results: dict[str, Any], names: list[str]) -> list[str]:
    rolling, cost = results["cep_rolling"], results["cost"]
    costed = [name for name in names if name in cost]
    periods = ", ".join(f"<= {fold['origin'][:4]} -> {int(fold['origin'][:4]) + 1}" for fold in rolling["folds"])
    lines = [
        "",
        "## Accuracy vs cost",
        "",
        f"Accuracy: CEP rolling-origin macro-F1, mean +- standard deviation over the folds {periods} "
        "(section 1). Cost: both tasks fitted on all CEP items (section 6); speeds are medians of "
        f"{cost['repeats']} runs, and each cost is also given as a ratio to TF-IDF + LinearSVC's in the same run. "
        "Peak memory is while fitting; throughput is both tasks predicted for the 2017 items.",
        "",
        "| model | topic macro-F1 | tone macro-F1 | predict items/s | fit peak memory, MiB | artifact, MiB "
        "| load, s | fit, s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in costed:
        row = cost[name]
        cells = [
            f"{rolling[task][name]['mean']:.3f} +- {rolling[task][name]['spread']:.3f}" for task in ("topic", "tone")
        ]
        for key, form in (
            ("predict_items_per_second", "{:,.0f}"),
            ("peak_memory_increase_mib", "{:,.0f}"),
            ("artifact_mib", "{:.1f}"),
            ("load_seconds", "{:.3f}"),
            ("fit_seconds_both_tasks", "{:.1f}"),
        ):
            ratio = row.get(f"{key}_ratio_to_tfidf_svc")
            cells.append(form.format(row[key]) + (f" ({ratio:.2g}x)" if ratio is not None else ""))
        lines.append(f"| {MODELS[name]} | " + " | ".join(cells) + " |")
    return lines


def _rolling(results: dict[str, Any], names: list[str]) -> list[str]:
    rolling, lead = results["cep_rolling"], results["lead"]
    folds = rolling["folds"]
    lines = [
        "",
        "## 1. CEP rolling origins: fit up to the end of a year, score the next year",
        "",
        "The folds of `[search] origins` (train/fit/rolling.py): "
        + "; ".join(
            f"<= {fold['origin']}: {fold['fit_items']:,} fitted, {fold['scored_items']:,} scored" for fold in folds
        )
        + ". Macro-F1 per fold; tone on the items that carry one. Ours' settings were chosen on 2017 (the last "
        "fold's scored year) and the fast profile's on these same folds (bench/fast_profile.md), so their rows are "
        "selection scores, a little optimistic; fastText tunes its grid on a held-out 10% of each fold's fitted "
        "part only, and TF-IDF + LinearSVC is not tuned. The later, unseen period is the fair judge.",
        "",
        "| model | task | "
        + " | ".join(f"<= {fold['origin'][:4]} -> {int(fold['origin'][:4]) + 1}" for fold in folds)
        + " | mean +- sd |",
        "|---|---|" + "---|" * (len(folds) + 1),
    ]
    for name in names:
        for task in ("topic", "tone"):
            found = rolling[task][name]
            lines.append(
                f"| {MODELS[name]} | {task} | "
                + " | ".join(f"{score:.3f}" for score in found["folds"])
                + f" | {found['mean']:.3f} +- {found['spread']:.3f} |"
            )
    if lead:
        lines += [
            "",
            "Ours' lead: mean gap, against the fold spread (the larger of the two models' standard deviations over "
            "the folds) and the standard deviation of the fold-by-fold gaps.",
            "",
            "| task | over | mean gap | fold spread | sd of the gaps | ahead beyond the fold spread "
            "| ahead every fold |",
            "|---|---|---|---|---|---|---|",
        ]
        for task, peers in lead.items():
            for peer, found in peers.items():
                lines.append(
                    f"| {task} | {MODELS[peer]} | {found['gap']:+.3f} | {found['fold_spread']:.3f} | "
                    f"{found['gap_spread']:.3f} | {'yes' if found['ahead_beyond_spread'] else '**no**'} | "
                    f"{'yes' if found['ahead_every_fold'] else 'no'} |"
                )
    if "fasttext_settings" in rolling:
        lines += [
            "",
            "fastText's choice per fold: "
            + "; ".join(
                f"<= {fold['origin'][:4]}: {_settings(chosen)}"
                for fold, chosen in zip(folds, rolling["fasttext_settings"])
            )
            + ".",
        ]
    return lines


def _folds(section: dict[str, Any], number: int, title: str, names: list[str]) -> list[str]:
    extra = (
        f", after removing {section['duplicates_removed']} duplicates "
        "(same text ignoring whitespace, case and punctuation)"
        if "duplicates_removed" in section
        else ""
    )
    lines = [
        "",
        f"## {number}. {title}: stratified {section['folds']}-fold ({section['items']:,} items{extra})",
        "",
        "Title and text. Ours uses the topic settings chosen on CEP, not re-tuned here; fastText chooses its "
        "settings on a held-out 10% of each fold's training part (never the test fold). Same folds for every model.",
        "",
        "| model | mean macro-F1 | mean accuracy | accuracy std over folds | accuracy per fold |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        score = section["accuracy"][name]
        per_fold = ", ".join(f"{fold:.3f}" for fold in score["folds"])
        lines.append(
            f"| {MODELS[name]} | {section['macro_f1'][name]['mean']:.4f} | {score['mean']:.4f} | {score['std']:.4f} "
            f"| {per_fold} |"
        )
    if "fasttext_settings" in section:
        lines += [
            "",
            "fastText's choice per fold: "
            + "; ".join(_describe(chosen) for chosen in section["fasttext_settings"])
            + ".",
        ]
    return lines


def _cameo(cameo: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## 5. CAMEO, cross-domain tone: fitted on {cameo['trained_on']}, "
        f"scored on the {cameo['items_with_tone']:,} cameo-train sentences with a tone",
        "",
        "Tone from CAMEO's hand-coded event class (verbal_cooperation -> diplomatic, material_conflict -> military). "
        "Nothing from CAMEO is used for fitting.",
        "",
        "| model | tone macro-F1 | tone accuracy |",
        "|---|---|---|",
    ]
    return lines + [
        f"| {MODELS[name]} | {score['macro_f1']:.3f} | {score['accuracy']:.3f} |"
        for name, score in cameo["tone"].items()
    ]


def _cost(cost: dict[str, Any], names: list[str]) -> list[str]:
    costed = [name for name in names if name in cost]
    lines = [
        "",
        f"## 6. Cost: both tasks fitted on all {cost['items']:,} CEP items "
        f"({cost['items_with_tone']:,} with a tone for tone)",
        "",
        f"Medians of {cost['repeats']} run(s) in this process; ours fits with {cost['n_jobs']} worker(s) (n_jobs); "
        "LinearSVC (liblinear) has no parallel fit and fastText runs one thread. "
        f"{cost['cpu_count']} cores shared with other work. "
        "fastText trains once with the settings it chose on 2010-2016 (section 2); its grid search is not counted. "
        "Peak memory: resident memory above the level before one fit of both tasks, sampled every 5 ms "
        "(native buffers and fit workers included). "
        "Throughput: both tasks predicted for the 2017 items. "
        "Ours is the model `make train` ships, fitted by the same function: topic, tone and the tone-applies model "
        "(its fit counts in tone's, its prediction in the throughput, its file in the size and load time).",
        "",
        "| | " + " | ".join(MODELS[name] for name in costed) + " |",
        "|---|" + "---|" * len(costed),
    ]
    rows = (
        ("fit both tasks, s", "fit_seconds_both_tasks", "{:.2f}"),
        ("fit time vs TF-IDF + LinearSVC", "fit_seconds_both_tasks_ratio_to_tfidf_svc", "{:.1f}x"),
        ("fit topic, s", "fit_seconds_topic", "{:.2f}"),
        ("fit tone, s", "fit_seconds_tone", "{:.2f}"),
        ("predict, items/s (both tasks)", "predict_items_per_second", "{:,.0f}"),
        ("predict speed vs TF-IDF + LinearSVC", "predict_items_per_second_ratio_to_tfidf_svc", "{:.2f}x"),
        ("peak memory while fitting, MiB", "peak_memory_increase_mib", "{:.0f}"),
        ("peak memory vs TF-IDF + LinearSVC", "peak_memory_increase_mib_ratio_to_tfidf_svc", "{:.1f}x"),
        ("artifact size on disk, MiB", "artifact_mib", "{:.1f}"),
        ("artifact size vs TF-IDF + LinearSVC", "artifact_mib_ratio_to_tfidf_svc", "{:.1f}x"),
        ("load time, s", "load_seconds", "{:.3f}"),
        ("load time vs TF-IDF + LinearSVC", "load_seconds_ratio_to_tfidf_svc", "{:.1f}x"),
    )
    for label, key, form in rows:
        lines.append(
            f"| {label} | "
            + " | ".join(form.format(cost[name][key]) if key in cost[name] else "-" for name in costed)
            + " |"
        )
    return lines


def _settings(per_task: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{task} {_describe(chosen)}" for task, chosen in per_task.items())


def _describe(chosen: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in chosen.items())


def flat_metrics(results: dict[str, Any]) -> dict[str, float]:
    """The benchmark's numbers as MLflow metric names, e.g. ``cep_topic_macro_f1_ours``."""
    metrics: dict[str, float] = {}
    cep = results["cep_temporal"]
    for task in ("topic", "tone"):
        for name, score in cep[task].items():
            metrics.update({f"cep_{task}_{key}_{name}": value for key, value in score.items()})
    for task in ("topic", "tone"):
        for name, score in results["cep_rolling"][task].items():
            metrics[f"cep_rolling_{task}_macro_f1_{name}"] = score["mean"]
            metrics[f"cep_rolling_{task}_macro_f1_spread_{name}"] = score["spread"]
    for section in ("agnews", "bbc"):
        for name, score in results[section]["accuracy"].items():
            metrics[f"{section}_accuracy_{name}"] = score["mean"]
            metrics[f"{section}_accuracy_std_{name}"] = score["std"]
            metrics[f"{section}_macro_f1_{name}"] = results[section]["macro_f1"][name]["mean"]
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
    from newsclf.train.config import flatten

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
