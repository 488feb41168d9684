"""``python -m bench``: the research commands, run from the project folder.

``run`` benchmarks ours against its peers on the real news, ``tune`` runs a staged tuning plan over
rolling-origin CEP folds, ``serving`` times a model's load, latency and throughput, ``speed`` times
where users wait against scikit-learn, ``loop``
measures the loop that keeps a model current (monitor, select, update, gate). Errors a user can
fix are one line ``bench: error: ...`` with exit code 2, as for ``newsclf``.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC

from newsclf.errors import NewsclfError
from newsclf.train.cli import TRACKING_HELP, positive_int, resolve_tracking_uri, run_command
from newsclf.train.paths import DEFAULT_MODEL_URI

# The sections of `python -m bench speed` (bench/speed.py, imported only when it runs).
SPEED_SECTIONS = ("hashing", "streaming", "predict", "latency", "load", "train")

# Where every command writes by default: gitignored. The tracked pages in bench/ are written only
# when asked (`make bench PUBLISH=1`, or --output bench/...).
REPORTS = "reports/bench"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench``; returns the process exit code."""
    return run_command(_parser(), argv, "bench")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="newsclf research tooling: benchmarks, staged tuning, serving timings."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="score ours and its peers on the real labelled news in ../shared/data")
    run.add_argument(
        "--data", required=True, help="folder holding cep/, bbc/, agnews/ and cameo/ (e.g. ../shared/data)"
    )
    run.add_argument(
        "--experiment",
        default="cep",
        help="experiment whose features, topic and tone settings are ours (default: cep)",
    )
    run.add_argument(
        "--fast-experiment",
        default="cep-fast",
        help="the fast word-only profile compared beside ours; 'none' leaves it out (default: cep-fast)",
    )
    run.add_argument(
        "--output",
        default=REPORTS,
        help=f"folder for results.md and results.json (default: {REPORTS}; `make bench PUBLISH=1` writes bench/)",
    )
    run.add_argument("--tracking-uri", help=TRACKING_HELP)
    run.add_argument(
        "--fasttext-epochs",
        type=positive_int,
        nargs="+",
        help="fastText epochs tried (default: FASTTEXT_GRID in bench/peers.py, 5 10 25 50)",
    )
    run.add_argument(
        "--fasttext-lr",
        type=_positive_float,
        nargs="+",
        help="fastText learning rates tried (default: FASTTEXT_GRID in bench/peers.py, 0.1 0.25 0.5 1.0)",
    )
    run.add_argument("--no-fasttext", action="store_true", help="leave fastText out")
    run.add_argument("--repeats", type=int, default=3, help="timings are medians of this many runs (default: 3)")
    run.set_defaults(handler=_run)

    tune = commands.add_parser(
        "tune", help="staged (coarse-to-fine) tuning on CEP over rolling-origin folds (the plan's origins)"
    )
    tune.add_argument("--data", required=True, help="folder holding cep/ (e.g. ../shared/data)")
    tune.add_argument(
        "--plan",
        default="bench/tuning.toml",
        help="TOML plan: base experiment and stages of values (default: bench/tuning.toml)",
    )
    tune.add_argument(
        "--output",
        default=f"{REPORTS}/tuning.md",
        help=f"Markdown table of every candidate (default: {REPORTS}/tuning.md; `make tune PUBLISH=1` writes "
        "bench/tuning.md)",
    )
    tune.add_argument("--tracking-uri", help=TRACKING_HELP)
    tune.set_defaults(handler=_tune)

    scale = commands.add_parser(
        "scale", help="streaming training on 100k / 300k / 1M synthetic CEP articles: time, memory, artifact size"
    )
    scale.add_argument("--data", required=True, help="folder holding cep/ (e.g. ../shared/data)")
    scale.add_argument(
        "--sizes", type=positive_int, nargs="+", default=[100_000, 300_000, 1_000_000], help="corpus sizes"
    )
    scale.add_argument(
        "--in-memory-up-to",
        type=int,
        default=100_000,
        help="also train in memory at sizes up to this (default: 100000; it needs ~6 GB there)",
    )
    scale.add_argument("--epochs", type=positive_int, default=3, help="streaming epochs (default: 3)")
    scale.add_argument("--batch-size", type=positive_int, default=10_000, help="streaming batch size (default: 10000)")
    scale.add_argument(
        "--output",
        default=f"{REPORTS}/scale.md",
        help=f"Markdown table (default: {REPORTS}/scale.md; `make bench-scale PUBLISH=1` writes bench/scale.md)",
    )
    scale.set_defaults(handler=_scale)

    serving = commands.add_parser("serving", help="measure model load time, per-article latency and batch throughput")
    serving.add_argument(
        "--model", default=DEFAULT_MODEL_URI, help="model folder or MLflow model URI (default: %(default)s)"
    )
    serving.add_argument("--tracking-uri", help=TRACKING_HELP)
    serving.add_argument(
        "--runs", type=positive_int, default=5, help="runs per measurement; medians are reported (default: 5)"
    )
    serving.add_argument("--output", default=REPORTS, help=f"folder for serving.json (default: {REPORTS})")
    serving.set_defaults(handler=_serving)

    speed = commands.add_parser(
        "speed", help="where users wait (hashing, streaming, predict, latency, load, train) against scikit-learn"
    )
    speed.add_argument("--data", required=True, help="folder holding cep/ (e.g. ../shared/data)")
    speed.add_argument(
        "--sections",
        nargs="+",
        choices=SPEED_SECTIONS,
        default=list(SPEED_SECTIONS),
        help="what to measure (default: all)",
    )
    speed.add_argument("--runs", type=positive_int, default=3, help="runs per figure; medians reported (default: 3)")
    speed.add_argument(
        "--streaming-articles",
        type=positive_int,
        help="run the streaming section on this many synthetic CEP articles (bench scale's) instead of CEP",
    )
    speed.add_argument("--output", default=REPORTS, help=f"folder for speed.md and speed.json (default: {REPORTS})")
    speed.set_defaults(handler=_speed)

    audit = commands.add_parser(
        "audit", help="the label audit on CEP: planted flips found, 2017 macro-F1 without flagged items, cost"
    )
    audit.add_argument("--data", required=True, help="folder holding cep/ (e.g. ../shared/data)")
    audit.add_argument("--experiment", default="cep", help="experiment whose pipeline the audit fits (default: cep)")
    audit.add_argument("--share", type=float, default=0.05, help="share of topic labels flipped (default: 0.05)")
    audit.add_argument("--seed", type=int, default=0, help="seed of the flips (default: 0)")
    audit.add_argument("--folds", type=positive_int, default=5, help="cross-validation folds (default: 5)")
    audit.add_argument(
        "--output",
        default=f"{REPORTS}/audit.md",
        help=f"Markdown page, a .json beside it (default: {REPORTS}/audit.md; bench/audit.md to update it)",
    )
    audit.set_defaults(handler=_audit)

    loop = commands.add_parser(
        "loop", help="the loop that keeps a model current (monitor, select, update, gate), month by month"
    )
    loop.add_argument(
        "--data", required=True, help="one dated, labelled file (e.g. ../shared/data/cep/cep-2010-2017.jsonl)"
    )
    loop.add_argument("--experiment", default="cep-fast", help="experiment each update fits (default: cep-fast)")
    loop.add_argument("--start", default="2015-01", help="first month predicted and labelled (default: 2015-01)")
    loop.add_argument("--end", default="9999-12", help="last month (default: the data's last)")
    loop.add_argument("--since", default="", help="first day of the training articles (default: all before --start)")
    loop.add_argument("--budget", type=positive_int, default=100, help="labels a month (default: 100)")
    loop.add_argument(
        "--output", default=f"{REPORTS}/loop", help=f"folder for loop.md and loop.json (default: {REPORTS}/loop)"
    )
    loop.add_argument("--tracking-uri", help="log one MLflow run per strategy to this store (default: none)")
    loop.set_defaults(handler=_loop)
    return parser


