"""Explanation pages: one article's prediction, its paragraphs and the terms behind it, as one HTML file.

A page is self-contained (inline CSS, no scripts, fonts, images or links out; a Content-Security-Policy
forbids loading anything), so it opens from disk, from an e-mail or inside the MLflow UI alike. Every
piece of article text is escaped. The numbers come from :class:`NewsClassifier` (``predict``,
``explain``, ``paragraph_tones``) and the removed lines from :meth:`ArticleCleaner.lines`; this module
only lays them out.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from html import escape as _html_escape
from pathlib import Path
from typing import Any

from newsclf._files import remove_temporary, temporary_beside
from newsclf.cleaning import REMOVED_REPEAT, CleanedLine
from newsclf.model import NewsClassifier, as_text
from newsclf.steps import cleaner_of

# What a page shows of one article at most: a 1 MB article still gives a page a browser opens at once.
# Prediction and terms always read the whole article; only the text shown is cut.
MAX_SHOWN_CHARS = 20_000
MAX_SHOWN_LINES = 400
# Articles on one batch page at most (each up to the bounds above).
MAX_BATCH_ARTICLES = 200
# Terms listed and highlighted per task, and the characters of one term the table shows.
TOP_TERMS = 10
MAX_TERM_CHARS = 80


@dataclass(frozen=True)
class ModelSource:
    """Where the model of a page came from, so the page can be traced back: the URI it was loaded
    from, its registered version (None for a folder or a run) and the training run that fitted it."""

    uri: str
    version: str | None = None
    run_id: str | None = None


def escape(value: str, quote: bool = True) -> str:
    """``value`` HTML-escaped, with lone surrogates (a JSON "\\ud800", an undecodable file name) as
    U+FFFD: the page is UTF-8, which cannot hold them."""
    return _html_escape(as_text(value), quote)


def model_source(model: NewsClassifier, uri: str, tracking_uri: str | None = None) -> ModelSource:
    """The :class:`ModelSource` of a model loaded from ``uri``, asking the registry for a ``models:/`` version."""
    version = None
    if str(uri).startswith("models:/"):
        from mlflow import MlflowClient

        from newsclf.loading import registered_version

        # Asked after loading: an alias moved in between would name the newer version, which the run id
        # (read from the loaded model itself) would then contradict visibly rather than silently.
        found = registered_version(MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri), str(uri))
        version = None if found is None else str(found.version)
    return ModelSource(str(uri), version, model.metadata.get("run_id"))


def article_page(model: NewsClassifier, text: Any, source: ModelSource, title: str = "", note: str = "") -> str:
    """One article's explanation page as an HTML document; ``title`` names the article, ``note`` says more about it."""
    section, _ = _article_section(model, text, title, note, anchor="article")
    return _document(f"Why newsclf labelled {title or 'this article'}", _provenance(model, source) + section)


def batch_page(model: NewsClassifier, articles: list[tuple[Any, Any]], source: ModelSource) -> str:
    """One page for many ``(id, text)`` articles: a table of them linking to each one's explanation below.

    At most :data:`MAX_BATCH_ARTICLES` articles; more is a ValueError (split them over several pages).
    """
    if len(articles) > MAX_BATCH_ARTICLES:
        raise ValueError(f"{len(articles)} articles; one page shows at most {MAX_BATCH_ARTICLES}")
    sections, rows = [], []
    for number, (article_id, text) in enumerate(articles, start=1):
        anchor = f"article-{number}"
        section, prediction = _article_section(
            model, text, _shown_id(article_id), "", anchor, back='<a href="#articles">back to the list</a>'
        )
        sections.append(section)
        rows.append(_summary_row(number, _shown_id(article_id), anchor, prediction))
    tone_header = "<th>tone score</th><th>tone applies</th>" if "tone" in model.pipelines else ""
    table = (
        f'<section id="articles"><h2>{len(articles)} articles</h2><table class="summary">'
        f"<thead><tr><th>#</th><th>article</th><th>topic</th><th>P(topic)</th>{tone_header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )
    return _document(
        f"Why newsclf labelled these {len(articles)} articles", _provenance(model, source) + table + "".join(sections)
    )


def write_page(page: str, output: str | Path) -> Path:
    """Write ``page`` to ``output`` as UTF-8, replacing it only once complete; returns the path written."""
    target = Path(output)
    temporary = temporary_beside(target)
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, target)
    except BaseException:
        remove_temporary(temporary)
        raise
    return target


