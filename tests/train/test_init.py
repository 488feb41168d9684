"""newsclf init: an experiment file guessed from the user's own data, which training accepts."""

import csv

import pytest

from newsclf.errors import NewsclfError
from newsclf.train.cli import main
from newsclf.train.config import load_config
from newsclf.train.jobs.init import MIN_LABEL_ROWS, guess_columns, write_experiment
from tests.helpers import corpus_slice


def _csv(path, rows: list[dict], dated: bool = True):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uid", "headline", "body", "section", "framing"] + (["published"] if dated else []))
        for n, row in enumerate(rows):
            fields = [f"u{n}", row["title"], row["text"], row["topic"].upper(), row["tone"] or ""]
            writer.writerow(fields + ([row["date"]] if dated else []))
    return path


def test_columns_labels_and_a_temporal_split_are_guessed_from_names_and_values(tmp_path):
    rows = corpus_slice(8)
    rows += [corpus_slice(9)[-1] | {"topic": "weather"}]  # one row: too rare to split
    data = _csv(tmp_path / "mine.csv", rows)
    guess = guess_columns(str(data))
    assert (guess.text, guess.title, guess.topic, guess.tone, guess.date, guess.id) == (
        "body",
        "headline",
        "section",
        "framing",
        "published",
        "uid",
    )
    output = tmp_path / "mine.toml"
    write_experiment(str(data), output)
    config = load_config(output)
    assert config.data.source == str(data) and config.data.topic_column == "section"
    assert set(config.data.topic_labels) == {row["topic"].upper() for row in rows if row["topic"] != "weather"}
    assert config.data.topic_drop == ("WEATHER",) and f"Fewer than {MIN_LABEL_ROWS} rows" in output.read_text()
    assert config.data.tone_labels == ("military", "diplomatic") and config.split.mode == "temporal"
    assert config.split.train_until < config.split.validation_until
    assert config.tracking.registered_model == "news-classifier-mine"


def test_without_dates_the_split_is_stratified_and_nothing_is_overwritten(tmp_path):
    data = _csv(tmp_path / "plain.csv", corpus_slice(6), dated=False)
    output = tmp_path / "plain.toml"
    write_experiment(str(data), output)
    assert load_config(output).split.mode == "stratified"
    with pytest.raises(NewsclfError, match="plain.toml exists; pass --output with a new file name"):
        write_experiment(str(data), output)
    with pytest.raises(NewsclfError, match="folder .*missing does not exist"):
        write_experiment(str(data), tmp_path / "missing" / "x.toml")


def test_data_without_a_label_column_is_one_line(tmp_path, capsys):
    data = tmp_path / "texts.csv"
    data.write_text("body\n" + "".join(f"Story number {n} about the harbour.\n" for n in range(20)), encoding="utf-8")
    assert main(["init", "--data", str(data), "--output", str(tmp_path / "t.toml")]) == 2
    assert "no column looks like a topic label" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.toml"))


@pytest.mark.slow  # trains through the CLI
def test_a_csv_with_other_column_names_trains_in_two_commands(tmp_path, capsys):
    data = _csv(tmp_path / "desk.csv", corpus_slice(12))
    experiment = tmp_path / "desk.toml"
    assert main(["init", "--data", str(data), "--output", str(experiment)]) == 0
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["train", "--experiment", str(experiment), "--tracking-uri", store, "--quiet"]) == 0
    assert "registered models:/news-classifier-desk/1" in capsys.readouterr().out
