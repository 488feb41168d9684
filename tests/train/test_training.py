"""Training against a throwaway SQLite MLflow store."""

import json
import re
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from newsclf.errors import NewsclfError
from newsclf.loading import load_model
from newsclf.train import training
from newsclf.train.data.articles import DataError
from newsclf.train.evaluation.comparison import NO_DIFFERENCE, Comparison
from newsclf.train.training import run as train
from tests.helpers import corpus_slice, new_store, small_config, write_jsonl


def _client(tracking_uri):
    return MlflowClient(tracking_uri)


def test_first_version_is_registered_and_becomes_champion(trained_store):
    config, tracking_uri, result = trained_store
    client = _client(tracking_uri)
    assert result.version == "1" and result.promoted
    assert str(client.get_model_version_by_alias("test-model", "champion").version) == "1"
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["features.char.ngram_range"] == "[3, 4]"
    assert len(run.data.tags["data_fingerprint"]) == 64 and run.data.tags["mlflow.source.git.commit"]
    for name in ("accuracy", "macro_f1", "log_loss", "f1/sports"):
        assert f"test/topic/{name}" in run.data.metrics
    assert {"validation/tone/f1/military", "test/tone/macro_f1"} <= set(run.data.metrics)
    assert sorted(i.dataset.name.rsplit("-", 1)[1] for i in run.inputs.dataset_inputs) == [
        "test",
        "training",
        "validation",
    ]
    # Each split's numbers are linked to the registered model and to the dataset they were measured on.
    (output,) = run.outputs.model_outputs
    logged_model = client.get_logged_model(output.model_id)
    linked = {metric.key: metric.dataset_name for metric in logged_model.metrics}
    assert linked["validation/topic/macro_f1"].endswith("-validation") and linked["test/tone/ece"].endswith("-test")
    assert linked["validation/score"].endswith("-validation")
    # Data counts are params (MLflow charts every metric), and agree with the dataset inputs.
    rows = {
        i.dataset.name.rsplit("-", 1)[1]: json.loads(i.dataset.profile)["num_rows"] for i in run.inputs.dataset_inputs
    }
    assert int(run.data.params["dataset.train_articles"]) == rows["training"] and not any(
        name.startswith(("data_", "dataset")) for name in run.data.metrics
    )
    artifacts = {a.path for folder in ("topic", "tone") for a in client.list_artifacts(result.run_id, folder)}
    assert {
        "topic/confusion_matrix_test.png",
        "tone/top_terms.json",
        "topic/classification_report_validation.txt",
    } <= artifacts


def test_registered_model_loads_and_predicts_through_every_route(trained_store):
    config, tracking_uri, result = trained_store
    texts = ["Artillery struck the port as troops advanced.", "The foreign ministers signed a trade accord."]
    mlflow.set_tracking_uri(tracking_uri)
    ours = load_model("models:/test-model@champion").predict(texts)
    frame = mlflow.pyfunc.load_model("models:/test-model/1").predict(__import__("pandas").DataFrame({"text": texts}))
    assert list(frame["topic"]) == [row["topic"] for row in ours]
    assert list(frame["tone"]) == [row["tone"] for row in ours]
    assert frame["p_tone_military"].tolist() == pytest.approx([row["tone_probabilities"]["military"] for row in ours])
    # The tone-applies model is trained, scored and saved with the rest.
    assert frame["tone_applies_probability"].tolist() == pytest.approx(
        [row["tone_applies_probability"] for row in ours]
    )
    assert {
        "validation/tone_applies/macro_f1",
        "test/tone_applies/log_loss",
        "validation/tone_applies/f1/applies",
    } <= set(result.metrics)


@pytest.mark.slow  # a full training (or more) into a store: the slow suite
def test_same_config_and_data_give_identical_metrics_and_a_tie_keeps_the_champion(trained_store):
    config, tracking_uri, first = trained_store
    second = train(config, tracking_uri)
    assert second.metrics == first.metrics
    assert second.version == "2" and not second.promoted
    assert str(_client(tracking_uri).get_model_version_by_alias("test-model", "champion").version) == "1"
    run = _client(tracking_uri).get_run(second.run_id)
    assert run.data.tags["promotion_verdict"] == "no significant difference"
    assert run.data.metrics["promotion/difference"] == 0 and run.data.metrics["promotion/p_value"] == 1


