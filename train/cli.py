"""The ``newsclf`` command. The only module that reads arguments and the environment."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator

from newsclf.errors import NewsclfError
from newsclf.train.paths import DEFAULT_MODEL_URI, DEFAULT_TRACKING_URI

TRACKING_HELP = (
    f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI} in the current folder)"
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``newsclf``; returns the process exit code."""
    return run_command(_parser(), argv, "newsclf")


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None, prog: str) -> int:
    """Parse ``argv`` and run the chosen subcommand's handler; returns the exit code.

    A user error is one line ``<prog>: error: ...`` and exit 2; a failure of the machine or the tracking
    store (disk full, permissions, a locked database) one such line and exit 1. Ctrl-C exits 130 and
    SIGTERM 143, both after the MLflow run is ended FAILED; a reader of standard output that went away
    (``| head -1``) ends the command quietly with 141, as SIGPIPE ends other tools. Other exceptions are
    bugs and keep their traceback.
    """
    args = parser.parse_args(argv)
    if not getattr(args, "verbose", False):
        _quiet_libraries()
    # A store failure ends in one line of ours; MLflow's store logs each retry of it with a traceback first.
    logging.getLogger("mlflow.store").setLevel(logging.CRITICAL)
    if sys.stderr is None:  # started with 2>&-: print(file=None) would put messages into standard output
        sys.stderr = open(os.devnull, "w")  # open for the rest of the process
    terminated: list[int] = []
    try:
        with _sigterm_interrupts(terminated):
            code = args.handler(args)
            if sys.stdout is not None:
                sys.stdout.flush()  # here, so a closed pipe is met inside this try rather than at exit
            return code
    except NewsclfError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 128 + signal.SIGTERM if terminated else 130
    except BrokenPipeError:
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the closed pipe ended
    except OSError as exc:
        print(f"{prog}: error: {_os_error_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if (line := _store_error_line(exc)) is None:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        return 1


@contextlib.contextmanager
def _sigterm_interrupts(received: list[int]) -> Iterator[None]:
    """While the block runs, SIGTERM (timeout, docker stop, a cancelled CI job) raises KeyboardInterrupt in the
    main thread as Ctrl-C does, so ``with mlflow.start_run()`` ends the run FAILED and cleanups run. Further
    SIGTERMs are ignored until the block ends, so a process manager repeating it cannot cut that cleanup short."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def interrupt(signum: int, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _silence_stdout() -> None:
    """Point standard output at devnull, so the flush at exit cannot fail again on the closed pipe
    (the recipe of Python's signal module documentation, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no file descriptor behind it (captured, or closed)
        pass


def _os_error_line(exc: OSError) -> str:
    """An operating-system error (disk full, no permission) as one line: what, where, what to do."""
    reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
    where = f": {exc.filename}" if exc.filename else ""
    if exc.filename2:  # the target of a rename or link
        where += f" -> {exc.filename2}"
    if exc.errno is None and " requested and " in reason:
        # numpy's short write ("133870 requested and 69661 written") carries no errno: a full disk, most
        # often the one of the temporary folder, where streaming keeps its counts.
        import tempfile

        reason = f"the disk filled up while writing ({reason})"
        advice = f"free space on the disk of {tempfile.gettempdir()} (or set TMPDIR to a roomier folder) and run again"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "free some disk space (or point the output and --tracking-uri elsewhere) and run again"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "check the permissions of that path, or choose another place, and run again"
    else:
        advice = "check that path and run again" if where else "run again"
    return f"{reason}{where}; {advice}"


def _store_error_line(exc: Exception) -> str | None:
    """An error of the MLflow tracking store or the database under it as one line; None for any other."""
    kinds = [
        getattr(sys.modules.get(module), name, None)
        for module, name in (("mlflow.exceptions", "MlflowException"), ("sqlalchemy.exc", "SQLAlchemyError"))
    ]
    kinds.append(getattr(sys.modules.get("sqlite3"), "Error", None))
    if not isinstance(exc, tuple(kind for kind in kinds if kind is not None)):
        return None
    message = str(exc)
    first = next((line.strip() for line in message.splitlines() if line.strip()), type(exc).__name__)
    if "database is locked" in message:
        advice = "another process is writing to the tracking store; run again when it is done"
    else:
        advice = "check the tracking store (--tracking-uri) and run again"
    return f"tracking store failed: {first[:300]}; {advice}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsclf", description="News topic and military/diplomatic tone classifiers."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    card = commands.add_parser("card", help="print the model card of a registered version or a training run")
    card.add_argument(
        "--model", default=DEFAULT_MODEL_URI, help="models:/name@alias, models:/name/version or runs:/id/model"
    )
    card.add_argument("--tracking-uri", help=TRACKING_HELP)
    card.set_defaults(handler=_card)

    train = commands.add_parser("train", help="train, evaluate, log and register both classifiers")
    _add_experiment_arguments(train, "train on")
    train.add_argument("--tracking-uri", help=TRACKING_HELP)
    train.add_argument("--quiet", action="store_true", help="print only the result")
    train.add_argument(
        "--add-labels",
        nargs="+",
        metavar="FILE",
        help="labelled files (newsclf select's output with topic and tone added) to train on as well: new ids "
        "join the train split, known ids are corrections",
    )
    train.add_argument(
        "--recent",
        metavar="FILE",
        help="the newest labelled window, kept out of --add-labels: promote only if significantly better on it "
        "and not significantly worse on the reference",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_ID",
        help='continue a killed streaming run ([fit] mode = "streaming") from its last checkpoint, in the same run',
    )
    train.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="fit the [search.grid] candidates, or clean and hash a streaming training's batches, on a Dask "
        "cluster: tcp://host:port of its scheduler, or 'local'",
    )
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
    _add_set(evaluate, "map the columns or labels of --data, e.g. --set data.topic_column=label (data.* keys only)")
    evaluate.add_argument("--quiet", action="store_true", help="print only the result")
    evaluate.set_defaults(handler=_evaluate)

    watch = commands.add_parser(
        "monitor", help="is the model ageing? drift signals per window of unlabelled, dated articles"
    )
    watch.add_argument("--model", help="model URI or folder (default: models:/news-classifier@champion)")
    watch.add_argument(
        "--data", required=True, help="articles to watch: JSON Lines, CSV or Parquet with text and date"
    )
    watch.add_argument("--by", default="month", help="window: month (default), week, or a number of articles")
    watch.add_argument("--output", help="report folder (default: reports/monitor/<model>)")
    watch.add_argument("--tracking-uri", help=TRACKING_HELP)
    _add_set(watch, "name the columns of --data, e.g. --set data.date_column=published (data.* keys only)")
    watch.add_argument("--quiet", action="store_true", help="print only the result")
    watch.set_defaults(handler=_monitor)

    pick = commands.add_parser("select", help="the unlabelled articles most worth a label, with why each was chosen")
    pick.add_argument("--model", help="model URI or folder (default: models:/news-classifier@champion)")
    pick.add_argument(
        "--data", required=True, help="unlabelled articles: JSON Lines, CSV or Parquet with a text column"
    )
    pick.add_argument("--budget", type=positive_int, required=True, help="how many articles to choose")
    pick.add_argument("--output", required=True, help="JSON Lines file of the chosen articles, to label")
    pick.add_argument(
        "--strategy",
        choices=["entropy", "margin", "random"],
        default="entropy",
        help="uncertainty measure (default: entropy)",
    )
    pick.add_argument(
        "--by-topic", action="store_true", help="take the most uncertain of each predicted topic in turn"
    )
    pick.add_argument("--seed", type=int, default=0, help="seed of the random strategy (default: 0)")
    pick.add_argument("--tracking-uri", help=TRACKING_HELP)
    _add_set(pick, "name the columns of --data, e.g. --set data.text_column=body (data.* keys only)")
    pick.add_argument("--quiet", action="store_true", help="print only the result")
    pick.set_defaults(handler=_select)

    check = commands.add_parser(
        "check-data", help="what an experiment's data holds and what training would make of it, before training"
    )
    _add_experiment_arguments(check, "check")
    check.set_defaults(handler=_check_data)

    init = commands.add_parser(
        "init", help="write an experiment file for your own data: columns, labels and split guessed from the file"
    )
    init.add_argument(
        "--data", required=True, help="your labelled data: .jsonl, .csv, .parquet or a save_to_disk folder"
    )
    init.add_argument(
        "--output", help="the experiment file to write (default: experiments/<data file name>.toml); never replaced"
    )
    init.set_defaults(handler=_init)

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
    predict.add_argument(
        "--format",
        choices=["jsonl", "csv", "table"],
        default="jsonl",
        help="jsonl (default, every field), csv (the one-value fields) or table (aligned columns to read)",
    )
    predict.add_argument(
        "--digits",
        type=_digits,
        default=4,
        metavar="N",
        help="round probabilities and weights to N places (default: 4)",
    )
    predict.add_argument(
        "--threshold",
        type=_probability,
        metavar="P",
        help="report a topic or tone whose probability is below P as undecided (null, listed in 'undecided')",
    )
    predict.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="score on a Dask cluster: tcp://host:port of its scheduler, or 'local' for one sized to this machine; "
        "needs --input and --output DIR (one Parquet file per partition, rerun to resume)",
    )
    predict.add_argument(
        "--input", metavar="GLOB", help="with --cluster: the JSON Lines (.jsonl) or Parquet files to score (a glob)"
    )
    predict.add_argument(
        "--partition-mb",
        type=positive_int,
        metavar="MB",
        help="with --cluster: split input files into partitions of about this size (default: 64)",
    )
    predict.set_defaults(handler=_predict)

    explain = commands.add_parser(
        "explain", help="an HTML page showing why the model labelled each article (self-contained, opens from disk)"
    )
    explain.add_argument(
        "files", nargs="+", metavar="FILE", help="plain-text articles, one per file ('-' reads standard input)"
    )
    explain.add_argument(
        "--jsonl", action="store_true", help='inputs are JSON Lines records {"id": ..., "text": ...}: one page for all'
    )
    # --output as well, the name predict uses and the output checks' messages give.
    explain.add_argument(
        "--html",
        "--output",
        "-o",
        required=True,
        metavar="OUT",
        help="the HTML file to write (replaced when complete)",
    )
    explain.add_argument(
        "--model", default=DEFAULT_MODEL_URI, help="model folder or MLflow model URI (default: %(default)s)"
    )
    explain.add_argument("--tracking-uri", help=TRACKING_HELP)
    explain.set_defaults(handler=_explain)

    doctor = commands.add_parser(
        "doctor", help="find runs left RUNNING by a dead process and registered versions that never completed"
    )
    doctor.add_argument("--tracking-uri", help=TRACKING_HELP)
    doctor.add_argument(
        "--fix",
        action="store_true",
        help="mark those runs KILLED and delete those versions (without it: exit 3 if any)",
    )
    doctor.set_defaults(handler=_doctor)

    audit = commands.add_parser(
        "audit", help="find likely wrong labels: out-of-sample probabilities by K-fold, then cleanlab, per task"
    )
    _add_experiment_arguments(audit, "audit")
    audit.add_argument(
        "--output", required=True, help="new folder for label_issues.jsonl, summary.md, duplicate_conflicts.jsonl"
    )
    audit.add_argument("--folds", type=positive_int, default=5, help="cross-validation folds (default: 5)")
    audit.add_argument("--tracking-uri", help=TRACKING_HELP)
    audit.add_argument("--quiet", action="store_true", help="print only the result")
    audit.set_defaults(handler=_audit)

    for command in commands.choices.values():
        command.add_argument(
            "--verbose", action="store_true", help="show other libraries' progress bars and INFO lines as well"
        )
        if "quiet" not in {action.dest for action in command._actions}:
            command.add_argument("--quiet", action="store_true", help="print only the result")
    return parser


