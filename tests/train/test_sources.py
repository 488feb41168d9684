"""Every source type through datasets, on small files written here."""

import subprocess
import sys

import datasets
import pandas as pd
import pytest

from newsclf.train.data.sources import SourceError, detect_format, read_dataset
from tests.helpers import as_ordinary_user, write_jsonl

ROWS = [
    {"id": "1", "text": "Storm floods the valley.", "label": "disaster"},
    {"id": "2", "text": "Striker scores twice.", "label": "sport"},
]


def _frame():
    return pd.DataFrame(ROWS)


@pytest.mark.parametrize(
    "write",
    [
        lambda d: write_jsonl(d / "a.jsonl", ROWS),
        lambda d: (_frame().to_csv(d / "a.csv", index=False), d / "a.csv")[1],
        lambda d: (_frame().to_parquet(d / "a.parquet"), d / "a.parquet")[1],
        lambda d: (datasets.Dataset.from_pandas(_frame()).save_to_disk(str(d / "saved")), d / "saved")[1],
    ],
    ids=["jsonl", "csv", "parquet", "save_to_disk"],
)
def test_each_file_format_reads_the_same_rows(tmp_path, write):
    dataset = read_dataset(str(write(tmp_path)))
    assert dataset["text"] == [row["text"] for row in ROWS] and [str(i) for i in dataset["id"]] == ["1", "2"]


def test_a_saved_dataset_dict_gives_the_named_split(tmp_path):
    splits = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS[:1]), "extra": datasets.Dataset.from_list(ROWS[1:])}
    )
    splits.save_to_disk(str(tmp_path / "dd"))
    assert read_dataset(str(tmp_path / "dd"), split="extra")["text"] == [ROWS[1]["text"]]
    with pytest.raises(SourceError, match=r"no split 'test'; it has \['extra', 'train'\]"):
        read_dataset(str(tmp_path / "dd"), split="test")


def test_hub_sources_go_through_load_dataset(tmp_path):
    """A local dataset folder given as the hub name takes the same datasets.load_dataset call as a hub id."""
    repo = tmp_path / "owner-name"
    repo.mkdir()
    write_jsonl(repo / "train.jsonl", ROWS)
    assert read_dataset(f"hub:{repo}")["label"] == ["disaster", "sport"]
    assert detect_format("hub:owner/name@v1.0") == "hub"


def test_an_unloadable_hub_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="hub dataset .* could not be loaded"):
        read_dataset(f"hub:{tmp_path / 'absent'}")
    with pytest.raises(SourceError, match="expected hub:owner/name"):
        read_dataset("hub:")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("a.txt", b"text", "unknown format '.txt'"),
        ("a.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n', r"line 2 is not valid UTF-8 \(byte 14\)"),
        ("a.csv", b"text\n\xff\n", "line 2 is not valid UTF-8"),
        ("a.parquet", b"not parquet", "cannot read as Parquet \\(Parquet magic bytes not found"),
    ],
)
def test_bad_files_are_named_with_the_problem(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SourceError, match=message):
        read_dataset(str(tmp_path / name))


def test_missing_paths_and_non_dataset_folders(tmp_path):
    with pytest.raises(SourceError, match="data file not found"):
        read_dataset(str(tmp_path / "nope.csv"))
    with pytest.raises(SourceError, match="not a folder written by Dataset.save_to_disk"):
        read_dataset(str(tmp_path))


def test_an_unreadable_data_file_is_one_line_before_datasets_reads_it(tmp_path):
    data = write_jsonl(tmp_path / "locked.jsonl", [{"text": "Troops advanced.", "topic": "sports"}])
    data.chmod(0)
    script = f"from newsclf.train.data.sources import read_dataset\nread_dataset({str(data)!r})"
    result = subprocess.run(as_ordinary_user([sys.executable, "-c", script]), capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"newsclf.train.data.sources.SourceError: {data}: permission denied; "
        "make it readable for this user (chmod u+r)"
    )


def test_a_local_file_leaves_no_arrow_copy_in_the_hugging_face_cache(tmp_path, monkeypatch):
    hf_cache = tmp_path / "hf"
    hf_cache.mkdir()
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", hf_cache)
    data = write_jsonl(tmp_path / "fresh.jsonl", ROWS)
    assert read_dataset(str(data))["text"] == [row["text"] for row in ROWS]
    assert not [path for path in hf_cache.rglob("*") if path.is_file()]
