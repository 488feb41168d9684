"""Article cleaning: turn scraped news text into the paragraphs a reader would see."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

# Typographic characters that NFKC leaves alone but that split one word into several tokens.
_TYPOGRAPHY = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2010": "-",
        "\u2013": "-",
        "\u2212": "-",
        "\u2014": " - ",
        "\u00ad": None,  # soft hyphen
        "\u200b": None,  # zero-width space
        "\ufeff": None,
    }
)

# Whole lines that carry no news: page furniture left behind by scrapers.
_BOILERPLATE_LINE = re.compile(
    r"""^(
        (read|see)\s+(more|also)\b.*
      | (related|recommended|more\s+on\s+this\s+story)\s*:?.*
      | (subscribe|sign\s+up|follow\s+us|share\s+(this|on)|click\s+here|download\s+our\s+app)\b.*
      | advertisement | sponsored(\s+content)?
      | (our|staff|special)\s+(correspondent|reporter)s?\b.*
      | (\u00a9|\(c\)|copyright)\s.*
      | all\s+rights\s+reserved\.?
      | (photo|image|picture)\s*(credit)?\s*:.*
      | (reporting|writing|editing)\s+by\b.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)

# Bylines are capitalised names only, so "By noon, troops had advanced" stays. The possessive
# *+ keeps a long capitalised run ("By AAAA...!") from being split every possible way.
_BYLINE = re.compile(r"^By\s+(?:[A-Z][\w.'-]*+\s*){1,4}(?:(?:,|and|\|)\s*(?:[A-Z][\w.'-]*+\s*){1,4})?$")

# Agency datelines at the start of a paragraph: "KYIV (Reuters) -", "AFP -", "(AP) --".
_AGENCY_PREFIX = re.compile(
    r"^([A-Z][A-Za-z .,'-]{0,40}\s)?\(?(Reuters|AFP|AP|Associated Press|Xinhua|dpa|ANI|PTI|Anadolu|"
    r"TASS|Yonhap|Kyodo|EFE|Bernama|IANS|UPI)\)?\s*(-{1,2}|:)\s*"
)

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def article_text(title: object, body: object) -> str:
    """An article as training and prediction read it: the title, a blank line, the body.

    Parts that are not strings or are blank are left out.
    """
    parts = (part.strip() for part in (title, body) if isinstance(part, str))
    return "\n\n".join(part for part in parts if part)


# Why ArticleCleaner.lines removed a line.
REMOVED_BOILERPLATE = "page boilerplate"
REMOVED_BYLINE = "byline"
REMOVED_AGENCY_TAG = "agency tag only"
REMOVED_REPEAT = "repeat"


@dataclass(frozen=True)
class CleanedLine:
    """One non-blank line of an article and what the cleaner did with it.

    ``line`` is the line after Unicode and whitespace normalisation; ``text`` the paragraph kept from
    it ("" when removed); ``reason`` None when kept, else one of the ``REMOVED_*`` reasons; ``repeats``
    the 1-based number of the kept paragraph a ``REMOVED_REPEAT`` line repeats.
    """

    line: str
    text: str
    reason: str | None = None
    repeats: int | None = None


class ArticleCleaner(TransformerMixin, BaseEstimator):
    """Normalise scraped news text: Unicode, whitespace, repeats and page boilerplate.

    Each non-empty line of the input is treated as a paragraph. The output joins the kept
    paragraphs with a blank line, so it stays readable and paragraph-aware.

    Parameters
    ----------
    normalize_unicode : bool
        Apply NFKC and map typographic quotes and dashes to ASCII.
    drop_repeated : bool
        Drop paragraphs (including a repeated headline) that repeat an earlier one verbatim,
        ignoring case and whitespace.
    drop_boilerplate : bool
        Drop bylines, "Read more" lines, copyright and photo credits, and strip agency
        datelines such as "(Reuters) -".
    """

    def __init__(self, normalize_unicode: bool = True, drop_repeated: bool = True, drop_boilerplate: bool = True):
        self.normalize_unicode = normalize_unicode
        self.drop_repeated = drop_repeated
        self.drop_boilerplate = drop_boilerplate

    def fit(self, X: Iterable[str], y=None):
        """Stateless; returns self."""
        return self

    def transform(self, X: Iterable[str]) -> np.ndarray:
        """Clean each text; returns an object array of strings."""
        return np.array(["\n\n".join(self.paragraphs(text)) for text in X], dtype=object)

    def paragraphs(self, text: str) -> list[str]:
        """Return the cleaned paragraphs of one article, in order: the kept lines of :meth:`lines`."""
        return [line.text for line in self.lines(text) if line.text]

    def lines(self, text: str) -> list[CleanedLine]:
        """Every non-blank line of one article as this cleaner sees it, and whether it was kept or why not.

        The kept lines' ``text``, in order, are :meth:`paragraphs`; a removed line says why in ``reason``,
        and a repeat names the paragraph it repeats.
        """
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        if self.normalize_unicode:
            text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY)
        seen: dict[str, int] = {}  # casefolded paragraph -> its number
        result: list[CleanedLine] = []
        for line in text.splitlines():
            line = _SPACES.sub(" ", line).strip()
            if not line:
                continue
            kept, reason, repeats = line, None, None
            if self.drop_boilerplate:
                if _BOILERPLATE_LINE.match(line):
                    kept, reason = "", REMOVED_BOILERPLATE
                elif _BYLINE.match(line):
                    kept, reason = "", REMOVED_BYLINE
                elif not (kept := _AGENCY_PREFIX.sub("", line).strip()):
                    reason = REMOVED_AGENCY_TAG
            if kept and self.drop_repeated:
                repeats = seen.get(kept.casefold())
                if repeats is None:
                    seen[kept.casefold()] = len(seen) + 1
                else:
                    kept, reason = "", REMOVED_REPEAT
            result.append(CleanedLine(line, kept, reason, repeats))
        return result

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """One output column: the cleaned text."""
        return np.array(["text"], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags
