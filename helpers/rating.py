"""Blind A/B ratings for photos without a clean original (notebook 05): which of two restorations of the
same photo looks better? Plain functions, so the pairing, the log and the scoring are tested headless and
the widget (helpers/rating_widgets.py) only shows pictures and calls them.

- `pairings`: every pair of methods on every photo, in a seeded random order, each side drawn at random,
  so a rater cannot learn where a method sits.
- `RatingLog`: one CSV row per rating (rater, photo, left, right, choice, time), appended and flushed at
  once, so a closed notebook loses nothing.
- `win_rates`: per method, wins / ties / losses with a Wilson 95 % interval (a tie counts half).
- `bradley_terry`: strengths p_i with P(i beats j) = p_i / (p_i + p_j), fitted by Hunter's (2004) MM
  iterations (a tie: half a win each way), normalised to sum to 1.
"""

from __future__ import annotations

import csv
import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import UsageError

CHOICES = ("left", "right", "same")
FIELDS = ("rater", "photo", "left", "right", "choice", "time")


@dataclass(frozen=True)
class Pair:
    photo: str
    left: str
    right: str


def pairings(photos: list[str], methods: list[str], seed: int = 0) -> list[Pair]:
    """Every unordered pair of methods on every photo, shuffled, sides at random (seeded)."""
    if len(set(methods)) < 2:
        raise UsageError("A/B rating needs at least two different methods")
    rng = np.random.default_rng(seed)
    pairs = []
    for photo in photos:
        for a, b in itertools.combinations(methods, 2):
            pairs.append(Pair(photo, a, b) if rng.random() < 0.5 else Pair(photo, b, a))
    return [pairs[i] for i in rng.permutation(len(pairs))]


class RatingLog:
    """Ratings appended to a CSV file (created with its header when new)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists() or self.path.stat().st_size == 0:
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(FIELDS)

    def add(self, rater: str, pair: Pair, choice: str, when: float | None = None) -> dict:
        if choice not in CHOICES:
            raise UsageError(f"choice must be one of {', '.join(CHOICES)}, not {choice!r}")
        row = {"rater": rater, "photo": pair.photo, "left": pair.left, "right": pair.right, "choice": choice,
               "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() if when is None else when))}
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, FIELDS).writerow(row)
        return row

    def read(self) -> list[dict]:
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        for number, row in enumerate(rows, start=2):
            if row.get("choice") not in CHOICES or not row.get("left") or not row.get("right"):
                raise UsageError(f"{self.path}: line {number} is not a rating: {row}")
        return rows


def outcomes(ratings: list[dict]) -> list[tuple[str, str, float]]:
    """(method a, method b, a's score: 1 win, 0.5 tie, 0 loss) per rating."""
    score = {"left": 1.0, "right": 0.0, "same": 0.5}
    return [(r["left"], r["right"], score[r["choice"]]) for r in ratings]


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (sane at 0 and n, unlike the normal approximation)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rates(ratings: list[dict]) -> list[dict]:
    """Per method, best first: comparisons, wins, ties, losses, win rate (ties half) and its interval."""
    tally: dict[str, dict] = {}
    for a, b, score in outcomes(ratings):
        for method, points in ((a, score), (b, 1 - score)):
            t = tally.setdefault(method, {"method": method, "n": 0, "wins": 0, "ties": 0, "losses": 0})
            t["n"] += 1
            t["wins" if points == 1 else "ties" if points == 0.5 else "losses"] += 1
    for t in tally.values():
        t["win_rate"] = (t["wins"] + 0.5 * t["ties"]) / t["n"]
        t["ci_low"], t["ci_high"] = wilson_interval(t["wins"] + 0.5 * t["ties"], t["n"])
    return sorted(tally.values(), key=lambda t: -t["win_rate"])


def bradley_terry(ratings: list[dict], iterations: int = 1000, tolerance: float = 1e-10) -> dict[str, float]:
    """Bradley-Terry strengths (summing to 1), best first, by MM updates p_i = W_i / sum_j n_ij/(p_i+p_j).

    A method that never won anything would go to 0 (and one that never lost to infinity): a prior of one
    tie against every other method keeps every strength finite, as is usual for small rating sets."""
    methods = sorted({m for a, b, _ in outcomes(ratings) for m in (a, b)})
    index = {m: i for i, m in enumerate(methods)}
    k = len(methods)
    wins = np.full((k, k), 0.5) - 0.5 * np.eye(k)  # the prior: half a win each way per pair
    for a, b, score in outcomes(ratings):
        wins[index[a], index[b]] += score
        wins[index[b], index[a]] += 1 - score
    games = wins + wins.T
    p = np.full(k, 1.0 / k)
    for _ in range(iterations):
        denominator = (games / (p[:, None] + p[None, :])).sum(1)
        updated = wins.sum(1) / denominator
        updated /= updated.sum()
        if np.abs(updated - p).max() < tolerance:
            p = updated
            break
        p = updated
    return dict(sorted(((m, float(p[index[m]])) for m in methods), key=lambda item: -item[1]))
