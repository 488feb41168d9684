"""Streaming training: config, batch reading of every source kind, bad rows, epochs, checkpoints and resume."""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from newsclf.errors import NewsclfError
from newsclf.features.hashing import CountCache, build_hashed_steps
from newsclf.train.config import ConfigError, config_from_dict
from newsclf.train.data import stream
from newsclf.train.data.articles import DataError
from newsclf.train.data.loading import load_articles
from newsclf.train.fit import streaming
from tests.helpers import corpus_slice, new_store, write_jsonl

FIT = {"mode": "streaming", "batch_size": 16, "shuffle_buffer": 32, "epochs": 3, "n_features": 2**10}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite store for this module's trainings (a new store costs seconds); each test uses its own names."""
    return new_store(tmp_path_factory.mktemp("store") / "mlflow.db")


def _config(source, name: str = "stream-test", **sections):
    raw = {
        "name": name,
        "seed": 0,
        "data": {"source": str(source)},
        "features": {"char": {"ngram_range": [3, 4]}},
        "fit": dict(FIT),
        "topic": {"kind": "sgd_logistic"},
        "tone": {"kind": "sgd_logistic"},
        "tracking": {"experiment": name, "registered_model": f"{name}-model"},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return config_from_dict(raw)


def _rows_read(config) -> list[tuple]:
    return [
        row
        for rows in stream.read_rows(config)
        for row in zip(rows.positions, rows.ids, rows.texts, rows.topics, rows.tones)
    ]


@pytest.mark.parametrize(
    ("fit", "message"),
    [
        ({"mode": "online"}, "mode must be one of"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"n_features": 100}, "n_features must be between"),
        ({"batch_size": 500, "shuffle_buffer": 100}, "must hold at least one batch"),
        ({"skip_bad_rows": "yes"}, "fit.skip_bad_rows must be true or false"),
    ],
)
def test_fit_settings_are_validated(fit, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"name": "x", "fit": fit})


def test_streaming_refuses_a_search():
    with pytest.raises(ConfigError, match="remove \\[search\\]"):
        config_from_dict({"name": "x", "fit": {"mode": "streaming"}, "search": {"grid": {"topic.C": [1, 2]}}})


def test_the_default_experiment_still_trains_in_memory():
    assert config_from_dict({"name": "x"}).fit.mode == "in_memory"


def _write_source(kind: str, folder: Path, items: list[dict]) -> str:
    import datasets

    if kind == "jsonl":
        return str(write_jsonl(folder / "items.jsonl", items))
    if kind == "glob":
        write_jsonl(folder / "part-1.jsonl", items[:13])
        write_jsonl(folder / "part-2.jsonl", items[13:])
        return str(folder / "part-*.jsonl")
    table = datasets.Dataset.from_list([{**item, "tone": item["tone"] or ""} for item in items])
    if kind == "csv":
        path = folder / "items.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(items[0]))
            writer.writeheader()
            writer.writerows({**item, "tone": item["tone"] or ""} for item in items)
        return str(path)
    if kind == "parquet":
        table.to_parquet(folder / "items.parquet")
        return str(folder / "items.parquet")
    table.save_to_disk(folder / "saved")
    return str(folder / "saved")


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet", "disk", "glob"])
def test_every_source_kind_is_read_in_batches_as_loading_reads_it(kind, tmp_path):
    items = corpus_slice(3)
    source = _write_source(kind, tmp_path, items)
    config = _config(source)
    read = _rows_read(config)
    reference_source = source if kind != "glob" else str(write_jsonl(tmp_path / "all.jsonl", items))
    expected, _, _ = load_articles(_config(reference_source).data)
    assert [row[0] for row in read] == list(range(len(items)))
    assert [row[1:] for row in read] == list(zip(expected.ids, expected.texts, expected.topics, expected.tones))