@pytest.mark.slow  # a full training (or more) into a store: the slow suite
def test_a_better_model_takes_the_alias(small_corpus, tracking_uri):
    weak = small_config(
        small_corpus,
        topic={"C": 0.001},
        tone={"C": 0.001},
        features={"word": {"max_features": 5}, "char": {"enabled": False}},
    )
    assert train(weak, tracking_uri).promoted
    strong = train(small_config(small_corpus), tracking_uri)
    assert strong.promoted and _client(tracking_uri).get_model_version_by_alias("test-model", "champion").version == 2
    run = _client(tracking_uri).get_run(strong.run_id)
    assert run.data.tags["promotion_verdict"] == "better" and run.data.metrics["promotion/p_value"] < 0.05
    # One macro-F1 (train.metrics): the logged validation scores are the score promotion compared.
    metrics = run.data.metrics
    logged = (metrics["validation/topic/macro_f1"] + metrics["validation/tone/macro_f1"]) / 2
    assert metrics["promotion/candidate_score"] == pytest.approx(logged, abs=1e-12)
    assert metrics["validation/score"] == pytest.approx(logged, abs=1e-12)


@pytest.mark.slow
def test_promotion_follows_the_verdict_not_the_raw_score(small_corpus, tracking_uri, monkeypatch):
    assert train(small_config(small_corpus), tracking_uri).promoted

    def higher_but_not_significant(reference, candidate, articles, **kwargs):
        return Comparison([], 0.80, 0.85, -0.02, 0.12, 0.3, 0.95, 1000, 13, NO_DIFFERENCE)

    monkeypatch.setattr("newsclf.train.evaluation.comparison.compare_models", higher_but_not_significant)
    second = train(small_config(small_corpus), tracking_uri)
    assert not second.promoted
    assert str(_client(tracking_uri).get_model_version_by_alias("test-model", "champion").version) == "1"


def _assert_nothing_registered(tracking_uri):
    assert _client(tracking_uri).search_model_versions("name='test-model'") == []


def test_single_class_tone_is_refused_before_any_run(tmp_path, small_corpus, tracking_uri):
    rows = [
        dict(row, tone="military" if row["tone"] else None)
        for row in map(__import__("json").loads, small_corpus.read_text().splitlines())
    ]
    with pytest.raises(DataError, match=r"task tone: .* classes \['military'\]"):
        train(small_config(write_jsonl(tmp_path / "one.jsonl", rows)), tracking_uri)
    _assert_nothing_registered(tracking_uri)


@pytest.mark.slow  # a full training (or more) into a store: the slow suite
def test_a_failure_inside_the_run_marks_it_failed_and_registers_nothing(small_corpus, tracking_uri, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(training, "log_model", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        train(small_config(small_corpus), tracking_uri)
    runs = _client(tracking_uri).search_runs(
        [_client(tracking_uri).get_experiment_by_name("test-experiment").experiment_id]
    )
    assert [run.info.status for run in runs] == ["FAILED"]
    _assert_nothing_registered(tracking_uri)


def test_unreachable_tracking_server_is_a_clear_error(small_corpus, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(NewsclfError, match=r"tracking store http://127.0.0.1:9 is unreachable"):
        train(small_config(small_corpus), "http://127.0.0.1:9")


@pytest.mark.slow
def test_data_without_tone_trains_topic_only_and_logs_the_data_report(tmp_path, small_corpus, tracking_uri):
    rows = [
        {k: v for k, v in row.items() if k != "tone"}
        for row in map(__import__("json").loads, small_corpus.read_text().splitlines())
    ]
    rows.append(dict(rows[0], id="syndicated-copy"))
    config = small_config(write_jsonl(tmp_path / "no_tone.jsonl", rows), data={"tone_column": ""})
    result = train(config, tracking_uri)
    assert load_model(f"models:/test-model/{result.version}", tracking_uri=tracking_uri).tasks == ["topic"]
    assert not any("tone" in name for name in result.metrics)
    run = _client(tracking_uri).get_run(result.run_id)
    assert run.data.params["dataset.duplicates_removed"] == "1"
    summary = __import__("json").loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=result.run_id, artifact_path="data/summary.json", tracking_uri=tracking_uri
            )
        ).read_text()
    )
    assert summary["duplicates_removed"] == 1 and set(summary["splits"]) == {"train", "validation", "test"}


