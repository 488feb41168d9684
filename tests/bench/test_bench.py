"""The benchmark's helpers on tiny in-memory data, and the whole bench on a tiny fake data folder."""

import json
import random
import time
from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from bench.__main__ import main
from bench.datasets import cep_development_split, deduplicate, require_data
from bench.measure import label_scores, peak_rss_increase
from bench.page import flat_metrics, results_markdown
from bench.peers import Ours, workers
from bench.suite import fasttext_check, fold_scores, run_benchmark
from newsclf.train.config import TOPICS, config_from_dict
from newsclf.train.data.articles import Articles, DataError
from tests.helpers import as_articles, corpus_slice, new_store, write_jsonl


def _articles(texts, topics=None, dates=None, tones=None):
    n = len(texts)
    return Articles(
        [f"a{i}" for i in range(n)],
        list(texts),
        list(topics or ["sports"] * n),
        list(tones or [None] * n),
        list(dates or [None] * n),
    )


def test_deduplicate_ignores_whitespace_case_and_punctuation_and_keeps_the_first():
    articles = _articles(
        [
            "Rates held at 4.75%\n\nThe bank said.",
            "rates  held at 4.75 %\nthe bank said",
            "Rates cut",
            "Rates held at 4.75% The bank sighed.",
        ],
        topics=["business", "politics", "business", "business"],
    )
    kept, removed = deduplicate(articles)
    assert removed == 1
    assert kept.ids == ["a0", "a2", "a3"] and kept.topics == ["business", "business", "business"]


def test_the_cep_development_split_fits_on_2010_2016_and_validates_on_2017():
    articles = _articles(["a", "b", "c", "d"], dates=["2015-03-01", "2016-12-31", "2017-01-01", "2017-12-31"])
    train, validation = cep_development_split(articles)
    assert train.texts == ["a", "b"] and validation.texts == ["c", "d"]
    with pytest.raises(
        DataError, match="CEP: a temporal split at 2016-12-31 / 2017-12-31 leaves 2 train and 0 validation"
    ):
        cep_development_split(articles.subset([0, 1]))


def test_fold_scores_score_every_fold_on_the_same_folds():
    texts = (
        [f"goal match team {i}" for i in range(10)]
        + [f"court judge trial {i}" for i in range(10)]
        + [f"vote party poll {i}" for i in range(5)]
    )
    labels = ["sports"] * 10 + ["law"] * 10 + ["politics"] * 5
    svc = fold_scores(lambda: make_pipeline(TfidfVectorizer(), LinearSVC()), texts, labels, folds=5, seed=1)
    majority = fold_scores(lambda: DummyClassifier(strategy="most_frequent"), texts, labels, folds=5, seed=1)
    assert svc == [{"accuracy": 1.0, "macro_f1": 1.0}] * 5
    # Stratified folds of 2 sports, 2 law, 1 politics: the majority class is right 2 times in 5.
    assert [fold["accuracy"] for fold in majority] == pytest.approx([0.4] * 5)
    assert fold_scores(lambda: DummyClassifier(strategy="most_frequent"), texts, labels, folds=5, seed=1) == majority


def test_require_data_names_the_missing_file(tmp_path):
    (tmp_path / "cep").mkdir()
    (tmp_path / "cep" / "cep-2010-2017.jsonl").write_text("")
    with pytest.raises(DataError, match=r"real data not found: .*agnews/agnews-test.jsonl; pass --data"):
        require_data(tmp_path)


