"""bench labelling: the prequential loop over newsclf select's strategies."""

from bench.labelling import STRATEGIES, labelling_benchmark, labelling_page
from tests.helpers import as_articles, corpus_slice, small_config, write_jsonl


def test_every_strategy_runs_the_same_months_and_only_none_adds_no_label(tmp_path):
    items = corpus_slice(12)
    articles = as_articles(items)
    # Dated round-robin over four months: the first seeds the model, the next three are predicted and labelled.
    dated = type(articles)(
        articles.ids,
        articles.texts,
        articles.topics,
        articles.tones,
        [f"2024-0{1 + i % 4}-15" for i in range(len(items))],
    )
    config = small_config(write_jsonl(tmp_path / "unused.jsonl", items[:1]), features={"char": {"enabled": False}})
    results = labelling_benchmark(dated, config, "2024-01-01", "2024-02", "2024-03", budget=4)
    assert results["months"] == ["2024-02", "2024-03"]
    assert set(results["strategies"]) == {name for name, _, _ in STRATEGIES}
    assert results["strategies"]["none"]["labels_used"] == 0
    assert all(row["labels_used"] == 2 * 4 for name, row in results["strategies"].items() if name != "none")
    assert all(0 < row["topic_macro_f1"] <= 1 for row in results["strategies"].values())
    page = labelling_page(results, {"command": "`python -m bench labelling ...`"})
    assert "| margin by topic |" in page and "2024-02 to 2024-03" in page
