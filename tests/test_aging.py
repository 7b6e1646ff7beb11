"""Aging operators and presets: identity at strength 0, damage growing with strength, honest masks,
reproducibility, and every dtype / shape a user can hand in."""

import json

import cv2
import numpy as np
import pytest

from helpers import UsageError, aging, io, env

# Operators that destroy content locally and must say where; the rest change the whole picture mildly.
LOCAL = {"scratches", "cracks", "stains", "dust", "creases", "torn_corners", "torn_edges", "tarnish", "oval_mat"}
GLOBAL = set(aging.OPERATORS) - LOCAL
STRENGTHS = [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.fixture(scope="module")
def photo():
    """A real photo, non-square and small: flat areas, edges, highlights and shadows all occur."""
    rgb = io.read_image(env.samples_dir() / "clean" / "dreambooth_cat_00.jpg")
    return cv2.resize(rgb, (128, 96), interpolation=cv2.INTER_AREA)


def _mad(a, b):
    return float(np.abs(io.to_float(a) - io.to_float(b)).mean())


def test_operator_names_are_the_contract():
    assert set(aging.OPERATORS) == {
        "scratches", "stains", "fading", "overexposure", "sepia", "blur", "grain", "dust", "creases",
        "vignette", "paper_texture", "jpeg", "torn_corners", "torn_edges", "tarnish", "oval_mat", "cracks"}
    for steps in (aging.PRESETS | aging.TRAINING_PRESETS).values():
        for name, probability, low, high in steps:
            assert name in aging.OPERATORS and 0 < probability <= 1 and 0 <= low <= high <= 1


def test_the_speck_finders_training_preset_draws_specks_but_no_hairs():
    """Hairs are thin lines, the damage detector's job; taught as specks they made the speck finder mark the
    tips of the picture's own dark lines (docs/pipeline_experiments.md). Dust at 0.3 or less draws none."""
    img = np.full((256, 256), 128, np.uint8)
    dusty = [p for seed in range(40) for p in aging.age_image(img, "specks", seed=seed).params if p["op"] == "dust"]
    assert len(dusty) > 25 and all(p["hairs"] == 0 and p["specks"] > 0 for p in dusty)
    assert "specks" not in aging.PRESETS  # a training recipe, not a look the demo or the benchmarks show


def test_the_detectors_torn_preset_tears_most_edges():
    """The `torn` training recipe puts pieces torn from the edges on most photos, among other damage; a
    training recipe, not a look the demo or the benchmarks show."""
    img = np.full((96, 128), 128, np.uint8)
    torn = [any(p["op"] == "torn_edges" for p in aging.age_image(img, "torn", seed=seed).params) for seed in range(40)]
    assert 28 <= sum(torn) < 40
    assert "torn" not in aging.PRESETS
    assert all("torn_edges" not in {step[0] for step in steps} for steps in aging.PRESETS.values())


def test_an_added_operator_changes_no_photo_aged_before(photo, monkeypatch):
    """Every recipe and seed ages as it did before `torn_edges` existed: the benchmarks' photos, and so their
    history, stay comparable."""
    recipes = [(preset, seed) for preset in aging.RECIPES if preset != "torn" for seed in (0, 5)]
    now = [aging.age_image(photo, preset, seed=seed) for preset, seed in recipes]
    monkeypatch.delitem(aging.OPERATORS, "torn_edges")
    monkeypatch.setattr(aging, "ADDED_OPERATORS", ())
    before = [aging.age_image(photo, preset, seed=seed) for preset, seed in recipes]
    for a, b in zip(now, before):
        assert a.image.tobytes() == b.image.tobytes() and np.array_equal(a.mask, b.mask) and a.params == b.params


@pytest.mark.parametrize("seed", range(6))
def test_torn_edges_are_pieces_lost_from_the_border(seed):
    """Each torn piece runs in from the print's edge: every marked component touches the border, and the
    board shows through, far from the photo's own grey."""
    img = np.full((120, 160), 128, np.uint8)
    result = aging.apply_operator(img, "torn_edges", 1.0, seed=seed)
    count, labels = cv2.connectedComponents(result.mask.astype(np.uint8))
    assert count > 1
    border = np.zeros_like(result.mask)
    border[[0, -1], :] = border[:, [0, -1]] = True
    assert set(np.unique(labels[border])) >= set(range(1, count))
    assert np.abs(result.image[result.mask].astype(int) - 128).mean() > 60


@pytest.mark.parametrize("name", list(aging.OPERATORS))
@pytest.mark.parametrize("gray", [True, False], ids=["gray", "rgb"])
def test_operators_called_directly_keep_the_contract(photo, name, gray):
    img = io.to_float(io.to_gray(photo) if gray else photo)
    op = aging.OPERATORS[name]
    same, mask, params = op(img, 0.0, np.random.default_rng(0))
    assert same is img and mask.dtype == bool and not mask.any() and params == {}
    aged, mask, params = op(img, 0.7, np.random.default_rng(0))
    assert aged.dtype == np.float32 and aged.shape == img.shape
    assert mask.dtype == bool and mask.shape == img.shape[:2]
    json.dumps(params)


@pytest.mark.parametrize("name", list(aging.OPERATORS))
@pytest.mark.parametrize("gray", [True, False], ids=["gray", "rgb"])
def test_strength_zero_is_identity(photo, name, gray):
    img = io.to_gray(photo) if gray else photo
    for candidate in (img, io.to_float(img), (io.to_float(img) * 65535).astype(np.uint16)):
        result = aging.apply_operator(candidate, name, 0.0, seed=7)
        assert result.image.dtype == candidate.dtype
        assert np.array_equal(result.image, candidate)
        assert not result.mask.any()


@pytest.mark.parametrize("name", list(aging.OPERATORS))
@pytest.mark.parametrize("gray", [True, False], ids=["gray", "rgb"])
def test_damage_grows_with_strength(photo, name, gray):
    img = io.to_gray(photo) if gray else photo
    mads = [_mad(aging.apply_operator(img, name, s, seed=3).image, img) for s in STRENGTHS]
    assert mads[0] == 0.0
    assert all(later > earlier for earlier, later in zip(mads, mads[1:])), mads


@pytest.mark.parametrize("name", sorted(LOCAL))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask_covers_the_destroyed_pixels(photo, name, seed):
    result = aging.apply_operator(photo, name, 1.0, seed=seed)
    change = np.abs(io.to_float(result.image) - io.to_float(photo)).mean(axis=2)
    assert result.mask.dtype == bool and result.mask.shape == photo.shape[:2]
    assert 0 < result.mask.mean() < 0.9
    if name == "stains":  # only the foxing spots destroy; the blots outside the mask tint on purpose
        assert change[result.mask].mean() > change[~result.mask].mean() + 0.01
    else:
        assert change[result.mask].mean() > 3 * change[~result.mask].mean() + 0.02


@pytest.mark.parametrize("name", sorted(GLOBAL))
def test_global_operators_destroy_nothing_locally(photo, name):
    for s in STRENGTHS:
        assert not aging.apply_operator(photo, name, s, seed=5).mask.any()


@pytest.mark.parametrize("name", list(aging.OPERATORS))
def test_same_seed_same_bytes_other_seed_other_result(photo, name):
    first = aging.apply_operator(photo, name, 0.8, seed=11)
    again = aging.apply_operator(photo, name, 0.8, seed=11)
    other = aging.apply_operator(photo, name, 0.8, seed=12)
    assert first.image.tobytes() == again.image.tobytes()
    assert np.array_equal(first.mask, again.mask) and first.params == again.params
    assert first.image.tobytes() != other.image.tobytes()


@pytest.mark.parametrize("name", list(aging.OPERATORS))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(37, 53), (53, 37, 3)], ids=["gray", "rgb"])
def test_dtype_shape_and_range_are_kept(name, dtype, shape, rng):
    img = rng.random(shape)
    img = img.astype(dtype) if np.dtype(dtype).kind == "f" else io.from_float(img, dtype)
    result = aging.apply_operator(img, name, 0.9, seed=1)
    assert result.image.dtype == img.dtype and result.image.shape == img.shape
    assert result.mask.shape == shape[:2]
    if np.dtype(dtype).kind == "f":
        assert result.image.min() >= 0.0 and result.image.max() <= 1.0


