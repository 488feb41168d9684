"""Inputs a user can get wrong in `newsclf train`: one line, exit 2, found before the data is read or
the model fitted, and nothing left behind. Each case was a traceback, or was found only after the fit."""

import pytest

from newsclf.train.cli import main
from tests.helpers import corpus_slice, write_jsonl


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "error" in line]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["topic.C=nan"], "topic.C must be a finite number, got nan"),
        (["dedup.near_threshold=inf"], "dedup.near_threshold must be a finite number, got inf"),
        (["tracking.champion_alias=latest"], "champion_alias 'latest' is not a valid MLflow alias"),
        (["tracking.champion_alias=v3"], "champion_alias 'v3' is not a valid MLflow alias"),
        (["tracking.registered_model=team/news"], "registered_model 'team/news' is not a valid MLflow model name"),
        (["features.word.min_df=100000"], "features.word: min_df = 100000 asks for n-grams in 100000 of the"),
        (
            ["features.char.enabled=false", "features.word.ngram_range=[5,5]", "features.word.min_df=100"],
            "no n-gram is in",
        ),
    ],
)
def test_bad_settings_are_one_line_before_anything_is_written(overrides, message, tmp_path, capsys):
    argv = ["train", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]
    for override in overrides:
        argv += ["--set", override]
    assert main(argv) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and errors[0].startswith("newsclf: error: ") and message in errors[0], errors
    if "no n-gram" not in message:  # found while fitting: the run exists and is FAILED
        assert not (tmp_path / "m.db").exists()


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            [{"id": "a", "text": "x", "topic": "sports"}, {"id": "a", "text": "y", "topic": "sports"}],
            "id 'a' is on rows 1 and 2",
        ),
        ([{"id": "a", "text": 3, "topic": "sports"}], "'text' (data.text_column) holds a int, not text"),
        ([{"id": "a", "text": "x", "title": ["t"], "topic": "sports"}], "'title' (data.title_column) holds a list"),
    ],
)
def test_rows_that_would_be_coerced_silently_are_refused(rows, message, tmp_path, capsys):
    data = write_jsonl(tmp_path / "rows.jsonl", rows + corpus_slice(3))
    assert main(["train", "--data", str(data), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 2
    assert message in _errors(capsys)[0]


def test_the_store_is_checked_before_the_data_is_read(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    argv = ["train", "--data", "/no/such/file.jsonl", "--tracking-uri", "http://127.0.0.1:9"]
    assert main(argv) == 2
    assert "tracking store http://127.0.0.1:9 is unreachable" in _errors(capsys)[0]
    assert main(["train", "--tracking-uri", f"sqlite:///{tmp_path}/missing/m.db"]) == 2
    assert f"folder {tmp_path}/missing does not exist" in _errors(capsys)[0]
    assert not (tmp_path / "missing").exists()


def test_an_unreachable_server_is_named_as_such_when_loading_a_model(capsys):
    argv = ["predict", "--model", "models:/news-classifier@champion", "--tracking-uri", "http://127.0.0.1:9"]
    assert main([*argv, "/dev/null"]) == 2
    assert "tracking store http://127.0.0.1:9 is unreachable while looking up" in _errors(capsys)[0]


def test_quiet_silences_mlflow_and_version_is_printed(capsys):
    import logging

    from mlflow.utils.logging_utils import enable_logging, eprint

    from newsclf.train.cli import _progress

    try:
        _progress(quiet=True)("not shown")
        eprint("Successfully registered model 'x'.")  # how MLflow's registry prints
        logging.getLogger("mlflow.tracking").info("View run x")
        assert capsys.readouterr() == ("", "")
    finally:
        enable_logging()
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("newsclf ")