def _article_section(
    model: NewsClassifier, text: Any, title: str, note: str, anchor: str, back: str = ""
) -> tuple[str, dict[str, Any]]:
    """The HTML section explaining one article, and its prediction."""
    text = as_text(text)
    prediction = model.predict(text)
    explanation = model.explain(text, TOP_TERMS)
    shown, cut_inside_line = _shown_prefix(text)
    tone_task = "tone" if "tone" in model.pipelines else "topic"
    lines = cleaner_of(model.pipelines[tone_task]).lines(shown)
    tones = model.paragraph_tones(shown)
    terms = _term_index(explanation)
    pattern = _terms_pattern(explanation)
    parts = [
        f'<section class="article" id="{anchor}">',
        f"<h2>{escape(title) or 'The article'}</h2>",
        f'<p class="note" dir="auto">{escape(note)}</p>' if note else "",
        _prediction_block(model, prediction),
        _article_block(lines, tones, pattern, terms, len(text), len(shown), cut_inside_line, model.tone_poles),
        _terms_block(explanation),
        f'<p class="back">{back}</p>' if back else "",
        "</section>",
    ]
    return "".join(parts), prediction


def _shown_prefix(text: str) -> tuple[str, bool]:
    """The whole lines of ``text`` within the page's bounds (the first line cut if it alone is too long),
    and whether a line was cut. Cleaning reads line by line, so this prefix cleans to the first paragraphs
    of the whole article exactly."""
    lines = text.splitlines(keepends=True)
    if len(text) <= MAX_SHOWN_CHARS and len(lines) <= MAX_SHOWN_LINES:
        return text, False
    taken, size = [], 0
    for line in lines[:MAX_SHOWN_LINES]:
        if size + len(line) > MAX_SHOWN_CHARS:
            if not taken:  # one line longer than the bound: show its start
                return line[:MAX_SHOWN_CHARS], True
            break
        taken.append(line)
        size += len(line)
    return "".join(taken), False


def _prediction_block(model: NewsClassifier, prediction: dict[str, Any]) -> str:
    if prediction["empty"]:
        headline = (
            "<p><strong>Nothing is left of this article after cleaning</strong> (it is empty, or all of it is "
            "page boilerplate): the model gives its empty answer, the same probability for every topic.</p>"
        )
    else:
        headline = (
            f'<p class="verdict">Predicted topic: <strong class="topic">{escape(prediction["topic"])}</strong> '
            f"(probability {prediction['topic_probability']:.2f})</p>"
        )
    ranked = sorted(prediction["topic_probabilities"].items(), key=lambda item: -item[1])
    bars = "".join(
        f'<tr class="{"chosen" if label == prediction["topic"] else ""}"><th scope="row">{escape(label)}'
        f"{' (predicted)' if label == prediction['topic'] else ''}</th>"
        f'<td class="bar"><span style="width:{100 * probability:.1f}%"></span></td>'
        f'<td class="value">{probability:.2f}</td></tr>'
        for label, probability in ranked
    )
    chart = f'<table class="bars" aria-label="probability of each topic">{bars}</table>'
    return f'<div class="prediction"><h3>Topic</h3>{headline}{chart}{_tone_block(model, prediction)}</div>'