def test_bench_run_refuses_a_missing_folder_in_one_line_before_anything_runs(tmp_path, capsys):
    argv = ["run", "--data", "/no/such/dir", "--output", str(tmp_path / "out")]
    assert main(argv + ["--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("bench: error: real data not found: /no/such/dir/cep/")
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.db").exists()


def test_label_scores_count_a_fitted_label_neither_true_nor_predicted_as_a_miss():
    scores = label_scores(["a", "b"], ["a", "b"], known=["a", "b", "c"])
    assert scores == {"macro_f1": pytest.approx(2 / 3), "accuracy": 1.0}
    assert label_scores(["a", "d"], ["a", "a"], known=["a"])["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_ours_is_fitted_as_make_train_fits_it_with_the_tone_applies_model(tmp_path):
    config = config_from_dict({"name": "tiny", "features": {"char": {"ngram_range": [3, 4]}}})
    fitted = Ours(config).fit(as_articles(corpus_slice(4)))
    assert fitted.model.tone_applies is not None
    assert fitted.models == fitted.model.pipelines and set(fitted.seconds) == {"topic", "tone"}
    assert all(value > 0 for value in fitted.seconds.values())
    fitted.save(tmp_path)
    assert fitted.load(tmp_path).tone_applies is not None


def test_peak_rss_increase_sees_a_large_allocation():
    import numpy as np

    def hold_40_mib():
        block = np.ones(40 * 2**20 // 8)
        time.sleep(0.1)  # a fit holds its memory for seconds; the sampler needs a few ticks
        return float(block.sum())

    result, peak = peak_rss_increase(hold_40_mib)
    assert result == 40 * 2**20 // 8
    assert 35 * 2**20 <= peak < 200 * 2**20


@pytest.mark.slow
def test_peak_rss_increase_counts_fit_workers_even_when_an_earlier_fit_started_them():
    from newsclf.features.tfidf import FeatureConfig
    from newsclf.train.config import ClassifierConfig
    from newsclf.train.fit.pipeline import build_pipeline, fit_pipeline

    rows = corpus_slice(4)
    texts, topics = [row["text"] for row in rows], [row["topic"] for row in rows]

    def fit():
        return fit_pipeline(
            build_pipeline(FeatureConfig(), ClassifierConfig(kind="sgd_logistic"), 0), texts, topics, n_jobs=2
        )

    fit()  # leaves joblib's workers running
    _, peak = peak_rss_increase(fit)
    assert peak >= 60 * 2**20  # two fresh Python processes with scikit-learn imported


def test_workers_are_a_count_even_for_every_core():
    from joblib import cpu_count

    from newsclf.train.config import load_config

    assert workers(load_config("default", {"n_jobs": -1})) == cpu_count()
    assert workers(load_config("default", {"n_jobs": 2})) == 2


def test_peak_rss_increase_counts_worker_processes():
    import subprocess
    import sys

    def worker_holds_80_mib():
        code = "import time; block = bytearray(80 * 2**20); time.sleep(0.3)"
        subprocess.run([sys.executable, "-c", code], check=True)

    _, peak = peak_rss_increase(worker_holds_80_mib)
    assert peak >= 75 * 2**20


# --- the whole benchmark on a tiny fake data folder --------------------------------------------

_WORDS = {
    "armed_conflicts_attacks": "troops shelled rebels airstrike militants killed",
    "international_relations": "ambassador summit treaty envoys talks ministers",
    "politics_elections": "election parliament vote party candidate coalition",
    "law_crime": "court judge trial police arrested charged",
    "disasters_accidents": "earthquake flood crash fire storm victims",
    "business_economy": "shares bank profit market inflation company",
    "health_environment": "virus vaccine hospital pollution climate disease",
    "sports": "match goal championship league team coach",
    "arts_culture": "film festival museum novel award singer",
    "science_technology": "satellite rocket scientists software robot research",
}


def _sentence(rng, label, words=_WORDS):
    return " ".join(rng.choice(words[label].split()) for _ in range(8)).capitalize() + "."


def _fake_real_data(root: Path) -> Path:
    rng = random.Random(3)
    cep = []
    for year in range(2010, 2018):
        for topic in TOPICS:
            for n in range(6):
                tone = {"armed_conflicts_attacks": "military", "international_relations": "diplomatic"}.get(topic)
                cep.append(
                    {
                        "id": f"cep-{year}-{topic}-{n}",
                        "text": _sentence(rng, topic),
                        "label": topic,
                        "tone": tone,
                        "date": f"{year}-05-0{n + 1}",
                    }
                )
    write_jsonl(_mkdir(root / "cep") / "cep-2010-2017.jsonl", cep)
    ag = {
        "World": "armed_conflicts_attacks",
        "Sports": "sports",
        "Business": "business_economy",
        "Sci/Tech": "science_technology",
    }
    write_jsonl(
        _mkdir(root / "agnews") / "agnews-test.jsonl",
        [
            {"id": f"ag-{label}-{n}", "title": _sentence(rng, topic), "text": _sentence(rng, topic), "label": label}
            for label, topic in ag.items()
            for n in range(10)
        ],
    )
    bbc_map = {
        "business": "business_economy",
        "entertainment": "arts_culture",
        "politics": "politics_elections",
        "sport": "sports",
        "tech": "science_technology",
    }
    bbc = [
        {"id": f"bbc-{label}-{n}", "title": "Headline", "text": _sentence(rng, topic), "label": label}
        for label, topic in bbc_map.items()
        for n in range(10)
    ]
    bbc.append(dict(bbc[0], id="bbc-copy", text=bbc[0]["text"].upper() + "  "))
    write_jsonl(_mkdir(root / "bbc") / "bbc.jsonl", bbc)
    cameo = [
        {"id": f"cameo-{label}-{n}", "text": _sentence(rng, topic), "label": label, "tone": tone}
        for n in range(6)
        for topic, label, tone in (
            ("armed_conflicts_attacks", "material_conflict", "military"),
            ("international_relations", "verbal_cooperation", "diplomatic"),
            ("politics_elections", "verbal_conflict", None),
        )
    ]
    write_jsonl(_mkdir(root / "cameo") / "cameo-train.jsonl", cameo)
    return root


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.slow  # the whole benchmark on small data: the slow suite
def test_results_page_and_metrics_cover_every_section(tmp_path):
    config = config_from_dict({"name": "tiny", "features": {"char": {"ngram_range": [3, 4]}}})
    fast = config_from_dict({"name": "tiny-fast", "features": {"char": {"enabled": False}}})
    results = run_benchmark(_fake_real_data(tmp_path / "data"), config, fast, fasttext_grid=None, repeats=2)
    assert "fasttext" not in results["cep_temporal"]["topic"] and any(
        "fastText not run" in note for note in results["notes"]
    )
    assert results["bbc"]["duplicates_removed"] == 1 and results["bbc"]["items"] == 50
    assert results["cep_temporal"]["train_items"] == 7 * 60 and results["cep_temporal"]["test_items_with_tone"] == 12
    assert (
        results["cep_temporal"]["topic"]["ours"]["macro_f1"] > results["cep_temporal"]["topic"]["majority"]["macro_f1"]
    )
    rolling = results["cep_rolling"]
    assert [fold["origin"] for fold in rolling["folds"]] == ["2014-12-31", "2015-12-31", "2016-12-31"]
    assert [fold["scored_items"] for fold in rolling["folds"]] == [60, 60, 60]
    assert set(rolling["topic"]) == {"ours", "ours_fast", "tfidf_svc", "majority"}
    assert len(rolling["tone"]["ours_fast"]["folds"]) == 3
    lead = results["lead"]["topic"]["tfidf_svc"]
    assert lead["gap"] == pytest.approx(rolling["topic"]["ours"]["mean"] - rolling["topic"]["tfidf_svc"]["mean"])
    assert results["cameo"]["items_with_tone"] == 12 and set(results["cameo"]["tone"]) >= {
        "ours",
        "tfidf_svc",
        "majority",
    }
    cost = results["cost"]
    assert cost["ours"]["artifact_mib"] > 0 and cost["ours_fast"]["predict_items_per_second"] > 0
    assert cost["tfidf_svc"]["load_seconds_ratio_to_tfidf_svc"] == 1.0
    assert cost["ours"]["artifact_mib_ratio_to_tfidf_svc"] == pytest.approx(
        cost["ours"]["artifact_mib"] / cost["tfidf_svc"]["artifact_mib"]
    )
    assert len(cost["ours"]["fit_seconds_all_runs"]) == 2
    assert len(results["targets"]) == 8 and all(isinstance(row["met"], bool) for row in results["targets"])
    assert results["bbc"]["macro_f1"]["ours"]["mean"] > results["bbc"]["macro_f1"]["majority"]["mean"]

    page = results_markdown(results, {"command": "`test`"})
    for heading in (
        "## Targets",
        "## Accuracy vs cost",
        "## 1. CEP rolling origins",
        "## 2. CEP forward in time",
        "## 3. AG News",
        "## 4. BBC",
        "## 5. CAMEO",
        "## 6. Cost",
        "## 7. Corpus realism",
    ):
        assert heading in page
    assert "| ours (newsclf pipeline) |" in page and "| ours, fast word-only profile |" in page
    assert "`experiments/tiny-fast.toml`" in page
    metrics = flat_metrics(results)
    assert metrics["cep_topic_macro_f1_ours"] == results["cep_temporal"]["topic"]["ours"]["macro_f1"]
    assert metrics["cep_rolling_tone_macro_f1_ours_fast"] == rolling["tone"]["ours_fast"]["mean"]
    assert "bbc_macro_f1_tfidf_svc" in metrics and "cost_fit_seconds_both_tasks_ours" in metrics
    json.dumps(results)  # the JSON file is written from this


@pytest.mark.parametrize(
    "command, flag",
    [("run", "--output"), ("tune", "--output"), ("scale", "--output"), ("serving", "--output"), ("audit", "--output")],
)
def test_every_command_writes_to_reports_by_default_not_to_the_tracked_pages(command, flag):
    from bench.__main__ import _parser

    subparsers = next(action for action in _parser()._actions if action.dest == "command")
    (default,) = [action.default for action in subparsers.choices[command]._actions if flag in action.option_strings]
    assert Path(default).parts[:2] == ("reports", "bench")


def test_make_publishes_to_the_tracked_pages_only_when_asked():
    import subprocess

    from tests.helpers import PROJECT

    def planned(*args):
        # make -n prints the commands without running them
        return subprocess.run(["make", "-n", *args], cwd=PROJECT, capture_output=True, text=True, check=True).stdout

    assert "--output reports/bench\n" in planned("bench") and "--output bench\n" in planned("bench", "PUBLISH=1")
    assert "--output reports/bench/tuning.md " in planned("tune")
    assert "--output bench/tuning.md " in planned("tune", "PUBLISH=1")
    assert "--output reports/bench/scale.md" in planned("bench-scale")


def test_the_fasttext_check_says_why_it_failed():
    def bbc(score, settings):
        return {
            "macro_f1": {"fasttext": {"mean": score}},
            "fasttext_settings": settings,
            "grid": {"epoch": (5, 50), "lr": (0.1, 1.0)},
        }

    inside = [{"epoch": 5, "lr": 0.1}] * 5
    assert fasttext_check(bbc(0.97, inside)).startswith("fastText sanity check passed: BBC 5-fold macro-F1 0.970")
    edge = inside[:3] + [{"epoch": 50, "lr": 0.1}, {"epoch": 5, "lr": 1.0}]
    failed = fasttext_check(bbc(0.9, edge))
    assert failed.startswith("fastText sanity check FAILED") and "upper edge (epoch 50 or lr 1.0) in 2 of 5" in failed
    assert "in 2 of 5 folds" in fasttext_check(bbc(0.97, edge)) and "passed" in fasttext_check(bbc(0.97, edge))
    assert "inside the grid" in fasttext_check(bbc(0.9, inside))


def test_fasttext_is_tuned_on_a_held_out_part_over_its_grid_and_repeatable():
    pytest.importorskip("fasttext")
    from bench.peers import FastTextClassifier

    words = {"sport": "goal match team coach league", "law": "court judge trial police jury"}
    # Sorted by label, as BBC's file is: fed in that order, fastText learns mostly the last block.
    texts = [f"{words[label]} {i}" for label in words for i in range(20)]
    labels = [label for label in words for _ in range(20)]
    grid = {"epoch": (1, 5), "lr": (0.5,)}
    first = FastTextClassifier(grid, seed=3).fit(texts, labels)
    assert set(first.validation_scores) == {"epoch=1 lr=0.5", "epoch=5 lr=0.5"}
    assert first.tuned_params in ({"epoch": 1, "lr": 0.5}, {"epoch": 5, "lr": 0.5})
    again = FastTextClassifier(grid, seed=3).fit(texts, labels)
    assert again.tuned_params == first.tuned_params and again.predict(texts) == first.predict(texts)
    assert first.predict(["the judge and the jury"]) == ["law"]


@pytest.mark.slow
def test_bench_run_end_to_end(tmp_path):
    """The console command on the fake folder: both files written and one MLflow run logged."""
    from mlflow.tracking import MlflowClient

    data = _fake_real_data(tmp_path / "data")
    uri = new_store(tmp_path / "mlflow.db")
    code = main(
        [
            "run",
            "--data",
            str(data),
            "--experiment",
            "default",
            "--output",
            str(tmp_path / "out"),
            "--tracking-uri",
            uri,
            "--repeats",
            "1",
            "--fasttext-epochs",
            "5",
            "--fasttext-lr",
            "0.5",
        ]
    )
    assert code == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "## 6. Cost" in (tmp_path / "out" / "results.md").read_text()
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("newsclf-bench").experiment_id])
    assert run.data.metrics["cep_topic_macro_f1_ours"] == pytest.approx(
        results["cep_temporal"]["topic"]["ours"]["macro_f1"]
    )
    assert run.data.params["topic.kind"] and len(run.data.tags["data_sha256.cep"]) == 64
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"results.json", "results.md"}