def test_a_bad_row_names_its_file_and_row_or_is_skipped_and_counted(tmp_path):
    items = corpus_slice(10)
    items[6] = {**items[6], "topic": "weather"}
    source = write_jsonl(tmp_path / "items.jsonl", items)
    with pytest.raises(DataError, match=r"items\.jsonl: row 7 \(id .*\): topic 'weather' is not in data.topic_labels"):
        _rows_read(_config(source))
    config = _config(source, fit={"skip_bad_rows": True})
    scanned = stream.scan(config, lambda message: None)
    assert scanned.bad_rows == 1 and "row 7" in scanned.bad_examples[0]
    assert len(scanned.split) == len(items) - 1


def test_a_broken_json_line_is_named(tmp_path):
    source = write_jsonl(tmp_path / "items.jsonl", corpus_slice(3))
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    source.write_text("".join(lines[:20] + ['{"text": "cut off\n'] + lines[20:]), encoding="utf-8")
    with pytest.raises(stream.StreamingError, match=r"items\.jsonl: line 21 is not valid JSON"):
        _rows_read(_config(source))


def test_scan_removes_copies_before_splitting(tmp_path):
    items = corpus_slice(10)
    copies = [{**items[0], "id": "copy-1"}, {**items[4], "id": "copy-2", "text": items[4]["text"] + " Read more."}]
    source = write_jsonl(tmp_path / "items.jsonl", items + copies)
    scanned = stream.scan(_config(source), lambda message: None)
    assert scanned.report.duplicates_removed == 2
    assert (scanned.split[-2:] == stream.DROPPED).all() and (scanned.split[:-2] != stream.DROPPED).all()


def test_epochs_stop_early_when_validation_does_not_improve(tmp_path, store):
    import mlflow

    # A huge alpha keeps the weights at zero, so no epoch after the first scores better.
    config = _config(
        write_jsonl(tmp_path / "items.jsonl", corpus_slice(10)),
        topic={"kind": "sgd_logistic", "alpha": 100.0},
        tone={"kind": "sgd_logistic", "alpha": 100.0},
        fit={"epochs": 6, "patience": 2},
    )
    mlflow.set_tracking_uri(store)
    mlflow.set_experiment("early-stop")
    with mlflow.start_run() as run:
        scanned = stream.scan(config, lambda message: None)
        (_, cleaner), (_, features) = build_hashed_steps(config.features, config.fit.n_features)
        cache = CountCache(tmp_path / "counts", [block.n_features for _, block in features.transformer_list])
        held_out = streaming._count(config, scanned, features, cleaner, cache, lambda message: None)
        assert cache.rows == (scanned.split == stream.TRAIN).sum()
        classifiers = streaming._new_classifiers(config, scanned)
        state = streaming._State(0, classifiers, copy.deepcopy(classifiers))
        messages: list[str] = []
        validation = held_out["validation"]
        streaming._fit_epochs(config, scanned, features, cleaner, cache, state, validation, messages.append)
    assert (state.epoch, state.best_epoch) == (3, 1)
    assert any(message.startswith("epoch 1/6: ") and "/s, ETA " in message for message in messages)
    assert "stopped early: no better validation score for 2 epochs" in messages
    history = mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id, "learning_curve/validation/score")
    assert [metric.step for metric in history] == [1, 2, 3]
    assert set(classifiers) == {"topic", "tone", "tone_applies"}