@pytest.mark.parametrize("name", list(aging.OPERATORS))
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (1, 7, 3), (2, 2, 3), (5, 1)])
def test_tiny_images_do_not_crash(name, shape):
    img = np.full(shape, 128, dtype=np.uint8)
    result = aging.apply_operator(img, name, 1.0, seed=2)
    assert result.image.shape == shape and result.mask.shape == shape[:2]
    assert result.image.dtype == np.uint8 and result.mask.dtype == bool  # still an image and a mask
    assert result.image.tobytes() == aging.apply_operator(img, name, 1.0, seed=2).image.tobytes()  # reproducible


@pytest.mark.parametrize("preset", list(aging.PRESETS))
@pytest.mark.parametrize("gray", [True, False], ids=["gray", "rgb"])
def test_presets_age_reproducibly(photo, preset, gray):
    img = io.to_gray(photo) if gray else photo
    first = aging.age_image(img, preset, seed=21)
    assert first.image.dtype == img.dtype and first.image.shape == img.shape
    assert first.image.tobytes() == aging.age_image(img, preset, seed=21).image.tobytes()
    others = [aging.age_image(img, preset, seed=s).image.tobytes() for s in (22, 23)]
    assert first.image.tobytes() not in others
    json.dumps(first.params)  # goes into the manifest CSV as JSON
    applied = [p["op"] for p in first.params]
    assert applied == [name for name in aging.OPERATORS if name in applied]  # in the order of OPERATORS