def _run(args: argparse.Namespace) -> int:
    import json
    import platform
    from datetime import datetime
    from pathlib import Path

    import sklearn

    from bench.datasets import require_data
    from bench.page import BENCH_EXPERIMENT, log_benchmark, results_markdown
    from bench.suite import evaluation_speed, run_benchmark
    from bench.tuning import recommended_toml
    from newsclf.train.config import load_config
    from newsclf.train.tracking.runs import git_commit

    data_dir = Path(args.data).resolve()
    require_data(data_dir)
    config = load_config(args.experiment)
    fast_config = None if args.fast_experiment == "none" else load_config(args.fast_experiment)
    grid = None if args.no_fasttext else _fasttext_grid(args.fasttext_epochs, args.fasttext_lr)
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    results = run_benchmark(data_dir, config, fast_config, grid, repeats=args.repeats, progress=_progress)
    results["run_seconds"] = {"wall": time.perf_counter() - wall, "cpu": _cpu_seconds() - cpu}
    about = {
        "command": f"`python -m bench run --data {args.data} --experiment {args.experiment} "
        f"--fast-experiment {args.fast_experiment}`",
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": f"git {git_commit()}, Python {platform.python_version()}, scikit-learn {sklearn.__version__}",
        "time": f"{results['run_seconds']['wall'] / 60:.0f} min wall, "
        f"{results['run_seconds']['cpu'] / 60:.0f} min CPU (this process and the fit workers that ended) "
        "for the sections above",
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
        f"evaluating {speed['items']} CEP items: {speed['seconds_median']['evaluate']:.1f} s "
        f"median of {speed['repeats']} (plain prediction {speed['seconds_median']['predict']:.1f} s, "
        f"{speed['evaluate_over_predict']:.1f}x)"
    )
    for row in results["targets"]:
        print(f"{'met   ' if row['met'] else 'MISSED'} {row['target']}: {row['value']:.3f}")
    for note in results["notes"]:
        if note.startswith("fastText sanity check"):
            print(note)
    print(
        f"written to {output / 'results.md'} and {output / 'results.json'}; "
        f"MLflow run {run_id} (experiment {BENCH_EXPERIMENT})"
    )
    return 0


