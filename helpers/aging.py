"""Make clean photos look old: degradation operators with a strength in [0, 1], presets, and a damage mask.

Training pairs for the restorer come from here: `age_image(clean)` returns the aged picture and a mask of
the pixels whose content was destroyed (scratches, stains, dust, tears, mat...) for inpainting losses. The
operators themselves live in `aging_ops`; this module orders them, draws preset parameters, converts
dtypes and keeps the randomness reproducible: one seed gives the same bytes everywhere.
"""

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from . import HelpersError, UsageError
from . import aging_ops as ops

# Display order is also the order of application, which follows the life of a print: exposure and
# development, toning, the paper, surface damage, the case or mat, physical tears, and last the scan.
OPERATORS: dict[str, Callable] = {
    "fading": ops.fading,
    "overexposure": ops.overexposure,
    "blur": ops.blur,
    "grain": ops.grain,
    "sepia": ops.sepia,
    "paper_texture": ops.paper_texture,
    "vignette": ops.vignette,
    "tarnish": ops.tarnish,
    "stains": ops.stains,
    "creases": ops.creases,
    "scratches": ops.scratches,
    "cracks": ops.cracks,
    "dust": ops.dust,
    "oval_mat": ops.oval_mat,
    "torn_corners": ops.torn_corners,
    "torn_edges": ops.torn_edges,
    "jpeg": ops.jpeg,
}
# Operators added after the first sixteen seed their streams apart (see `_streams`), so adding one changed
# no photo that any recipe and seed aged before.
ADDED_OPERATORS = ("torn_edges",)

# name -> [(operator, probability of being applied, strength_min, strength_max)]
PRESETS = {
    # The study's aged Imagenette: scratches, stains, reduced contrast and overexposure.
    "seed": [("scratches", 1.0, 0.3, 0.9), ("stains", 0.8, 0.2, 0.8),
             ("fading", 0.8, 0.2, 0.8), ("overexposure", 0.5, 0.1, 0.6)],
    "old-print": [("fading", 0.8, 0.2, 0.6), ("blur", 0.5, 0.1, 0.5), ("grain", 0.7, 0.2, 0.6),
                  ("sepia", 0.7, 0.4, 1.0), ("paper_texture", 0.8, 0.3, 0.8), ("vignette", 0.5, 0.2, 0.7),
                  ("stains", 0.6, 0.2, 0.7), ("creases", 0.3, 0.2, 0.7), ("scratches", 0.8, 0.2, 0.7),
                  ("dust", 0.7, 0.2, 0.7), ("torn_corners", 0.15, 0.3, 0.8), ("jpeg", 0.3, 0.2, 0.6)],
    # Silvery low contrast, a tarnish halo at the edges, the oval mat and fine scratches.
    "daguerreotype": [("fading", 1.0, 0.4, 0.8), ("blur", 0.5, 0.1, 0.4), ("vignette", 0.6, 0.2, 0.5),
                      ("tarnish", 1.0, 0.4, 1.0), ("scratches", 1.0, 0.15, 0.4), ("dust", 0.6, 0.1, 0.4),
                      ("oval_mat", 1.0, 0.5, 1.0)],
    # A dried-out print: emulsion crack networks with flakes, creases, dust, toning (old_w_scratch photos).
    "cracked": [("fading", 0.7, 0.1, 0.5), ("blur", 0.3, 0.1, 0.3), ("grain", 0.5, 0.1, 0.4),
                ("sepia", 0.8, 0.4, 1.0), ("paper_texture", 0.5, 0.2, 0.6), ("stains", 0.4, 0.1, 0.5),
                ("creases", 0.4, 0.3, 0.8), ("scratches", 0.4, 0.1, 0.5), ("cracks", 1.0, 0.3, 1.0),
                ("dust", 0.6, 0.1, 0.5), ("torn_corners", 0.2, 0.3, 0.7), ("jpeg", 0.4, 0.2, 0.6)],
    # Local damage only, the tone untouched: a restorer must remove it and leave every other pixel alone.
    "local": [("scratches", 0.8, 0.2, 0.8), ("cracks", 0.4, 0.2, 0.8), ("dust", 0.8, 0.2, 0.8),
              ("torn_corners", 0.3, 0.2, 0.6)],
    # A print that aged well but was scanned badly: grain, soft focus, JPEG, a little paper texture.
    "scan": [("blur", 0.5, 0.1, 0.5), ("grain", 0.8, 0.1, 0.6), ("paper_texture", 0.4, 0.1, 0.5),
             ("jpeg", 0.6, 0.2, 0.8)],
    # The picture survived but its tones did not: each tonal operator alone or together, weak to full.
    "faded": [("fading", 0.4, 0.0, 1.0), ("overexposure", 0.3, 0.0, 1.0), ("sepia", 0.3, 0.0, 1.0),
              ("vignette", 0.3, 0.0, 1.0), ("tarnish", 0.2, 0.0, 1.0), ("stains", 0.2, 0.0, 1.0)],
    "mild": [("fading", 0.6, 0.1, 0.3), ("grain", 0.5, 0.1, 0.3), ("paper_texture", 0.4, 0.1, 0.3),
             ("scratches", 0.7, 0.05, 0.3), ("dust", 0.6, 0.05, 0.3), ("stains", 0.3, 0.05, 0.25)],
    "heavy": [("fading", 0.9, 0.4, 0.8), ("overexposure", 0.4, 0.2, 0.6), ("blur", 0.6, 0.3, 0.8),
              ("grain", 0.8, 0.4, 1.0), ("sepia", 0.6, 0.5, 1.0), ("paper_texture", 0.9, 0.5, 1.0),
              ("vignette", 0.6, 0.4, 1.0), ("stains", 0.9, 0.5, 1.0), ("creases", 0.6, 0.4, 1.0),
              ("scratches", 1.0, 0.6, 1.0), ("dust", 0.9, 0.5, 1.0), ("torn_corners", 0.4, 0.4, 1.0),
              ("jpeg", 0.4, 0.4, 0.9)],
}

