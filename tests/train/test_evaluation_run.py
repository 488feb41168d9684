"""`newsclf evaluate` as a library call against a throwaway MLflow store."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from newsclf.errors import NewsclfError
from newsclf.train.data.articles import DataError
from newsclf.train.data.loading import load_splits
from newsclf.train.evaluation.evaluate import ReportSettings
from newsclf.train.jobs import evaluate as evaluation_run
from newsclf.train.jobs.evaluate import EvaluationRequest, evaluate
from tests.helpers import corpus_slice, tiny_classifier, write_jsonl

FAST = ReportSettings(resamples=200)
CHAMPION = "models:/test-model@champion"


def _held_out(tmp_path, topics=None):
    rows = [
        item
        for item in corpus_slice(14)
        if item not in corpus_slice(10) and (topics is None or item["topic"] in topics)
    ]
    return write_jsonl(tmp_path / "held_out.jsonl", rows), rows


def test_without_data_the_champion_is_judged_on_its_own_test_split(trained_store, tmp_path):
    config, uri, trained = trained_store
    result = evaluate(EvaluationRequest(CHAMPION, output=tmp_path / "report", settings=FAST), uri)
    test_split = load_splits(config.data, config.split, config.dedup, config.seed).test
    assert result.metrics["topic/items"] == len(test_split) and result.verdict is None
    assert {
        "report.md",
        "metrics.json",
        "mistakes.json",
        "topic_reliability.png",
        "tone_confusion_normalised.png",
    } <= {path.name for path in result.report_dir.iterdir()}
    document = json.loads((result.report_dir / "metrics.json").read_text())
    assert (
        document["baselines_fitted_on"] == "the model's training split"
        and document["context"]["overlap_with_training"] == 0
    )

    client = MlflowClient(uri)
    run = client.get_run(result.run_id)
    training_run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED" and run.info.experiment_id == training_run.info.experiment_id
    assert run.data.tags["model_name"] == "test-model" and run.data.tags["model_version"] == "1"
    assert run.data.tags["model_run_id"] == trained.run_id and run.data.tags["newsclf.kind"] == "evaluation"
    # Each number once: no second set from MLflow's classifier evaluator.
    assert not [key for key in run.data.metrics if key.startswith("mlflow_")]
    names = {dataset_input.dataset.name for dataset_input in run.inputs.dataset_inputs}
    assert {name.rsplit("-", 1)[1] for name in names} == {"topic", "tone", "tone_applies"}
    # The training run logged the same set of numbers for its test split, from the same evaluation.
    evaluated = {key for key in run.data.metrics if key != "evaluation_seconds"}
    assert evaluated <= {key.removeprefix("test/") for key in training_run.data.metrics if key.startswith("test/")}
    # Equal too, but the intervals: this evaluation draws fewer bootstrap resamples than training's.
    points = {key for key in evaluated if "_ci_" not in key}
    assert {key: run.data.metrics[key] for key in points} == pytest.approx(
        {key: training_run.data.metrics[f"test/{key}"] for key in points}
    )
    assert {"report.md", "metrics.json", "topic_confusion_counts.png"} <= {
        a.path for a in client.list_artifacts(result.run_id)
    }
    # Linked to the judged version's logged model, per evaluation dataset.
    logged_model = client.get_logged_model(run.data.tags["logged_model_id"])
    linked = {(m.key, m.dataset_name) for m in logged_model.metrics if m.run_id == result.run_id}
    assert ("topic/macro_f1", "small-topic") in linked and ("tone/ece", "small-tone") in linked


@pytest.mark.slow  # a full training (or more) into a store: the slow suite
def test_a_data_file_and_a_comparison(trained_store, tmp_path):
    _, uri, _ = trained_store
    data, rows = _held_out(tmp_path)
    result = evaluate(
        EvaluationRequest(
            "models:/test-model/1", data=str(data), output=tmp_path / "r", compare=CHAMPION, settings=FAST
        ),
        uri,
    )
    assert result.metrics["topic/items"] == len(rows) and result.verdict == "no significant difference"
    run = MlflowClient(uri).get_run(result.run_id)
    assert run.data.tags["verdict"] == "no significant difference" and run.data.tags["reference_uri"] == CHAMPION
    assert run.data.metrics["compare/difference"] == 0 and run.data.metrics["compare/p_value"] == 1
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## Comparison" in report and str(data) in report
    # Running again replaces the report folder.
    again = evaluate(
        EvaluationRequest("models:/test-model/1", data=str(data), output=tmp_path / "r", settings=FAST), uri
    )
    assert "## Comparison" not in (again.report_dir / "report.md").read_text()


def test_a_model_folder_with_labels_it_never_saw(trained_store, tmp_path):
    _, uri, _ = trained_store
    known = ["sports", "law_crime", "armed_conflicts_attacks"]
    folder = tiny_classifier([item for item in corpus_slice(6) if item["topic"] in known]).save(tmp_path / "model")
    data, _ = _held_out(tmp_path, topics=known + ["arts_culture"])
    result = evaluate(EvaluationRequest(str(folder), data=str(data), output=tmp_path / "r", settings=FAST), uri)
    report = (result.report_dir / "report.md").read_text()
    assert "4 articles have labels the model never saw: `arts_culture` (4)" in report
    assert "unknown (a model folder not tracked in this store)" in report
    run = MlflowClient(uri).get_run(result.run_id)
    assert "model_version" not in run.data.tags and run.data.tags["model_uri"] == str(folder)


def _runs(uri):
    client = MlflowClient(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.parametrize(
    "request_fields, message",
    [
        ({"model": "models:/test-model@nope"}, "model models:/test-model@nope not found"),
        ({"model": "models:/missing-model/1"}, "model models:/missing-model/1 not found"),
        ({"compare": "models:/test-model/9"}, "model models:/test-model/9 not found"),
        ({"data": "/no/such/file.jsonl"}, "data file not found: /no/such/file.jsonl"),
        ({"data": ""}, "the file is empty"),
        ({"data": '{"body": "text", "topic": "sports"}\n'}, r"column 'text' \(data.text_column\) not found"),
        ({"data": '{"text": "text", "label": "sports"}\n'}, r"column 'topic' \(data.topic_column\) not found"),
        ({"data": "\x00\xff not json"}, "cannot read as JSON Lines"),
        ({"output": "not-a-report"}, "is not an evaluation report"),
    ],
)
def test_user_errors_are_clear_and_start_no_run(trained_store, tmp_path, request_fields, message):
    _, uri, _ = trained_store
    fields = {"model": CHAMPION, "output": tmp_path / "r", "settings": FAST} | request_fields
    if "data" in request_fields and not request_fields["data"].startswith("/"):
        (tmp_path / "data.jsonl").write_text(request_fields["data"])
        fields["data"] = str(tmp_path / "data.jsonl")
    if request_fields.get("output") == "not-a-report":
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("keep me")
        fields["output"] = tmp_path / "mine"
    before = len(_runs(uri))
    with pytest.raises(NewsclfError, match=message):
        evaluate(EvaluationRequest(**fields), uri)
    assert len(_runs(uri)) == before and not (tmp_path / "r").exists()


def test_a_changed_training_file_cannot_stand_in_for_the_test_split(trained_store, tmp_path):
    config, uri, _ = trained_store
    path = Path(config.data.source)
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original + json.dumps(corpus_slice(11)[-1]) + "\n", encoding="utf-8")
        with pytest.raises(DataError, match="missing or changed since"):
            evaluate(EvaluationRequest(CHAMPION, output=tmp_path / "r", settings=FAST), uri)
    finally:
        path.write_text(original, encoding="utf-8")


def test_a_failure_while_logging_leaves_a_failed_run_and_no_report(trained_store, tmp_path, monkeypatch):
    _, uri, _ = trained_store

    def broken(*args, **kwargs):
        raise RuntimeError("artifact store full")

    monkeypatch.setattr(evaluation_run, "_log_run", broken)
    with pytest.raises(RuntimeError, match="artifact store full"):
        evaluate(EvaluationRequest(CHAMPION, output=tmp_path / "r", settings=FAST), uri)
    assert list(tmp_path.iterdir()) == []  # neither the report nor its staging folder
    assert _runs(uri)[0].info.status == "FAILED"  # the newest run


def test_set_maps_the_columns_of_data_that_differ_from_training(trained_store, tmp_path):
    _, uri, _ = trained_store
    rows = [{"id": row["id"], "text": row["text"], "section": row["topic"]} for row in corpus_slice(12)[:20]]
    data = str(write_jsonl(tmp_path / "renamed.jsonl", rows))
    with pytest.raises(DataError, match="column 'topic'"):
        evaluate(EvaluationRequest(CHAMPION, data=data, output=tmp_path / "a", settings=FAST), uri)
    mapped = EvaluationRequest(
        CHAMPION, data=data, output=tmp_path / "b", settings=FAST, data_overrides={"data.topic_column": "section"}
    )
    assert evaluate(mapped, uri).metrics["topic/items"] == 20
    with pytest.raises(NewsclfError, match=r"--set topic.C: evaluate takes data\.\* settings only"):
        EvaluationRequest(CHAMPION, data=data, data_overrides={"topic.C": 1})
