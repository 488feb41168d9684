"""The label audit on a slice of the shipped corpus, and the review loop (corrections, exclusion) at load time."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from newsclf.errors import NewsclfError
from newsclf.train.cli import main
from newsclf.train.config import ConfigError
from newsclf.train.data.articles import DataError
from newsclf.train.data.loading import load_articles
from newsclf.train.jobs.audit import ISSUES_FILE, SUMMARY_FILE, audit, audit_labels
from tests.helpers import corpus_slice, new_store, small_config, write_jsonl

# A sports report filed under business: the planted label error every audit test looks for.
PLANTED_TOPIC = "business_economy"
COPY_ID = "copy-of-first"


def _slice_with_planted_flip(folder: Path, per_topic: int = 12) -> tuple[Path, str]:
    """A corpus slice with one sports report filed under business, and a copy of its first article
    filed under another topic (a near-duplicate conflict)."""
    items = corpus_slice(per_topic)
    planted = next(item for item in items if item["topic"] == "sports")
    planted["topic"] = PLANTED_TOPIC
    copy = dict(items[0], id=COPY_ID, topic="law_crime" if items[0]["topic"] != "law_crime" else "sports")
    return write_jsonl(folder / "articles.jsonl", items + [copy]), planted["id"]


def _cheap_config(source: Path, **data):
    # Word features and SGD only: the audit fits a model per fold, and lbfgs and character n-grams
    # would cost seconds without changing what is tested.
    sgd = {"kind": "sgd_logistic"}
    return small_config(source, data=data, features={"char": {"enabled": False}}, topic=sgd, tone=sgd)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The audit of a 120-article slice with one planted topic flip; the id of that flip."""
    source, planted_id = _slice_with_planted_flip(tmp_path_factory.mktemp("audit"))
    return audit_labels(_cheap_config(source)), planted_id


def test_a_planted_flip_is_flagged_with_the_true_topic_suggested(planted):
    report, planted_id = planted
    issues = report.issues()
    mine = [record for record in issues if record["id"] == planted_id]
    assert [(record["task"], record["given"], record["suggested"]) for record in mine] == [
        ("topic", PLANTED_TOPIC, "sports")
    ]
    qualities = [record["quality"] for record in issues]
    assert qualities == sorted(qualities) and all(0.0 <= q <= 1.0 for q in qualities)
    # Among the clearest cases: the flip is in the lowest-quality tenth of the topic labels.
    assert mine[0]["quality"] < sorted(report.tasks["topic"].quality)[len(report.articles) // 10]
    assert set(mine[0]) == {"id", "task", "given", "suggested", "quality", "text"}


def test_every_article_is_judged_out_of_sample_for_topic_and_toned_ones_for_tone(planted):
    report, _ = planted
    topic, tone = report.tasks["topic"], report.tasks["tone"]
    assert len(topic.indices) == len(report.articles) == 121
    assert len(tone.indices) == sum(t is not None for t in report.articles.tones)
    assert topic.probabilities.sum(axis=1) == pytest.approx(1.0)
    assert tone.labels == ["diplomatic", "military"]
    assert topic.noise_counts().sum() == pytest.approx(121)


def test_conflicting_copies_are_reported(planted):
    report, _ = planted
    assert [group["ids"] for group in report.conflicts] == [[report.articles.ids[0], COPY_ID]]


def test_too_few_stories_for_the_folds_is_one_clear_error(tmp_path):
    source = write_jsonl(tmp_path / "four.jsonl", corpus_slice(1)[:4])
    with pytest.raises(NewsclfError, match="4 distinct stories .* fewer than 5 folds; pass a smaller --folds"):
        audit_labels(_cheap_config(source))


def test_the_audit_writes_its_folder_and_a_run_linked_to_the_data(planted, tmp_path, monkeypatch):
    report, planted_id = planted
    monkeypatch.setattr("newsclf.train.jobs.audit.audit_labels", lambda *args, **kwargs: report)
    uri = new_store(tmp_path / "mlflow.db")
    result = audit(report.config, tmp_path / "audit", uri)
    lines = (tmp_path / "audit" / ISSUES_FILE).read_text(encoding="utf-8").splitlines()
    assert planted_id in {json.loads(line)["id"] for line in lines}
    summary = (tmp_path / "audit" / SUMMARY_FILE).read_text(encoding="utf-8")
    assert "## Estimated noise matrix: topic" in summary and "## How to review" in summary
    assert "folds are by article, not by date" in summary  # the corpus is dated: the audit says how

    from mlflow.tracking import MlflowClient

    run = MlflowClient(uri).get_run(result.run_id)
    assert run.data.tags["newsclf.kind"] == "audit"
    assert run.data.tags["data_fingerprint"] == report.load.fingerprint
    assert run.data.tags["mlflow.source.git.commit"] and "git_commit" not in run.data.tags
    assert (
        int(run.data.params["audit.topic.flagged"]) == result.flagged["topic"] == len(lines) - result.flagged["tone"]
    )
    assert [entry.dataset.name for entry in run.inputs.dataset_inputs] == ["articles-audit"]
    # A second audit may replace the folder the first one wrote; a folder of other files is refused.
    audit(report.config, tmp_path / "audit", uri)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(NewsclfError, match="holds notes.txt"):
        audit(report.config, tmp_path / "mine", uri)


def test_the_cli_refuses_a_bad_output_before_fitting(tmp_path, capsys):
    source, _ = _slice_with_planted_flip(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("", encoding="utf-8")
    code = main(
        ["audit", "--data", str(source), "--output", str(tmp_path / "taken"), "--quiet"]
        + ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    )
    assert code == 2
    assert capsys.readouterr().err.startswith("newsclf: error: output ")
    assert not (tmp_path / "mlflow.db").exists()


# --- the review loop at load time -------------------------------------------------------------


@pytest.fixture
def data(tmp_path):
    return write_jsonl(tmp_path / "data.jsonl", corpus_slice(2))


def _load(data: Path, **keys):
    return load_articles(_cheap_config(data, **keys).data)


def test_corrections_relabel_and_drop_and_are_counted(data, tmp_path):
    articles, _, _ = _load(data)
    first, second, third = articles.ids[:3]
    corrections = write_jsonl(
        tmp_path / "corrections.jsonl",
        [
            {"id": first, "task": "topic", "label": "sports"},
            {"id": first, "task": "tone", "label": "diplomatic"},
            {"id": second, "drop": True},
            {"id": third, "task": "topic", "label": articles.topics[2]},
        ],
    )
    corrected, report, _ = _load(data, corrections=str(corrections))
    assert len(corrected) == len(articles) - 1 and second not in corrected.ids
    index = corrected.ids.index(first)
    assert (corrected.topics[index], corrected.tones[index]) == ("sports", "diplomatic")
    review = report.review["corrections"]
    assert review["relabelled"] == {"topic": 1, "tone": 1} and review["dropped"] == 1 and review["unchanged"] == 1
    assert len(review["sha256"]) == 64


def test_a_csv_corrections_file_works_too(data, tmp_path):
    articles, _, _ = _load(data)
    path = tmp_path / "corrections.csv"
    path.write_text(
        f"id,task,label,drop\n{articles.ids[0]},topic,sports,\n{articles.ids[1]},,,true\n", encoding="utf-8"
    )
    corrected, report, _ = _load(data, corrections=str(path))
    assert corrected.topics[0] == "sports" and articles.ids[1] not in corrected.ids


@pytest.mark.parametrize(
    "lines, message",
    [
        ([{"id": "nobody", "task": "topic", "label": "sports"}], "line 1: id 'nobody' is not in the data"),
        ([{"id": "FIRST", "task": "topic", "label": "football"}], "topic label 'football' for id .* is not in"),
        ([{"id": "FIRST", "task": "mood", "label": "sports"}], "task 'mood' for id .* must be one of"),
        (
            [
                {"id": "FIRST", "task": "topic", "label": "sports"},
                {"id": "FIRST", "task": "topic", "label": "law_crime"},
            ],
            "line 2: id .* is also reviewed on line 1",
        ),
        ([{"id": "FIRST", "drop": True, "label": "sports"}], "both drop and label"),
        ([{"task": "topic", "label": "sports"}], "line 1: no id"),
    ],
)
def test_wrong_corrections_are_one_line_errors_naming_the_line(data, tmp_path, lines, message):
    first = _load(data)[0].ids[0]
    rows = [{key: first if value == "FIRST" else value for key, value in line.items()} for line in lines]
    corrections = write_jsonl(tmp_path / "corrections.jsonl", rows)
    with pytest.raises(DataError, match=message):
        _load(data, corrections=str(corrections))


def test_a_missing_corrections_file_names_the_key(data, tmp_path):
    with pytest.raises(DataError, match="data.corrections file not found: .*nowhere.jsonl"):
        _load(data, corrections=str(tmp_path / "nowhere.jsonl"))


def test_flagged_items_below_the_threshold_are_excluded_unless_reviewed(data, tmp_path):
    articles, _, _ = _load(data)
    a, b, c = articles.ids[:3]
    issues = write_jsonl(
        tmp_path / ISSUES_FILE,
        [
            {"id": a, "task": "topic", "given": "x", "suggested": "y", "quality": 0.01, "text": ""},
            {"id": b, "task": "tone", "given": "x", "suggested": "y", "quality": 0.05, "text": ""},
            {"id": c, "task": "topic", "given": "x", "suggested": "y", "quality": 0.5, "text": ""},
        ],
    )
    kept, report, _ = _load(data, label_issues=str(issues), exclude_label_issues=0.1)
    assert a not in kept.ids and b not in kept.ids and c in kept.ids
    assert report.review["label_issues_excluded"]["excluded"] == 2
    corrections = write_jsonl(tmp_path / "corrections.jsonl", [{"id": a, "task": "topic", "label": "sports"}])
    kept, _, _ = _load(data, label_issues=str(issues), exclude_label_issues=0.1, corrections=str(corrections))
    assert a in kept.ids and b not in kept.ids


def test_label_issues_of_other_data_are_refused(data, tmp_path):
    issues = write_jsonl(tmp_path / ISSUES_FILE, [{"id": "elsewhere", "task": "topic", "quality": 0.01}])
    with pytest.raises(DataError, match="id 'elsewhere' is not in the data"):
        _load(data, label_issues=str(issues), exclude_label_issues=0.1)


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"exclude_label_issues": 0.1}, "exclude_label_issues needs label_issues"),
        ({"label_issues": "x.jsonl"}, "nothing would be excluded"),
        ({"label_issues": "x.jsonl", "exclude_label_issues": 1.5}, r"must be a label quality in \[0, 1\]"),
    ],
)
def test_exclusion_keys_are_validated(data, keys, message):
    with pytest.raises(ConfigError, match=message):
        _cheap_config(data, **keys)


# --- end to end ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_audit_then_corrections_then_retrain_end_to_end(tmp_path):
    source, planted_id = _slice_with_planted_flip(tmp_path, per_topic=10)
    uri = new_store(tmp_path / "mlflow.db")
    experiment = tmp_path / "exp.toml"
    experiment.write_text(
        f'name = "e2e"\n[data]\nsource = "{source}"\n[features.char]\nenabled = false\n'
        '[tracking]\nexperiment = "e2e"\nregistered_model = "e2e"\n',
        encoding="utf-8",
    )
    newsclf = [sys.executable, "-m", "newsclf"]
    common = ["--experiment", str(experiment), "--tracking-uri", uri]
    audited = subprocess.run(
        [*newsclf, "audit", *common, "--output", str(tmp_path / "audit")], capture_output=True, text=True
    )
    assert audited.returncode == 0, audited.stderr
    assert "fold 5/5" in audited.stderr and "topic:" in audited.stdout
    issues = [json.loads(line) for line in (tmp_path / "audit" / ISSUES_FILE).read_text().splitlines()]
    planted = next(record for record in issues if record["id"] == planted_id)
    # The reviewer accepts the audit's suggestion for the planted flip.
    corrections = write_jsonl(
        tmp_path / "corrections.jsonl", [{"id": planted_id, "task": "topic", "label": planted["suggested"]}]
    )
    trained = subprocess.run(
        [*newsclf, "train", *common, "--quiet", "--set", f'data.corrections="{corrections}"'],
        capture_output=True,
        text=True,
    )
    assert trained.returncode == 0, trained.stderr

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("e2e").experiment_id])
    training = next(run for run in runs if run.data.tags.get("newsclf.kind") != "audit")
    assert training.data.params["dataset.corrections_relabelled"] == "1"
    assert len(training.data.tags["data_corrections_sha256"]) == 64
    assert [item.path for item in client.list_artifacts(training.info.run_id, "data/review")] == [
        "data/review/corrections.jsonl"
    ]
    refused = subprocess.run(
        [*newsclf, "train", *common, "--quiet", "--set", 'data.corrections="/nonexistent/c.jsonl"'],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "data.corrections file not found" in refused.stderr
