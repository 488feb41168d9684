import pytest

from newsclf.features.tfidf import NgramConfig
from newsclf.train.config import (
    TOPICS,
    ConfigError,
    ExperimentConfig,
    config_from_dict,
    flatten,
    load_config,
    parse_override,
)


def test_default_experiment_loads_with_every_section():
    config = load_config("default")
    assert isinstance(config, ExperimentConfig)
    assert config.name == "default"
    assert config.data.topic_labels == TOPICS
    assert config.features.word.ngram_range == (1, 2)
    assert config.features.char == NgramConfig(analyzer="char_wb", ngram_range=(2, 5), min_df=2, max_df=1.0)


def test_experiment_by_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[topic]\nC = 3\n")
    config = load_config(path)
    assert config.name == "mine" and config.topic.C == 3.0 and isinstance(config.topic.C, float)


@pytest.mark.parametrize(
    "toml, message",
    [
        ("[topic]\nCC = 1\n", "unknown key 'topic.CC'"),
        ("[features.word]\nngram = [1, 2]\n", "unknown key 'features.word.ngram'"),
        ("colour = 'red'\n", "unknown key 'colour'"),
        ("[topic]\nC = 'high'\n", "topic.C must be a number"),
        ("[topic]\nC = -1\n", "topic: C must be > 0"),
        ("[topic]\nkind = 'forest'\n", "kind must be one of"),
        ("[tone]\nkind = 'sgd_logistic'\nalpha = 0\n", "tone: alpha must be > 0"),
        ("[features.word]\nngram_range = [1, 2, 3]\n", "features.word.ngram_range must be a list of 2"),
        ("[features.word]\nenabled = 1\n", "features.word.enabled must be true or false"),
        ("[split]\ntest = 0.7\n", "test must be a fraction"),
        ("[data]\ntone_labels = ['military']\n", "tone_labels must list at least two"),
        ("topic = 3\n", "topic must be a table"),
        ("[topic\n", "not valid TOML"),
        ("[data.topic_map]\ntech = 'technology'\n", r"topic_map maps to \['technology'\]"),
        ("[data]\ntopic_map = 3\n", "data.topic_map must be a table"),
        ("[data]\nformat = 'xml'\n", "format must be one of"),
        ("[split]\nmode = 'temporal'\ntrain_until = '2016'\n", "train_until must be an ISO date"),
        (
            "[split]\nmode = 'temporal'\ntrain_until = '2017-01-01'\nvalidation_until = '2016-01-01'\n",
            "validation_until must come after",
        ),
        ("[split]\nmode = 'random'\n", "mode must be one of"),
        ("[dedup]\nnear_threshold = 0\n", "near_threshold must be"),
        ('[search.grid]\n"topic.CC" = [1]\n', r"\(search.grid\): unknown key 'topic.CC'"),
        ('[search.grid]\n"topic.C" = [-1]\n', r"\(search.grid\): topic: C must be > 0"),
        ('[search.grid]\n"topic.C" = []\n', "needs at least one value"),
        ('[search.grid]\n"tracking.experiment" = ["x"]\n', "cannot be searched"),
        ('[search.grid]\n"n_jobs" = [1, 2]\n', "cannot be searched"),
        (
            '[topic]\nkind = "sgd_logistic"\n[search.grid]\n"topic.C" = [1, 10]\n',
            "search.grid key 'topic.C' changes nothing: classifier kind sgd_logistic reads alpha",
        ),
        ("n_jobs = 0\n", "top level: n_jobs must be >= 1, or -1 for every core"),
        ("n_jobs = -2\n", "n_jobs must be >= 1, or -1"),
        ("n_jobs = 'all'\n", "n_jobs must be an integer"),
    ],
)
def test_bad_files_name_the_key(tmp_path, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_overrides_change_single_values():
    config = load_config(
        "default",
        dict(map(parse_override, ["topic.C=0.5", "features.word.ngram_range=[1,3]", "data.source=/x.jsonl"])),
    )
    assert config.topic.C == 0.5
    assert config.features.word.ngram_range == (1, 3)
    assert config.data.source == "/x.jsonl"


def test_override_of_unknown_key_is_refused():
    with pytest.raises(ConfigError, match="unknown key 'topic.learning_rate'"):
        load_config("default", {"topic.learning_rate": 1})


def test_malformed_override_is_refused():
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("topic.C")


def test_unknown_experiment_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"experiment 'nope' not found.*'default'"):
        load_config("nope")


def test_flatten_gives_dotted_keys_and_plain_values():
    flat = flatten(config_from_dict({"name": "x"}))
    assert flat["features.char.ngram_range"] == [2, 5]
    assert flat["topic.kind"] == "logistic_regression"
    assert flat["name"] == "x"
    assert all(not isinstance(value, (tuple, dict)) for value in flat.values())


def test_label_maps_load_and_flatten():
    config = config_from_dict(
        {"name": "x", "data": {"topic_map": {"tech": "science_technology"}, "topic_drop": ["World"]}}
    )
    assert config.data.topic_map == {"tech": "science_technology"} and config.data.topic_drop == ("World",)
    assert flatten(config)["data.topic_map.tech"] == "science_technology"


def test_only_the_settings_training_reads_are_logged():
    from newsclf.train.config import read_settings

    in_memory = read_settings(load_config("default"))
    assert {"topic.C", "topic.kind", "fit.mode", "data.source"} <= set(in_memory)
    assert "topic.alpha" not in in_memory and not any(key.startswith("fit.epochs") for key in in_memory)
    streamed = read_settings(load_config("streaming"))
    assert {"topic.alpha", "fit.epochs"} <= set(streamed) and "topic.C" not in streamed
