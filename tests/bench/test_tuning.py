"""Staged tuning on a slice of the shipped corpus, into a throwaway MLflow store."""

import statistics
import tomllib

import pytest
from mlflow.tracking import MlflowClient

from bench.__main__ import main
from bench.tuning import (
    TUNING_EXPERIMENT,
    StagedResult,
    Trial,
    _CachedFeatureScorer,
    load_plan,
    recommended_toml,
    staged_tuning,
    tuning_page,
    tuning_table,
)
from newsclf.train.config import ConfigError, config_from_dict
from newsclf.train.data.articles import Articles
from newsclf.train.fit.rolling import Ranked, choose, rolling_folds
from tests.helpers import corpus_slice


def _articles(rows):
    """The rows as articles dated 2014-2017 in turn, so every rolling-origin year holds every topic."""
    return Articles(
        [r["id"] for r in rows],
        [r["text"] for r in rows],
        [r["topic"] for r in rows],
        [r.get("tone") for r in rows],
        [f"{2014 + i % 4}-06-01" for i in range(len(rows))],
    )


@pytest.fixture
def plan_file(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text(
        '[features.char]\nngram_range = [3, 4]\n[topic]\nkind = "sgd_logistic"\n[tone]\nkind = "sgd_logistic"\n'
    )
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'base = "{base}"\n'
        '[[stage]]\nname = "alpha"\n"topic.alpha" = [1e-5, 1e-3]\n'
        '[[stage]]\nname = "words"\n"features.word.ngram_range" = [[1, 1], [1, 2]]\n"tone.alpha" = [1e-4]\n'
    )
    return plan


@pytest.mark.parametrize(
    "text, message",
    [
        ('base = "default"\n', "no \\[\\[stage\\]\\] tables"),
        ('colour = 1\n[[stage]]\n"topic.C" = [1.0]\n', "unknown key 'colour'"),
        ('[[stage]]\nname = "x"\n"topic.C" = 1.0\n', "x: every key must map to a non-empty list"),
        ('[[stage]]\n"topic.C" = []\n', "stage 1: every key must map to a non-empty list"),
        ("[[stage]\n", "not valid TOML"),
        ('seeds = [1, 1]\n[[stage]]\n"topic.C" = [1.0]\n', "seeds must be a list of distinct integers"),
        ('seeds = 3\n[[stage]]\n"topic.C" = [1.0]\n', "seeds must be a list of distinct integers"),
        ('origins = []\n[[stage]]\n"topic.C" = [1.0]\n', "origins must be a non-empty list of increasing ISO dates"),
        ('origins = ["2016-12-31", "2015-12-31"]\n[[stage]]\n"topic.C" = [1.0]\n', "increasing ISO dates"),
        ('origins = ["2016-13-01"]\n[[stage]]\n"topic.C" = [1.0]\n', "increasing ISO dates"),
    ],
)
def test_bad_plans_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "plan.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_plan(path)


def test_missing_plan_names_the_flag(tmp_path):
    with pytest.raises(ConfigError, match="tuning plan not found: .*; pass --plan"):
        load_plan(tmp_path / "none.toml")