@pytest.mark.slow  # a full training (or more) into a store: the slow suite
def test_a_killed_run_resumes_from_its_checkpoint_into_the_same_run(tmp_path, monkeypatch, store):
    from mlflow.tracking import MlflowClient

    from newsclf import load_model
    from newsclf.train.training import run as train

    uri = store
    source = write_jsonl(tmp_path / "items.jsonl", corpus_slice(8))
    config = _config(source, "resume", fit={"epochs": 3, "patience": 3})
    save_checkpoint = streaming._checkpoint

    def checkpoint_then_die(state):
        save_checkpoint(state)
        if state.epoch == 2:
            raise RuntimeError("killed after epoch 2")

    monkeypatch.setattr(streaming, "_checkpoint", checkpoint_then_die)
    with pytest.raises(RuntimeError, match="killed"):
        train(config, uri)
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("resume").experiment_id])
    assert run.info.status == "FAILED" and not client.search_model_versions("name='resume-model'")

    monkeypatch.setattr(streaming, "_checkpoint", save_checkpoint)
    other = dataclasses.replace(config, topic=dataclasses.replace(config.topic, alpha=0.5))
    with pytest.raises(NewsclfError, match="was trained with other settings"):
        train(other, uri, resume=run.info.run_id)
    data = source.read_bytes()
    source.write_bytes(data + source.read_bytes().splitlines(keepends=True)[0].replace(b'"id": "', b'"id": "new-'))
    with pytest.raises(NewsclfError, match="trained on other data than .*items.jsonl holds now"):
        train(config, uri, resume=run.info.run_id)
    source.write_bytes(data)
    result = train(config, uri, resume=run.info.run_id)
    assert result.run_id == run.info.run_id
    steps = [metric.step for metric in client.get_metric_history(run.info.run_id, "learning_curve/validation/score")]
    assert steps == [1, 2, 3]  # epoch 3 after the checkpoint of epoch 2; nothing trained twice
    assert client.get_run(run.info.run_id).info.status == "FINISHED"

    model = load_model(result.model_uri, uri)
    article = corpus_slice(5)[0]["text"]
    assert model.predict(article)["topic"] in model.labels("topic")
    terms = model.explain(article)["topic"]["terms"]
    words = set(re.findall(r"\w+", article.lower()))
    # The article's own words and word n-grams (the word analyzer drops one-letter words such as "a").
    assert terms and all(set(term["term"].split()) <= words for term in terms), terms

    with pytest.raises(NewsclfError, match="finished; there is nothing to resume"):
        train(config, uri, resume=run.info.run_id)


def test_resume_is_refused_for_unknown_runs_and_in_memory_experiments(tmp_path, store):
    from newsclf.train.training import run as train

    uri = store
    source = write_jsonl(tmp_path / "items.jsonl", corpus_slice(3))
    with pytest.raises(NewsclfError, match="not found in the tracking store"):
        train(_config(source), uri, resume="0123456789abcdef")
    with pytest.raises(NewsclfError, match="--resume continues a streaming run"):
        train(config_from_dict({"name": "in-memory", "data": {"source": str(source)}}), uri, resume="0123456789abcdef")


def _with_broken_line(path: Path, number: int) -> Path:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[: number - 1] + ['{"text": "cut off\n'] + lines[number - 1 :]), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("text", r"items\.jsonl: row 41 .*'text' \(data.text_column\) holds a int"),
        ("json", r"items\.jsonl: line 41 is not valid JSON .*or set fit.skip_bad_rows = true"),
    ],
)
def test_a_bad_row_mid_stream_fails_before_any_run_starts(bad, message, tmp_path, store):
    from mlflow.tracking import MlflowClient

    from newsclf.train.training import run as train

    items = corpus_slice(10)
    if bad == "text":
        items[40] = {**items[40], "text": 12345}
    source = write_jsonl(tmp_path / "items.jsonl", items)
    if bad == "json":
        _with_broken_line(source, 41)
    name = f"bad-{bad}"
    with pytest.raises(NewsclfError, match=message):
        train(_config(source, name), store)
    client = MlflowClient(store)
    # The scan reads every row before a run starts, as in-memory loading does.
    experiment = client.get_experiment_by_name(name)
    assert experiment is None or not client.search_runs([experiment.experiment_id])