# Presets that only train a pipeline stage: accepted by `train --presets` and `age_image`, but no look of
# an old print, so the demo, the notebooks and the benchmarks (which go through PRESETS) leave them out.
TRAINING_PRESETS = {
    # Dust specks among what must not be taken for them: the speck finder's training photos. Dust at 0.3 or
    # less draws no hairs: a hair is a thin line, the damage detector's job, and taught as a speck it made
    # the finder mark the tips of the picture's own dark lines (a bird's tail, a letter's stroke).
    "specks": [("fading", 0.3, 0.1, 0.8), ("overexposure", 0.2, 0.1, 0.6), ("blur", 0.4, 0.1, 0.6),
               ("grain", 0.5, 0.1, 0.8), ("sepia", 0.2, 0.3, 1.0), ("paper_texture", 0.4, 0.2, 0.8),
               ("vignette", 0.2, 0.2, 0.8), ("dust", 0.85, 0.1, 0.3), ("jpeg", 0.4, 0.2, 0.8)],
    # Prints as they are before a scan compresses them: the deblocker's photos (`data.Recompressed` adds
    # the JPEG). No `jpeg` here: a second compression would make the target blocky too.
    "unscanned": [("fading", 0.3, 0.1, 0.8), ("overexposure", 0.2, 0.1, 0.6), ("blur", 0.4, 0.1, 0.6),
                  ("grain", 0.5, 0.1, 0.8), ("sepia", 0.2, 0.3, 1.0), ("paper_texture", 0.4, 0.2, 0.8),
                  ("vignette", 0.2, 0.2, 0.8), ("stains", 0.2, 0.1, 0.6), ("scratches", 0.3, 0.1, 0.6),
                  ("dust", 0.3, 0.1, 0.5)],
    # Each operator on one photo in 16, at 0.4-1: mostly one kind of damage at a time, and a third of the
    # photos with none at all, where whatever the detectors find is a false alarm. The component
    # verifier's photos, beside the presets: it must learn what a fill costs on a photo that needs none.
    "sparse": [(name, 1 / 16, 0.4, 1.0) for name in OPERATORS],
    # Local damage, one or two kinds on most photos, under the scan's grain, blur, paper and JPEG: the rims
    # blender's photos (restore/rims.py), where a wider fill must earn its place against the picture's lines.
    "rims": [("scratches", 0.3, 0.3, 1.0), ("dust", 0.3, 0.3, 1.0), ("creases", 0.3, 0.3, 1.0),
             ("cracks", 0.3, 0.3, 1.0), ("torn_corners", 0.3, 0.3, 1.0), ("grain", 0.3, 0.2, 0.9),
             ("blur", 0.3, 0.2, 0.9), ("paper_texture", 0.3, 0.2, 0.9), ("jpeg", 0.3, 0.2, 0.9)],
    # Pieces lost along the edges, on most photos, among the print's other damage and the scan's: for the
    # damage detector, which learned torn corners only and left the real notches along an edge.
    "torn": [("fading", 0.4, 0.1, 0.7), ("sepia", 0.4, 0.4, 1.0), ("grain", 0.4, 0.1, 0.6),
             ("paper_texture", 0.3, 0.2, 0.7), ("blur", 0.3, 0.1, 0.5), ("scratches", 0.5, 0.2, 0.8),
             ("cracks", 0.3, 0.2, 0.8), ("dust", 0.5, 0.2, 0.7), ("torn_corners", 0.2, 0.3, 0.8),
             ("torn_edges", 0.85, 0.3, 1.0), ("jpeg", 0.3, 0.2, 0.7)],
}
RECIPES = PRESETS | TRAINING_PRESETS  # every name `age_image` and `train --presets` accept


