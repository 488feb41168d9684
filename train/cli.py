"""The ``newsclf`` command. The only module that reads arguments and the environment."""

from __future__ import annotations

import argparse
import os
import sys

from newsclf.errors import NewsclfError
from train.paths import DEFAULT_MODEL_URI, DEFAULT_TRACKING_URI

TRACKING_HELP = (
    f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI} in the current folder)"
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``newsclf``; returns the process exit code."""
    return run_command(_parser(), argv, "newsclf")


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None, prog: str) -> int:
    """Parse ``argv`` and run the chosen subcommand's handler: a user error is one line
    ``<prog>: error: ...`` and exit 2, an interruption exit 130."""
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except NewsclfError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsclf", description="News topic and military/diplomatic tone classifiers."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train, evaluate, log and register both classifiers")
    train.add_argument(
        "--experiment", default="default", help="experiment name in experiments/ or a TOML path (default: default)"
    )
    train.add_argument(
        "--data",
        help="data to train on instead of the experiment's data.source: .jsonl, .csv, .parquet, "
        "a save_to_disk folder, or hub:owner/name[@rev]",
    )
    train.add_argument("--tracking-uri", help=TRACKING_HELP)
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set topic.C=5 or --set features.word.ngram_range=[1,3]",
    )
    train.add_argument("--quiet", action="store_true", help="print only the result")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "evaluate", help="judge a model on labelled articles it has not seen: report folder and MLflow run"
    )
    evaluate.add_argument(
        "--model",
        help="models:/name@alias, models:/name/version, runs:/id/model or a model folder "
        "(default: the default experiment's champion, models:/news-classifier@champion)",
    )
    evaluate.add_argument(
        "--data", help="labelled JSON Lines file (default: the model's own test split, rebuilt from its training run)"
    )
    evaluate.add_argument("--output", help="report folder (default: reports/evaluation/<model>-v<version>)")
    evaluate.add_argument(
        "--compare",
        metavar="URI",
        help="reference model (e.g. the champion) to judge --model against on the same articles",
    )
    evaluate.add_argument("--tracking-uri", help=TRACKING_HELP)
    evaluate.add_argument(
        "--resamples", type=int, default=1000, help="bootstrap resamples for the intervals (default: 1000)"
    )
    evaluate.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap and the random baseline (default: 0)"
    )
    evaluate.add_argument("--quiet", action="store_true", help="print only the result")
    evaluate.set_defaults(handler=_evaluate)

    predict = commands.add_parser("predict", help="label articles with a trained model: one JSON object per article")
    predict.add_argument(
        "files", nargs="*", metavar="FILE", help="plain-text articles, one per file; '-' or none reads standard input"
    )
    predict.add_argument(
        "--jsonl", action="store_true", help='inputs are JSON Lines records {"id": ..., "text": ...}; the id is kept'
    )
    predict.add_argument(
        "--model", default=DEFAULT_MODEL_URI, help="model folder or MLflow model URI (default: %(default)s)"
    )
    predict.add_argument("--tracking-uri", help=TRACKING_HELP)
    predict.add_argument("--output", "-o", help="write the JSON Lines to this file instead of standard output")
    predict.add_argument("--top-k", type=positive_int, metavar="N", help="list only the N most probable topics")
    predict.add_argument(
        "--explain", action="store_true", help="add the terms that pushed the topic and the tone, with weights"
    )
    predict.add_argument("--paragraphs", action="store_true", help="add the tone of every paragraph after cleaning")
    predict.set_defaults(handler=_predict)

    return parser


def positive_int(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
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
    tracking_uri = resolve_tracking_uri(args.tracking_uri)

    from train.training import train

    progress = _progress(args.quiet)
    result = train(config, tracking_uri, progress)
    for task in ("topic", "tone"):
        scores = [
            f"{split} macro-F1 {result.metrics[key]:.3f}"
            for split in ("validation", "test")
            if (key := f"{split}_{task}_macro_f1") in result.metrics
        ]
        if scores:
            print(f"{task}: " + ", ".join(scores))
    status = (
        f"promoted to @{config.tracking.champion_alias}"
        if result.promoted
        else "champion kept (not significantly better on validation)"
    )
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
    result = evaluate(request, resolve_tracking_uri(args.tracking_uri), progress)
    m = result.metrics
    for task in ("topic", "tone"):
        if f"{task}_accuracy" in m:
            print(
                f"{task}: accuracy {m[f'{task}_accuracy']:.3f} "
                f"[{m[f'{task}_accuracy_ci_low']:.3f}, {m[f'{task}_accuracy_ci_high']:.3f}], "
                f"macro-F1 {m[f'{task}_macro_f1']:.3f} "
                f"[{m[f'{task}_macro_f1_ci_low']:.3f}, {m[f'{task}_macro_f1_ci_high']:.3f}] "
                f"on {int(m[f'{task}_items'])} articles"
            )
    if result.verdict:
        print(f"compared with {args.compare}: {result.verdict}")
    print(f"report: {result.report_dir / 'report.md'} (MLflow run {result.run_id})")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from newsclf.batch import jsonl_articles, predictions, text_articles, write_jsonl
    from newsclf.loading import load_model

    files = args.files or ["-"]
    if "-" in files and sys.stdin.isatty():
        raise NewsclfError("no input: pass article files, or pipe text (or JSON Lines with --jsonl) to standard input")
    read = jsonl_articles if args.jsonl else text_articles
    # Input is read and checked before the model loads, so a bad line fails fast.
    articles = read(files, sys.stdin.buffer, lambda message: print(f"newsclf: warning: {message}", file=sys.stderr))
    model = load_model(args.model, resolve_tracking_uri(args.tracking_uri))
    sys.stdout.reconfigure(encoding="utf-8")
    count = write_jsonl(
        predictions(model, articles, args.top_k, args.explain, args.paragraphs), args.output, sys.stdout
    )
    if args.output:
        print(f"wrote {count} predictions to {args.output}", file=sys.stderr)
    return 0


def _progress(quiet: bool):
    """Progress lines on stderr, or silence (datasets' own progress bars included) with --quiet."""
    if quiet:
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
        return lambda message: None
    return lambda message: print(message, file=sys.stderr, flush=True)


def resolve_tracking_uri(flag: str | None) -> str:
    # Fail fast against a dead server instead of MLflow's minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return flag or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


if __name__ == "__main__":
    sys.exit(main())
