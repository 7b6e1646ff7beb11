"""The component verifier (restore/verify.py, models/verifier.py): what it measures of each detected
component, what a fill gains there, and that the pipeline fills only the components it keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.models import build_models
from helpers.restore import DEFAULT_CHECKPOINTS
from helpers.restore.fill import widen
from helpers.restore.verify import FEATURES, components, fill_benefit, verified
from helpers.verify_training import kept_benefit, verify_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _scene():
    """A smooth gray ramp (the clean photo) with a thin dark line of its own, and the aged photo: the ramp
    plus a bright 3 x 3 speck. Both the speck and the line are 'found'."""
    y, x = np.mgrid[0:96, 0:96].astype(np.float32)
    clean = 0.3 + 0.4 * x / 95
    clean[60, 10:50] = 0.05  # the picture's own line: filling it erases it
    aged = clean.copy()
    aged[20:23, 70:73] = 1.0  # damage: a speck the fill removes
    found = np.zeros_like(clean, bool)
    found[20:23, 70:73] = True
    found[60, 10:50] = True
    return clean, aged, found


def test_each_component_gets_every_feature_and_its_fill_benefit():
    clean, aged, found = _scene()
    probability = found.astype(np.float32) * 0.9
    labels, count, table, filled = components(aged, probability, None, found)
    assert count == 3 and table.shape == (2, len(FEATURES)) and np.isfinite(table).all()
    speck, line = labels[21, 71], labels[60, 30]
    column = dict(zip(FEATURES, table.T))
    assert np.exp(column["log_area"][speck - 1]) == pytest.approx(9)
    assert np.exp(column["log_area"][line - 1]) == pytest.approx(40)
    assert column["elongation"][line - 1] > 30 > column["elongation"][speck - 1]  # 40^2 / 40 against 3^2 / 9
    assert column["departure_signed"][speck - 1] > 20 and column["departure_signed"][line - 1] < -20  # levels
    assert column["detector_max"] == pytest.approx(0.9) and (column["specks_max"] == 0).all()
    outside = ~widen(found, 1)
    assert (filled[outside] == aged[outside]).all() and not np.allclose(filled[~outside], aged[~outside])
    benefit = fill_benefit(labels, count, aged, filled, clean)
    assert benefit[speck - 1] > 0 > benefit[line - 1]  # the speck's fill helps, the line's erases a line


def test_features_are_read_at_the_256_px_scale():
    """A photo twice the size, damage and all, describes its components (nearly) as the small one does."""
    clean, aged, found = _scene()
    big = lambda a: np.kron(a, np.ones((6, 6), a.dtype))  # 576 px: scale 2.25
    _, _, small_table, _ = components(aged, found * 0.9, None, found)
    _, _, big_table, _ = components(big(aged), big(found) * 0.9, None, big(found).astype(bool))
    column = FEATURES.index("log_area")
    assert big_table[:, column] == pytest.approx(small_table[:, column] + np.log(36 / 2.25 ** 2), abs=1e-4)


class _KeepBright(torch.nn.Module):
    """A stand-in verifier: keeps a component when the photo is brighter there than the fill would be."""

    def forward(self, table):
        return table[:, FEATURES.index("departure_signed"), None]


def test_the_verifier_drops_the_components_it_judges_not_worth_a_fill():
    clean, aged, found = _scene()
    kept = verified(_KeepBright(), aged, found * 0.9, None, found)
    assert kept[20:23, 70:73].all() and not kept[60].any()
    assert (kept <= found).all()
    nothing = np.zeros_like(found)
    assert verified(_KeepBright(), aged, found * 0.0, None, nothing) is nothing


def test_a_fresh_verifier_standardises_its_features_and_judges_any_number_of_components():
    verifier, discriminator, spec = build_models("verifier")
    assert discriminator is None and spec.task == "verify" and spec.config["features"] == len(FEATURES)
    verifier.eval()
    assert verifier(torch.zeros(0, len(FEATURES))).shape == (0, 1)
    assert verifier(torch.randn(5, len(FEATURES))).shape == (5, 1)
    with pytest.raises(Exception, match="gray"):
        build_models("verifier", channels=3)


def test_the_verifiers_loss_and_score_follow_what_each_fill_gained():
    benefit = torch.tensor([100.0, -1.0, 4.0, -25.0])
    oracle = torch.tensor([[5.0], [-5.0], [5.0], [-5.0]])
    assert kept_benefit(oracle, benefit)["kept_share_of_oracle"] == pytest.approx(1.0)
    assert kept_benefit(torch.ones(4, 1), benefit) == {"kept_share_of_oracle": pytest.approx(0.0), "dropped": 0.0}
    assert kept_benefit(-oracle, benefit)["kept_share_of_oracle"] < 0
    assert verify_loss(oracle, benefit) < verify_loss(-oracle, benefit)
    # weighted by sqrt(|benefit|): the big component's mistake costs more than the small one's
    big_wrong = torch.tensor([[-5.0], [-5.0], [5.0], [-5.0]])
    small_wrong = torch.tensor([[5.0], [5.0], [5.0], [-5.0]])
    assert verify_loss(big_wrong, benefit) > verify_loss(small_wrong, benefit)


class _BrightDetector(torch.nn.Module):
    """A stand-in damage detector marking every pixel brighter than 0.9."""

    stride = 1

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # tiling reads the device off a parameter

    def forward(self, x):
        return ((x + 1) / 2 - 0.9) * 100


class _Judge(torch.nn.Module):
    """A stand-in verifier keeping every component (`keep`) or none."""

    def __init__(self, keep: bool):
        super().__init__()
        self.keep = keep

    def forward(self, table):
        return torch.full((len(table), 1), 10.0 if self.keep else -10.0)


def test_the_pipeline_fills_only_what_the_verifier_keeps_and_says_what_it_dropped():
    from helpers.io import from_float
    from helpers.restore import Restorer, restore_image
    from helpers.restore.pipeline import pipeline_restorer

    clean, aged, found = _scene()
    aged[40, 5:90] = 1.0  # a white scratch besides the speck: two components
    photo = from_float(aged)
    unchanged = Restorer("reference", 1, lambda planes, tile, overlap: (planes, None), False)
    results = {}
    for keep in (True, False):
        notes = {}
        restorer = pipeline_restorer(_BrightDetector(), unchanged, 0.5, tone="off", focus="off", verifier=_Judge(keep))
        results[keep], mask = restore_image(photo, restorer, notes=notes)
        assert notes["fill"]["found"] == pytest.approx((9 + 85) / 96 ** 2, abs=1e-5)
        assert notes["fill"]["dropped"] == (0.0 if keep else notes["fill"]["found"])
        assert (mask > 0).sum() == (94 if keep else 0)
    assert np.abs(results[True][40].astype(float) - 255).mean() > 100  # the scratch filled
    assert (results[False] == photo).all()  # nothing kept: nothing filled


@pytest.mark.skipif(not all(DEFAULT_CHECKPOINTS[s].is_file() for s in ("detector", "specks")),
                    reason="the bundled detectors are not in helpers/weights")
def test_the_verifiers_threshold_is_the_one_that_repairs_validation_photos_best():
    """Calibration judges the bundled detectors' components of aged photos: a verifier that keeps them all
    gains what filling every detection gains at any threshold, one that keeps none gains nothing."""
    from helpers.age_folder import prepare_clean
    from helpers.data import bundled_samples
    from helpers.io import from_float, read_image
    from helpers.restore.detect import CANDIDATES
    from helpers.verify_training import calibrate_threshold

    photos = [from_float(prepare_clean(read_image(bundled_samples("clean")[0]), 96, gray=True), np.uint8)]
    _, everything = calibrate_threshold(_Judge(True), photos)
    threshold, nothing = calibrate_threshold(_Judge(False), photos)
    assert set(everything) == set(CANDIDATES) and len(set(everything.values())) == 1
    assert set(nothing.values()) == {0.0} and threshold == CANDIDATES[0]
    assert next(iter(everything.values())) != 0.0
