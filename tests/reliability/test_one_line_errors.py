"""Errors a user can meet are one line, not a traceback (each case gave one before its fix)."""

import json
import sqlite3

import pytest

from newsclf.folder import MANIFEST, ModelFormatError, read_manifest
from newsclf.train.cli import main
from tests.helpers import read_corpus, write_jsonl


def test_an_audit_of_fewer_articles_per_topic_than_folds_is_one_line(tmp_path, capsys):
    rows = read_corpus()
    few = [row for row in rows if row["tone"] == "military"][:5] + [
        row for row in rows if row["tone"] == "diplomatic"
    ][:5]
    data = write_jsonl(tmp_path / "ten.jsonl", few)
    code = main(
        ["audit", "--data", str(data), "--output", str(tmp_path / "audit"), "--tracking-uri", "sqlite:///x.db"]
    )
    assert code == 2
    [line] = capsys.readouterr().err.strip().splitlines()[-1:]
    assert "fewer than 5 folds; pass --folds" in line


def test_a_lone_surrogate_in_an_id_or_a_file_name_still_gives_a_page(small_model_folder, tmp_path, capsys):
    items = tmp_path / "s\udcffr.jsonl"  # a file name that was not UTF-8
    items.write_text(json.dumps({"id": "a\ud800b", "text": "Troops advanced on the port."}) + "\n")
    page = tmp_path / "page.html"
    assert main(["explain", "--jsonl", "--model", str(small_model_folder), str(items), "--html", str(page)]) == 0
    assert "a\ufffdb" in page.read_text(encoding="utf-8")


def test_a_manifest_nested_too_deep_is_a_damaged_model_folder(tmp_path):
    (tmp_path / MANIFEST).write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ModelFormatError, match="unreadable manifest \\(nested too deep\\)"):
        read_manifest(tmp_path)


@pytest.mark.slow  # waits out SQLite's busy timeout, twice
@pytest.mark.parametrize("command", [["doctor"], ["train", "--data", "unused.jsonl"]])
def test_a_locked_store_is_exit_1_with_the_advice_to_wait(tracking_uri, command, capsys):
    held = sqlite3.connect(tracking_uri.removeprefix("sqlite:///"), isolation_level=None)
    held.execute("BEGIN EXCLUSIVE")
    try:
        assert main([*command, "--tracking-uri", tracking_uri]) == 1
    finally:
        held.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("another process is writing to the tracking store; run again when it is done")
    assert not any("Traceback" in line or " ERROR " in line for line in err)
