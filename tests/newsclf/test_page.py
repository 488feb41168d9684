"""Explanation pages (newsclf.page) and the cleaner's account of the lines it removed."""

import itertools
import random
import re

import pytest

from newsclf.cleaning import REMOVED_AGENCY_TAG, REMOVED_BOILERPLATE, REMOVED_BYLINE, REMOVED_REPEAT, ArticleCleaner
from newsclf.page import (
    MAX_BATCH_ARTICLES,
    MAX_SHOWN_CHARS,
    ModelSource,
    article_page,
    batch_page,
    model_source,
    write_page,
)
from tests.helpers import RenderedPage

SOURCE = ModelSource("models:/news-classifier/7", "7", "0123abcd")
HEADLINE = "Envoys Meet in Muscat as Navy Blockade Tightens"
BODY = [
    "Warships closed the strait on Monday while negotiators gathered for a third round of ceasefire talks.",
    "Diplomats called the talks constructive, but artillery fire continued along the border overnight.",
]
SCRAPED = "\n".join(
    [
        HEADLINE,
        "",
        HEADLINE,
        "By Ana Ruiz",
        "MUSCAT (Reuters) - " + BODY[0],
        "(AP) -",
        BODY[1],
        "Read more: talks",
        BODY[0],
    ]
)
# Tags the page itself writes; anything else would have come from an article.
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "h4", "p", "strong", "em", "section",
    "div", "table", "thead", "tbody", "tr", "th", "td", "span", "ol", "ul", "li", "mark", "a",
}  # fmt: skip


def test_lines_account_for_every_removed_line_with_its_reason():
    lines = ArticleCleaner().lines(SCRAPED)
    assert [(line.reason, line.repeats) for line in lines] == [
        (None, None),
        (REMOVED_REPEAT, 1),
        (REMOVED_BYLINE, None),
        (None, None),
        (REMOVED_AGENCY_TAG, None),
        (None, None),
        (REMOVED_BOILERPLATE, None),
        (REMOVED_REPEAT, 2),
    ]
    assert lines[3].line.startswith("MUSCAT (Reuters)") and lines[3].text == BODY[0]
    assert all(line.text == "" for line in lines if line.reason)


@pytest.mark.parametrize("switches", list(itertools.product([True, False], repeat=3)))
def test_lines_keep_exactly_what_paragraphs_returns(switches):
    cleaner = ArticleCleaner(*switches)
    pool = [
        HEADLINE, "By Ana Ruiz", "By noon, troops had advanced.", "KYIV (Reuters) - Shelling resumed.", "AFP -",
        "KYIV (Reuters) - Read more here", "\u201cTalks\u201d resumed", '"Talks" resumed', "TALKS RESUMED",
        "  ", "\u00a9 2025 Example News", "Ｆｕｌｌ width", "Full width", "\u05e9\u05dc\u05d5\u05dd",
        "\U0001f54a\ufe0f",
    ]  # fmt: skip
    rng = random.Random(0)
    texts = [SCRAPED, "", None, 42] + ["\n".join(rng.choices(pool, k=rng.randint(1, 12))) for _ in range(200)]
    for text in texts:
        assert [line.text for line in cleaner.lines(text) if line.reason is None] == cleaner.paragraphs(text)


def test_article_text_shows_as_text_script_tags_quotes_rtl_and_emoji(small_model):
    hostile = [
        '<script>alert("owned")</script> Troops shelled the port.',
        '"quoted" and \'single\' & <b>bold</b> <img src=x onerror=alert(1)> \'"><a href="https://evil.example">',
        "\u0642\u0635\u0641\u062a \u0627\u0644\u0645\u062f\u0641\u0639\u064a\u0629 "
        "\u0627\u0644\u0645\u064a\u0646\u0627\u0621 "
        "\u05e9\u05dc\u05d5\u05dd \u05e2\u05db\u05e9\u05d9\u05d5",
        "Envoys signed the accord \U0001f54a\ufe0f\U0001f1fa\U0001f1e6 in Geneva \U0001f91d.",
    ]
    page = article_page(small_model, "\n".join(hostile), SOURCE, title='<i>"id"</i>', note="<b>note</b>")
    parsed = RenderedPage(page)
    assert parsed.tags <= PAGE_TAGS
    assert not [name for name, _ in parsed.attributes if name.startswith("on") or name == "src"]
    assert all(value.startswith("#") for name, value in parsed.attributes if name == "href")
    for paragraph in hostile:
        assert paragraph in parsed.visible
    assert '<i>"id"</i>' in parsed.visible and "<b>note</b>" in parsed.visible
    assert page.count('dir="auto"') >= len(hostile)
    assert "\U0001f54a\ufe0f\U0001f1fa\U0001f1e6" in page  # written as itself, in a UTF-8 page


def test_a_page_loads_nothing_from_anywhere(small_model):
    page = article_page(small_model, "See https://example.com/a.png for the map.\n" + SCRAPED, SOURCE)
    lowered = page.lower()
    for outside in ("<script", "<link", "<img", "<iframe", "src=", "url(", "@import", "@font-face"):
        assert outside not in lowered
    assert "default-src 'none'" in page


