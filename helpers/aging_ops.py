"""The degradation operators behind `helpers.aging`, one function each.

Every operator has the signature ``op(img, strength, rng) -> (aged, mask, params)`` with `img` float32 in
[0, 1], HxW or HxWx3, strength in [0, 1] and mask HxW bool (True = content destroyed). Two rules make the
strength sliders behave: every random draw happens before strength is looked at and never depends on it (so
one seed gives one layout, and strength only scales count, size, opacity or amplitude of that layout), and
strength 0 returns the input itself. Sizes are relative to the image, so a 64 px thumbnail and a 1024 px scan
age alike; slow per-pixel work is done on small fields and resized up.
"""

import math

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_SHIFT = 4  # cv2 drawing with 1/16 px coordinates: smooth anti-aliased curves


def _unit(img):
    """Linear size unit: 1.0 for a 256 px short side."""
    return min(img.shape[:2]) / 256.0


def _area_count(img, per_256_squared):
    """A count that grows with the image area (the number of dust specks on a bigger print grows)."""
    h, w = img.shape[:2]
    return max(1, round(per_256_squared * h * w / 65536.0))


def _luma(img):
    """Gray of a gray or RGB float32 image; cv2's RGB2GRAY uses the same 601 weights as LUMA, fast."""
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


# numpy broadcasting over a last axis of 3 runs ~10x slower than plain elementwise work, so RGB fields
# and colours are spelled out as full three-channel images with cv2.merge.

def _like(img, field):
    """An HxW float32 field as an image of `img`'s shape."""
    return field if img.ndim == 2 else cv2.merge([field, field, field])


def _colour_field(img, colour, field, offset=(0.0, 0.0, 0.0)):
    """`colour * field + offset` as an image of `img`'s shape; gray images see a colour as its luma."""
    colour, offset = np.asarray(colour, np.float32), np.asarray(offset, np.float32)
    if img.ndim == 2:
        return float(colour @ LUMA) * field + float(offset @ LUMA)
    return cv2.merge([float(c) * field + float(o) for c, o in zip(colour, offset)])


def _blend(img, colour, alpha):
    """Paint `colour` over `img` with per-pixel opacity `alpha` (HxW)."""
    return img - img * _like(img, alpha) + _colour_field(img, colour, alpha)


def _tint_multiply(img, colour, alpha):
    """Multiply by `colour` with opacity `alpha`: stains darken and colour, but keep the picture under them."""
    return img * (1.0 - _colour_field(img, 1.0 - np.asarray(colour), alpha))


def _noise_grid(rng, h, w, cells):
    """The random part of `_smooth_noise`: a small grid, cheap to draw even when it ends up unused."""
    gh = max(2, round(cells * h / max(h, w)) + 2)
    gw = max(2, round(cells * w / max(h, w)) + 2)
    return rng.standard_normal((gh, gw)).astype(np.float32)


def _upsample(grid, h, w):
    """Cubic to at most 64 px, then linear: smooth to the eye at a tenth of a full cubic resize's cost."""
    mh, mw = min(h, max(grid.shape[0], 64)), min(w, max(grid.shape[1], 64))
    middle = cv2.resize(grid, (mw, mh), interpolation=cv2.INTER_CUBIC)
    return cv2.resize(middle, (w, h), interpolation=cv2.INTER_LINEAR)


def _smooth_noise(rng, h, w, cells):
    """Noise of roughly unit variance varying over about `cells` blobs across the longer side."""
    return _upsample(_noise_grid(rng, h, w, cells), h, w)


def _fine_noise(rng, h, w, sigma_x, sigma_y):
    """Unit-variance noise blurred to grain of the given size; uniform draws are 4x cheaper than normal
    ones and the blur makes them look alike."""
    noise = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32) - 0.5, (0, 0), sigma_x, sigmaY=sigma_y)
    return noise / max(float(noise.std()), 1e-6)


def _grid(h, w):
    """Pixel-centre coordinates as broadcastable column (y) and row (x) vectors."""
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def _smoothstep(x, lo, hi):
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _fixed(points):
    return np.round(points * (1 << _SHIFT)).astype(np.int32)


def _random_curves(rng, n, h, w, min_len, max_len, bend, jitter=0.0):
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
    return _fixed(start[:, None, :] + along * direction + across * normal)


