"""Drawing, noise and blending primitives shared by the aging operators (`aging_ops`).

All work on float32 images in [0, 1], gray HxW or RGB HxWx3, and on HxW float32 fields (opacity, gain,
shading). Two speed rules shape them: noise is drawn on small grids and resized up, and RGB fields are
built as full three-channel images, because numpy broadcasting over a last axis of 3 runs ~10x slower
than plain elementwise work.
"""

import math

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
SHIFT = 4  # cv2 drawing with 1/16 px coordinates: smooth anti-aliased curves


def no_mask(img):
    return np.zeros(img.shape[:2], dtype=bool)


def untouched(img):
    """What every operator returns at strength 0: the input itself, nothing destroyed, nothing to record."""
    return img, no_mask(img), {}


def size_unit(img):
    """Linear size unit: 1.0 for a 256 px short side."""
    return min(img.shape[:2]) / 256.0


def area_count(img, per_256_squared):
    """A count that grows with the image area (the number of dust specks on a bigger print grows)."""
    h, w = img.shape[:2]
    return max(1, round(per_256_squared * h * w / 65536.0))


def to_luma(img):
    """Gray of a gray or RGB float32 image; cv2's RGB2GRAY uses the same 601 weights as LUMA, fast."""
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def like(img, field):
    """An HxW float32 field as an image of `img`'s shape."""
    return field if img.ndim == 2 else cv2.merge([field, field, field])


def colour_field(img, colour, field, offset=(0.0, 0.0, 0.0)):
    """`colour * field + offset` as an image of `img`'s shape; gray images see a colour as its luma."""
    colour, offset = np.asarray(colour, np.float32), np.asarray(offset, np.float32)
    if img.ndim == 2:
        return float(colour @ LUMA) * field + float(offset @ LUMA)
    return cv2.merge([float(c) * field + float(o) for c, o in zip(colour, offset)])


def blend(img, colour, alpha):
    """Paint `colour` over `img` with per-pixel opacity `alpha` (HxW)."""
    if img.ndim == 2:
        return img + (float(np.asarray(colour, np.float32) @ LUMA) - img) * alpha
    return img - img * like(img, alpha) + colour_field(img, colour, alpha)


def tint_multiply(img, colour, alpha):
    """Multiply by `colour` with opacity `alpha`: stains darken and colour but keep the picture under them."""
    if img.ndim == 2:
        return img * (1.0 - float(1.0 - np.asarray(colour, np.float32) @ LUMA) * alpha)
    return img * (1.0 - colour_field(img, 1.0 - np.asarray(colour), alpha))


def opacity(layer):
    """A uint8 drawing layer as float32 opacity in [0, 1], in one pass."""
    return np.multiply(layer, np.float32(1 / 255), dtype=np.float32)


def noise_grid(rng, h, w, cells):
    """The random part of `smooth_noise`: a small grid, cheap to draw even when it ends up unused."""
    gh = max(2, round(cells * h / max(h, w)) + 2)
    gw = max(2, round(cells * w / max(h, w)) + 2)
    return rng.standard_normal((gh, gw)).astype(np.float32)


def upsample(grid, h, w):
    """Cubic to at most 64 px, then linear: smooth to the eye at a tenth of a full cubic resize's cost."""
    mh, mw = min(h, max(grid.shape[0], 64)), min(w, max(grid.shape[1], 64))
    middle = cv2.resize(grid, (mw, mh), interpolation=cv2.INTER_CUBIC)
    return cv2.resize(middle, (w, h), interpolation=cv2.INTER_LINEAR)


def smooth_noise(rng, h, w, cells):
    """Noise of roughly unit variance varying over about `cells` blobs across the longer side."""
    return upsample(noise_grid(rng, h, w, cells), h, w)


def fine_noise(rng, h, w, sigma_x, sigma_y):
    """Unit-variance noise blurred to grain of the given size; uniform draws are 4x cheaper than normal
    ones and the blur makes them look alike."""
    noise = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32) - 0.5, (0, 0), sigma_x, sigmaY=sigma_y)
    return noise / max(float(noise.std()), 1e-6)


def pixel_grid(h, w):
    """Pixel-centre coordinates as broadcastable column (y) and row (x) vectors."""
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def smoothstep(x, lo, hi):
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def fixed_point(points):
    return np.round(points * (1 << SHIFT)).astype(np.int32)


def random_curves(rng, n, h, w, min_len, max_len, bend, jitter=0.0):
    """`n` curved strokes as quadratic Bezier curves of 24 points, (n, 24, 2) in 1/16 px, with random
    start, direction, length and bow; `jitter` (px) shakes the points sideways so a scratch looks torn
    into the emulsion rather than ruled."""
    start = rng.random((n, 2)) * (w, h)
    angle = np.where(rng.random(n) < 0.5, rng.normal(math.pi / 2, 0.25, n), rng.uniform(0, math.pi, n))
    length = math.hypot(h, w) * (min_len + (max_len - min_len) * rng.random(n) ** 2)  # many short, few long
    bow = rng.normal(0.0, bend, n)
    shake = rng.normal(0.0, jitter, (n, 24, 1))
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)[:, None, :]
    normal = direction[..., ::-1] * (-1, 1)
    t = np.linspace(0.0, 1.0, 24)[None, :, None]
    along = t * length[:, None, None]
    across = 2 * (1 - t) * t * (bow * length / 2)[:, None, None] + shake
    return fixed_point(start[:, None, :] + along * direction + across * normal)


def stroke_layer(h, w, curves, thicknesses, opacities):
    """Draw curves into an alpha layer, anti-aliased, one thickness per quarter of a curve so a scratch
    widens and narrows along its length."""
    layer = np.zeros((h, w), dtype=np.uint8)
    for curve, thickness, alpha in zip(curves, thicknesses, opacities):
        widths = np.maximum(1, np.rint(thickness)).astype(int).tolist()
        start = 0
        for j in range(1, len(widths) + 1):  # one call per run of equal widths: most scratches are 1 px
            if j == len(widths) or widths[j] != widths[start]:
                cv2.polylines(layer, [curve[6 * start: 6 * j + 1]], False, int(255 * alpha), widths[start],
                              cv2.LINE_AA, SHIFT)
                start = j
    return opacity(layer)


def edge_distance(h, w, roundness=0.04):
    """Distance of every pixel to the border in short sides (0 at the edge, ~0.5 at the centre), smoothly
    minimised over the four sides so the corners, attacked from two sides, count as closer."""
    side = float(min(h, w))
    y = np.exp(-(np.minimum(np.arange(h), np.arange(h)[::-1]) + 0.5) / (side * roundness)).astype(np.float32)
    x = np.exp(-(np.minimum(np.arange(w), np.arange(w)[::-1]) + 0.5) / (side * roundness)).astype(np.float32)
    return np.maximum(-roundness * np.log(y[:, None] + x[None, :]), 0.0)
