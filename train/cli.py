"""The ``newsclf`` command. The only module that reads arguments and the environment."""

from __future__ import annotations

import argparse
import os
import sys

from train.errors import NewsclfError
from train.paths import DEFAULT_MODEL_URI, DEFAULT_TRACKING_URI

_TRACKING_HELP = f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI} in the current folder)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``newsclf``; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except NewsclfError as exc:
        print(f"newsclf: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("newsclf: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsclf", description="News topic and military/diplomatic tone classifiers.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train, evaluate, log and register both classifiers")
    train.add_argument("--experiment", default="default", help="experiment name in experiments/ or a TOML path (default: default)")
    train.add_argument(
        "--data", help="data to train on instead of the experiment's data.source: .jsonl, .csv, .parquet, a save_to_disk folder, or hub:owner/name[@rev]"
    )
    train.add_argument("--tracking-uri", help=_TRACKING_HELP)
    train.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config value, e.g. --set topic.C=5 or --set features.word.ngram_range=[1,3]",
    )
    train.add_argument("--quiet", action="store_true", help="print only the result")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="judge a model on labelled articles it has not seen: report folder and MLflow run")
    evaluate.add_argument("--model", help="models:/name@alias, models:/name/version, runs:/id/model or a model folder "
                          "(default: the default experiment's champion, models:/news-classifier@champion)")
    evaluate.add_argument("--data", help="labelled JSON Lines file (default: the model's own test split, rebuilt from its training run)")
    evaluate.add_argument("--output", help="report folder (default: reports/evaluation/<model>-v<version>)")
    evaluate.add_argument("--compare", metavar="URI", help="reference model (e.g. the champion) to judge --model against on the same articles")
    evaluate.add_argument("--tracking-uri", help=_TRACKING_HELP)
    evaluate.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the intervals (default: 1000)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the random baseline (default: 0)")
    evaluate.add_argument("--quiet", action="store_true", help="print only the result")
    evaluate.set_defaults(handler=_evaluate)

    bench = commands.add_parser("bench", help="score against the real labelled news in ../shared/data")
    bench.add_argument("--data", required=True, help="folder holding cep/, bbc/, agnews/ and cameo/ (e.g. ../shared/data)")
    bench.add_argument("--experiment", default="cep", help="experiment whose features, topic and tone settings are ours (default: cep)")
    bench.add_argument("--output", default="bench", help="folder for results.md and results.json (default: bench)")
    bench.add_argument("--tracking-uri", help=_TRACKING_HELP)
    bench.add_argument("--fasttext-seconds", type=int, default=30, help="time budget of each fastText autotune (default: 30)")
    bench.add_argument("--repeats", type=int, default=3, help="timings are medians of this many runs (default: 3)")
    bench.set_defaults(handler=_bench)

    predict = commands.add_parser("predict", help="label articles with a trained model: one JSON object per article")
    predict.add_argument("files", nargs="*", metavar="FILE", help="plain-text articles, one per file; '-' or none reads standard input")
    predict.add_argument("--jsonl", action="store_true", help='inputs are JSON Lines records {"id": ..., "text": ...}; the id is kept')
    predict.add_argument("--model", default=DEFAULT_MODEL_URI, help="model folder or MLflow model URI (default: %(default)s)")
    predict.add_argument("--tracking-uri", help=_TRACKING_HELP)
    predict.add_argument("--output", "-o", help="write the JSON Lines to this file instead of standard output")
    predict.add_argument("--top-k", type=_positive_int, metavar="N", help="list only the N most probable topics")
    predict.add_argument("--explain", action="store_true", help="add the terms that pushed the topic and the tone, with weights")
    predict.add_argument("--paragraphs", action="store_true", help="add the tone of every paragraph after cleaning")
    predict.set_defaults(handler=_predict)

    serving = commands.add_parser("bench-serving", help="measure model load time, per-article latency and batch throughput")
    serving.add_argument("--model", default=DEFAULT_MODEL_URI, help="model folder or MLflow model URI (default: %(default)s)")
    serving.add_argument("--tracking-uri", help=_TRACKING_HELP)
    serving.add_argument("--runs", type=_positive_int, default=5, help="runs per measurement; medians are reported (default: 5)")
    serving.add_argument("--output", default="reports/bench", help="folder for serving.json (default: reports/bench)")
    serving.set_defaults(handler=_bench_serving)

    tune = commands.add_parser("tune", help="coarse-to-fine hyperparameter search on the CEP time split (train 2010-2016, validate 2017)")
    tune.add_argument("--data", required=True, help="folder holding cep/ (e.g. ../shared/data)")
    tune.add_argument("--plan", default="bench/tuning.toml", help="TOML plan: base experiment and stages of values (default: bench/tuning.toml)")
    tune.add_argument("--output", default="bench/tuning.md", help="Markdown table of every candidate (default: bench/tuning.md)")
    tune.add_argument("--tracking-uri", help=_TRACKING_HELP)
    tune.set_defaults(handler=_tune)
    return parser


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return number


def _train(args: argparse.Namespace) -> int:
    from train.config import load_config, parse_override

    overrides = dict(parse_override(item) for item in args.overrides)
    if args.data:
        overrides["data.source"] = args.data if args.data.startswith("hub:") else os.path.abspath(args.data)
    config = load_config(args.experiment, overrides)
    tracking_uri = _tracking_uri(args.tracking_uri)

    from train.training import train

    progress = _progress(args.quiet)
    result = train(config, tracking_uri, progress)
    for task in ("topic", "tone"):
        scores = [f"{split} macro-F1 {result.metrics[key]:.3f}" for split in ("validation", "test") if (key := f"{split}_{task}_macro_f1") in result.metrics]
        if scores:
            print(f"{task}: " + ", ".join(scores))
    status = f"promoted to @{config.tracking.champion_alias}" if result.promoted else "champion kept (not significantly better on validation)"
    print(f"registered {result.model_uri} (run {result.run_id}); {status}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from train.config import load_config
    from train.evaluation_run import EvaluationRequest, evaluate
    from train.report import ReportSettings

    tracking = load_config("default").tracking
    try:
        settings = ReportSettings(resamples=args.resamples, seed=args.seed)
    except ValueError as exc:
        raise NewsclfError(f"--resamples: {exc}") from None
    request = EvaluationRequest(
        model=args.model or f"models:/{tracking.registered_model}@{tracking.champion_alias}",
        data=os.path.abspath(args.data) if args.data else None,
        output=Path(args.output) if args.output else None,
        compare=args.compare,
        settings=settings,
    )
    progress = _progress(args.quiet)
    result = evaluate(request, _tracking_uri(args.tracking_uri), progress)
    m = result.metrics
    for task in ("topic", "tone"):
        if f"{task}_accuracy" in m:
            print(
                f"{task}: accuracy {m[f'{task}_accuracy']:.3f} [{m[f'{task}_accuracy_ci_low']:.3f}, {m[f'{task}_accuracy_ci_high']:.3f}], "
                f"macro-F1 {m[f'{task}_macro_f1']:.3f} [{m[f'{task}_macro_f1_ci_low']:.3f}, {m[f'{task}_macro_f1_ci_high']:.3f}] "
                f"on {int(m[f'{task}_items'])} articles"
            )
    if result.verdict:
        print(f"compared with {args.compare}: {result.verdict}")
    print(f"report: {result.report_dir / 'report.md'} (MLflow run {result.run_id})")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json
    import platform
    from datetime import datetime, timezone
    from pathlib import Path

    import sklearn

    from train.bench import evaluation_speed, log_benchmark, require_data, results_markdown, run_benchmark
    from train.config import load_config
    from train.training import _git_commit
    from train.tune import recommended_toml

    data_dir = Path(args.data).resolve()
    require_data(data_dir)
    config = load_config(args.experiment)
    tracking_uri = _tracking_uri(args.tracking_uri)
    progress = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    results = run_benchmark(data_dir, config, fasttext_seconds=args.fasttext_seconds, repeats=args.repeats, progress=progress)
    about = {
        "command": f"`newsclf bench --data {args.data} --experiment {args.experiment}`",
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "code": f"git {_git_commit()}, Python {platform.python_version()}, scikit-learn {sklearn.__version__}",
    }
    markdown = results_markdown(results, about, recommended_toml(config))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (output / "results.md").write_text(markdown, encoding="utf-8")
    run_id = log_benchmark(results, markdown, config, data_dir, tracking_uri)
    speed = evaluation_speed(data_dir)
    (output / "evaluation_speed.json").write_text(json.dumps(speed, indent=2) + "\n", encoding="utf-8")
    print(
        f"evaluating {speed['items']} CEP items: {speed['seconds_median']['evaluate']:.1f} s median of {speed['repeats']} "
        f"(plain prediction {speed['seconds_median']['predict']:.1f} s, {speed['evaluate_over_predict']:.1f}x)"
    )
    for row in results["targets"]:
        print(f"{'met   ' if row['met'] else 'MISSED'} {row['target']}: {row['value']:.3f}")
    print(f"written to {output / 'results.md'} and {output / 'results.json'}; MLflow run {run_id} (experiment newsclf-bench)")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from train.bench import cep_articles, cep_development_split
    from train.tune import load_plan, recommended_toml, tune, tuning_page

    plan = load_plan(args.plan)
    tracking_uri = _tracking_uri(args.tracking_uri)
    train, validation = cep_development_split(cep_articles(Path(args.data)))
    result = tune(plan, train, validation, tracking_uri, lambda message: print(message, file=sys.stderr, flush=True))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(tuning_page(result, plan, f"newsclf tune --plan {args.plan}"), encoding="utf-8")
    print(recommended_toml(result.best.config))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from train.batch import jsonl_articles, predictions, text_articles, write_jsonl
    from train.loading import load_model

    files = args.files or ["-"]
    if "-" in files and sys.stdin.isatty():
        raise NewsclfError("no input: pass article files, or pipe text (or JSON Lines with --jsonl) to standard input")
    read = jsonl_articles if args.jsonl else text_articles
    # Input is read and checked before the model loads, so a bad line fails fast.
    articles = read(files, sys.stdin.buffer, lambda message: print(f"newsclf: warning: {message}", file=sys.stderr))
    model = load_model(args.model, _tracking_uri(args.tracking_uri))
    sys.stdout.reconfigure(encoding="utf-8")
    count = write_jsonl(predictions(model, articles, args.top_k, args.explain, args.paragraphs), args.output, sys.stdout)
    if args.output:
        print(f"wrote {count} predictions to {args.output}", file=sys.stderr)
    return 0


def _bench_serving(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from train.serving_bench import serving_benchmark

    tracking_uri = _tracking_uri(args.tracking_uri)
    results = serving_benchmark(args.model, tracking_uri, args.runs, lambda message: print(message, file=sys.stderr, flush=True))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "serving.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    latency, met = results["latency_ms"], results["met"]

    def verdict(key: str) -> str:
        return "met" if met[key] else "MISSED"

    print(
        f"load {results['load_s']:.3f}s ({verdict('load_s')}); {latency['words_per_article']}-word article "
        f"p50 {latency['p50']:.2f}ms ({verdict('latency_p50_ms')}), p99 {latency['p99']:.2f}ms; "
        f"{results['short_items_per_s']:,.0f} short items/s ({verdict('short_items_per_s')}); written to {output / 'serving.json'}"
    )
    return 0


def _progress(quiet: bool):
    """Progress lines on stderr, or silence (datasets' own progress bars included) with --quiet."""
    if quiet:
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
        return lambda message: None
    return lambda message: print(message, file=sys.stderr, flush=True)


def _tracking_uri(flag: str | None) -> str:
    # Fail fast against a dead server instead of MLflow's minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return flag or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


if __name__ == "__main__":
    sys.exit(main())