def _add_set(command: argparse.ArgumentParser, help: str) -> None:
    """--set KEY=VALUE (repeatable), collected in ``args.overrides``."""
    command.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def _digits(value: str) -> int:
    """An argparse type: a number of decimal places, 0 to 17."""
    if not value.isdigit() or int(value) > 17:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of decimal places from 0 to 17")
    return int(value)


def _probability(value: str) -> float:
    """An argparse type: a probability in [0, 1]."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a probability from 0 to 1")
    return number


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
    config = _experiment_config(args)
    tracking_uri = resolve_tracking_uri(args.tracking_uri)

    from newsclf.train.evaluation.metrics import metric_name
    from newsclf.train.training import run

    progress = _progress(args.quiet)
    with _training_cluster(args.cluster, config):
        result = run(config, tracking_uri, progress, resume=args.resume)
    for task in ("topic", "tone"):
        scores = [
            f"{split} macro-F1 {result.metrics[key]:.3f}"
            for split in ("validation", "test")
            if (key := metric_name(split, task, "macro_f1")) in result.metrics
        ]
        if scores:
            print(f"{task}: " + ", ".join(scores))
    status = f"promoted to @{config.tracking.champion_alias}" if result.promoted else "champion kept"
    print(f"registered {result.model_uri} (run {result.run_id}); {status}: {result.promotion_reason}")
    return 0


def _training_cluster(address: str | None, config) -> contextlib.AbstractContextManager:
    """With --cluster, the cluster the experiment's search candidates are fitted on, or its streamed
    batches cleaned and hashed on; else nothing."""
    if address is None:
        return contextlib.nullcontext()
    if not config.search.grid and config.fit.mode != "streaming":
        raise NewsclfError(
            f"--cluster fits the candidates of [search.grid] or hashes a streaming training's batches, and "
            f"experiment {config.name} has neither; add a [search.grid], stream it ([fit] mode = 'streaming') "
            "or drop --cluster"
        )
    from newsclf.train.cluster import train_on_cluster

    return train_on_cluster(address)


def _audit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from newsclf.train.jobs.audit import audit

    config = _experiment_config(args)
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    result = audit(config, Path(args.output), tracking_uri, args.folds, _progress(args.quiet))
    for task, flagged in result.flagged.items():
        print(f"{task}: {flagged} of {result.audited[task]} labels flagged")
    print(f"near-duplicate groups with conflicting labels: {result.conflicts}")
    print(f"audit: {result.output / 'summary.md'} (MLflow run {result.run_id})")
    return 0


def _add_experiment_arguments(command: argparse.ArgumentParser, verb: str) -> None:
    """--experiment, --data and --set, read by :func:`_experiment_config`."""
    command.add_argument(
        "--experiment", default="default", help="experiment name in experiments/ or a TOML path (default: default)"
    )
    command.add_argument(
        "--data",
        help=f"data to {verb} instead of the experiment's data.source: .jsonl, .csv, .parquet, "
        "a save_to_disk folder, or hub:owner/name[@rev]",
    )
    _add_set(command, "override one config value, e.g. --set topic.C=5 or --set features.word.ngram_range=[1,3]")


def _experiment_config(args: argparse.Namespace):
    """The experiment ``--experiment`` names with ``--set`` overrides and ``--data`` applied, as train reads it."""
    from newsclf.train.config import load_config, parse_override

    overrides = dict(parse_override(item) for item in args.overrides)
    if args.data:
        overrides["data.source"] = args.data if args.data.startswith("hub:") else os.path.abspath(args.data)
    if getattr(args, "add_labels", None):
        overrides["data.added_labels"] = [os.path.abspath(path) for path in args.add_labels]
    if getattr(args, "recent", None):
        overrides["tracking.recent_data"] = os.path.abspath(args.recent)
    return load_config(args.experiment, overrides)


def _doctor(args: argparse.Namespace) -> int:
    from newsclf.train.tracking.doctor import examine, repair

    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    findings = repair(tracking_uri) if args.fix else examine(tracking_uri)
    for finding in findings:
        print(finding.line())
    if not findings:
        print(f"{tracking_uri}: no stale runs, no incomplete versions")
    return 0 if args.fix or not findings else 3


def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from newsclf.train.config import load_config, parse_override
    from newsclf.train.evaluation.evaluate import ReportSettings
    from newsclf.train.jobs.evaluate import EvaluationRequest, evaluate

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
        data_overrides=dict(parse_override(item) for item in args.overrides),
    )
    progress = _progress(args.quiet)
    result = evaluate(request, resolve_tracking_uri(args.tracking_uri), progress)
    for task in ("topic", "tone"):
        m = {
            name.removeprefix(f"{task}/"): value
            for name, value in result.metrics.items()
            if name.startswith(f"{task}/")
        }
        if "accuracy" in m:
            print(
                f"{task}: accuracy {m['accuracy']:.3f} [{m['accuracy_ci_low']:.3f}, {m['accuracy_ci_high']:.3f}], "
                f"macro-F1 {m['macro_f1']:.3f} [{m['macro_f1_ci_low']:.3f}, {m['macro_f1_ci_high']:.3f}] "
                f"on {int(m['items'])} articles"
            )
    if result.verdict:
        print(f"compared with {args.compare}: {result.verdict}")
    print(f"report: {result.report_dir / 'report.md'} (MLflow run {result.run_id})")
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from pathlib import Path

    from newsclf.train.jobs.monitor import ALARM_PSI, run_monitor

    output, run_id, windows = run_monitor(
        _model_or_champion(args.model),
        _data_of(args),
        resolve_tracking_uri(args.tracking_uri),
        args.by,
        Path(args.output) if args.output else None,
        _progress(args.quiet),
    )
    alarms = [window.window for window in windows if window.alarm]
    print(
        f"{len(windows)} windows; "
        + (f"alarm (topic-mix PSI >= {ALARM_PSI}) in {', '.join(alarms)}" if alarms else "no alarm")
        + f"; report: {output / 'monitor.md'} (MLflow run {run_id})"
    )
    return 0


def _select(args: argparse.Namespace) -> int:
    from newsclf.train.jobs.select import run_select

    chosen = run_select(
        _model_or_champion(args.model),
        _data_of(args),
        args.budget,
        args.output,
        resolve_tracking_uri(args.tracking_uri),
        args.strategy,
        args.by_topic,
        args.seed,
        _progress(args.quiet),
    )
    print(f"chose {len(chosen)} article(s) to label ({args.strategy}); wrote {args.output}")
    return 0


def _data_of(args: argparse.Namespace):
    """The DataConfig of --data with the data.* keys of --set (the columns of unlabelled articles)."""
    from newsclf.train.config import config_from_dict, parse_override

    overrides = dict(parse_override(item) for item in args.overrides)
    if wrong := [key for key in overrides if not key.startswith("data.")]:
        raise NewsclfError(f"--set {wrong[0]}: {args.command} reads data.* keys only (the columns of --data)")
    data = {key.removeprefix("data."): value for key, value in overrides.items()}
    return config_from_dict({"name": args.command, "data": data | {"source": os.path.abspath(args.data)}}).data


def _model_or_champion(model: str | None) -> str:
    """--model, or the default experiment's champion."""
    from newsclf.train.config import load_config

    tracking = load_config("default").tracking
    return model or f"models:/{tracking.registered_model}@{tracking.champion_alias}"


def _predict(args: argparse.Namespace) -> int:
    from newsclf.batch import check_output, jsonl_articles, predictions, presented, text_articles, write_jsonl
    from newsclf.loading import load_model

    if args.cluster or args.input or args.partition_mb:
        return _predict_on_cluster(args)
    files = args.files or ["-"]
    if "-" in files and sys.stdin is None:
        raise NewsclfError("standard input is closed; pass article files, or pipe the articles to standard input")
    if "-" in files and sys.stdin.isatty():
        raise NewsclfError("no input: pass article files, or pipe text (or JSON Lines with --jsonl) to standard input")
    # Input and output are checked before the model loads, so a bad line or an unwritable output fails fast.
    if args.output is not None:
        check_output(args.output)
    elif sys.stdout is None:
        raise NewsclfError("standard output is closed; pass --output with a file for the predictions")
    if args.format != "jsonl" and (args.explain or args.paragraphs):
        raise NewsclfError(
            f"--format {args.format} holds the one-value fields only; drop --explain and --paragraphs, or use jsonl"
        )
    if args.output is not None and any(
        os.path.realpath(path) == os.path.realpath(args.output) for path in files if path != "-"
    ):
        raise NewsclfError(f"--output {args.output} is also an input; write the predictions to another file")
    stdin = sys.stdin.buffer if "-" in files else None

    def warn(message: str) -> None:
        print(f"newsclf: warning: {message}", file=sys.stderr)

    if not args.jsonl:
        articles = text_articles(files, stdin, warn)
    else:
        # Files are read once to check every line before the model loads; standard input, which may never
        # end, is read as it is predicted (a bad line there stops with its number after the lines before it).
        if stdin is None:
            for _ in jsonl_articles(files, stdin, lambda message: None):
                pass
        articles = jsonl_articles(files, stdin, warn)
    model = load_model(args.model, resolve_tracking_uri(args.tracking_uri))
    if args.output is None:
        sys.stdout.reconfigure(encoding="utf-8")
    rows = predictions(model, articles, args.top_k, args.explain, args.paragraphs)
    count = write_jsonl(presented(rows, args.digits, args.threshold), args.output, sys.stdout, args.format)
    if args.output and not args.quiet:
        print(f"wrote {count} predictions to {args.output}", file=sys.stderr)
    return 0


