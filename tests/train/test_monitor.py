"""newsclf monitor: drift signals per window, the alarm rule, the report and its MLflow run."""

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from newsclf.errors import NewsclfError
from newsclf.train.cli import main
from newsclf.train.data.articles import UnlabelledArticle
from newsclf.train.jobs.monitor import ALARM_PSI, monitor, population_stability, windows_of
from tests.helpers import corpus_slice, write_jsonl


def test_population_stability_is_zero_for_the_same_mix_and_grows_with_the_shift():
    reference = np.array([0.5, 0.3, 0.2])
    assert population_stability(reference, reference) == 0
    small, large = np.array([0.45, 0.35, 0.2]), np.array([0.1, 0.1, 0.8])
    assert 0 < population_stability(small, reference) < ALARM_PSI < population_stability(large, reference)


def test_windows_are_months_weeks_or_counts_in_time_order():
    dates = ["2024-02-07", "2024-01-31", "2024-02-01"]  # ISO weeks 6, 5 and 5
    articles = [UnlabelledArticle(str(i), "x", date) for i, date in enumerate(dates)]
    assert [name for name, _ in windows_of(articles, "month")] == ["2024-01", "2024-02"]
    assert [(name, len(members)) for name, members in windows_of(articles, "week")] == [
        ("2024-W05", 2),
        ("2024-W06", 1),
    ]
    assert [len(members) for _, members in windows_of(articles, "2")] == [2, 1]
    with pytest.raises(NewsclfError, match="article 9: date 'soon' is not an ISO date.*--by N"):
        windows_of([UnlabelledArticle("9", "x", "soon")], "month")


def test_a_window_of_one_topic_raises_the_alarm_and_a_window_like_training_does_not(small_model):
    items = corpus_slice(12)
    mix = {label: 0.1 for label in small_model.labels("topic")}
    like_training = [UnlabelledArticle(item["id"], item["text"], "2024-01-15") for item in items]
    one_topic = [
        UnlabelledArticle(item["id"], item["text"], "2024-02-15") for item in items if item["topic"] == "sports"
    ]
    windows = monitor(small_model, like_training + one_topic * 3, mix)
    assert [window.window for window in windows] == ["2024-01", "2024-02"]
    january, february = windows
    assert not january.alarm and february.alarm and february.psi > ALARM_PSI > january.psi
    assert 0 < january.topic_confidence <= 1 and 0 <= january.unseen_word_share < 1


@pytest.mark.slow  # end to end through the CLI and a tracking store
def test_monitor_through_the_cli_writes_its_report_and_one_step_per_window(trained_store, tmp_path, capsys):
    _, uri, _ = trained_store
    rows = [
        {"id": item["id"], "text": item["text"], "date": f"2024-0{1 + i % 3}-10"}
        for i, item in enumerate(corpus_slice(4))
    ]
    data = write_jsonl(tmp_path / "news.jsonl", rows)
    output = tmp_path / "watch"
    code = main(
        [
            "monitor",
            "--model",
            "models:/test-model@champion",
            "--data",
            str(data),
            "--output",
            str(output),
            "--tracking-uri",
            uri,
            "--quiet",
        ]
    )
    assert code == 0
    assert "3 windows" in capsys.readouterr().out
    windows = json.loads((output / "windows.json").read_text())
    assert [window["window"] for window in windows] == ["2024-01", "2024-02", "2024-03"]
    assert {"monitor.md", "signals.png"} <= {path.name for path in output.iterdir()}
    client = MlflowClient(uri)
    [run] = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`newsclf.kind` = 'monitor'"
    )
    assert [m.step for m in client.get_metric_history(run.info.run_id, "monitor/psi")] == [0, 1, 2]
