"""Staged tuning on a slice of the shipped corpus, into a throwaway MLflow store."""

import tomllib

import pytest
from mlflow.tracking import MlflowClient

from bench.__main__ import main
from bench.tuning import (
    TUNING_EXPERIMENT,
    _CachedFeatureScorer,
    load_plan,
    recommended_toml,
    staged_tuning,
    tuning_page,
    tuning_table,
)
from tests.helpers import corpus_slice
from train.config import ConfigError, config_from_dict
from train.data import Articles


def _articles(rows):
    return Articles(
        [r["id"] for r in rows],
        [r["text"] for r in rows],
        [r["topic"] for r in rows],
        [r.get("tone") for r in rows],
        [None] * len(rows),
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


def test_stages_refine_the_best_so_far_and_every_candidate_is_a_nested_run(plan_file, tracking_uri):
    rows = corpus_slice(10)
    train = _articles([row for i, row in enumerate(rows) if i % 10 < 7])
    validation = _articles([row for i, row in enumerate(rows) if i % 10 >= 7])
    plan = load_plan(plan_file)
    result = staged_tuning(plan, train, validation, tracking_uri)

    assert [trial.stage for trial in result.trials] == ["alpha", "alpha", "words", "words"]
    winner = result.trials[0] if result.trials[0].score >= result.trials[1].score else result.trials[1]
    # The second stage starts from the first stage's winner.
    assert all(trial.overrides["topic.alpha"] == winner.overrides["topic.alpha"] for trial in result.trials[2:])
    assert result.best.score == max(trial.score for trial in result.trials)
    assert all(0 <= trial.scores["topic_macro_f1"] <= 1 and trial.scores["fit_seconds"] > 0 for trial in result.trials)

    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(TUNING_EXPERIMENT).experiment_id])
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4 and {run.data.tags["stage"] for run in children} == {"alpha", "words"}
    assert parent.data.metrics["best_mean_macro_f1"] == pytest.approx(result.best.score)

    # The recommended TOML is a valid experiment that rebuilds the best candidate.
    rebuilt = config_from_dict({"name": "x", **tomllib.loads(recommended_toml(result.best.config))})
    assert (rebuilt.features, rebuilt.topic, rebuilt.tone) == (
        result.best.config.features,
        result.best.config.topic,
        result.best.config.tone,
    )
    table = tuning_table(result)
    assert table.count("\n") == 2 + 4 and table.count("**best**") == 1
    assert table in tuning_page(result, plan, "python -m bench tune") and recommended_toml(
        result.best.config
    ) in tuning_page(result, plan, "x")


def test_with_seeds_every_score_is_the_mean_over_the_seeds(plan_file, tracking_uri):
    rows = corpus_slice(10)
    train = _articles([row for i, row in enumerate(rows) if i % 10 < 7])
    validation = _articles([row for i, row in enumerate(rows) if i % 10 >= 7])
    plan_file.write_text("seeds = [1, 2, 3]\n" + plan_file.read_text())
    plan = load_plan(plan_file)
    assert plan.seeds == (1, 2, 3)
    result = staged_tuning(plan, train, validation, tracking_uri)
    first = result.trials[0]
    scorer = _CachedFeatureScorer(train, validation)
    alone = [scorer.score(first.config, (seed,)) for seed in (1, 2, 3)]
    assert first.scores["topic_macro_f1"] == pytest.approx(sum(run["topic_macro_f1"] for run in alone) / 3)
    assert first.scores["mean_macro_f1_sd"] >= 0 and all(run["mean_macro_f1_sd"] == 0 for run in alone)
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
    from train.classifiers import KINDS

    config = config_from_dict({"name": "x", "topic": {"kind": kind}, "tone": {"kind": kind}})
    sections = tomllib.loads(recommended_toml(config))
    for task in ("topic", "tone"):
        assert set(sections[task]) == {"kind", *KINDS[kind].hyperparameters}
        assert written in sections[task] and left_out not in sections[task]