def _check_data(args: argparse.Namespace) -> int:
    from newsclf.train.jobs.check_data import check_data

    print(check_data(_experiment_config(args)), end="")
    return 0


def _init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from newsclf.train.jobs.init import write_experiment
    from newsclf.train.paths import experiments_dir

    output = Path(args.output) if args.output else experiments_dir() / f"{Path(args.data).stem}.toml"
    guess = write_experiment(os.path.abspath(args.data), output)
    tone = f", tone from {guess.tone!r}" if guess.tone else ", no tone column"
    print(
        f"wrote {output}: text from {guess.text!r}, topic from {guess.topic!r} ({len(guess.labels)} labels){tone}; "
        f"check it, then: newsclf train --experiment {output}"
    )
    return 0


def _card(args: argparse.Namespace) -> int:
    from newsclf.train.jobs.card import read_card

    print(read_card(args.model, resolve_tracking_uri(args.tracking_uri)), end="")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("newsclf")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _explain(args: argparse.Namespace) -> int:
    from newsclf.batch import check_output, jsonl_articles, text_articles
    from newsclf.loading import load_model
    from newsclf.page import MAX_BATCH_ARTICLES, article_page, batch_page, model_source, write_page

    if "-" in args.files and sys.stdin is None:
        raise NewsclfError("standard input is closed; pass article files instead of '-'")
    # Output and input are checked before the model loads, so a mistake in either fails fast.
    check_output(args.html)
    read = jsonl_articles if args.jsonl else text_articles
    stdin = sys.stdin.buffer if "-" in args.files else None
    articles = list(read(args.files, stdin, lambda message: print(f"newsclf: warning: {message}", file=sys.stderr)))
    if not articles:
        raise NewsclfError(f"no articles in {', '.join(args.files)}; pass files that hold at least one article")
    if len(articles) > MAX_BATCH_ARTICLES:
        raise NewsclfError(
            f"{len(articles)} articles, but one page shows at most {MAX_BATCH_ARTICLES}; "
            f"split the input (split -l {MAX_BATCH_ARTICLES} for JSON Lines) and write one page per part"
        )
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    model = load_model(args.model, tracking_uri)
    source = model_source(model, args.model, tracking_uri)
    if len(articles) == 1 and not args.jsonl:
        page = article_page(model, articles[0].text, source, title=articles[0].id)
    else:
        page = batch_page(model, [(article.id, article.text) for article in articles], source)
    write_page(page, args.html)
    print(f"wrote the explanation of {len(articles)} article(s) to {args.html}", file=sys.stderr)
    return 0


