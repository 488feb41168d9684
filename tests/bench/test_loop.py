"""bench loop: monitor, select, update and gate, month by month, every strategy side by side."""

import json

import pytest

from bench.__main__ import main
from bench.loop import STRATEGIES, loop_benchmark, loop_page
from tests.helpers import as_articles, corpus_slice, write_jsonl

SMALL_EXPERIMENT = """name = "loop-test"
seed = 3
[features.char]
enabled = false
[calibration]
methods = ["none"]
"""


def _dated(months: int, per_topic: int = 12) -> list[dict]:
    """Corpus items dated round-robin over ``months`` months of 2024."""
    return [item | {"date": f"2024-0{1 + i % months}-15"} for i, item in enumerate(corpus_slice(per_topic))]


@pytest.fixture(scope="module")
def results():
    from newsclf.train.config import config_from_dict

    rows = _dated(4)
    articles = as_articles(rows)
    articles = type(articles)(articles.ids, articles.texts, articles.topics, articles.tones, [r["date"] for r in rows])
    config = config_from_dict({"name": "loop-test", "seed": 3, "features": {"char": {"enabled": False}}})
    return loop_benchmark(articles, config, "2024-02", budget=4)


def test_every_strategy_runs_the_same_months_and_only_none_reveals_no_label(results):
    assert results["months"] == ["2024-02", "2024-03", "2024-04"]
    assert list(results["strategies"]) == [name for name, _, _ in STRATEGIES] == list(results["every_update_kept"])
    assert results["strategies"]["none"]["labels_used"] == 0 and results["strategies"]["none"]["updates_promoted"] == 0
    for name, row in results["strategies"].items():
        assert [month["month"] for month in row["months"]] == results["months"]
        assert 0 < row["topic_macro_f1"] <= 1 and set(row["alarms"]) <= set(results["months"])
        if name != "none":
            assert row["labels_used"] == 3 * 4 and row["update_seconds_median"] > 0
            # The first month has no candidate yet: nothing to gate, nothing promoted.
            assert not row["months"][0]["promoted"] and row["updates_promoted"] <= 2
            assert results["every_update_kept"][name]["updates_promoted"] == 3


def test_the_page_has_the_totals_both_loops_and_each_month(results):
    page = loop_page(results, {"command": "`python -m bench loop ...`"})
    assert "| margin by topic |" in page and "2024-02 to 2024-04" in page
    assert "## Every update kept (no gate)" in page and "| 2024-03 | " in page


def test_the_command_writes_loop_json_skips_empty_months_and_refuses_a_range_without_articles(tmp_path, capsys):
    rows = [row | {"date": row["date"].replace("2024-03", "2024-04")} for row in _dated(3, per_topic=9)]
    data = write_jsonl(tmp_path / "dated.jsonl", rows)
    experiment = tmp_path / "small.toml"
    experiment.write_text(SMALL_EXPERIMENT, encoding="utf-8")
    argv = ["loop", "--data", str(data), "--experiment", str(experiment), "--budget", "3"]
    assert main([*argv, "--start", "2024-02", "--output", str(tmp_path / "out")]) == 0
    written = json.loads((tmp_path / "out" / "loop.json").read_text())
    assert {"none", "random"} <= set(written["strategies"])
    assert {"topic_macro_f1", "tone_macro_f1", "labels_used", "updates_promoted", "alarms"} <= set(
        written["strategies"]["random"]
    )
    assert written["months"] == ["2024-02", "2024-03", "2024-04"] and written["skipped_months"] == ["2024-03"]
    assert "2024-03: no articles, skipped" in capsys.readouterr().err
    assert "Months without articles, skipped: 2024-03." in (tmp_path / "out" / "loop.md").read_text()
    assert main([*argv, "--start", "2031-01", "--output", str(tmp_path / "never")]) == 2
    assert "need articles before 2031-01 and in the months from 2031-01" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