def _tone_block(model: NewsClassifier, prediction: dict[str, Any]) -> str:
    if "tone_score" not in prediction:
        return "<h3>Tone</h3><p>This model has no tone task of two labels.</p>"
    high, low = (escape(label) for label in model.tone_poles)
    score = prediction["tone_score"]
    applies = prediction.get("tone_applies_probability")
    if applies is None:
        applies_text = "This model does not estimate whether the tone applies."
    elif prediction["tone_applies"]:
        applies_text = f"Tone applies: <strong>yes</strong> (probability {applies:.2f})."
    else:
        applies_text = (
            f"Tone applies: <strong>no</strong> (probability {applies:.2f}): the {high}/{low} axis "
            "probably does not fit this article, so read the score with care."
        )
    label = "none (empty article)" if prediction["empty"] else escape(str(prediction["tone"]))
    return (
        f'<h3>Tone</h3><p class="verdict">Tone score <strong>{score:.2f}</strong>: {label}</p>'
        f'<div class="scale" role="img" aria-label="tone score {score:.2f} on a scale from 0 {low} '
        f'to 1 {high}"><span class="marker" style="left:{100 * score:.1f}%"></span></div>'
        f'<div class="scale-labels"><span>0 {low}</span><span>0.5 undecided</span><span>{high} 1</span></div>'
        f"<p>{applies_text}</p>"
    )


def _article_block(
    lines: list[CleanedLine],
    tones: list[dict[str, Any]],
    pattern: re.Pattern | None,
    terms: dict[str, list[tuple[str, str, float]]],
    total: int,
    shown: int,
    cut_inside_line: bool,
    poles: tuple[str, str] | None,
) -> str:
    scores = iter(tones)
    items, kept = [], 0
    for line in lines:
        if line.reason is not None:
            why = f"repeats paragraph {line.repeats}" if line.reason == REMOVED_REPEAT else line.reason
            items.append(
                f'<li class="line removed"><span class="label">removed: {escape(why)}</span>'
                f'<p dir="auto">{escape(line.line)}</p></li>'
            )
            continue
        kept += 1
        row = next(scores, {})
        number = row.get("paragraph", kept)
        if "tone_score" in row:
            score = row["tone_score"]
            label = f"¶{number} · tone {score:.2f} {escape(str(row['tone']))}"
            style = f' style="background:{_tone_colour(score)}"'
        else:
            label, style = f"¶{number}", ""
        items.append(
            f'<li class="line kept"{style}><span class="label">{label}</span>'
            f'<p dir="auto">{_highlighted(line.text, pattern, terms)}</p></li>'
        )
    notes = []
    if shown < total:
        notes.append(
            f"This article is long: below are its first {shown:,} of {total:,} characters. The prediction "
            "and the terms read the whole article."
        )
    if cut_inside_line:
        notes.append("The last paragraph shown is cut; its tone score is of the part shown.")
    if not lines:
        notes.append("The article has no text.")
    return (
        '<div class="text"><h3>The article as the cleaner sees it</h3>'
        + "".join(f'<p class="truncated">{note}</p>' for note in notes)
        + _legend(poles)
        + f'<ol class="lines">{"".join(items)}</ol></div>'
    )


def _terms_block(explanation: dict[str, dict[str, Any]]) -> str:
    blocks = []
    for task, found in explanation.items():
        if found["label"] is None:
            continue
        rows = "".join(
            f'<tr><td dir="auto">{escape(_shortened(term["term"]))}</td><td>{term["kind"]}</td>'
            f'<td class="value">{term["weight"]:+.3f}</td></tr>'
            for term in found["terms"]
        )
        blocks.append(
            f"<h4>Terms that pushed the {task} towards {escape(found['label'])}</h4>"
            + (
                f'<table class="terms {task}"><thead><tr><th>term</th><th>kind</th><th>weight</th></tr></thead>'
                f"<tbody>{rows}</tbody></table>"
                if rows
                else "<p>No term pushed towards it: the intercept alone decided.</p>"
            )
        )
    if not blocks:
        return ""
    return (
        '<div class="terms"><h3>Terms that drove the labels</h3><p>A weight is the term\'s TF-IDF value in this '
        "article times the classifier's coefficient for the label; <em>char</em> terms are words whose character "
        "n-grams are summed.</p>" + "".join(blocks) + "</div>"
    )


