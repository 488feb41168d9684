"""The ``newsclf`` command. The only module that reads arguments and the environment."""

from __future__ import annotations

import argparse
import os
import sys

from train.errors import NewsclfError
from train.paths import DEFAULT_TRACKING_URI


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
    train.add_argument("--data", help="JSON Lines file to train on instead of the experiment's data.source")
    train.add_argument(
        "--tracking-uri",
        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI} in the current folder)",
    )
    train.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config value, e.g. --set topic.C=5 or --set features.word.ngram_range=[1,3]",
    )
    train.add_argument("--quiet", action="store_true", help="print only the result")
    train.set_defaults(handler=_train)

    bench = commands.add_parser("bench", help="score against the real labelled news in ../shared/data")
    bench.add_argument("--data", required=True, help="folder holding cep/, bbc/, agnews/ and cameo/ (e.g. ../shared/data)")
    bench.add_argument("--experiment", default="cep", help="experiment whose features, topic and tone settings are ours (default: cep)")
    bench.add_argument("--output", default="bench", help="folder for results.md and results.json (default: bench)")
    bench.add_argument("--tracking-uri", help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI})")
    bench.add_argument("--fasttext-seconds", type=int, default=30, help="time budget of each fastText autotune (default: 30)")
    bench.add_argument("--repeats", type=int, default=3, help="timings are medians of this many runs (default: 3)")
    bench.set_defaults(handler=_bench)

    tune = commands.add_parser("tune", help="coarse-to-fine hyperparameter search on the CEP time split (train 2010-2016, validate 2017)")
    tune.add_argument("--data", required=True, help="folder holding cep/ (e.g. ../shared/data)")
    tune.add_argument("--plan", default="bench/tuning.toml", help="TOML plan: base experiment and stages of values (default: bench/tuning.toml)")
    tune.add_argument("--output", default="bench/tuning.md", help="Markdown table of every candidate (default: bench/tuning.md)")
    tune.add_argument("--tracking-uri", help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI})")
    tune.set_defaults(handler=_tune)
    return parser


def _train(args: argparse.Namespace) -> int:
    from train.config import load_config, parse_override

    overrides = dict(parse_override(item) for item in args.overrides)
    if args.data:
        overrides["data.source"] = os.path.abspath(args.data)
    config = load_config(args.experiment, overrides)
    tracking_uri = _tracking_uri(args.tracking_uri)

    from train.training import train

    progress = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    result = train(config, tracking_uri, progress)
    for name in ("topic", "tone"):
        print(
            f"{name}: validation macro-F1 {result.metrics[f'validation_{name}_macro_f1']:.3f}, "
            f"test macro-F1 {result.metrics[f'test_{name}_macro_f1']:.3f}"
        )
    status = f"promoted to @{config.tracking.champion_alias}" if result.promoted else "champion kept (not better on validation)"
    print(f"registered {result.model_uri} (run {result.run_id}); {status}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json
    import platform
    from datetime import datetime, timezone
    from pathlib import Path

    import sklearn

    from train.bench import log_benchmark, require_data, results_markdown, run_benchmark
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
    for row in results["targets"]:
        print(f"{'met   ' if row['met'] else 'MISSED'} {row['target']}: {row['value']:.3f}")
    print(f"written to {output / 'results.md'} and {output / 'results.json'}; MLflow run {run_id} (experiment newsclf-bench)")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from train.bench import CEP_TRAIN_YEARS, CEP_VALIDATION_YEARS, cep_articles, split_by_year
    from train.tune import load_plan, recommended_toml, tune, tuning_page

    plan = load_plan(args.plan)
    tracking_uri = _tracking_uri(args.tracking_uri)
    train, validation = split_by_year(cep_articles(Path(args.data)), CEP_TRAIN_YEARS, CEP_VALIDATION_YEARS)
    result = tune(plan, train, validation, tracking_uri, lambda message: print(message, file=sys.stderr, flush=True))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(tuning_page(result, plan, f"newsclf tune --plan {args.plan}"), encoding="utf-8")
    print(recommended_toml(result.best.config))
    return 0


def _tracking_uri(flag: str | None) -> str:
    # Fail fast against a dead server instead of MLflow's minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return flag or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


if __name__ == "__main__":
    sys.exit(main())