@pytest.mark.slow
def test_search_logs_each_candidate_as_a_nested_run_and_refits_the_best(small_corpus, tracking_uri):
    config = small_config(small_corpus, search={"grid": {"topic.C": [0.001, 20.0]}, "refit": True})
    result = train(config, tracking_uri)
    client = _client(tracking_uri)
    parent = client.get_run(result.run_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert sorted(run.data.params["topic.C"] for run in children) == ["0.001", "20.0"]
    best = max(children, key=lambda run: run.data.metrics["validation/score"])
    assert parent.data.params["search.best.topic.C"] == best.data.params["topic.C"] == "20.0"
    assert parent.data.metrics["search/best_validation_score"] == best.data.metrics["validation/score"]
    assert load_model(f"models:/test-model/{result.version}", tracking_uri=tracking_uri).metadata["refit"] is True
    assert "validation/topic/macro_f1" in result.metrics and "test/topic/macro_f1" in result.metrics


def test_the_run_the_experiment_and_the_version_describe_themselves(trained_store, capsys):
    from newsclf.train.cli import main

    config, tracking_uri, result = trained_store
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    run = client.get_run(result.run_id)
    # A name that says which experiment, when and which settings; the code version as MLflow names it.
    assert re.fullmatch(r"test-\d{8}-\d{6}-[0-9a-f]{6}", run.info.run_name)
    assert re.fullmatch(r"[0-9a-f]{40}", run.data.tags["mlflow.source.git.commit"])
    assert run.data.tags["newsclf.git_dirty"] in ("true", "false")
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # The version's description is its model card, also logged with the run and printed by `newsclf card`.
    version = client.get_model_version("test-model", "1")
    assert version.description.startswith("# test-model version 1\n")
    assert (
        "| topic | validation |" in version.description and "## Known limits and failure modes" in version.description
    )
    assert "newsclf.load_model" in client.get_registered_model("test-model").description
    assert main(["card", "--model", "models:/test-model@champion", "--tracking-uri", tracking_uri]) == 0
    assert capsys.readouterr().out == version.description
    # Calibrated as `make train` calibrates: ECE and log loss before and after, and the diagrams.
    assert {"test/topic/ece", "test/topic/ece_uncalibrated", "validation/tone/log_loss_uncalibrated"} <= set(
        run.data.metrics
    )
    assert "topic/reliability_test.png" in {a.path for a in client.list_artifacts(result.run_id, "topic")}
    # The logged model pins every library the served package imports.
    # Through this store's client: models:/ in download_artifacts reads the process-wide registry.
    location = client.get_model_version_download_uri("test-model", "1")
    requirements = Path(mlflow.artifacts.download_artifacts(f"{location}/requirements.txt", tracking_uri=tracking_uri))
    pinned = {line.split("==")[0] for line in requirements.read_text().split() if "==" in line}
    assert {"scikit-learn", "pandas", "numpy", "scipy", "joblib"} <= pinned


@pytest.mark.slow  # a full training into a store
def test_train_takes_a_dict_with_overrides_and_returns_the_run_and_version(tmp_path):
    from newsclf.train import train

    data = write_jsonl(tmp_path / "slice.jsonl", corpus_slice(10))
    raw = {"name": "dict", "data": {"source": str(data)}, "calibration": {"methods": ["none"]}}
    result = train(raw, new_store(tmp_path / "mlflow.db"), overrides={"topic.C": 5})
    run = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(result.run_id)
    assert run.data.params["topic.C"] == "5.0" and result.model_uri == "models:/news-classifier/1"