def _shortened(term: str) -> str:
    """A term as the terms table shows it: a "word" of a megabyte (a scraped blob) is cut to its start."""
    return term if len(term) <= MAX_TERM_CHARS else term[: MAX_TERM_CHARS - 1] + "…"


def _term_index(explanation: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, str, float]]]:
    """A term's key (:func:`_term_key`) -> the (task, kind, weight) entries it drives."""
    index: dict[str, list[tuple[str, str, float]]] = {}
    for task, found in explanation.items():
        for term in found["terms"]:
            index.setdefault(_term_key(term["term"]), []).append((task, term["kind"], term["weight"]))
    return index


def _term_key(text: str) -> str:
    """Terms and the text they matched compared by their words alone, as the tokenizer sees them."""
    return " ".join(re.findall(r"\w+", text.lower()))


def _terms_pattern(explanation: dict[str, dict[str, Any]]) -> re.Pattern | None:
    """A regex finding the explained terms in cleaned text, longest first, whole words only; word pairs match
    across the punctuation and spaces the tokenizer skips."""
    terms = {term["term"].lower() for found in explanation.values() for term in found["terms"]}
    if not terms:
        return None
    alternatives = [
        r"\W+".join(re.escape(word) for word in term.split()) for term in sorted(terms, key=lambda t: (-len(t), t))
    ]
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def _highlighted(text: str, pattern: re.Pattern | None, terms: dict[str, list[tuple[str, str, float]]]) -> str:
    """``text`` escaped, with each explained term in a <mark> whose title gives its weights."""
    if pattern is None:
        return escape(text)
    parts, end = [], 0
    for match in pattern.finditer(text):
        entries = terms.get(_term_key(match.group(0)), [])
        if not entries:  # matched across punctuation the term itself does not hold
            continue
        tasks = " ".join(sorted({task for task, _, _ in entries}))
        # Short: a word the article repeats carries its title each time.
        title = "; ".join(f"{task} {weight:+.3f} ({kind})" for task, kind, weight in entries)
        parts.append(escape(text[end : match.start()]))
        parts.append(f'<mark class="{tasks}" title="{escape(title)}">{escape(match.group(0))}</mark>')
        end = match.end()
    parts.append(escape(text[end:]))
    return "".join(parts)


def _tone_colour(score: float) -> str:
    """A light tint from blue (0: diplomatic, or the model's other tone) through white (0.5) to red (1)."""
    strength = min(abs(score - 0.5) * 2, 1.0)
    tint = (66, 133, 244) if score < 0.5 else (219, 68, 55)
    red, green, blue = (round(255 + (channel - 255) * 0.35 * strength) for channel in tint)
    return f"rgb({red},{green},{blue})"


def _summary_row(number: int, article_id: str, anchor: str, prediction: dict[str, Any]) -> str:
    topic = "(empty)" if prediction["empty"] else escape(prediction["topic"])
    tone = ""
    if "tone_score" in prediction:
        applies = prediction.get("tone_applies")
        tone = (
            f"<td>{prediction['tone_score']:.2f}</td><td>{'—' if applies is None else 'yes' if applies else 'no'}</td>"
        )
    return (
        f'<tr><td>{number}</td><td dir="auto"><a href="#{anchor}">{escape(article_id)}</a></td>'
        f"<td>{topic}</td><td>{prediction['topic_probability']:.2f}</td>{tone}</tr>"
    )


def _shown_id(article_id: Any) -> str:
    """An article id as text: a string as it is, any other JSON value as JSON."""
    return article_id if isinstance(article_id, str) else json.dumps(article_id, ensure_ascii=False)


