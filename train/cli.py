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
    train.add_argument(
        "--data", help="data to train on instead of the experiment's data.source: .jsonl, .csv, .parquet, a save_to_disk folder, or hub:owner/name[@rev]"
    )
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

    evaluate = commands.add_parser("evaluate", help="judge a model on labelled articles it has not seen: report folder and MLflow run")
    evaluate.add_argument("--model", help="models:/name@alias, models:/name/version, runs:/id/model or a model folder "
                          "(default: the default experiment's champion, models:/news-classifier@champion)")
    evaluate.add_argument("--data", help="labelled JSON Lines file (default: the model's own test split, rebuilt from its training run)")
    evaluate.add_argument("--output", help="report folder (default: reports/evaluation/<model>-v<version>)")
    evaluate.add_argument("--compare", metavar="URI", help="reference model (e.g. the champion) to judge --model against on the same articles")
    evaluate.add_argument("--tracking-uri", help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI})")
    evaluate.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the intervals (default: 1000)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the random baseline (default: 0)")
    evaluate.add_argument("--quiet", action="store_true", help="print only the result")
    evaluate.set_defaults(handler=_evaluate)

    bench = commands.add_parser("bench", help="score against the real labelled news in ../shared/data")
    bench.add_argument("--data", required=True, help="folder holding cep/, bbc/, agnews/ and cameo/ (e.g. ../shared/data)")
    bench.add_argument("--output", default="reports/bench", help="folder for the results (default: reports/bench)")
    bench.set_defaults(handler=_bench)
    return parser


def _train(args: argparse.Namespace) -> int:
    from train.config import load_config, parse_override

    overrides = dict(parse_override(item) for item in args.overrides)
    if args.data:
        overrides["data.source"] = args.data if args.data.startswith("hub:") else os.path.abspath(args.data)
    config = load_config(args.experiment, overrides)
    tracking_uri = _tracking_uri(args.tracking_uri)

    from train.training import train

    progress = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
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
    progress = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
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
    from pathlib import Path

    from train.bench import corpus_realism, evaluation_speed

    results = {"corpus_realism": corpus_realism(Path(args.data)), "evaluation_speed": evaluation_speed(Path(args.data))}
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    realism = results["corpus_realism"]
    print(
        f"corpus realism (train on the shipped corpus, score CEP 2017): topic macro-F1 {realism['topic_macro_f1']:.3f}, "
        f"tone macro-F1 {realism['tone_macro_f1']:.3f}; written to {output / 'results.json'}"
    )
    speed = results["evaluation_speed"]
    print(
        f"evaluating {speed['items']} CEP items: {speed['seconds_median']['evaluate']:.1f} s median of {speed['repeats']} "
        f"(plain prediction {speed['seconds_median']['predict']:.1f} s, {speed['evaluate_over_predict']:.1f}x)"
    )
    return 0


def _tracking_uri(flag: str | None) -> str:
    # Fail fast against a dead server instead of MLflow's minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return flag or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


if __name__ == "__main__":
    sys.exit(main())