@pytest.mark.slow  # staged tuning with nested MLflow runs: the slow suite
def test_stages_refine_the_kept_candidate_over_rolling_folds_and_every_candidate_is_a_nested_run(
    plan_file, tracking_uri
):
    articles = _articles(corpus_slice(10))
    plan = load_plan(plan_file)
    assert plan.origins == ("2014-12-31", "2015-12-31", "2016-12-31")
    result = staged_tuning(plan, articles, tracking_uri)

    assert [trial.stage for trial in result.trials] == ["alpha", "alpha", "words", "words"]
    assert all(len(trial.ranked.scores) == 3 and trial.ranked.width > 0 for trial in result.trials)
    first_stage = result.trials[:2]
    kept = first_stage[choose([trial.ranked for trial in first_stage])]
    # The second stage starts from the first stage's kept candidate.
    assert all(trial.overrides["topic.alpha"] == kept.overrides["topic.alpha"] for trial in result.trials[2:])
    assert result.best is result.trials[choose([trial.ranked for trial in result.trials])]
    assert result.top.score == max(trial.score for trial in result.trials)
    for trial in result.trials:
        assert trial.scores["mean_macro_f1"] == pytest.approx(statistics.fmean(trial.ranked.scores))
        assert trial.scores["mean_macro_f1_spread"] == pytest.approx(statistics.stdev(trial.ranked.scores))
        assert 0 <= trial.scores["topic_macro_f1"] <= 1 and trial.scores["fit_seconds"] > 0

    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(TUNING_EXPERIMENT).experiment_id])
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4 and {run.data.tags["stage"] for run in children} == {"alpha", "words"}
    assert parent.data.metrics["best_mean_macro_f1"] == pytest.approx(result.best.score)
    assert all("fold_2015-12-31_mean_macro_f1" in run.data.metrics for run in children)

    # The recommended TOML is a valid experiment that rebuilds the kept candidate.
    rebuilt = config_from_dict({"name": "x", **tomllib.loads(recommended_toml(result.best.config))})
    assert (rebuilt.features, rebuilt.topic, rebuilt.tone) == (
        result.best.config.features,
        result.best.config.topic,
        result.best.config.tone,
    )
    table = tuning_table(result)
    assert table.count("\n") == 2 + 4 and table.count("**kept**") == 1
    assert table in tuning_page(result, plan, "python -m bench tune") and recommended_toml(
        result.best.config
    ) in tuning_page(result, plan, "x")


def test_a_narrower_candidate_level_within_the_spread_is_kept_over_a_higher_mean():
    def trial(scores, width):
        return Trial("s", {}, None, {}, Ranked(scores, width))

    wide = trial((0.80, 0.90, 0.85), 1000)
    # Behind by 0.01 on average but ahead in one year: level within the spread of the gaps, and narrower.
    narrow = trial((0.81, 0.87, 0.84), 10)
    # Behind every year by the same margin: not level, however narrow.
    behind = trial((0.78, 0.88, 0.83), 1)
    result = StagedResult([wide, narrow, behind])
    assert result.top is wide and result.best is narrow


def test_with_seeds_every_fold_score_is_the_mean_over_the_seeds(plan_file, tracking_uri):
    articles = _articles(corpus_slice(10))
    plan_file.write_text('seeds = [1, 2, 3]\norigins = ["2016-12-31"]\n' + plan_file.read_text())
    plan = load_plan(plan_file)
    assert plan.seeds == (1, 2, 3) and plan.origins == ("2016-12-31",)
    result = staged_tuning(plan, articles, tracking_uri)
    first = result.trials[0]
    scorer = _CachedFeatureScorer(rolling_folds(articles, plan.origins))
    alone = [scorer.score(first.config, (seed,))[0] for seed in (1, 2, 3)]
    assert first.scores["topic_macro_f1"] == pytest.approx(sum(run["topic_macro_f1"] for run in alone) / 3)
    assert first.scores["mean_macro_f1_seed_sd"] >= 0 and all(run["mean_macro_f1_seed_sd"] == 0 for run in alone)
    assert "mean over the SGD seeds [1, 2, 3]" in tuning_page(result, plan, "python -m bench tune")


def test_tune_command_refuses_missing_data_in_one_line(plan_file, tmp_path, capsys):
    assert (
        main(["tune", "--data", str(tmp_path / "none"), "--plan", str(plan_file), "--output", str(tmp_path / "t.md")])
        == 2
    )
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("bench: error: real data not found:") and not (tmp_path / "t.md").exists()


@pytest.mark.parametrize(
    "kind, written, left_out",
    [("logistic_regression", "C", "alpha"), ("linear_svc", "C", "alpha"), ("sgd_logistic", "alpha", "C")],
)
def test_recommended_toml_writes_only_the_settings_the_kind_reads(kind, written, left_out):
    from newsclf.train.classifiers import KINDS

    config = config_from_dict({"name": "x", "topic": {"kind": kind}, "tone": {"kind": kind}})
    sections = tomllib.loads(recommended_toml(config))
    for task in ("topic", "tone"):
        assert set(sections[task]) == {"kind", *KINDS[kind].hyperparameters}
        assert written in sections[task] and left_out not in sections[task]
