import io
import json

import pytest

from newsclf.batch import (
    Article,
    jsonl_articles,
    predictions,
    presented,
    read_text,
    text_articles,
    write_jsonl,
)
from newsclf.errors import NewsclfError


def test_plain_files_and_stdin_are_one_article_each(tmp_path):
    (tmp_path / "a.txt").write_text("Troops crossed the border.", encoding="utf-8")
    articles = text_articles([str(tmp_path / "a.txt"), "-"], io.BytesIO(b"Envoys met."), print)
    assert articles == [Article(str(tmp_path / "a.txt"), "Troops crossed the border."), Article("-", "Envoys met.")]


def test_bytes_that_are_not_utf8_are_replaced_with_a_warning():
    warnings = []
    assert read_text(b"caf\xe9 talks", "a.txt", warnings.append) == "caf\ufffd talks"
    assert warnings == ["a.txt is not valid UTF-8 (byte 3); undecodable bytes were replaced with U+FFFD"]
    assert read_text("\ufeffcafé".encode(), "b.txt", warnings.append) == "café" and len(warnings) == 1


def test_jsonl_records_keep_their_id_and_put_the_title_first(tmp_path):
    lines = [
        {"id": 7, "title": "Talks resume", "text": "Envoys met in Geneva."},
        {"text": None},
        {"id": "x", "title": "", "text": "Body only."},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text(
        "\n".join(json.dumps(line) for line in lines[:2]) + "\n\n" + json.dumps(lines[2]) + "\n", encoding="utf-8"
    )
    articles = list(jsonl_articles([str(path)], io.BytesIO(), print))
    assert articles == [
        Article(7, "Talks resume\n\nEnvoys met in Geneva."),
        Article(None, None),
        Article("x", "Body only."),
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "in.jsonl line 2: not valid JSON"),
        ('["a list"]', 'in.jsonl line 2: a JSON list, not an object such as {"id": 1, "text": "..."}'),
        ('{"body": "x"}', "in.jsonl line 2: no \"text\" field (fields: ['body'])"),
    ],
)
def test_bad_jsonl_lines_are_named(tmp_path, line, message):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(NewsclfError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        list(jsonl_articles([str(path)], io.BytesIO(), print))


@pytest.mark.parametrize(
    "make, message", [(lambda p: p / "missing.txt", "input file not found"), (lambda p: p, "is a folder")]
)
def test_unreadable_inputs_are_named(tmp_path, make, message):
    with pytest.raises(NewsclfError, match=message):
        text_articles([str(make(tmp_path))], io.BytesIO(), print)


def test_predictions_rank_topics_and_add_terms_and_paragraphs_on_request(small_model):
    articles = [Article("a", "Troops shelled the port.\nEnvoys met in Geneva."), Article("b", "")]
    plain = list(predictions(small_model, articles))
    assert [row["id"] for row in plain] == ["a", "b"]
    for row, expected in zip(plain, small_model.predict([article.text for article in articles])):
        assert {key: value for key, value in row.items() if key != "id"} == expected
        ranked = list(row["topic_probabilities"].values())
        assert ranked == sorted(ranked, reverse=True)
    rich = list(predictions(small_model, articles, top_k=2, explain=True, paragraphs=True))
    assert len(rich[0]["topic_probabilities"]) == 2
    assert rich[0]["explanation"] == small_model.explain(articles[0].text)
    assert rich[0]["paragraphs"] == small_model.paragraph_tones(articles[0].text)
    assert rich[1]["paragraphs"] == [] and rich[1]["explanation"]["topic"]["terms"] == []


def test_output_file_appears_only_when_complete(tmp_path):
    def rows():
        yield {"id": 1}
        raise RuntimeError("model failed")

    target = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError):
        write_jsonl(rows(), str(target), io.StringIO())
    assert list(tmp_path.iterdir()) == []
    assert write_jsonl([{"id": 1, "text": "é"}, {"id": "\ud800"}], str(target), io.StringIO()) == 2
    assert [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()] == [
        {"id": 1, "text": "é"},
        {"id": "?"},
    ]
    with pytest.raises(NewsclfError, match="folder .* does not exist"):
        write_jsonl([], str(tmp_path / "no" / "out.jsonl"), io.StringIO())


def test_presented_rounds_every_number_and_abstains_below_the_threshold(small_model):
    rows = list(predictions(small_model, [Article("a", "Envoys met in Geneva."), Article("b", "")], explain=True))
    shown = list(presented([dict(row) for row in rows], digits=2, threshold=0.99))
    for row in shown:
        numbers = [row["topic_probability"], *row["topic_probabilities"].values(), row["tone_score"]]
        assert all(round(number, 2) == number for number in numbers)
    assert shown[0]["topic"] is None and "topic" in shown[0]["undecided"]
    assert rows[0]["topic_probability"] != shown[0]["topic_probability"]  # rounded, where 16 digits were
    whole = next(presented([dict(rows[0])], digits=None))
    assert whole["topic_probability"] == rows[0]["topic_probability"] and "undecided" not in whole


def test_csv_and_table_hold_the_one_value_fields(small_model):
    articles = [Article("a", "Envoys met in Geneva for talks."), Article("b", "Artillery shelled the port.")]
    for fmt in ("csv", "table"):
        out = io.StringIO()
        rows = presented(predictions(small_model, articles), threshold=0.999)
        assert write_jsonl(rows, None, out, fmt) == 2
        lines = out.getvalue().splitlines()
        assert len(lines) == 3 and lines[0].startswith("id")
    assert "undecided" in lines[1]  # table: no topic is that sure
    out = io.StringIO()
    write_jsonl(presented(predictions(small_model, articles)), None, out, "csv")
    header, first, _ = out.getvalue().splitlines()
    assert header.split(",")[:3] == ["id", "topic", "topic_probability"] and first.startswith("a,")