def _provenance(model: NewsClassifier, source: ModelSource) -> str:
    version = source.version or (
        "none: a model folder, or a page written before its run registered the model "
        "(the run's registered_version tag names it)"
    )
    experiment = model.metadata.get("experiment")
    rows = [
        ("model", source.uri),
        ("version", version),
        ("training run", source.run_id or "not recorded in the model"),
    ] + ([("experiment", str(experiment))] if experiment else [])
    cells = "".join(f'<tr><th scope="row">{name}</th><td>{escape(value)}</td></tr>' for name, value in rows)
    return f'<table class="provenance">{cells}</table>'


def _legend(poles: tuple[str, str] | None) -> str:
    high, low = (escape(label) for label in poles or ("high", "low"))
    return (
        '<ul class="legend" aria-label="legend">'
        f'<li><span class="swatch" style="background:{_tone_colour(0.0)}"></span>{low} paragraph (tone near 0)</li>'
        f'<li><span class="swatch" style="background:{_tone_colour(0.5)}"></span>undecided (0.5)</li>'
        f'<li><span class="swatch" style="background:{_tone_colour(1.0)}"></span>{high} paragraph (tone near 1)</li>'
        '<li><span class="swatch removed"></span>removed by the cleaner, with the reason (grey)</li>'
        '<li><mark class="topic">topic term</mark> dotted underline, <mark class="tone">tone term</mark> solid '
        "underline (double: both); hover for the weights</li></ul>"
        '<p class="note">A paragraph\'s tone is scored as if it were an article of its own; for a short one '
        "(a headline, a sentence) the model is less sure than for an article, and its score is tempered towards "
        "undecided by what the model learnt about single sentences. The article's own tone is above.</p>"
    )


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;
color:#1a1a1a;line-height:1.45}
h1{font-size:1.4rem}h2{font-size:1.25rem;border-top:2px solid #ccc;padding-top:1rem;margin-top:2rem}
h3{font-size:1.05rem;margin-bottom:.4rem}h4{font-size:.95rem;margin-bottom:.3rem}
table{border-collapse:collapse}td,th{padding:.15rem .5rem;text-align:left;vertical-align:top}
.provenance th{color:#555;font-weight:normal}.provenance td{font-family:ui-monospace,monospace;word-break:break-all}
.summary td,.summary th,.terms td,.terms th{border-bottom:1px solid #ddd}
.bars{width:100%}.bars th{font-weight:normal;white-space:nowrap;width:16rem}.bars tr.chosen th{font-weight:bold}
.bar{width:100%}.bar span{display:block;height:.9rem;background:#555;min-width:1px}
.value{text-align:right;font-variant-numeric:tabular-nums}
.scale{position:relative;height:1rem;border:1px solid #888;margin-top:.3rem;
background:linear-gradient(to right,rgb(171,201,251),#fff,rgb(241,171,165))}
.marker{position:absolute;top:-.3rem;width:3px;height:1.6rem;margin-left:-1px;background:#000}
.scale-labels{display:flex;justify-content:space-between;font-size:.85rem;color:#444}
.lines{list-style:none;padding:0}.line{margin:.35rem 0;padding:.35rem .6rem;border-left:4px solid #999}
.line p{margin:.15rem 0;overflow-wrap:anywhere}.label{font-size:.8rem;font-weight:bold;color:#333}
.removed{background:#f2f2f2;color:#777;border-left-style:dashed}.removed p{text-decoration:line-through}
.legend{list-style:none;padding:0;font-size:.85rem;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem}
.note{font-size:.85rem;color:#444}
.swatch{display:inline-block;width:1rem;height:.8rem;border:1px solid #888;margin-right:.3rem;vertical-align:middle}
.swatch.removed{background:#f2f2f2;border-style:dashed}
mark{background:none;color:inherit;font-weight:600}mark.topic{text-decoration:underline dotted 2px}
mark.tone{text-decoration:underline solid 2px}mark.tone.topic{text-decoration:underline double 2px}
.note,.truncated{font-style:italic}
"""


def _document(title: str, body: str) -> str:
    # The policy forbids every fetch and script: the page needs none, and an article cannot add one.
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )
