"""The aging explorer's callbacks, driven headless by setting widget values, and the figure helpers."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from helpers.aging import OPERATORS, PRESETS, age_image
from helpers.plots import figure_png, image_grid, operator_strength_grid, save_grid_png
from helpers.widgets import CUSTOM, AgingExplorer, preset_strengths, preview


@pytest.fixture
def photo(rng):
    yy, xx = np.mgrid[0:48, 0:64]
    return np.clip((xx / 64 * 0.6 + yy / 48 * 0.3)[..., None] + rng.normal(0, 0.03, (48, 64, 3)), 0, 1
                   ).astype(np.float32)


def _decoded(view) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(view.value)))


def test_starts_on_the_preset_with_sliders_picturing_it(photo):
    explorer = AgingExplorer(photo, preset="daguerreotype", seed=3)
    assert explorer.preset.value == "daguerreotype"
    assert explorer.strengths() == preset_strengths("daguerreotype")
    assert explorer.sliders["oval_mat"].value > 0 and explorer.sliders["jpeg"].value == 0
    assert _decoded(explorer.views["aged"]).shape == photo.shape
    assert _decoded(explorer.views["mask"]).shape == photo.shape[:2]


def test_moving_a_slider_switches_to_custom_and_ages_with_it(photo):
    explorer = AgingExplorer(photo, preset=CUSTOM)
    assert np.array_equal(explorer.result.image, photo)  # custom with every slider at 0
    explorer.sliders["scratches"].value = 0.8
    assert explorer.preset.value == CUSTOM
    changed = np.abs(explorer.result.image - photo).max(axis=2) > 0.02
    assert explorer.result.mask.any() and changed[explorer.result.mask].mean() > 0.5
    assert "scratches 0.80" in explorer.status.value


def test_slider_from_a_preset_moves_to_custom_mode(photo):
    explorer = AgingExplorer(photo, preset="seed")
    explorer.sliders["dust"].value = 0.5
    assert explorer.preset.value == CUSTOM
    assert explorer.sliders["scratches"].value == preset_strengths("seed")["scratches"]  # others kept
    assert "dust" in [p["op"] for p in explorer.result.params]


def test_every_slider_at_zero_gives_the_input_back(photo):
    explorer = AgingExplorer(photo, preset="heavy")
    for slider in explorer.sliders.values():
        slider.value = 0.0
    aged, mask = explorer.render()
    assert np.array_equal(aged, photo) and not mask.any()
    assert np.array_equal(_decoded(explorer.views["aged"]), _decoded(explorer.views["clean"]))


def test_choosing_a_preset_sets_the_sliders_and_stays_in_preset_mode(photo):
    explorer = AgingExplorer(photo, preset=CUSTOM, seed=5)
    explorer.preset.value = "old-print"
    assert explorer.preset.value == "old-print"
    # Sliders picture the preset: on exactly for its operators, at the middle of each one's range.
    used = {name: (low + high) / 2 for name, _, low, high in PRESETS["old-print"]}
    assert set(used) >= {"fading", "sepia", "scratches", "dust"} and "cracks" not in used
    for name, slider in explorer.sliders.items():
        assert slider.value == pytest.approx(used.get(name, 0.0), abs=0.005), name
    assert explorer.sliders["fading"].value == pytest.approx(0.4)
    assert explorer.sliders["sepia"].value == pytest.approx(0.7)
    assert explorer.sliders["cracks"].value == 0 and explorer.sliders["oval_mat"].value == 0
    # The picture is the preset's own random draw for the seed, as aging.age_image makes it.
    direct = age_image(photo, "old-print", seed=5)
    assert np.array_equal(explorer.result.image, direct.image)
    assert np.array_equal(explorer.result.mask, direct.mask)
    assert not np.array_equal(direct.image, photo)
    assert np.array_equal(_decoded(explorer.views["aged"]), np.rint(direct.image * 255).astype(np.uint8))
    assert not np.array_equal(direct.image, age_image(photo, operators=explorer.strengths(), seed=5).image)


def test_seed_and_photo_choice_rerender(photo):
    other = photo[::-1].copy()
    explorer = AgingExplorer({"a": photo, "b": other}, preset="heavy")
    first = explorer.result.image.copy()
    explorer.seed.value = 1
    assert not np.array_equal(explorer.result.image, first)
    explorer.picture.value = "b"
    assert np.array_equal(_decoded(explorer.views["clean"]), np.rint(other * 255).astype(np.uint8))


def test_preview_is_deterministic_and_custom_uses_exactly_the_strengths(photo):
    assert np.array_equal(preview(photo, None, "mild", 4).image, preview(photo, None, "mild", 4).image)
    result = preview(photo, {"grain": 0.5, "blur": 0.0}, seed=2)
    assert [p["op"] for p in result.params if p["strength"] > 0] == ["grain"]


def test_preset_strengths_cover_every_operator():
    for preset in PRESETS:
        values = preset_strengths(preset)
        assert set(values) == set(OPERATORS) and all(0 <= v <= 1 for v in values.values())
        assert sum(v > 0 for v in values.values()) == len(PRESETS[preset])


def test_image_grid_handles_gray_rgb_masks_and_blanks(photo):
    fig = image_grid([[photo, photo[..., 0], photo[..., 0] > 0.5], [np.uint8(photo * 255), None]],
                     ["row a", "row b"], ["rgb", "gray", "mask"])
    assert len(fig.axes) == 6
    assert fig.axes[0].get_title() == "rgb" and fig.axes[3].get_ylabel() == "row b"
    png = figure_png(fig)
    assert png.startswith(b"\x89PNG")


def test_save_grid_png_refuses_to_overwrite(tmp_path, photo):
    path = save_grid_png(tmp_path / "g.png", [[photo]])
    assert Image.open(path).size[0] > 0
    with pytest.raises(Exception, match="already exists"):
        save_grid_png(path, [[photo]])


def test_operator_strength_grid_has_a_row_per_operator(photo):
    fig = operator_strength_grid(photo[:32, :32], strengths=(0, 1), operators=["scratches", "sepia"],
                                 with_masks=True)
    assert len(fig.axes) == 8
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == ["scratches", "scratches mask", "sepia", "sepia mask"]
