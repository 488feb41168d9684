"""Scoring and search on a Dask cluster: fast tests on an in-process LocalCluster, and a slow one on a real
scheduler with two worker processes that loses a worker part-way."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from newsclf.errors import NewsclfError
from newsclf.train import cluster
from newsclf.train.cli import main
from newsclf.train.jobs import score
from tests.helpers import corpus_slice, free_port, new_store, small_config, write_jsonl

# Distributed closes its comms while tearing a cluster down; that is its own housekeeping, not our code.


@pytest.fixture(scope="module")
def scheduler():
    """Two single-threaded workers in this process, reachable over TCP on 127.0.0.1 as a real scheduler is."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address=":0",
        ) as local,
        Client(local) as client,
    ):
        yield client


def _articles(count: int, start: int = 0) -> list[dict]:
    items = corpus_slice(10)
    return [{"id": f"a{start + i}", "text": items[(start + i) % len(items)]["text"]} for i in range(count)]


def _scored(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder).sort_values("id", key=lambda ids: ids.str[1:].astype(int), ignore_index=True)


def test_every_article_is_scored_once_as_the_model_scores_it_and_a_rerun_skips_what_is_done(
    scheduler, small_model, small_model_folder, tmp_path, capsys
):
    items = _articles(50)
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "one.jsonl", items[:20])
    write_jsonl(tmp_path / "in" / "two.jsonl", items[20:35])
    pd.DataFrame(items[35:]).to_parquet(tmp_path / "in" / "three.parquet", row_group_size=5)
    address = scheduler.scheduler.address
    command = ["predict", "--cluster", address, "--model", str(small_model_folder), "--input", "in/*", "--output"]

    os.chdir(tmp_path)
    assert main([*command, "scored"]) == 0
    assert "3 partitions (0 already complete, skipped), 50 articles scored" in capsys.readouterr().out
    frame = _scored(tmp_path / "scored")
    expected = small_model.predict_frame([item["text"] for item in items])
    assert frame["id"].tolist() == [item["id"] for item in items]
    pd.testing.assert_frame_equal(frame.drop(columns="id"), expected, check_dtype=False)

    assert main([*command, "scored"]) == 0
    assert "3 partitions (3 already complete, skipped), 0 articles scored" in capsys.readouterr().out


def test_one_big_file_is_split_at_line_ends_and_parquet_at_row_groups(tmp_path):
    big = write_jsonl(tmp_path / "big.jsonl", _articles(40))
    table = tmp_path / "table.parquet"
    pd.DataFrame(_articles(30)).to_parquet(table, row_group_size=3)

    partitions = score.plan_partitions([str(big), str(table)], partition_bytes=2000)

    lines = [p for p in partitions if p.kind == "jsonl"]
    data = big.read_bytes()
    assert len(lines) > 3 and lines[0].start == 0 and lines[-1].stop == len(data)
    assert all(data[p.stop - 1 : p.stop] == b"\n" and p.stop == q.start for p, q in zip(lines, lines[1:]))
    groups = [(p.start, p.stop) for p in partitions if p.kind == "parquet"]
    assert len(groups) > 1 and groups[0][0] == 0 and groups[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(groups, groups[1:]))
    assert len({p.output for p in partitions}) == len(partitions)


def test_a_malformed_partition_fails_alone_naming_its_file_and_line(scheduler, small_model_folder, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "good.jsonl", _articles(10))
    bad = tmp_path / "in" / "bad.jsonl"
    bad.write_text(json.dumps(_articles(1)[0]) + "\n" + "{not json\n", encoding="utf-8")
    not_parquet = tmp_path / "in" / "broken.parquet"
    not_parquet.write_bytes(b"PAR1 but nothing else")
    command = ["predict", "--cluster", scheduler.scheduler.address, "--model", str(small_model_folder)]

    code = main([*command, "--input", str(tmp_path / "in" / "*"), "--output", str(tmp_path / "out")])

    err = capsys.readouterr().err
    assert code == 2
    assert f"partition failed: {bad} line 2: not valid JSON" in err
    assert f"partition failed: {not_parquet}: not a readable Parquet file" in err
    assert "2 of 3 partitions failed" in err
    assert len(pd.read_parquet(tmp_path / "out" / "good.jsonl.part-00000.parquet")) == 10
    assert not (tmp_path / "out" / "bad.jsonl.part-00000.parquet").exists()


