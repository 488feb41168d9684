"""New labels folded into training: new ids join train, known ids are corrections, bad lines refused."""

import dataclasses
import json

import pytest
from mlflow.tracking import MlflowClient

from newsclf.train.cli import main
from newsclf.train.config import ConfigError, config_from_dict, flatten, load_config
from newsclf.train.data.articles import DataError
from newsclf.train.data.loading import load_splits
from newsclf.train.tracking.runs import config_from_params
from tests.helpers import corpus_slice, small_config, write_jsonl

TOPICS = load_config("default").data.topic_labels
TOPIC = TOPICS[0]


@pytest.fixture
def base(tmp_path):
    return small_config(write_jsonl(tmp_path / "small.jsonl", corpus_slice(10)))


def _splits(config, *files):
    data = dataclasses.replace(config.data, added_labels=tuple(str(f) for f in files))
    return load_splits(data, config.split, config.dedup, config.seed)


def _new_articles(count: int) -> list[dict]:
    fresh = [item for item in corpus_slice(14) if item not in corpus_slice(10)][:count]
    return [item | {"id": f"new-{n}"} for n, item in enumerate(fresh)]


def test_new_ids_join_train_and_leave_validation_and_test_as_they_were(base, tmp_path):
    before = _splits(base)
    labels = write_jsonl(tmp_path / "labels.jsonl", _new_articles(6))
    after = _splits(base, labels)
    assert after.train.ids == before.train.ids + [f"new-{n}" for n in range(6)]
    assert (after.validation, after.test) == (before.validation, before.test)
    added = after.summary()["added_labels"]
    assert added["new_articles"] == 6 and added["corrections"] == {} and str(labels) in added["files"]


def test_a_known_id_is_a_correction_wherever_it_sits_and_is_counted(base, tmp_path):
    before = _splits(base)
    in_train, in_test = before.train.ids[0], before.test.ids[0]
    other = next(t for t in base.data.topic_labels if t != before.test.topics[0])
    same_topic = before.train.topics[0]
    rows = [
        {"id": in_train, "topic": same_topic, "tone": before.train.tones[0]},  # no text: a correction
        {"id": in_test, "topic": other},  # no tone given: the data's tone stays
    ]
    after = _splits(base, write_jsonl(tmp_path / "labels.jsonl", rows))
    assert after.test.topics[0] == other and after.test.tones[0] == before.test.tones[0]
    assert len(after.train) == len(before.train)
    added = after.summary()["added_labels"]
    assert added["corrections"] == {"test": 1} and added["unchanged"] == 1 and added["new_articles"] == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"id": "nowhere", "topic": "politics_elections"},
            "line 2 (id nowhere): id 'nowhere' is not in the training",
        ),
        ({"id": "x", "text": "Envoys met.", "topic": "gardening"}, "line 2 (id x): topic 'gardening' is not in"),
        ({"id": "x", "text": "Envoys met.", "topic": TOPIC, "tone": "loud"}, "line 2 (id x): tone 'loud' is not in"),
        ({"text": "Envoys met.", "topic": TOPIC}, "line 2: no 'id'"),
        ({"id": "new-0", "text": "Envoys met.", "topic": TOPIC}, "line 2: id 'new-0' was already"),
    ],
)
def test_a_bad_line_is_refused_naming_it_before_anything_is_trained(base, tmp_path, row, message):
    labels = write_jsonl(tmp_path / "labels.jsonl", _new_articles(1) + [row])
    with pytest.raises(DataError, match="labels.jsonl: " + message.replace("(", r"\(").replace(")", r"\)")):
        _splits(base, labels)


def test_a_file_without_the_label_columns_is_refused(base, tmp_path):
    labels = write_jsonl(tmp_path / "to_label.jsonl", [{"id": "a", "text": "Envoys met.", "guess": {}}])
    with pytest.raises(DataError, match="added labels need the columns 'id' and 'topic'"):
        _splits(base, labels)


def test_a_streaming_update_needs_the_newest_window_to_be_judged_on():
    with pytest.raises(ConfigError, match="a streaming update .* set tracking.recent_data"):
        config_from_dict({"name": "update", "fit": {"mode": "streaming"}, "data": {"added_labels": ["labels.jsonl"]}})


def test_added_label_paths_in_an_experiment_file_are_relative_to_it(tmp_path):
    (tmp_path / "update.toml").write_text(
        'name = "update"\n[data]\nadded_labels = ["labels/june.jsonl"]\n'
        '[tracking]\nrecent_data = "labels/july.jsonl"\n',
        encoding="utf-8",
    )
    config = load_config(tmp_path / "update.toml")
    assert config.data.added_labels == (str(tmp_path / "labels" / "june.jsonl"),)
    assert config.tracking.recent_data == str(tmp_path / "labels" / "july.jsonl")
    params = {key: str(value) for key, value in flatten(config).items()}
    # Promotion rebuilds the champion's splits from its run's params.
    assert config_from_params(params, "run of update").data == config.data