def _stroke_layer(h, w, curves, thicknesses, opacities):
    """Draw curves into an alpha layer, anti-aliased, one thickness per quarter of a curve so a scratch
    widens and narrows along its length."""
    layer = np.zeros((h, w), dtype=np.uint8)
    for curve, thickness, opacity in zip(curves, thicknesses, opacities):
        for j, tk in enumerate(thickness):
            cv2.polylines(layer, [curve[6 * j: 6 * j + 7]], False, int(255 * opacity), max(1, round(tk)),
                          cv2.LINE_AA, _SHIFT)
    return layer.astype(np.float32) / 255.0


def scratches(img, strength, rng):
    """Thin curved bright (emulsion scraped off to the paper) and dark (dirt in the groove) lines."""
    h, w = img.shape[:2]
    n_max = _area_count(img, 16)
    curves = _random_curves(rng, n_max, h, w, 0.03, 0.9, 0.12, jitter=0.5 * _unit(img))
    widths = (1.0 + 1.6 * rng.random((n_max, 1)) ** 4 * _unit(img)) * rng.uniform(0.7, 1.15, (n_max, 4))
    bright = rng.random(n_max) < 0.75
    opacity = rng.uniform(0.7, 1.0, n_max)
    if strength == 0:
        return img, np.zeros((h, w), bool), {"count": 0}
    n = math.ceil(strength * n_max)
    fade = 0.55 + 0.45 * strength
    width_scale = 0.5 + 0.5 * strength  # weak aging: fine hairlines
    layers = {}
    for is_bright in (True, False):
        pick = bright[:n] == is_bright
        layers[is_bright] = _stroke_layer(h, w, curves[:n][pick], widths[:n][pick] * width_scale,
                                          opacity[:n][pick] * fade)
    out = _blend(img, (0.96, 0.95, 0.92), layers[True])
    out = _blend(out, (0.2, 0.18, 0.16), layers[False] * 0.8)
    mask = np.maximum(layers[True], layers[False] * 0.8) > 0.3
    return out, mask, {"count": n, "bright": int(bright[:n].sum())}


def stains(img, strength, rng):
    """Water stains (mottled yellow-brown blotches with a darker, uneven tide line) and foxing (small
    rust-brown spots). Blob shapes come from a 64 px field; edges and tide lines are drawn at full size."""
    h, w = img.shape[:2]
    lh, lw = max(1, round(h * min(1.0, 64 / max(h, w)))), max(1, round(w * min(1.0, 64 / max(h, w))))
    n_max = 5
    centre = rng.random((n_max, 2)) * (lw, lh)
    radius = rng.uniform(0.06, 0.2, (n_max, 2)) * min(lh, lw) + 0.5
    ragged = 0.3 * _smooth_noise(rng, lh, lw, 5) + 0.15 * _smooth_noise(rng, lh, lw, 16)
    mottle, tide_noise = _smooth_noise(rng, lh, lw, 10), _smooth_noise(rng, lh, lw, 24)
    fox_max = _area_count(img, 40)
    fox_xy = rng.random((fox_max, 2)) * (w, h)
    fox_r = (0.6 + 2.5 * rng.random(fox_max) ** 2) * _unit(img)
    fox_a = rng.uniform(0.4, 1.0, fox_max)
    tint = np.array([0.62, 0.45, 0.26]) + rng.normal(0.0, 0.03, 3)
    if strength == 0:
        return img, np.zeros((h, w), bool), {"stains": 0, "foxing": 0}
    n, n_fox = math.ceil(strength * n_max), math.ceil(strength * fox_max)
    y, x = _grid(lh, lw)
    potential = np.zeros((lh, lw), np.float32)
    for (cx, cy), (rx, ry) in zip(centre[:n], radius[:n]):
        potential += np.exp(-(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2))
    fields = cv2.merge([potential * np.maximum(1.0 + ragged, 0.3), mottle, tide_noise])
    potential, mottle, tide_noise = cv2.split(cv2.resize(fields, (w, h), interpolation=cv2.INTER_LINEAR))
    body = _smoothstep(potential, 0.3, 0.6) * np.clip(0.38 + 0.12 * mottle, 0.15, 0.6)
    tide = np.exp(-(((potential - 0.31) / 0.03) ** 2)) * np.clip(0.55 + 0.3 * tide_noise, 0.0, 0.9)
    fox = np.zeros((h, w), np.uint8)
    for (fx, fy), r, a in zip(_fixed(fox_xy[:n_fox]), fox_r[:n_fox], fox_a[:n_fox]):
        cv2.circle(fox, (int(fx), int(fy)), int(r * (1 << _SHIFT)), int(255 * a), -1, cv2.LINE_AA, _SHIFT)
    fox = cv2.GaussianBlur(fox, (0, 0), 0.8 * _unit(img) + 0.3).astype(np.float32) / 255.0
    alpha = np.maximum(np.maximum(body, tide), fox) * (0.45 + 0.55 * strength)
    out = _tint_multiply(img, tint * 0.75, alpha)
    return out, alpha > 0.2, {"stains": n, "foxing": n_fox, "tint": [round(float(c), 3) for c in tint]}