def _tune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.datasets import cep_articles
    from bench.tuning import load_plan, recommended_toml, staged_tuning, tuning_page

    plan = load_plan(args.plan)
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    result = staged_tuning(plan, cep_articles(Path(args.data)), tracking_uri, _progress)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(tuning_page(result, plan, f"python -m bench tune --plan {args.plan}"), encoding="utf-8")
    print(recommended_toml(result.best.config))
    return 0


def _scale(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.scale import markdown, scale_benchmark

    cep_file = Path(args.data) / "cep" / "cep-2010-2017.jsonl"
    if not cep_file.is_file():
        raise SystemExit(f"bench: error: {cep_file} not found; pass --data with the folder holding cep/")
    output = Path(args.output)

    def write(results: list[dict]) -> None:
        output.write_text(markdown(results, args.epochs, args.batch_size), encoding="utf-8")

    scale_benchmark(cep_file, args.sizes, args.in_memory_up_to, args.epochs, args.batch_size, _progress, write)
    print(f"written to {args.output}")
    return 0


def _serving(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from bench.serving import serving_benchmark

    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    results = serving_benchmark(args.model, tracking_uri, args.runs, _progress)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "serving.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    latency, met = results["latency_ms"], results["met"]

    def verdict(key: str) -> str:
        return "met" if met[key] else "MISSED"

    print(
        f"load {results['load_s']:.3f}s ({verdict('load_s')}); {latency['words_per_article']}-word article "
        f"p50 {latency['p50']:.2f}ms ({verdict('latency_p50_ms')}), p99 {latency['p99']:.2f}ms; "
        f"{results['short_items_per_s']:,.0f} short items/s ({verdict('short_items_per_s')}); "
        f"written to {output / 'serving.json'}"
    )
    return 0


def _speed(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from bench.datasets import CEP_FILE, real_data_file
    from bench.speed import markdown, speed_benchmark

    real_data_file(Path(args.data), CEP_FILE)  # one line before any work when it is missing
    results = speed_benchmark(
        Path(args.data), tuple(args.sections), args.runs, _progress, args.streaming_articles or 0
    )
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "speed.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (output / "speed.md").write_text(markdown(results), encoding="utf-8")
    print(f"written to {output / 'speed.md'} and speed.json")
    return 0


def _audit(args: argparse.Namespace) -> int:
    import platform
    from datetime import datetime
    from pathlib import Path

    import cleanlab
    import sklearn

    from bench.audit import audit_benchmark, audit_page
    from newsclf.train.config import ConfigError, load_config
    from newsclf.train.tracking.runs import git_commit

    if not 0.0 < args.share < 1.0:
        raise ConfigError(f"--share must be a fraction in (0, 1), got {args.share}")
    config = load_config(args.experiment)
    results = audit_benchmark(Path(args.data), config, args.share, args.seed, args.folds, _progress)
    about = {
        "command": f"`python -m bench audit --data {args.data} --experiment {args.experiment} --seed {args.seed}`",
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": f"git {git_commit()}, Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
        f"cleanlab {cleanlab.__version__}",
    }
    output = _write_page(Path(args.output), audit_page(results, about), results)
    planted = results["planted"]
    print(
        f"planted flips: precision {planted['precision']:.3f}, recall {planted['recall']:.3f}; "
        f"full audit {results['full_audit']['seconds']:.0f} s, {results['full_audit']['peak_memory_mb']:.0f} MB; "
        f"written to {output}"
    )
    return 0


def _loop(args: argparse.Namespace) -> int:
    import dataclasses
    import platform
    from datetime import datetime
    from pathlib import Path

    import sklearn

    from bench.loop import log_loop, loop_benchmark, loop_page
    from bench.page import BENCH_EXPERIMENT
    from newsclf.train.config import load_config
    from newsclf.train.data.loading import load_articles
    from newsclf.train.tracking.runs import git_commit

    config = load_config(args.experiment)
    articles, _, _ = load_articles(dataclasses.replace(config.data, source=str(Path(args.data).resolve())))
    try:
        results = loop_benchmark(articles, config, args.start, args.budget, args.end, args.since, _progress)
    except ValueError as exc:
        raise NewsclfError(f"{args.data}: {exc}; check --start, --end and --since") from None
    about = {
        "command": f"`python -m bench loop --data {args.data} --experiment {args.experiment} --start {args.start} "
        + (f"--end {args.end} " if args.end != "9999-12" else "")
        + (f"--since {args.since} " if args.since else "")
        + f"--budget {args.budget}`",
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": f"git {git_commit()}, Python {platform.python_version()}, scikit-learn {sklearn.__version__}",
    }
    page = loop_page(results, about)
    output = _write_page(Path(args.output) / "loop.md", page, results)
    if args.tracking_uri:
        runs = log_loop(results, page, BENCH_EXPERIMENT, resolve_tracking_uri(args.tracking_uri))
        print(f"logged {len(runs)} MLflow runs to {BENCH_EXPERIMENT}")
    print(f"written to {output} and {output.with_suffix('.json')}")
    return 0


def _write_page(output, page: str, results: dict):
    """``page`` at ``output`` and ``results`` as JSON beside it; returns ``output``."""
    import json

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return output


def _fasttext_grid(epochs: list[int] | None, rates: list[float] | None) -> dict[str, tuple]:
    from bench.peers import FASTTEXT_GRID

    return {"epoch": tuple(epochs or FASTTEXT_GRID["epoch"]), "lr": tuple(rates or FASTTEXT_GRID["lr"])}


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (fit workers)."""
    import resource

    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
