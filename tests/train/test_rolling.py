"""Rolling-origin validation: forward folds over dated articles, and the choice among candidates."""

import pytest

from newsclf.train.config import ConfigError, config_from_dict
from newsclf.train.data.articles import Articles, DataError
from newsclf.train.fit.rolling import Ranked, choose, rolling_folds
from tests.helpers import new_store, small_config, write_jsonl


def _dated(dates):
    n = len(dates)
    return Articles([f"a{i}" for i in range(n)], [f"text {i}" for i in range(n)], ["t"] * n, [None] * n, list(dates))


def test_each_fold_fits_up_to_its_origin_and_scores_up_to_the_next():
    articles = _dated(["2016-03-01", "2014-05-01", "2015-12-31", "2017-01-01", "2015-01-01", "2014-12-31"])
    folds = rolling_folds(articles, ["2014-12-31", "2015-12-31", "2016-12-31"])
    assert [fold.origin for fold in folds] == ["2014-12-31", "2015-12-31", "2016-12-31"]
    assert [sorted(fold.fit.dates) for fold in folds] == [
        ["2014-05-01", "2014-12-31"],
        ["2014-05-01", "2014-12-31", "2015-01-01", "2015-12-31"],
        ["2014-05-01", "2014-12-31", "2015-01-01", "2015-12-31", "2016-03-01"],
    ]
    assert [sorted(fold.scored.dates) for fold in folds] == [
        ["2015-01-01", "2015-12-31"],
        ["2016-03-01"],
        ["2017-01-01"],
    ]


@pytest.mark.parametrize(
    "dates, origins, message",
    [
        (["2015-01-01", None], ["2015-06-30"], r"article a1 has date None, not an ISO date"),
        (["2015-01-01", "2016-01-01"], ["2014-12-31"], r"fold at 2014-12-31 has 0 articles to fit on and 2"),
        (["2015-01-01", "2016-01-01"], ["2016-06-30"], r"has 2 articles to fit on and 0 to score"),
    ],
)
def test_folds_that_cannot_be_made_are_one_line_errors(dates, origins, message):
    with pytest.raises(DataError, match=message):
        rolling_folds(_dated(dates), origins)


def test_the_narrowest_candidate_level_with_the_best_fold_by_fold_is_kept():
    best = Ranked((0.80, 0.84, 0.82), width=900)
    level = Ranked((0.81, 0.82, 0.815), width=100)  # gaps -0.01, 0.02, 0.005: mean 0.005 <= their spread
    assert choose([best, level]) == 1
    # CEP 2015-2017 (experiments/cep-rolling.toml): word-only loses every year by 0.012-0.019. The
    # years' own spread (0.026) is larger than that, but the paired gaps' (0.004) is not: word+char stays.
    word_char, word_only = Ranked((0.8146, 0.8647, 0.8493), 1262712), Ranked((0.8012, 0.8523, 0.8301), 1083787)
    assert word_only.mean + word_only.spread > word_char.mean
    assert choose([word_char, word_only]) == 0
    assert best.mean == pytest.approx(0.82) and best.spread == pytest.approx(0.02)
    assert Ranked((0.5,), 1).spread == 0.0
    # One fold: only an exact tie counts as level.
    assert choose([Ranked((0.9,), 9), Ranked((0.9,), 1), Ranked((0.8,), 0)]) == 1


@pytest.mark.parametrize(
    "search, message",
    [
        ({"grid": {"topic.C": [1, 3]}, "origins": ["2015-13-01"]}, "origins must be ISO dates"),
        ({"grid": {"topic.C": [1, 3]}, "origins": ["2016-12-31", "2015-12-31"]}, "increasing order"),
        ({"origins": ["2015-12-31"]}, "origins rank the candidates of search.grid"),
    ],
)
def test_bad_origins_are_config_errors(search, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"name": "x", "search": search})


@pytest.mark.slow
def test_training_search_ranks_candidates_over_rolling_origin_folds(tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    from newsclf.train.training import run as train
    from tests.helpers import read_corpus

    rows = [row for row in read_corpus() if row["date"] < "2019"]
    config = small_config(
        write_jsonl(tmp_path / "dated.jsonl", rows),
        split={"mode": "temporal", "train_until": "2016-12-31", "validation_until": "2017-12-31"},
        search={"grid": {"topic.C": [1.0, 20.0]}, "origins": ["2014-12-31", "2015-12-31", "2016-12-31"]},
        calibration={"methods": ["none"]},
    )
    uri = new_store(tmp_path / "mlflow.db")
    result = train(config, uri)
    client = MlflowClient(uri)
    run = client.get_run(result.run_id)
    children = mlflow.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'", output_format="list"
    )
    assert len(children) == 2
    for child in children:
        folds = {key: value for key, value in child.data.metrics.items() if key.startswith("fold/")}
        assert set(folds) == {"fold/2014-12-31/score", "fold/2015-12-31/score", "fold/2016-12-31/score"}
        assert child.data.metrics["validation/score"] == pytest.approx(sum(folds.values()) / 3)
        assert child.data.metrics["features"] > 0
    assert run.data.params["search.best.topic.C"] in ("1.0", "20.0")
    assert "search/best_validation_score_spread" in run.data.metrics