def fading(img, strength, rng):
    """Reduced contrast: the print drifts towards a light grey; colour dyes fade faster than the silver, so
    colour images also lose saturation, up to nearly gray at full strength."""
    target = float(rng.uniform(0.55, 0.72))
    amount = float(rng.uniform(0.6, 0.75)) * strength
    if strength == 0:
        return img, np.zeros(img.shape[:2], bool), {"contrast": 1.0}
    if img.ndim == 3:
        img = img + (_like(img, _luma(img)) - img) * min(1.0, 1.3 * amount)
    out = img * (1.0 - amount) + target * amount
    return out, np.zeros(img.shape[:2], bool), {"contrast": round(1.0 - amount, 4), "toward": round(target, 4)}


def overexposure(img, strength, rng):
    """Washed-out print: brighter towards one side, highlights clipped to paper white, midtones lifted."""
    h, w = img.shape[:2]
    angle = rng.uniform(0, 2 * math.pi)
    base_gain, ramp_gain = rng.uniform(0.25, 0.45), rng.uniform(0.0, 0.5)
    if strength == 0:
        return img, np.zeros((h, w), bool), {"gain": 1.0}
    y, x = _grid(h, w)
    ramp = (x / max(w - 1, 1) - 0.5) * math.cos(angle) + (y / max(h - 1, 1) - 0.5) * math.sin(angle) + 0.5
    gain = 1.0 + strength * (base_gain + ramp_gain * np.clip(ramp, 0, 1))
    if img.ndim == 3:
        gain = gain[..., None]
    out = cv2.pow(np.clip(img * gain + 0.06 * strength, 0.0, 1.0), 1.0 / (1.0 + 0.5 * strength))
    return out, np.zeros((h, w), bool), {"gain": round(1 + strength * base_gain, 4), "angle": round(angle, 4)}


def sepia(img, strength, rng):
    """Sepia toning and desaturation: luma mapped onto a brown-to-cream duotone.

    A gray image stays gray: it gets the duotone's luminance curve (lifted blacks, dimmer highlights),
    since a hue cannot be stored in one channel.
    """
    shadow = np.array([0.20, 0.12, 0.07]) + rng.normal(0.0, 0.02, 3)
    highlight = np.array([1.0, 0.93, 0.78]) + rng.normal(0.0, 0.02, 3)
    if strength == 0:
        return img, np.zeros(img.shape[:2], bool), {"tone": 0}
    toned = _colour_field(img, highlight - shadow, _luma(img), offset=shadow)
    out = img + (toned - img) * strength
    return out, np.zeros(img.shape[:2], bool), {"shadow": [round(float(c), 3) for c in shadow],
                                                "highlight": [round(float(c), 3) for c in highlight]}


def blur(img, strength, rng):
    """Soft focus of an old lens: Gaussian blur up to ~3 px at 256 px, never below a visible 0.3 px."""
    sigma = 0.3 + float(rng.uniform(1.2, 2.7)) * strength * max(_unit(img), 0.5)
    if strength == 0:
        return img, np.zeros(img.shape[:2], bool), {"sigma": 0.0}
    out = cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return out, np.zeros(img.shape[:2], bool), {"sigma": round(sigma, 4)}