VISIBLE_CHANGE = 0.03  # ~8 of 255 levels: a damaged pixel that changed less is not marked as destroyed


@dataclass
class AgingResult:
    image: np.ndarray  # same dtype and shape as the input
    mask: np.ndarray  # HxW bool, True where the content was destroyed
    params: list[dict]  # [{"op": name, "strength": s, **operator_params}, ...] in order of application


def keep_freed_memory():
    """Ask glibc to keep freed memory for reuse instead of handing it back to the kernel (Linux only).

    Every operator allocates a few 256 KiB float arrays at 256x256; by default glibc unmaps or trims them on
    free, and the page faults to get them back cost more than the arithmetic: measured here, the seed
    preset ages 2-3x faster with this. The price is up to 32 MiB of freed heap kept per process. Called
    once per process by `age_image`; harmless to call again, and a no-op where mallopt is missing.
    """
    global _freed_memory_kept
    if _freed_memory_kept or not sys.platform.startswith("linux"):
        return
    _freed_memory_kept = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(-1, 32 << 20)  # M_TRIM_THRESHOLD: keep up to 32 MiB free at the top of the heap
        libc.mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD: arrays below 4 MiB come from the heap, not mmap
    except (OSError, AttributeError):
        pass


_freed_memory_kept = False


def _check_strength(value, what):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 <= number <= 1.0:  # also refuses NaN
        raise UsageError(f"{what} must be between 0 and 1, got {value!r}")
    return number


def _plan(preset, operators, strength, rng):
    """Operator name -> strength, before any image work. Every preset entry draws its two numbers whether
    or not it is applied, so the plan for one seed does not shift when a probability changes."""
    if operators is not None:
        unknown = sorted(set(operators) - set(OPERATORS))
        if unknown:
            raise UsageError(f"unknown aging operator {', '.join(unknown)}; valid: {', '.join(OPERATORS)}")
        return {name: _check_strength(s, f"strength of {name}") * strength for name, s in operators.items()}
    if preset not in RECIPES:
        raise UsageError(f"unknown aging preset {preset!r}; valid: {', '.join(RECIPES)}")
    plan = {}
    for name, probability, low, high in RECIPES[preset]:
        applied, drawn = rng.random() < probability, rng.uniform(low, high)
        if applied:
            plan[name] = drawn * strength
    return plan