def test_the_page_shows_prediction_kept_paragraphs_with_scores_and_removed_lines(small_model):
    prediction = small_model.predict(SCRAPED)
    tones = small_model.paragraph_tones(SCRAPED)
    parsed = RenderedPage(article_page(small_model, SCRAPED, SOURCE))
    lines = parsed.line_texts()
    kept = [text for kind, text in lines if kind == "kept"]
    assert len(kept) == len(tones) == 3
    for text, row in zip(kept, tones):
        assert f"¶{row['paragraph']} · tone {row['tone_score']:.2f} {row['tone']}" in text
        assert text.endswith(row["text"])
    removed = [text for kind, text in lines if kind == "removed"]
    assert removed == [
        f"removed: repeats paragraph 1{HEADLINE}",
        "removed: bylineBy Ana Ruiz",
        "removed: agency tag only(AP) -",
        "removed: page boilerplateRead more: talks",
        f"removed: repeats paragraph 2{BODY[0]}",
    ]
    visible = parsed.visible
    assert f"Predicted topic: {prediction['topic']} (probability {prediction['topic_probability']:.2f})" in visible
    for label, probability in prediction["topic_probabilities"].items():
        assert f"{label}{' (predicted)' if label == prediction['topic'] else ''}{probability:.2f}" in visible
    assert f"Tone score {prediction['tone_score']:.2f}" in visible
    assert f"Tone applies: {'yes' if prediction['tone_applies'] else 'no'}" in visible
    for needle in ("models:/news-classifier/7", "0123abcd", "unit", "diplomatic paragraph", "removed by the cleaner"):
        assert needle in visible


def test_the_driving_terms_are_highlighted_with_their_weights_and_listed(small_model):
    explanation = small_model.explain(SCRAPED, 10)
    page = article_page(small_model, SCRAPED, SOURCE)
    word = next(term for term in explanation["tone"]["terms"] if term["kind"] == "word" and " " not in term["term"])
    hover = re.escape(f"tone {word['weight']:+.3f} (word)")
    assert re.search(rf'<mark class="[a-z ]*tone[a-z ]*" title="[^"]*{hover}[^"]*">{word["term"]}</mark>', page, re.I)
    visible = RenderedPage(page).visible
    for task in ("topic", "tone"):
        assert f"Terms that pushed the {task} towards {explanation[task]['label']}" in visible
        for term in explanation[task]["terms"]:
            assert f"{term['term']}{term['kind']}{term['weight']:+.3f}" in visible


def test_an_empty_article_gets_a_page_saying_so(small_model):
    visible = RenderedPage(article_page(small_model, "", SOURCE)).visible
    assert "Nothing is left of this article after cleaning" in visible and "The article has no text." in visible
    boilerplate = RenderedPage(article_page(small_model, "By Ana Ruiz\nRead more: talks", SOURCE))
    assert "Nothing is left of this article after cleaning" in boilerplate.visible
    assert [kind for kind, _ in boilerplate.line_texts()] == ["removed", "removed"]


@pytest.mark.parametrize("separator", ["\n", " "])
def test_a_one_megabyte_article_gives_a_bounded_page_with_a_note(tiny_model, separator):
    line = "Artillery <shelled> the port & envoys met in \u201cDoha\u201d to talk about a ceasefire. " * 12
    article = separator.join(f"{number} {line}" for number in range(1100))
    assert len(article) > 1_000_000
    page = article_page(tiny_model, article, SOURCE)
    assert len(page.encode("utf-8")) < 12 * MAX_SHOWN_CHARS
    assert f"of {len(article):,} characters" in RenderedPage(page).visible
    assert ("The last paragraph shown is cut" in page) == (separator == " ")


def test_a_batch_page_lists_every_article_and_links_to_each(small_model):
    articles = [("a<1>", SCRAPED), (7, ""), ({"n": "x"}, BODY[1])]
    page = batch_page(small_model, articles, SOURCE)
    parsed = RenderedPage(page)
    hrefs = [value for name, value in parsed.attributes if name == "href"]
    ids = [value for name, value in parsed.attributes if name == "id"]
    assert [href for href in hrefs if href != "#articles"] == ["#article-1", "#article-2", "#article-3"]
    assert hrefs.count("#articles") == 3 and ids.count("articles") == 1
    assert {f"article-{n}" for n in (1, 2, 3)} <= set(ids)
    for shown in ("a<1>", "7", '{"n": "x"}', "(empty)"):
        assert shown in parsed.visible
    with pytest.raises(ValueError, match=f"at most {MAX_BATCH_ARTICLES}"):
        batch_page(small_model, [("x", "")] * (MAX_BATCH_ARTICLES + 1), SOURCE)


def test_a_model_without_tone_still_gets_a_page(tiny_model):
    from newsclf.model import NewsClassifier

    topic_only = NewsClassifier(tiny_model.pipelines["topic"])
    visible = RenderedPage(article_page(topic_only, SCRAPED, SOURCE)).visible
    assert "This model has no tone task of two labels." in visible
    assert "¶3" in visible and "tone 0." not in visible


def test_model_source_of_a_folder_names_the_training_run(small_model, small_model_folder):
    small = type(small_model)(small_model.pipelines["topic"], metadata={"run_id": "abc"})
    assert model_source(small, str(small_model_folder)) == ModelSource(str(small_model_folder), None, "abc")


def test_write_page_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "page.html"
    target.write_text("old")
    assert write_page("<!DOCTYPE html>\u05e9", target) == target
    assert target.read_text(encoding="utf-8") == "<!DOCTYPE html>\u05e9"
    assert [path.name for path in tmp_path.iterdir()] == ["page.html"]