def grain(img, strength, rng):
    """Film grain: clumped luminance noise, strongest in the midtones as in silver emulsions."""
    h, w = img.shape[:2]
    amplitude = float(rng.uniform(0.05, 0.1))
    size = float(rng.uniform(0.4, 0.8)) * max(_unit(img), 0.5)
    noise = _fine_noise(rng, h, w, size, size)
    if strength == 0:
        return img, np.zeros((h, w), bool), {"amplitude": 0.0}
    luma = _luma(img)
    field = noise * (strength * amplitude) * (0.35 + 2.6 * luma * (1.0 - luma))
    out = img + _like(img, field)
    return out, np.zeros((h, w), bool), {"amplitude": round(strength * amplitude, 4), "size": round(size, 4)}


def dust(img, strength, rng):
    """Dust specks and hairs: dark ones lay on the print, bright ones lay on the negative."""
    h, w = img.shape[:2]
    n_max, hair_max = _area_count(img, 90), _area_count(img, 6)
    xy = rng.random((n_max, 2)) * (w, h)
    radius = (0.4 + 1.8 * rng.random(n_max) ** 3) * _unit(img)
    squash, tilt = rng.uniform(0.4, 1.0, n_max), rng.uniform(0, 180, n_max)  # specks are clumps, not discs
    opacity = rng.uniform(0.55, 1.0, n_max)
    dark = rng.random(n_max) < 0.7
    hairs = _random_curves(rng, hair_max, h, w, 0.01, 0.06, 0.4)
    hair_dark = rng.random(hair_max) < 0.6
    if strength == 0:
        return img, np.zeros((h, w), bool), {"specks": 0, "hairs": 0}
    n, n_hair = math.ceil(strength * n_max), math.ceil(strength * hair_max) if strength > 0.3 else 0
    layers = {True: np.zeros((h, w), np.uint8), False: np.zeros((h, w), np.uint8)}
    for (px, py), r, q, a, o, d in zip(_fixed(xy[:n]), radius[:n], squash, tilt, opacity, dark[:n]):
        axes = (int(r * (1 << _SHIFT)), int(r * q * (1 << _SHIFT)))
        cv2.ellipse(layers[bool(d)], (int(px), int(py)), axes, a, 0, 360, int(255 * o), -1, cv2.LINE_AA, _SHIFT)
    for curve, d in zip(hairs[:n_hair], hair_dark[:n_hair]):
        cv2.polylines(layers[bool(d)], [curve], False, 230, 1, cv2.LINE_AA, _SHIFT)
    dark_a, bright_a = (layers[k].astype(np.float32) / 255.0 for k in (True, False))
    out = _blend(_blend(img, (0.06, 0.06, 0.06), dark_a), (0.95, 0.95, 0.93), bright_a)
    return out, np.maximum(dark_a, bright_a) > 0.4, {"specks": n, "hairs": n_hair}


def creases(img, strength, rng):
    """Folds: a ridge lit on one side and shaded on the other, with the emulsion cracked white along it."""
    h, w = img.shape[:2]
    n_max = 3
    point = rng.random((n_max, 2)) * (w, h)
    angle = rng.integers(0, 2, n_max) * (math.pi / 2) + rng.normal(0.0, 0.25, n_max)
    grids = [[_noise_grid(rng, h, w, cells) for cells in (3, 24, 64)] for _ in range(n_max)]
    if strength == 0:
        return img, np.zeros((h, w), bool), {"folds": 0}
    n, unit = math.ceil(strength * n_max), max(_unit(img), 0.25)
    y, x = _grid(h, w)
    out, crack_total = img, np.zeros((h, w), np.float32)
    for i in range(n):
        nx, ny = -math.sin(angle[i]), math.cos(angle[i])
        wobble, breaks, jags = (_upsample(grid, h, w) for grid in grids[i])
        d = ((x - point[i, 0]) * nx + (y - point[i, 1]) * ny + 4.0 * unit * wobble) / (3.0 * unit)
        shade = -0.18 * strength * d * np.exp(-d * d)  # one flank lighter, the other darker
        crack = _smoothstep(0.5 - np.abs(d + 0.25 * jags), 0.0, 0.3) * _smoothstep(breaks, -1.0, -0.2)
        out = out + _like(img, shade)
        crack_total = np.maximum(crack_total, crack * (0.5 + 0.5 * strength))
    out = _blend(out, (0.93, 0.92, 0.88), crack_total)
    return out, crack_total > 0.4, {"folds": n, "angles": [round(float(a), 3) for a in angle[:n]]}


