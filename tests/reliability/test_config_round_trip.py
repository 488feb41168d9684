"""A run's config is rebuilt from its MLflow params for every split mode, so promotion and
``newsclf evaluate`` find the data and split a model trained on. Before, a temporal split's dates came
back from the params as TOML dates and were refused: temporal experiments were never promoted, and
``evaluate`` without ``--data`` scored a CEP model on the shipped toy corpus."""

import dataclasses
import datetime

import pytest

from newsclf.train.config import flatten, load_config, with_overrides
from newsclf.train.data.articles import DataError
from newsclf.train.jobs.evaluate import _articles
from newsclf.train.paths import experiments_dir
from newsclf.train.tracking.runs import config_from_params

SHIPPED = sorted(path.stem for path in experiments_dir().glob("*.toml"))


@pytest.mark.parametrize("experiment", SHIPPED)
def test_every_shipped_experiment_comes_back_from_its_params(experiment):
    config = load_config(experiment)
    # As MLflow stores them: every value a string.
    params = {key: str(value) for key, value in flatten(config).items()}
    rebuilt = config_from_params(params, f"run of {experiment}")
    assert rebuilt is not None
    for part in ("data", "split", "dedup", "seed"):
        assert getattr(rebuilt, part) == getattr(config, part), part


def test_a_date_may_be_written_as_a_toml_date_or_an_unquoted_set(tmp_path):
    path = tmp_path / "dated.toml"
    path.write_text('[split]\nmode = "temporal"\ntrain_until = 2016-12-31\nvalidation_until = "2017-12-31"\n')
    config = load_config(path)
    assert config.split.train_until == "2016-12-31"
    moved = with_overrides(config, {"split.validation_until": datetime.date(2018, 6, 30)})
    assert dataclasses.astuple(moved.split)[3:5] == ("2016-12-31", "2018-06-30")


def test_evaluate_without_data_refuses_a_model_whose_training_settings_cannot_be_read():
    with pytest.raises(
        DataError, match="settings of run abc123, which trained this model, cannot be read back.*pass --data"
    ):
        _articles(None, None, client=None, run_id="abc123", overrides={})