def test_the_model_is_loaded_once_per_worker_not_per_partition(scheduler, small_model_folder, tmp_path, monkeypatch):
    loads = []
    real_load = score.load_model
    monkeypatch.setattr(score, "load_model", lambda *args: loads.append(args) or real_load(*args))
    monkeypatch.setattr(score, "_worker_models", {})
    for number in range(6):
        write_jsonl(tmp_path / f"part-{number}.jsonl", _articles(3, start=3 * number))

    job = score.plan_scoring(str(small_model_folder), None, str(tmp_path / "part-*.jsonl"), str(tmp_path / "out"))
    summary = score.score_on_cluster(scheduler, job)

    assert (summary.partitions, summary.articles, summary.failures) == (6, 18, [])
    assert 1 <= len(loads) <= len(scheduler.nthreads())


def test_a_rerun_into_a_folder_of_other_inputs_is_refused(scheduler, small_model_folder, tmp_path):
    source = write_jsonl(tmp_path / "a.jsonl", _articles(4))
    arguments = (str(small_model_folder), None, str(source), str(tmp_path / "out"))
    score.score_on_cluster(scheduler, score.plan_scoring(*arguments))
    write_jsonl(source, _articles(5))

    with pytest.raises(NewsclfError, match="holds predictions of another run .other or changed inputs"):
        score.plan_scoring(*arguments)