@pytest.mark.slow  # a full training (or more) into a store: the slow suite
def test_skipped_broken_lines_are_counted_and_the_model_is_calibrated_carded_and_explained(
    tmp_path, store, monkeypatch
):
    from mlflow.tracking import MlflowClient
    from sklearn.calibration import CalibratedClassifierCV

    from newsclf import load_model
    from newsclf.train.training import run as train

    monkeypatch.setattr(streaming, "_CALIBRATION_SHARE", 0.3)  # enough held-out articles on a small corpus
    source = _with_broken_line(write_jsonl(tmp_path / "items.jsonl", corpus_slice(10)), 41)
    config = _config(source, "skip-broken", fit={"skip_bad_rows": True}, calibration={"methods": ["sigmoid"]})
    result = train(config, store)
    client = MlflowClient(store)
    run = client.get_run(result.run_id)
    assert run.data.params["dataset.bad_rows_skipped"] == "1"
    assert run.data.params["dataset.calibration_articles"] == str(int(70 * 0.3))
    summary = json.loads(
        Path(client.download_artifacts(result.run_id, "data/summary.json", str(tmp_path))).read_text()
    )
    [example] = summary["bad_row_examples"]
    assert example.startswith(f"{source}: line 41 is not valid JSON (")
    assert summary["rows_read"] == 101
    assert run.data.params["calibration.chosen.tone"] == "sigmoid"
    model = load_model(result.model_uri, store)
    assert isinstance(model.pipelines["tone"][-1], CalibratedClassifierCV)
    artifacts = {item.path for item in client.list_artifacts(result.run_id)}
    assert {"model_card.md", "explanations"} <= artifacts
    pages = client.list_artifacts(result.run_id, "explanations")
    assert pages and all(page.path.endswith(".html") for page in pages)
    card = client.get_model_version("skip-broken-model", result.version).description
    assert "seeded sample of at most" in card and "| topic | validation |" in card
    # The same MLflow conventions as in memory: run name, code version, data lineage, linked metrics.
    assert run.info.run_name.startswith("skip-broken-") and run.data.tags["mlflow.source.git.commit"]
    contexts = {i.dataset.name: i.tags[0].value for i in run.inputs.dataset_inputs}
    assert contexts == {"items-training": "training", "items-validation": "validation", "items-test": "test"}
    (output,) = run.outputs.model_outputs
    linked = {metric.key: metric.dataset_name for metric in client.get_logged_model(output.model_id).metrics}
    assert linked["validation/topic/macro_f1"] == "items-validation" and linked["test/tone/ece"] == "items-test"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"text": "fine"}\n', ""),
        (b"  \n", ""),  # blank lines are skipped by every reader
        (b'{"text": "cut\n', "is not valid JSON ("),
        (b"[1, 2]\n", "is a JSON list, not an object"),
        (b"\xff\n", ""),  # not UTF-8: the source reader names such a line itself
    ],
)
def test_what_makes_a_json_lines_line_broken(line, problem):
    found = stream._broken(line)
    assert found.startswith(problem) and bool(found) == bool(problem)


def test_ids_must_be_unique_across_files(tmp_path):
    items = corpus_slice(10)
    write_jsonl(tmp_path / "part-1.jsonl", items[:50])
    write_jsonl(tmp_path / "part-2.jsonl", items[50:] + [{**items[60], "id": items[7]["id"], "text": "Other news."}])
    with pytest.raises(
        DataError, match=rf"id '{items[7]['id']}' is on .*part-1\.jsonl: row 8 and .*part-2\.jsonl: row 51"
    ):
        stream.scan(_config(tmp_path / "part-*.jsonl"), lambda message: None)
    # Without an id column the rows are numbered, and nothing is checked.
    config = _config(tmp_path / "part-*.jsonl", data={"id_column": ""})
    assert len(stream.scan(config, lambda message: None).split) == 101


def test_the_random_split_is_the_stratified_in_memory_one(tmp_path):
    from newsclf.train.data.loading import load_splits

    items = corpus_slice(12)
    items.append({**items[5], "id": "copy"})  # a copy, removed before splitting as in memory
    config = _config(write_jsonl(tmp_path / "items.jsonl", items))
    scanned = stream.scan(config, lambda message: None)
    splits = load_splits(config.data, config.split, config.dedup, config.seed)
    ids = [item["id"] for item in items]
    for code, part in enumerate((splits.train, splits.validation, splits.test)):
        assert sorted(ids[i] for i in np.flatnonzero(scanned.split == code)) == sorted(part.ids)
    assert scanned.split[-1] == stream.DROPPED


