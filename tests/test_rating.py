"""Notebook 05's blind A/B rating: the pairing, the log, the tallies and the ranking, and its widgets
driven by calling their callbacks."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest

from helpers import UsageError, metrics
from helpers.rating import Pair, RatingLog, bradley_terry, pairings, wilson_interval, win_rates
from helpers.rating_widgets import ABRater, WipeViewer, wipe

METHODS = ["pipeline", "unet", "classical"]


def rating(left, right, choice):
    return {"rater": "r", "photo": "p", "left": left, "right": right, "choice": choice, "time": ""}


def test_every_pair_of_methods_on_every_photo_once_with_both_sides_used():
    pairs = pairings(["a", "b", "c", "d"], METHODS, seed=3)
    assert len(pairs) == 4 * 3
    assert {(p.photo, frozenset((p.left, p.right))) for p in pairs} == {
        (photo, frozenset(pair)) for photo in "abcd" for pair in itertools.combinations(METHODS, 2)}
    assert {p.left for p in pairs} == set(METHODS)  # no method always on one side
    assert pairings(["a", "b", "c", "d"], METHODS, seed=3) == pairs  # seeded
    assert pairings(["a", "b", "c", "d"], METHODS, seed=4) != pairs
    with pytest.raises(UsageError):
        pairings(["a"], ["unet", "unet"])


def test_the_log_appends_rows_that_read_back_and_refuses_a_bad_choice(tmp_path):
    log = RatingLog(tmp_path / "ratings.csv")
    log.add("ann", Pair("p1", "unet", "pipeline"), "right", when=0)
    RatingLog(tmp_path / "ratings.csv").add("bob", Pair("p2", "classical", "unet"), "same", when=0)  # reopened
    rows = log.read()
    assert [(r["rater"], r["photo"], r["left"], r["right"], r["choice"]) for r in rows] == [
        ("ann", "p1", "unet", "pipeline", "right"), ("bob", "p2", "classical", "unet", "same")]
    assert rows[0]["time"] == "1970-01-01T00:00:00"
    with pytest.raises(UsageError):
        log.add("ann", Pair("p1", "unet", "pipeline"), "both")
    with (tmp_path / "ratings.csv").open("a") as f:
        f.write("x,p,unet,pipeline,maybe,t\n")
    with pytest.raises(UsageError, match="ratings.csv: line 4"):
        log.read()


def test_win_rates_count_ties_as_half_with_wilson_intervals():
    ratings = [rating("a", "b", "left"), rating("b", "a", "left"), rating("a", "c", "same"),
               rating("c", "b", "left"), rating("a", "b", "left")]
    table = {t["method"]: t for t in win_rates(ratings)}
    assert (table["a"]["wins"], table["a"]["ties"], table["a"]["losses"], table["a"]["n"]) == (2, 1, 1, 4)
    assert table["a"]["win_rate"] == pytest.approx(2.5 / 4)
    assert table["b"]["win_rate"] == pytest.approx(1 / 4) and table["c"]["win_rate"] == pytest.approx(1.5 / 2)
    assert [t["method"] for t in win_rates(ratings)] == ["c", "a", "b"]
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)  # the textbook value
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0


def test_bradley_terry_matches_the_closed_form_for_two_methods_and_orders_three():
    # two methods: p_a / (p_a + p_b) = a's wins / games, with the prior of half a win each way
    ratings = [rating("a", "b", "left")] * 3 + [rating("a", "b", "right")]
    strengths = bradley_terry(ratings)
    assert strengths["a"] == pytest.approx(3.5 / 5, abs=1e-6) and sum(strengths.values()) == pytest.approx(1)
    ratings = [rating("x", "y", "left")] * 4 + [rating("y", "z", "left")] * 4 + [rating("x", "z", "left")] * 4
    assert list(bradley_terry(ratings)) == ["x", "y", "z"]
    assert all(np.isfinite(v) and v > 0 for v in bradley_terry(ratings).values())  # z never won: still finite


def test_wipe_shows_the_restoration_left_of_the_line_and_the_original_right():
    before, after = np.zeros((4, 10), np.uint8), np.full((4, 10), 255, np.uint8)
    picture = wipe(before, after, 0.5)
    assert (picture[:, :4] == 1).all() and (picture[:, 6:] == 0).all()
    assert (wipe(before, after, 0.0)[:, 1:] == 0).all() and (wipe(before, after, 1.0)[:, :-1] == 1).all()


def test_the_wipe_viewer_follows_its_slider_and_menu():
    original = np.zeros((8, 8), np.uint8)
    viewer = WipeViewer(original, {"unet": np.full((8, 8), 100, np.uint8), "pipeline": np.full((8, 8), 200, np.uint8)})
    first = viewer.image.value
    viewer.position.value = 1.0
    assert viewer.image.value != first and viewer.show()[0, 0, 0] == pytest.approx(100 / 255)
    viewer.method.value = "pipeline"
    assert viewer.show()[0, 0, 0] == pytest.approx(200 / 255)


def test_the_rater_logs_each_button_and_stops_after_the_last_pair(tmp_path):
    photos = ["p1", "p2"]
    pairs = pairings(photos, METHODS, seed=0)
    pictures = {(p, m): np.full((6, 6), 40 * i, np.uint8) for p in photos for i, m in enumerate(METHODS)}
    log = RatingLog(tmp_path / "r.csv")
    rater = ABRater(pairs, pictures, log, rater="ci")
    script = ["left", "right", "same"] * 2
    for choice in script:
        rater.buttons[choice].click()  # what a person's click runs
    assert rater.done and all(b.disabled for b in rater.buttons.values())
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["choice"] for r in rows] == script
    assert [(r["photo"], r["left"], r["right"]) for r in rows] == [(p.photo, p.left, p.right) for p in pairs]
    with pytest.raises(IndexError):
        rater.choose("left")


def test_no_reference_scores_call_a_blur_blurrier_and_smoother():
    import cv2

    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(128, 40, (64, 64)), 0, 255).astype(np.uint8)
    photo[:, 32:] = np.clip(photo[:, 32:].astype(int) + 60, 0, 255)
    same = metrics.no_reference(photo, photo)
    assert same["edge_contrast_vs_input"] == pytest.approx(1) and same["noise_ratio"] == pytest.approx(1)
    blurred = metrics.no_reference(photo, cv2.GaussianBlur(photo, (0, 0), 2))
    assert blurred["edge_contrast_vs_input"] < 0.6 and blurred["noise_ratio"] < 0.3
    assert blurred["rms_contrast"] < blurred["rms_contrast_input"]