def test_preset_strength_scales_every_operator(photo):
    full = aging.age_image(photo, "heavy", seed=4)
    half = aging.age_image(photo, "heavy", seed=4, strength=0.5)
    assert [p["op"] for p in full.params] == [p["op"] for p in half.params]
    for f, h in zip(full.params, half.params):
        assert h["strength"] == pytest.approx(f["strength"] / 2, abs=1e-3)
    assert _mad(half.image, photo) < _mad(full.image, photo)
    assert np.array_equal(aging.age_image(photo, "heavy", seed=4, strength=0.0).image, photo)


def test_fixed_operators_keep_their_layout_when_others_are_switched(photo):
    """The slider widgets rely on this: moving one slider must not reshuffle the other operators."""
    alone = aging.age_image(photo, operators={"scratches": 0.6}, seed=9)
    with_idle = aging.age_image(photo, operators={"scratches": 0.6, "dust": 0.0, "stains": 0.0}, seed=9)
    assert alone.image.tobytes() == with_idle.image.tobytes()
    assert aging.age_image(photo, seed=9, rng=np.random.default_rng(9)).image.tobytes() == \
        aging.age_image(photo, seed=9).image.tobytes()
    assert aging.age_image(photo, seed=None).image.shape == photo.shape  # fresh entropy


def test_sepia_keeps_gray_images_gray(photo):
    gray = io.to_gray(photo)
    toned = aging.apply_operator(gray, "sepia", 1.0).image
    assert toned.ndim == 2 and _mad(toned, gray) > 0
    rgb = aging.apply_operator(photo, "sepia", 1.0).image.astype(float)
    assert (rgb[..., 0] >= rgb[..., 2]).mean() > 0.95  # warm: red above blue nearly everywhere


@pytest.mark.parametrize("kwargs, words", [
    ({"preset": "ancient"}, ["ancient", "seed", "daguerreotype"]),
    ({"operators": {"scratch": 0.5}}, ["scratch", "scratches", "oval_mat"]),
    ({"strength": 1.5}, ["between 0 and 1"]),
    ({"strength": float("nan")}, ["between 0 and 1"]),
    ({"operators": {"dust": -0.1}}, ["dust", "between 0 and 1"]),
    ({"operators": {"dust": "lots"}}, ["dust", "between 0 and 1", "lots"]),
])
def test_bad_names_and_strengths_are_usage_errors(photo, kwargs, words):
    with pytest.raises(UsageError) as err:
        aging.age_image(photo, **kwargs)
    for word in words:
        assert word in str(err.value)


def test_unusable_arrays_are_refused_clearly():
    from helpers import HelpersError
    for bad in (np.zeros((4, 4, 4), np.uint8), np.zeros((0, 3), np.uint8), np.zeros((4, 4), np.int64)):
        with pytest.raises(HelpersError, match="cannot age"):
            aging.age_image(bad)


def test_a_damaged_pixel_that_did_not_visibly_change_is_not_marked():
    """Dark dust on black, paper-white cracks on paper white: drawn over but not destroyed, so not marked."""
    black, paper = np.zeros((96, 128), np.uint8), np.full((96, 128), 232, np.uint8)  # the cracks' own grey
    assert aging.apply_operator(paper, "cracks", 1.0, seed=1).mask.mean() < 0.2 * \
        aging.apply_operator(black, "cracks", 1.0, seed=1).mask.mean()
    result = aging.apply_operator(black, "dust", 1.0, seed=2)
    changed = np.abs(result.image.astype(int)) > 255 * aging.VISIBLE_CHANGE
    assert result.mask.any() and not (result.mask & ~changed).any()
