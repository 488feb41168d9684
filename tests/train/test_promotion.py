"""Promotion: a compare-and-set of the champion alias, judged on articles neither model trained on."""

from types import SimpleNamespace

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from newsclf.train.evaluation.comparison import NO_DIFFERENCE
from newsclf.train.tracking import promotion
from newsclf.train.tracking.registry import COMPLETE_TAG, is_complete
from newsclf.train.training import run as train
from tests.helpers import corpus_slice, small_config, train_into_new_store, write_jsonl


@pytest.fixture(scope="module")
def champion_store(trained_store):
    """A store whose champion is version 1 of test-model, trained on 10 articles per topic; the
    tests add versions that must not become champion."""
    config, uri, first = trained_store
    assert first.promoted
    mlflow.set_tracking_uri(uri)
    return config, uri


def _champion_version(uri) -> str:
    return str(MlflowClient(uri).get_model_version_by_alias("test-model", "champion").version)


@pytest.mark.slow  # a full training (or more) into a store: the slow suite
def test_a_champion_crowned_meanwhile_is_the_one_compared_against(champion_store, monkeypatch):
    config, uri = champion_store
    real = promotion.current_champion
    calls = []

    def stale_first_read(*args):
        # The first read, before the lock, misses version 1 as a concurrent training would.
        calls.append(args)
        return None if len(calls) == 1 else real(*args)

    monkeypatch.setattr(promotion, "current_champion", stale_first_read)
    second = train(config, uri)
    assert len(calls) == 2 and not second.promoted and _champion_version(uri) == "1"
    assert second.promotion_reason.startswith(f"{NO_DIFFERENCE} from version 1")


@pytest.mark.slow  # a full training (or more) into a store: the slow suite
def test_a_candidate_that_trained_on_the_champions_validation_articles_is_not_promoted(champion_store):
    config, uri = champion_store
    second = train(small_config(config.data.source, seed=5), uri)
    assert not second.promoted and _champion_version(uri) == "1"
    assert "the candidate trained on" in second.promotion_reason
    assert "reference articles (validation articles of version 1)" in second.promotion_reason
    version = MlflowClient(uri).get_model_version("test-model", second.version)
    assert version.tags["promotion_verdict"] == promotion.NOT_COMPARED
    assert version.tags["promotion_reason"] == second.promotion_reason


@pytest.mark.slow
def test_reference_data_judges_both_models_on_articles_neither_trained_on(tmp_path):
    config, uri, _ = train_into_new_store(tmp_path)
    held_out = [item for item in corpus_slice(16) if item not in corpus_slice(10)]
    reference = write_jsonl(tmp_path / "reference.jsonl", held_out)
    second = train(small_config(config.data.source, seed=5, tracking={"reference_data": str(reference)}), uri)
    assert f"{len(held_out)} articles of tracking.reference_data {reference}" in second.promotion_reason
    assert MlflowClient(uri).get_run(second.run_id).data.metrics["promotion/candidate_score"] > 0


def test_only_complete_versions_count_as_champion():
    assert is_complete(SimpleNamespace(tags={COMPLETE_TAG: "true"}))
    assert not is_complete(SimpleNamespace(tags={COMPLETE_TAG: "false", "validation_score": "0.9"}))
    # Versions registered before the tag existed are complete when they carry their validation score.
    assert is_complete(SimpleNamespace(tags={"validation_score": "0.9"}))
    assert not is_complete(SimpleNamespace(tags={}))


@pytest.mark.slow
def test_after_new_labels_the_gate_judges_on_the_newest_window_and_the_old_reference(tmp_path):
    config, uri, _ = train_into_new_store(tmp_path)
    fresh = [item for item in corpus_slice(22) if item not in corpus_slice(10)]
    added = write_jsonl(tmp_path / "added.jsonl", fresh[::2])
    recent = write_jsonl(tmp_path / "recent.jsonl", fresh[1::2])
    gated = {"tracking": {"recent_data": str(recent)}}
    second = train(small_config(config.data.source, data={"added_labels": [str(added)]}, **gated), uri)
    on_recent, on_reference = second.promotion_reason.split("; ")
    assert f"on {len(fresh[1::2])} recent articles of tracking.recent_data {recent} (score" in on_recent
    assert "validation articles of version 1" in on_reference
    metrics = MlflowClient(uri).get_run(second.run_id).data.metrics
    assert {"promotion_recent/candidate_score", "promotion/candidate_score"} <= set(metrics)
    better_there = metrics["promotion_recent/p_value"] < 0.05 and metrics["promotion_recent/difference"] > 0
    worse_before = metrics["promotion/p_value"] < 0.05 and metrics["promotion/difference"] < 0
    assert second.promoted == (better_there and not worse_before)
    version = MlflowClient(uri).get_model_version("test-model", second.version)
    assert version.tags["promotion_reason"] == second.promotion_reason
    # The newest window among the added labels: the gate cannot judge on what the candidate learnt.
    both = {"added_labels": [str(added), str(recent)]}
    third = train(small_config(config.data.source, data=both, **gated), uri)
    assert not third.promoted and "keep the newest labelled window out of --add-labels" in third.promotion_reason