def vignette(img, strength, rng):
    """Darkened corners of a simple lens, centred a little off the middle."""
    h, w = img.shape[:2]
    cx, cy = 0.5 + rng.normal(0.0, 0.04, 2)
    power, depth = rng.uniform(2.0, 3.5), rng.uniform(0.45, 0.7)
    if strength == 0:
        return img, np.zeros((h, w), bool), {"depth": 0.0}
    y, x = _grid(h, w)
    r2 = ((x + 0.5) / w - cx) ** 2 * 2.0 + ((y + 0.5) / h - cy) ** 2 * 2.0  # ~1 at the corners
    dark = 1.0 - strength * depth * np.clip(r2, 0.0, 1.5) ** (power / 2) / 1.5 ** (power / 2)
    out = img * _like(img, dark)
    return out, np.zeros((h, w), bool), {"depth": round(float(strength * depth), 4), "power": round(power, 3)}


def paper_texture(img, strength, rng):
    """Uneven paper: slow density changes plus fibres, multiplied in and added a little so blacks show it."""
    h, w = img.shape[:2]
    slow = _smooth_noise(rng, h, w, 5)
    mottle = _smooth_noise(rng, h, w, 40)
    long, short = 1.5 * max(_unit(img), 0.4), 0.5
    fibres = _fine_noise(rng, h, w, *((long, short) if rng.random() < 0.5 else (short, long)))
    if strength == 0:
        return img, np.zeros((h, w), bool), {"amount": 0.0}
    texture = strength * (0.06 * slow + 0.03 * mottle + 0.02 * fibres)
    out = img * (1.0 + _like(img, texture))
    out = out + 0.4 * _like(img, texture)
    return out, np.zeros((h, w), bool), {"amount": round(0.06 * strength, 4)}


def jpeg(img, strength, rng):
    """Blocking and ringing of a cheaply digitised scan: JPEG quality 92 down to 15."""
    quality = int(round(92 - 77 * strength * rng.uniform(0.85, 1.0)))
    if strength == 0:
        return img, np.zeros(img.shape[:2], bool), {"quality": 100}
    u8 = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8 if img.ndim == 2 else u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    out = decoded if img.ndim == 2 else decoded[..., ::-1]
    return out.astype(np.float32) / 255.0, np.zeros(img.shape[:2], bool), {"quality": quality}


def _edge_distance(h, w, roundness=0.04):
    """Distance of every pixel to the border in short sides (0 at the edge, ~0.5 at the centre), smoothly
    minimised over the four sides so the corners, attacked from two sides, count as closer."""
    side = float(min(h, w))
    y = np.exp(-(np.minimum(np.arange(h), np.arange(h)[::-1]) + 0.5) / (side * roundness)).astype(np.float32)
    x = np.exp(-(np.minimum(np.arange(w), np.arange(w)[::-1]) + 0.5) / (side * roundness)).astype(np.float32)
    return np.maximum(-roundness * np.log(y[:, None] + x[None, :]), 0.0)


def torn_corners(img, strength, rng):
    """Missing corners: a ragged tear showing the album board, with a rim of white paper fibres."""
    h, w = img.shape[:2]
    corners = rng.permutation(4)[: rng.integers(1, 5)]
    size = rng.uniform(0.12, 0.3, 4) * min(h, w)
    jag = np.cumsum(rng.normal(0.0, 0.12, (4, 28)), axis=1)
    jag = 1.0 + 0.35 * (jag - jag.mean(axis=1, keepdims=True)) / (np.abs(jag).max(axis=1, keepdims=True) + 1e-6)
    board = (0.16, 0.14, 0.12) if rng.random() < 0.5 else (0.88, 0.86, 0.8)
    if strength == 0:
        return img, np.zeros((h, w), bool), {"corners": 0}
    n = math.ceil(strength * len(corners))
    fill, rim = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    theta = np.linspace(0.0, math.pi / 2, 28)
    for c in corners[:n]:
        r = size[c] * strength * jag[c]
        pts = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
        origin = np.array([0.0 if c in (0, 3) else w, 0.0 if c in (0, 1) else h])
        pts = origin + pts * np.array([1 if c in (0, 3) else -1, 1 if c in (0, 1) else -1])
        cv2.fillPoly(fill, [_fixed(np.vstack([origin, pts]))], 255, cv2.LINE_AA, _SHIFT)
        cv2.polylines(rim, [_fixed(pts)], False, 255, max(1, round(2 * _unit(img))), cv2.LINE_AA, _SHIFT)
    fill_a, rim_a = fill.astype(np.float32) / 255.0, rim.astype(np.float32) / 255.0
    out = _blend(_blend(img, (0.95, 0.94, 0.9), rim_a), board, fill_a)
    return out, np.maximum(fill_a, rim_a) > 0.4, {"corners": n, "board": round(float(np.mean(board)), 3)}