def test_an_unreachable_scheduler_is_one_line_within_the_timeout():
    port = free_port()
    start = time.monotonic()
    with pytest.raises(NewsclfError, match=f"cannot reach a Dask scheduler at tcp://127.0.0.1:{port}"):
        with cluster.connect(f"tcp://127.0.0.1:{port}", timeout=1):
            pass
    assert time.monotonic() - start < 10


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--input", "x/*.jsonl", "--output", "out"], "--cluster, --input and --output go together"),
        (["--cluster", "local", "--input", "x", "--output", "o", "--explain"], "--explain: not with --cluster"),
        (["--cluster", "local", "--input", "nothing/*.jsonl", "--output", "o"], "matches no file"),
    ],
)
def test_cluster_options_are_checked_before_any_work(arguments, message, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "connect", _no_cluster)
    assert main(["predict", *arguments]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow  # a new MLflow store and four fits: about 10 s
def test_search_candidates_run_on_the_cluster_and_the_same_candidate_wins(scheduler, tmp_path):
    import mlflow
    from distributed import get_task_stream

    from newsclf.train.data.loading import load_splits
    from newsclf.train.fit.in_memory import search

    source = write_jsonl(tmp_path / "small.jsonl", corpus_slice(10))
    config = small_config(source, search={"grid": {"topic.C": [0.001, 20.0]}}, features={"char": {"enabled": False}})
    splits = load_splits(config.data, config.split, config.dedup, config.seed)
    mlflow.set_tracking_uri(new_store(tmp_path / "mlflow.db"))
    mlflow.set_experiment("search-on-cluster")  # not an experiment id another test left active

    with mlflow.start_run():
        here, here_model = search(config, splits, lambda message: None)
    with cluster.train_on_cluster(scheduler.scheduler.address), get_task_stream(scheduler) as tasks:
        with mlflow.start_run():
            there, there_model = search(config, splits, lambda message: None)

    assert any("_fit_candidate" in str(task["key"]) for task in tasks.data)
    assert there == here
    texts = splits.test.texts
    for task, probabilities in here_model.predict_proba(texts).items():
        assert (there_model.predict_proba(texts)[task] == probabilities).all()


@pytest.mark.slow
def test_a_real_cluster_that_loses_a_worker_and_its_client_still_scores_every_article_exactly_once(
    shared_path, small_model_folder, tmp_path
):
    """20,000 CEP items in 100 files through `dask scheduler` and two `dask worker` processes: one worker
    is killed part-way, then the client; a replacement worker and a rerun finish the job. Then a
    two-candidate search runs through the same cluster and chooses as a search without it."""
    with open(shared_path / "data" / "cep" / "cep-2010-2017.jsonl", encoding="utf-8") as handle:
        items = [json.loads(next(handle)) for _ in range(20_000)]
    (tmp_path / "in").mkdir()
    for number in range(100):
        write_jsonl(tmp_path / "in" / f"cep-{number:03d}.jsonl", items[200 * number : 200 * (number + 1)])
    every = write_jsonl(tmp_path / "all.jsonl", items)
    address = f"tcp://127.0.0.1:{free_port()}"
    processes = []
    try:
        processes.append(
            _start(
                ["dask", "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
                tmp_path / "scheduler.log",
            )
        )
        workers = [_start_worker(address, tmp_path, name) for name in ("w1", "w2")]
        processes += workers
        _wait_for_workers(address, 2)
        output = tmp_path / "scored"
        command = [
            _tool("newsclf"),
            "predict",
            "--cluster",
            address,
            "--model",
            str(small_model_folder),
            "--input",
            str(tmp_path / "in" / "*.jsonl"),
            "--output",
            str(output),
        ]
        client = _start(command, tmp_path / "client-1.log")
        processes.append(client)
        _wait_for_files(output, 10, client)
        os.killpg(workers[0].pid, signal.SIGKILL)
        _wait_for_files(output, 40, client)
        assert client.poll() is None, "the first run finished before its client could be killed: make it longer"
        os.killpg(client.pid, signal.SIGKILL)
        done_before = len(list(output.glob("*.parquet")))
        assert done_before < 100

        processes.append(_start_worker(address, tmp_path, "w3"))
        _wait_for_workers(address, 2)
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr
        skipped = int(rerun.stdout.split("(")[1].split()[0])
        assert skipped >= done_before and "0 failed" in rerun.stdout

        scored = pd.read_parquet(output)
        assert len(scored) == 20_000 and scored["id"].is_unique
        assert set(scored["id"]) == {item["id"] for item in items}
        assert not [path.name for path in output.iterdir() if path.name.startswith(".")]
        assert (
            main(
                [
                    "predict",
                    "--jsonl",
                    str(every),
                    "--digits",
                    "17",
                    "--model",
                    str(small_model_folder),
                    "--output",
                    "plain.jsonl",
                ]
            )
            == 0
        )
        plain = pd.read_json("plain.jsonl", lines=True, dtype=False).set_index("id")
        scored = scored.set_index("id").loc[plain.index]
        for column in ("topic", "tone", "tone_applies", "empty"):
            assert scored[column].tolist() == plain[column].tolist(), column
        for column in ("topic_probability", "tone_probability", "tone_score", "tone_applies_probability"):
            assert abs(scored[column].to_numpy(float) - plain[column].to_numpy(float)).max() < 1e-9, column

        _a_search_through_the_cluster_chooses_as_one_without_it(address, tmp_path)
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.slow
def test_the_command_gives_up_on_an_unreachable_scheduler_within_30_seconds(small_model_folder, tmp_path):
    write_jsonl(tmp_path / "a.jsonl", _articles(2))
    start = time.monotonic()
    result = subprocess.run(
        [
            _tool("newsclf"),
            "predict",
            "--cluster",
            f"tcp://127.0.0.1:{free_port()}",
            "--model",
            str(small_model_folder),
            "--input",
            str(tmp_path / "a.jsonl"),
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - start < 30
    assert result.returncode == 2
    assert result.stderr.startswith("newsclf: error: cannot reach a Dask scheduler at tcp://127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1


def _a_search_through_the_cluster_chooses_as_one_without_it(address: str, folder: Path) -> None:
    from mlflow import MlflowClient

    source = write_jsonl(folder / "small.jsonl", corpus_slice(10))
    experiment = folder / "search.toml"
    experiment.write_text(
        f'name = "search"\nseed = 13\n[data]\nsource = "{source}"\n[features.char]\nngram_range = [3, 4]\n'
        '[tracking]\nexperiment = "search"\nregistered_model = "search-model"\n'
        '[search]\nrefit = false\n[search.grid]\n"topic.C" = [0.5, 5.0]\n',
        encoding="utf-8",
    )
    chosen = {}
    for name, extra in (("here", []), ("there", ["--cluster", address])):
        uri = new_store(folder / f"{name}.db")
        assert main(["train", "--experiment", str(experiment), "--tracking-uri", uri, "--quiet", *extra]) == 0
        client = MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name("search").experiment_id])
        parent = next(run for run in runs if "mlflow.parentRunId" not in run.data.tags)
        assert len(runs) == 3  # the training run and one nested run per candidate
        chosen[name] = (parent.data.params["search.best.topic.C"], parent.data.metrics["validation/score"])
    assert chosen["there"] == chosen["here"]


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _start(command: list[str], log: Path) -> subprocess.Popen:
    """A process in a session of its own, so killing its group also kills what it started (a worker's nanny
    starts the worker itself as a child)."""
    if command[0] in ("dask",):
        command = [_tool(command[0]), *command[1:]]
    with open(log, "wb") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def _start_worker(address: str, folder: Path, name: str) -> subprocess.Popen:
    return _start(
        [
            "dask",
            "worker",
            address,
            "--name",
            name,
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--host",
            "127.0.0.1",
            "--no-dashboard",
        ],
        folder / f"worker-{name}.log",
    )


def _wait_for_workers(address: str, count: int) -> None:
    from distributed import Client

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with Client(address, timeout=5) as client:
                client.wait_for_workers(count, timeout=60)
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no scheduler with {count} workers at {address} within 60 s")


def _wait_for_files(folder: Path, count: int, client: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while len(list(folder.glob("*.parquet"))) < count:
        assert client.poll() is None or len(list(folder.glob("*.parquet"))) >= count, "the client ended early"
        assert time.monotonic() < deadline, f"fewer than {count} partitions written in 300 s"
        time.sleep(0.02)


def _no_cluster(address, timeout=cluster.CONNECT_SECONDS):
    raise AssertionError("the options should have been refused before connecting")


def test_ordered_map_keeps_the_order_and_runs_here_without_a_cluster(scheduler):
    items = list(range(23))
    assert list(cluster.ordered_map(pow, items, 2)) == [item**2 for item in items]  # no cluster open: here
    with cluster.train_on_cluster(scheduler.scheduler.address):
        assert list(cluster.ordered_map(pow, iter(items), 2)) == [item**2 for item in items]


def test_a_streaming_trainings_batches_are_hashed_on_the_workers_and_counted_as_here(scheduler, tmp_path):
    from distributed import get_task_stream

    from newsclf.features.hashing import CountCache, build_hashed_steps
    from newsclf.train.config import config_from_dict
    from newsclf.train.data import stream
    from newsclf.train.fit import streaming

    source = write_jsonl(tmp_path / "items.jsonl", corpus_slice(10))
    fit = {"mode": "streaming", "batch_size": 16, "n_features": 2**10}
    sgd = {"kind": "sgd_logistic"}
    raw = {"name": "stream", "data": {"source": str(source)}, "fit": fit, "topic": sgd, "tone": sgd}
    config = config_from_dict(raw)

    def counted(name: str):
        scanned = stream.scan(config, lambda message: None)
        (_, cleaner), (_, features) = build_hashed_steps(config.features, config.fit.n_features)
        cache = CountCache(tmp_path / name, [block.n_features for _, block in features.transformer_list])
        held_out = streaming._count(config, scanned, features, cleaner, cache, lambda message: None)
        pieces = [block for chunk in cache.chunks(10**6) for piece in chunk for block in piece]
        return pieces, [block.idf_ for _, block in features.transformer_list], held_out["validation"].ids

    here = counted("here")
    with cluster.train_on_cluster(scheduler.scheduler.address), get_task_stream(scheduler) as tasks:
        there = counted("there")
    assert sum("_hashed_counts" in str(task["key"]) for task in tasks.data) == 7  # 100 rows, 70 train, 16 a batch
    assert len(here[0]) == len(there[0]) and all((a != b).nnz == 0 for a, b in zip(here[0], there[0]))
    assert all((a == b).all() for a, b in zip(here[1], there[1])) and here[2] == there[2]


def test_train_refuses_a_cluster_it_would_not_use(capsys, monkeypatch):
    monkeypatch.setattr(cluster, "connect", _no_cluster)
    assert main(["train", "--cluster", "local", "--tracking-uri", "sqlite:///unused.db"]) == 2
    assert "experiment default has neither; add a [search.grid], stream it" in capsys.readouterr().err
