"""Scaling out, measured: articles/s scoring in one process and on local Dask clusters of 1 and 2 workers, and
the search's wall time with and without a cluster (README "Scaling out").

    .venv/bin/python -m bench.scaling_out --data ../shared/data --model MODEL_FOLDER [--search]

Scoring reads every CEP item (34,049); each figure is the median of ``--repeats`` runs, each timed from
the model load to the last prediction written (a cluster's start is not timed: it is started once, as a
user's scheduler and workers would be). ``--search`` also trains the cep experiment (its two-candidate
grid) once without and once with ``--cluster local`` and reports the seconds the search took in each.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from newsclf.batch import jsonl_articles
from newsclf.loading import load_model
from newsclf.train.jobs.score import plan_scoring, score_on_cluster

# About as many partitions as a run on a real archive gives each worker: enough to balance two workers.
_PARTITION_BYTES = 512 * 1024


def main() -> None:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.scaling_out")
    parser.add_argument("--data", required=True, type=Path, help="folder holding cep/ (e.g. ../shared/data)")
    parser.add_argument("--model", required=True, help="model folder or MLflow model URI to score with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--search", action="store_true", help="also time the cep experiment's search")
    args = parser.parse_args()
    source = args.data / "cep" / "cep-2010-2017.jsonl"
    rows = [
        ("one process (`newsclf predict --jsonl`'s path)", _median(args.repeats, _one_process, source, args.model))
    ]
    for workers in (1, 2):
        rows.append(
            (
                f"`--cluster`, {workers} local worker(s)",
                _median(args.repeats, _on_cluster, source, args.model, workers),
            )
        )
    print("| scoring 34,049 CEP items | articles/s (median of 3) |\n|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")
    if args.search:
        print("\n| `newsclf train --experiment cep`: its 2-candidate search | wall time |\n|---|---|")
        for name, extra in (("in one process", []), ("`--cluster local` (2 workers)", ["--cluster", "local"])):
            print(f"| {name} | {_search_seconds(args.data, extra):.1f} s |")


def _median(repeats: int, measure, *arguments) -> float:
    return statistics.median(measure(*arguments)[0] for _ in range(repeats))


def _one_process(source: Path, model_uri: str) -> tuple[float, int]:
    start = time.perf_counter()
    model = load_model(model_uri)
    articles = list(jsonl_articles([str(source)], None, lambda message: None))
    count = 0
    with tempfile.TemporaryDirectory() as folder:
        for first in range(0, len(articles), 2000):
            batch = articles[first : first + 2000]
            frame = model.predict_frame([article.text for article in batch])
            frame.insert(0, "id", [article.id for article in batch])
            frame.to_parquet(Path(folder) / f"{first}.parquet", index=False)
            count += len(batch)
    return count / (time.perf_counter() - start), count


def _on_cluster(source: Path, model_uri: str, workers: int) -> tuple[float, int]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as client,
        tempfile.TemporaryDirectory() as folder,
    ):
        summary = score_on_cluster(client, plan_scoring(model_uri, None, str(source), folder, _PARTITION_BYTES))
    return summary.articles / summary.seconds, summary.articles


def _search_seconds(data: Path, extra: list[str]) -> float:
    """Seconds from the first search candidate to the choice, from `newsclf train`'s own progress lines (what
    the training does after the search does not change this number, so its exit status is not asked)."""
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "newsclf"), "train", "--experiment", "cep",
             "--data", str(data / "cep" / "cep-2010-2017.jsonl"), "--tracking-uri", f"sqlite:///{folder}/mlflow.db",
             *extra],
            capture_output=True, text=True, cwd=folder,
        )  # fmt: skip
    stamps = dict(
        (message.split(":")[0].split()[0], float(seconds))
        for seconds, message in re.findall(r"\[\s*([0-9.]+)s\] (search candidate 1/|best candidate)", result.stderr)
    )
    if len(stamps) != 2:
        raise SystemExit(f"the search did not finish:\n{result.stderr[-2000:]}")
    return stamps["best"] - stamps["search"]


if __name__ == "__main__":
    main()