def _predict_on_cluster(args: argparse.Namespace) -> int:
    from newsclf.train.cluster import connect
    from newsclf.train.jobs.score import PARTITION_BYTES, plan_scoring, score_on_cluster

    if not (args.cluster and args.input and args.output):
        raise NewsclfError(
            "--cluster, --input and --output go together: newsclf predict --cluster ADDRESS --input GLOB --output DIR"
        )
    given = {"FILE": args.files, "--top-k": args.top_k, "--explain": args.explain, "--paragraphs": args.paragraphs}
    if unsupported := [flag for flag, value in given.items() if value]:
        raise NewsclfError(
            f"{', '.join(unsupported)}: not with --cluster, which writes the scalar fields only; "
            "pass the files with --input, or drop --cluster for explanations"
        )
    partition_bytes = args.partition_mb * 2**20 if args.partition_mb else PARTITION_BYTES
    # Before connecting: it sets MLflow's variables, which the workers of a local cluster inherit.
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    job = plan_scoring(args.model, tracking_uri, args.input, args.output, partition_bytes)
    with connect(args.cluster) as client:
        summary = score_on_cluster(client, job, lambda message: print(message, file=sys.stderr, flush=True))
    for line in summary.warnings:
        print(f"newsclf: warning: {line}", file=sys.stderr)
    for line in summary.failures:
        print(f"newsclf: partition failed: {line}", file=sys.stderr)
    print(summary.line())
    if summary.failures:
        raise NewsclfError(
            f"{len(summary.failures)} of {summary.partitions} partitions failed (listed above); fix their input "
            "and rerun the same command: the partitions already written are skipped"
        )
    return 0


# Read by each library when it is first imported, which the commands do lazily, after this is set;
# a value the user has set wins.
_QUIET = {
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "DATASETS_VERBOSITY": "error",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "DASK_LOGGING__DISTRIBUTED": "error",
}


def _quiet_libraries() -> None:
    """Hugging Face, MLflow and Dask progress bars and INFO lines off, so a command prints only its own
    progress and results; their warnings and errors still show."""
    for name, value in _QUIET.items():
        os.environ.setdefault(name, value)


def _progress(quiet: bool):
    """Progress lines on stderr, or silence with --quiet: datasets' progress bars and MLflow's own
    lines ("View run ...", "Successfully registered model ...") too, so only results reach the terminal."""
    if quiet:
        from mlflow.utils.logging_utils import disable_logging

        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
        disable_logging()  # MLflow's logger and its registry's prints share this one stream
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