def _streams(rng):
    """One stream seed per operator, drawn up front: switching one operator on or off leaves the others'
    layout. The first sixteen are drawn from `rng` as they always were; an added operator's comes from the
    last of those and its place among the added, so it takes nothing from `rng` that the plan draws next."""
    first = [name for name in OPERATORS if name not in ADDED_OPERATORS]
    streams = dict(zip(first, rng.integers(0, 2 ** 63, size=len(first))))
    for index, name in enumerate(ADDED_OPERATORS):
        streams[name] = np.random.SeedSequence([int(streams[first[-1]]), index]).generate_state(1, np.uint64)[0]
    return streams


def _as_float(img):
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)) or img.size == 0:
        raise HelpersError(f"cannot age an image of shape {img.shape}: expected HxW gray or HxWx3 RGB")
    if img.dtype.kind == "f":
        return img.astype(np.float32)
    if img.dtype not in (np.uint8, np.uint16):
        raise HelpersError(f"cannot age an image of dtype {img.dtype}: expected uint8, uint16 or float")
    return np.multiply(img, np.float32(1.0 / np.iinfo(img.dtype).max), dtype=np.float32)


def _restore_dtype(aged, like):
    like = np.asarray(like)
    aged = aged.reshape(like.shape)
    if like.dtype.kind == "f":
        return aged.astype(like.dtype)
    if like.dtype == np.uint8:  # the common case in one pass: scale, round, saturate
        return cv2.convertScaleAbs(aged, alpha=255.0)
    top = float(np.iinfo(like.dtype).max)
    return np.clip(np.rint(aged * top), 0, top).astype(like.dtype)


def age_image(img: np.ndarray, preset: str = "seed", *, strength: float = 1.0, seed: int | None = 0,
              operators: dict[str, float] | None = None,
              rng: np.random.Generator | None = None) -> AgingResult:
    """Age one image with a preset (random choice and strengths per seed) or with fixed `operators`
    (name -> strength, as the slider widgets do). `strength` scales every operator's strength.

    `img` is uint8, uint16 or float in [0, 1], gray HxW or RGB HxWx3; the result has the same dtype and
    shape. Pass `rng` to draw from a generator you own (e.g. a data loader's), otherwise `seed` decides.
    """
    keep_freed_memory()
    strength = _check_strength(strength, "strength")
    rng = rng if rng is not None else np.random.default_rng(seed)
    streams = _streams(rng)
    plan = _plan(preset, operators, strength, rng)
    x = _as_float(img)
    mask = np.zeros(x.shape[:2], dtype=bool)
    params = []
    for name, op in OPERATORS.items():
        if name not in plan:
            continue
        before = x
        x, op_mask, op_params = op(x, plan[name], np.random.default_rng(streams[name]))
        if plan[name] > 0:  # a fresh array: clip it in place
            x = np.clip(x, 0.0, 1.0, out=x if x.dtype == np.float32 else None, dtype=np.float32)
        if op_mask.any():  # destroyed = drawn over *and* visibly changed: a dark speck on black is no damage
            change = np.abs(x - before)
            mask |= op_mask & ((change if change.ndim == 2 else change.max(axis=2)) > VISIBLE_CHANGE)
        params.append({"op": name, "strength": round(plan[name], 4), **op_params})
    if not any(plan.values()):  # nothing to do: hand back the exact input, even for float64
        return AgingResult(np.array(img, copy=True), mask, params)
    return AgingResult(_restore_dtype(x, img), mask, params)


def apply_operator(img: np.ndarray, name: str, strength: float, seed: int = 0) -> AgingResult:
    """One operator at one strength: the grids of notebook 01 and the tests use it."""
    return age_image(img, operators={name: strength}, seed=seed)