# Thin-film colours of silver tarnish, from its faint inner fringe (gold) to the rim (blue, black-brown):
# a 256-entry table indexed by tarnish depth.
_TARNISH_STOPS = np.array([[0.80, 0.68, 0.45], [0.72, 0.52, 0.30], [0.50, 0.30, 0.42],
                           [0.24, 0.28, 0.48], [0.10, 0.08, 0.07]], dtype=np.float32)
_TARNISH_LUT = np.stack([np.interp(np.linspace(0, 4, 256), np.arange(5), _TARNISH_STOPS[:, ch])
                         for ch in range(3)], axis=1).astype(np.float32)


def tarnish(img, strength, rng):
    """Daguerreotype tarnish: an iridescent halo creeping in from the plate's edges, deepest at the corners."""
    h, w = img.shape[:2]
    width = float(rng.uniform(0.1, 0.2))
    blotchy, fine = _smooth_noise(rng, h, w, 5), _smooth_noise(rng, h, w, 20)
    if strength == 0:
        return img, np.zeros((h, w), bool), {"width": 0.0}
    reach = width * strength * np.maximum(1.0 + 0.45 * blotchy, 0.2)
    depth = np.clip(1.0 - (_edge_distance(h, w) + 0.012 * fine) / reach, 0.0, 1.0)  # 1 at the rim
    colour = (_TARNISH_LUT if img.ndim == 3 else _TARNISH_LUT @ LUMA)[np.rint(depth * 255).astype(np.uint8)]
    alpha = cv2.pow(depth, 0.7) * 0.85
    out = img + (colour - img) * _like(img, alpha)
    return out, alpha > 0.6, {"width": round(width * strength, 4)}


def oval_mat(img, strength, rng):
    """The brass mat of a cased daguerreotype: only an oval of the plate shows, framed by a bright bevel."""
    h, w = img.shape[:2]
    cx, cy = (0.5 + rng.normal(0.0, 0.01, 2)) * (w, h)
    shrink = rng.uniform(0.9, 1.0)
    brushed = cv2.GaussianBlur(rng.standard_normal((h, 1)).astype(np.float32), (1, 0), 1.0)
    patina = _smooth_noise(rng, h, w, 8)
    brass = np.array([0.66, 0.54, 0.32]) + rng.normal(0.0, 0.03, 3)
    if strength == 0:
        return img, np.zeros((h, w), bool), {"opening": 1.0}
    scale = 1.42 - 0.52 * strength * shrink  # 1.42: the oval just misses the corners
    y, x = _grid(h, w)
    r = np.sqrt(((x + 0.5 - cx) / (w / 2 * scale)) ** 2 + ((y + 0.5 - cy) / (h / 2 * scale)) ** 2)
    px = 1.0 / (min(h, w) / 2 * scale)  # one pixel in units of r
    mat_a = _smoothstep(r, 1.0, 1.0 + 1.5 * px)
    bevel = np.exp(-(((r - 1.0 - 3 * px) / (2.5 * px)) ** 2))
    shadow = 1.0 - 0.35 * np.exp(-(((r - 1.0) / (5 * px)) ** 2)) * (r < 1.0)
    light = 1.05 - 0.3 * y / max(h - 1, 1) + 0.04 * brushed + 0.06 * patina  # lit from above, worn
    metal = _colour_field(img, brass, light)
    out = img * _like(img, shadow)
    out = out + (metal - out) * _like(img, mat_a)
    out = _blend(out, (0.95, 0.88, 0.6), 0.7 * bevel * mat_a)
    return out, mat_a > 0.5, {"opening": round(float(scale), 4)}