def test_arrow_files_are_read_without_the_memory_map_as_datasets_reads_them(tmp_path):
    from newsclf.train.data.sources import read_dataset

    items = corpus_slice(3)
    items[4] = {**items[4], "text": 12345}  # a JSON column of mixed types, which datasets decodes
    dataset = read_dataset(str(write_jsonl(tmp_path / "items.jsonl", items)))
    expected = list(dataset.iter(batch_size=7))
    assert list(stream._column_batches(dataset, 7)) == expected
    assert list(stream._column_batches(dataset.select(range(10)), 7)) == list(
        dataset.select(range(10)).iter(batch_size=7)
    )


def test_id_digests_take_eight_bytes_an_article():
    digests = stream.id_digests(["a", "b", "a"])
    assert digests.dtype == np.uint64 and digests.nbytes == 24 and digests[0] == digests[2] != digests[1]


@pytest.mark.slow
def test_streaming_train_killed_resumed_then_predict(tmp_path):
    """End to end through the command line: train, SIGKILL after the first checkpoint, --resume, predict."""
    newsclf = str(Path(sys.executable).parent / "newsclf")
    experiment = tmp_path / "stream.toml"
    source = write_jsonl(tmp_path / "items.jsonl", corpus_slice(60))
    experiment.write_text(
        f'[data]\nsource = "{source}"\n[fit]\nmode = "streaming"\nbatch_size = 32\nshuffle_buffer = 64\n'
        "epochs = 30\npatience = 30\nn_features = 65536\n"
        '[topic]\nkind = "sgd_logistic"\n[tone]\nkind = "sgd_logistic"\n'
        '[tracking]\nexperiment = "e2e"\nregistered_model = "e2e"\n',
        encoding="utf-8",
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [newsclf, "train", "--experiment", str(experiment), "--tracking-uri", uri]
    log = tmp_path / "first.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=output, stderr=output)
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("**/checkpoints/*/checkpoint.joblib")):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    [checkpoint] = tmp_path.glob("**/checkpoints/*/checkpoint.joblib")
    run_id = checkpoint.parents[3].name
    resumed = subprocess.run(
        [*command, "--resume", run_id, "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"(run {run_id})" in resumed.stdout
    predicted = subprocess.run(
        [newsclf, "predict", "--model", "models:/e2e/1", "--tracking-uri", uri],
        input="Artillery shelled the port overnight as envoys met in Doha.",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["topic"]


def test_temporary_folders_of_killed_trainings_are_removed(tmp_path, monkeypatch):
    import tempfile

    from newsclf._files import HOST
    from newsclf.train.data.sources import remove_stale_scratch, scratch_prefix

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = finished.stdout.strip()
    dead = [tmp_path / f"newsclf-{kind}-{HOST}-{pid}-abc123" for kind in ("counts", "datasets")]
    live = tmp_path / f"{scratch_prefix('marked')}def456"
    # Another host's folder (a shared temporary disk): its process cannot be checked from here.
    others = [tmp_path / "newsclf-other-xyz", tmp_path / f"newsclf-counts-{HOST}x-{pid}-abc123"]
    for folder in (*dead, live, *others):
        folder.mkdir()
    remove_stale_scratch()
    assert not any(folder.exists() for folder in dead) and live.exists() and all(f.exists() for f in others)


def test_a_broken_line_past_the_readers_first_block_is_skipped_too(tmp_path):
    # datasets reads JSON Lines in blocks of about 10 MB and fixes the columns from the first one.
    article = {"id": "", "text": "word " * 200, "topic": "sports", "tone": "diplomatic", "date": "2020-01-01"}
    lines = [json.dumps(article | {"id": f"a{i}"}) + "\n" for i in range(12_000)]  # about 12 MB
    source = tmp_path / "big.jsonl"
    source.write_text("".join(lines[:11_900]) + '{"text": "cut off\n' + "".join(lines[11_900:]), encoding="utf-8")
    config = _config(source, fit={"skip_bad_rows": True, "batch_size": 4096, "shuffle_buffer": 4096})
    read = [row for rows in stream.read_rows(config) for row in rows.ids]
    assert len(read) == 12_000 and read[-1] == "a11999"


def test_a_glob_without_a_suffix_is_a_local_source_in_the_lineage(tmp_path):
    from newsclf.train.config import DataConfig
    from newsclf.train.tracking.runs import _dataset_source

    source = _dataset_source(DataConfig(source=str(tmp_path / "exports" / "*")))
    assert source.to_dict()["uri"] == str(tmp_path / "exports" / "*")


@pytest.mark.slow  # two trainings into a store
def test_a_streaming_update_warm_starts_from_the_champion_on_the_new_articles_alone(tmp_path, store):
    from mlflow.tracking import MlflowClient

    from newsclf.loading import load_model
    from newsclf.steps import classifier_of
    from newsclf.train.classifiers import uncalibrated
    from newsclf.train.training import run

    base = _config(write_jsonl(tmp_path / "items.jsonl", corpus_slice(10)), name="warm")
    first = run(base, store)
    fresh = [item for item in corpus_slice(18) if item not in corpus_slice(10)]
    added = write_jsonl(tmp_path / "added.jsonl", fresh[::2])
    recent = write_jsonl(tmp_path / "recent.jsonl", fresh[1::2])
    update = dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, added_labels=(str(added),)),
        tracking=dataclasses.replace(base.tracking, recent_data=str(recent)),
    )
    second = run(update, store)
    client = MlflowClient(store)
    tags = client.get_run(second.run_id).data.tags
    assert tags["newsclf.fit_mode"] == "streaming warm start" and tags["warm_start.from_version"] == first.version
    assert f"recent articles of tracking.recent_data {recent}" in second.promotion_reason
    before, after = load_model(first.model_uri, store), load_model(second.model_uri, store)
    assert (
        after.metadata["warm_start_from"] == first.version
        and after.metadata["topic_mix"] == before.metadata["topic_mix"]
    )
    weights = [uncalibrated(classifier_of(model.pipelines["topic"])).coef_ for model in (before, after)]
    assert weights[0].shape == weights[1].shape and not np.array_equal(*weights)  # updated, same hashed features
    assert after.predict(fresh[0]["text"])["topic"] in base.data.topic_labels


def test_a_streaming_update_refuses_a_correction_it_cannot_apply(tmp_path):
    from newsclf.train.data.added import added_articles

    labels = write_jsonl(tmp_path / "labels.jsonl", [{"id": "art-1", "topic": "sports"}])
    data = dataclasses.replace(_config(tmp_path / "x.jsonl").data, added_labels=(str(labels),))
    with pytest.raises(DataError, match="line 1 .*a streaming update reads the new articles only"):
        added_articles(data)


def test_a_checkpoint_keeps_every_weight_and_writes_shared_classifiers_once():
    import pickle

    from sklearn.linear_model import SGDClassifier

    from newsclf.train.fit.streaming import _State

    rng = np.random.default_rng(0)
    features = np.zeros((40, 30))
    features[:, :12] = rng.random((40, 12))  # columns 12..29 are never used: their weights stay 0
    labels = [f"c{i % 3}" for i in range(40)]
    classifiers = {
        "topic": SGDClassifier(loss="log_loss", random_state=0).partial_fit(features, labels, ["c0", "c1", "c2"])
    }
    assert not classifiers["topic"].coef_[:, 12:].any()
    shared = _State(2, classifiers, classifiers, best_epoch=2)
    apart = _State(3, classifiers, {"topic": copy.deepcopy(classifiers["topic"])}, best_epoch=2)
    for state in (shared, apart):
        restored = pickle.loads(pickle.dumps(state))
        for found in (restored.classifiers, restored.best):
            assert np.array_equal(found["topic"].coef_, classifiers["topic"].coef_)
            assert found["topic"].coef_.flags.c_contiguous
        assert (restored.best is restored.classifiers) == (state is shared)
    assert len(pickle.dumps(shared)) < len(pickle.dumps(apart))
