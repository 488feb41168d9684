"""Rolling-origin (forward-chaining) validation: choose settings that hold up in later periods.

One validation year over-fits a choice (issue 15: the CEP settings chosen on 2017 alone lost most
of their lead on later years). With origins 2014-12-31, 2015-12-31 and 2016-12-31 a candidate is
fitted on <= 2014 and scored on 2015, on <= 2015 -> 2016 and on <= 2016 -> 2017; candidates are
ranked by the mean of those scores, and the fold spread says how much of a difference is noise.
"""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from newsclf.train.data.articles import Articles, DataError


@dataclass(frozen=True)
class Fold:
    """One forward step: fit on the articles dated up to ``origin``, score on ``scored``."""

    origin: str
    fit: Articles
    scored: Articles


@dataclass(frozen=True)
class Ranked:
    """One candidate's fold scores and width (features its classifiers read: what prediction and its
    artifact cost grow with)."""

    scores: tuple[float, ...]
    width: int

    @property
    def mean(self) -> float:
        """Mean score over the folds: what candidates are ranked by."""
        return statistics.fmean(self.scores)

    @property
    def spread(self) -> float:
        """Standard deviation of the fold scores (0 with one fold)."""
        return statistics.stdev(self.scores) if len(self.scores) > 1 else 0.0


def rolling_folds(articles: Articles, origins: Sequence[str]) -> list[Fold]:
    """The folds of ``origins`` over dated ``articles`` (train + validation, in time order or not).

    Fold i fits on articles dated up to ``origins[i]`` and scores those after it up to
    ``origins[i + 1]`` (the last fold: all later articles). An undated article, or a fold with
    nothing to fit or score, is a DataError naming the fix.
    """
    days = []
    for item_id, raw in zip(articles.ids, articles.dates):
        try:
            days.append(datetime.date.fromisoformat(str(raw)[:10]).isoformat())
        except ValueError:
            raise DataError(
                f"search.origins: article {item_id} has date {raw!r}, not an ISO date; rolling-origin "
                "validation needs a date on every article (or remove search.origins)"
            ) from None
    folds = []
    for number, origin in enumerate(origins):
        end = origins[number + 1] if number + 1 < len(origins) else "9999-12-31"
        fit = [i for i, day in enumerate(days) if day <= origin]
        scored = [i for i, day in enumerate(days) if origin < day <= end]
        if not fit or not scored:
            raise DataError(
                f"search.origins: the fold at {origin} has {len(fit)} articles to fit on and {len(scored)} to "
                f"score (dates {min(days)} to {max(days)}); move the origin inside that range"
            )
        folds.append(Fold(origin, articles.subset(fit), articles.subset(scored)))
    return folds


def choose(ranked: Sequence[Ranked]) -> int:
    """The index of the candidate to keep: the narrowest of those equal to the best within the spread.

    A candidate ties the best (highest mean) when its mean gap to the best, fold by fold, is no more
    than the standard deviation of those gaps. The gaps are paired by fold on purpose: the folds'
    own scores also move with how hard each year is, which would make a model that loses every
    year look level. The higher mean breaks ties of width.
    """
    best = max(ranked, key=lambda candidate: candidate.mean)

    def ties_best(candidate: Ranked) -> bool:
        gaps = [top - score for top, score in zip(best.scores, candidate.scores)]
        return statistics.fmean(gaps) <= (statistics.stdev(gaps) if len(gaps) > 1 else 0.0)

    eligible = [i for i, candidate in enumerate(ranked) if ties_best(candidate)]
    return min(eligible, key=lambda i: (ranked[i].width, -ranked[i].mean, i))