@pytest.mark.slow  # end to end through the CLI and a tracking store
def test_monitor_select_update_and_gate_through_the_cli(trained_store, tmp_path, capsys):
    config, uri, _ = trained_store
    truth = {item["id"]: item for item in corpus_slice(22)}
    fresh = [item for item in corpus_slice(22) if item not in corpus_slice(10)]
    news = write_jsonl(
        tmp_path / "news.jsonl",
        [{"id": item["id"], "text": item["text"], "date": f"2024-0{1 + i % 2}-10"} for i, item in enumerate(fresh)],
    )
    champion = ["--model", "models:/test-model@champion", "--tracking-uri", uri]
    assert main(["monitor", *champion, "--data", str(news), "--output", str(tmp_path / "watch"), "--quiet"]) == 0
    chosen = tmp_path / "to_label.jsonl"
    assert main(["select", *champion, "--data", str(news), "--budget", "20", "--output", str(chosen), "--quiet"]) == 0
    # A reviewer labels the chosen articles; the rest of the new articles are the newest labelled window.
    picked = [json.loads(line)["id"] for line in chosen.read_text().splitlines()]
    labelled = write_jsonl(tmp_path / "labelled.jsonl", [_labelled(truth[i]) for i in picked])
    recent = write_jsonl(tmp_path / "recent.jsonl", [_labelled(i) for i in fresh if i["id"] not in picked])
    capsys.readouterr()
    same_experiment = [
        "train", "--data", config.data.source, "--tracking-uri", uri, "--quiet",
        *(f"--set={key}={value}" for key, value in _AS_TRAINED.items()),
    ]  # fmt: skip
    assert main([*same_experiment, "--add-labels", str(labelled), "--recent", str(recent)]) == 0
    said = capsys.readouterr().out
    assert "registered models:/test-model/2" in said and f"recent articles of tracking.recent_data {recent}" in said
    client = MlflowClient(uri)
    version = client.get_model_version("test-model", "2")
    assert "recent articles" in version.tags["promotion_reason"]
    summary = client.get_run(version.run_id).data.params
    assert json.loads(summary["data.added_labels"].replace("'", '"')) == [str(labelled)]
    # A label outside the model's set: one line naming the line, nothing trained or registered.
    bad = write_jsonl(tmp_path / "bad.jsonl", [_labelled(truth[picked[0]]), {"id": "z", "text": "x y", "topic": "?"}])
    assert main([*same_experiment, "--add-labels", str(bad)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after datasets' progress bar (issue 24)
    assert error.startswith("newsclf: error: ") and "bad.jsonl: line 2 (id z): topic '?' is not in" in error
    assert len(client.search_model_versions("name = 'test-model'")) == 2


# The settings small_config gives the store's champion, so the update trains the same experiment.
_AS_TRAINED = {
    "seed": 13,
    "name": "test",
    "features.char.ngram_range": "[3,4]",
    "calibration.methods": '["sigmoid","temperature"]',
    "tracking.experiment": "test-experiment",
    "tracking.registered_model": "test-model",
}


def _labelled(item: dict) -> dict:
    return {"id": item["id"], "text": item["text"], "topic": item["topic"], "tone": item.get("tone")}


def test_training_says_what_the_added_labels_did(base, tmp_path):
    from newsclf.train.training import _InMemory

    before = _splits(base)
    rows = _new_articles(3) + [
        {"id": before.test.ids[0], "topic": next(t for t in TOPICS if t != before.test.topics[0])}
    ]
    config = dataclasses.replace(
        base, data=dataclasses.replace(base.data, added_labels=(str(write_jsonl(tmp_path / "l.jsonl", rows)),))
    )
    said: list[str] = []
    _InMemory(config, "sqlite:///unused.db", None, None).read(said.append)
    assert "added labels: 3 new articles joined train; corrections of articles the data has: 1 in test" in said[-1]


def test_missing_or_bad_labels_and_recent_files_are_refused_before_training(base, tmp_path):
    from newsclf.train.tracking.promotion import require_recent

    with pytest.raises(DataError, match="labels file not found: .*nope.jsonl; pass --add-labels"):
        _splits(base, tmp_path / "nope.jsonl")
    missing = dataclasses.replace(base, tracking=dataclasses.replace(base.tracking, recent_data=str(tmp_path / "no")))
    with pytest.raises(DataError, match="recent labelled file not found: .*; pass --recent"):
        require_recent(missing)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "z", "text": "Envoys met.", "topic": "gardening"}])
    unreadable = dataclasses.replace(base, tracking=dataclasses.replace(base.tracking, recent_data=str(bad)))
    with pytest.raises(DataError, match=r"--recent \(tracking.recent_data\): .*topic 'gardening' is not in"):
        require_recent(unreadable)
