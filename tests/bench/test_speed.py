"""bench speed: the page states each figure against its peer and target; the streaming peer really trains."""

import json
import sys

import pytest

from bench.__main__ import main
from bench.speed import TARGETS, _child_cpu, _scores, _test_scores, markdown, streaming_peer
from newsclf.errors import NewsclfError
from tests.helpers import corpus_slice, write_jsonl


def _results(**sections) -> dict:
    return {
        "runs": 3,
        "load_average_before": 0.5,
        "load_average_after": 0.7,
        "environment": {"cpus": 2},
        "targets": TARGETS,
    } | sections


def test_the_page_has_a_row_per_figure_with_the_ratio_and_whether_the_target_holds():
    page = markdown(
        _results(
            hashing={
                "items": 10,
                "mean_words": 25.0,
                "ours_articles_per_cpu_s": 50_000.0,
                "scikit_learn_articles_per_cpu_s": 7_000.0,
            },
            streaming={
                "articles": 34049,
                "corpus": "CEP",
                "ours": {"cpu_s": 30.0, "epochs": 6, "topic_macro_f1": 0.77, "tone_macro_f1": 0.926},
                "scikit_learn": {"cpu_s": 20.0, "topic_macro_f1": 0.757, "tone_macro_f1": 0.925},
            },
            predict={"cep_s": 2.0, "cep-fast_s": 1.5, "cep_models_uri_s": 4.0, "scikit_learn_s": 2.0},
            latency={"words": 600, "cep_p50_ms": 5.0, "cep_fast_p50_ms": 3.0, "scikit_learn_p50_ms": 2.0},
            load={"cep_models_uri_s": 1.5},
            train={"seconds": 20.0, "topic_test_macro_f1": 0.894, "tone_test_macro_f1": 0.976},
        )
    )
    rows = {
        line.split(" | ")[0].lstrip("| "): line
        for line in page.splitlines()
        if line.startswith("| ") and "---" not in line
    }
    assert rows["tokenizing and hashing CEP items (25.0 words), articles per CPU-second"].endswith(
        "| 7.14 | >= 20,000 | yes |"
    )
    assert rows["`newsclf train` streaming.toml, 34,049 CEP, CPU-s"].endswith("| 1.50 | <= 1.0x | no |")
    assert rows["`newsclf predict` one article, cep folder, wall s"].endswith("| 1.00 | <= 1.3x | yes |")
    assert rows["`newsclf predict` one article, cep through models:/, wall s"].endswith("| 2.00 |  |  |")
    assert rows["p50 per 600-word article in process, cep-fast, ms"].endswith("| 1.50 | <= 1.2x | no |")
    assert rows["load cep through models:/, s"].endswith("| 1.50 |  |  | <= 2.0 s | yes |")
    assert "ours topic 0.770 / tone 0.926 (6 epochs" in page and "test macro-F1: topic 0.894, tone 0.976" in page


def test_a_section_not_measured_has_no_row():
    page = markdown(_results(load={"cep_models_uri_s": 2.5}))
    assert "| load cep through models:/, s | 2.50 |  |  | <= 2.0 s | no |" in page
    assert "streaming" not in page and "predict" not in page


def test_the_streaming_peer_trains_topic_and_tone_and_reports_both(tmp_path, capsys):
    rows = [item | {"label": item["topic"], "date": f"{2016 + i % 2}-06-01"} for i, item in enumerate(corpus_slice(4))]
    streaming_peer(str(write_jsonl(tmp_path / "cep.jsonl", rows)), epochs=2, n_features=2**12)
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(scores) == {"topic_macro_f1", "tone_macro_f1"}
    assert all(0.0 <= value <= 1.0 for value in scores.values())


def test_scores_are_read_from_newsclf_trains_closing_lines():
    output = (
        "topic: validation macro-F1 0.770, test macro-F1 0.894\ntone: validation macro-F1 0.926, test macro-F1 0.976\n"
    )
    assert _scores(output) == {"topic_macro_f1": 0.77, "tone_macro_f1": 0.926}
    assert _test_scores(output) == {"topic_test_macro_f1": 0.894, "tone_test_macro_f1": 0.976}


def test_missing_data_is_one_line_before_any_work(tmp_path, capsys):
    assert main(["speed", "--data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("bench: error: real data not found")
    assert not (tmp_path / "out").exists()


def test_a_child_that_fails_is_one_line_naming_the_command(tmp_path):
    with pytest.raises(NewsclfError, match=r"failed \(exit 3\): boom$"):
        _child_cpu(
            [sys.executable, "-c", "import sys; sys.exit('boom' and (print('boom', file=sys.stderr) or 3))"], tmp_path
        )
