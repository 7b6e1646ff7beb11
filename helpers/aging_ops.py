"""The degradation operators behind `helpers.aging`, one function each.

Every operator has the signature ``op(img, strength, rng) -> (aged, mask, params)`` with `img` float32 in
[0, 1], HxW or HxWx3, strength in [0, 1] and mask HxW bool (True = content destroyed). Two rules make the
strength sliders behave: every random draw happens before strength is looked at and never depends on it (so
one seed gives one layout, and strength only scales count, size, opacity or amplitude of that layout), and
strength 0 returns the input itself. Sizes are relative to the image, so a 64 px thumbnail and a 1024 px scan
age alike. The shared drawing and noise helpers are in `aging_primitives`.
"""

import math

import cv2
import numpy as np

from .aging_primitives import (LUMA, SHIFT, area_count, blend, colour_field, edge_distance, fine_noise,
                               fixed_point, like, no_mask, noise_grid, opacity, pixel_grid, random_curves,
                               size_unit, smooth_noise, smoothstep, stroke_layer, tint_multiply, to_luma,
                               untouched, upsample)


def scratches(img, strength, rng):
    """Thin curved bright (emulsion scraped off to the paper) and dark (dirt in the groove) lines."""
    h, w = img.shape[:2]
    n_max = area_count(img, 16)
    curves = random_curves(rng, n_max, h, w, 0.03, 0.9, 0.12, jitter=0.5 * size_unit(img))
    widths = (1.0 + 1.2 * rng.random((n_max, 1)) ** 4 * size_unit(img)) * rng.uniform(0.7, 1.15, (n_max, 4))
    bright = rng.random(n_max) < 0.75
    ink = rng.uniform(0.7, 1.0, n_max)
    if strength == 0:
        return untouched(img)
    n = math.ceil(strength * n_max)
    fade = 0.55 + 0.45 * strength
    widths = widths * (0.5 + 0.5 * strength) * np.where(bright, 1.0, 0.7)[:, None]  # weak aging: hairlines
    layers = {}
    for is_bright in (True, False):
        pick = bright[:n] == is_bright
        layers[is_bright] = stroke_layer(h, w, curves[:n][pick], widths[:n][pick], ink[:n][pick] * fade)
    out = blend(img, (0.96, 0.95, 0.92), layers[True])
    out = blend(out, (0.2, 0.18, 0.16), layers[False] * 0.7)  # dirt in a groove is less opaque
    mask = np.maximum(layers[True], layers[False] * 0.7) > 0.3
    return out, mask, {"count": n, "bright": int(bright[:n].sum())}


def _scaled_size(h, w, longest):
    scale = min(1.0, longest / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def stains(img, strength, rng):
    """Water stains (mottled yellow-brown blotches with a darker, uneven tide line) and foxing (small
    rust-brown spots). Blob shapes come from a 64 px field; edges, tide lines and spots are drawn at half
    size, which their soft edges hide, and resized up."""
    h, w = img.shape[:2]
    lh, lw = _scaled_size(h, w, 64)
    n_max = 5
    centre = rng.random((n_max, 2)) * (lw, lh)
    radius = rng.uniform(0.06, 0.2, (n_max, 2)) * min(lh, lw) + 0.5
    ragged = 0.3 * smooth_noise(rng, lh, lw, 5) + 0.15 * smooth_noise(rng, lh, lw, 16)
    mottle, tide_noise = smooth_noise(rng, lh, lw, 10), smooth_noise(rng, lh, lw, 24)
    fox_max = area_count(img, 40)
    fox_xy = rng.random((fox_max, 2)) * (w, h)
    fox_r = (0.8 + 2.5 * rng.random(fox_max) ** 2) * size_unit(img)
    fox_a = rng.uniform(0.4, 1.0, fox_max)
    tint = np.array([0.62, 0.45, 0.26]) + rng.normal(0.0, 0.03, 3)
    if strength == 0:
        return untouched(img)
    n, n_fox = math.ceil(strength * n_max), math.ceil(strength * fox_max)
    y, x = pixel_grid(lh, lw)
    potential = np.zeros((lh, lw), np.float32)
    for (cx, cy), (rx, ry) in zip(centre[:n].tolist(), radius[:n].tolist()):  # floats keep float32
        potential += np.exp(-(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2))
    fields = cv2.merge([potential * np.maximum(1.0 + ragged, 0.3), np.clip(0.38 + 0.12 * mottle, 0.15, 0.6),
                        np.clip(0.4 + 0.25 * tide_noise, 0.0, 0.75)])
    mh, mw = _scaled_size(h, w, max(64, max(h, w) / 2))
    fields = cv2.resize(fields, (mw, mh), interpolation=cv2.INTER_LINEAR)
    potential, body_density, tide_density = cv2.split(fields)
    blot = np.maximum(smoothstep(potential, 0.3, 0.6) * body_density,
                      np.exp(-(((potential - 0.31) / 0.045) ** 2)) * tide_density)
    fox = np.zeros((mh, mw), np.uint8)  # at half size too: upsampling softens the spots' edges
    centres = [tuple(c) for c in fixed_point(fox_xy[:n_fox] * (mw / w, mh / h)).tolist()]
    for grow, dim in ((1.8, 0.3), (1.0, 1.0)):  # faint halos, then the rust cores
        radii = fixed_point(grow * fox_r[:n_fox] * mw / w).tolist()
        for centre_xy, r, ink in zip(centres, radii, (255 * dim * fox_a[:n_fox]).astype(int).tolist()):
            cv2.circle(fox, centre_xy, r, ink, -1, cv2.LINE_AA, SHIFT)
    fox = cv2.GaussianBlur(fox, (0, 0), 0.7)  # round soft spots, not upsampled diamonds
    alpha = cv2.resize(np.maximum(blot, opacity(fox)), (w, h), interpolation=cv2.INTER_LINEAR)
    alpha *= 0.45 + 0.55 * strength
    out = tint_multiply(img, tint * 0.75, alpha)
    # Only the foxing spots destroy what is under them; a blot tints it, which the tone stage undoes and an
    # inpainter would only smear (measured: Telea on the blots loses 2.4 dB).
    spots = cv2.resize(opacity(fox), (w, h), interpolation=cv2.INTER_LINEAR) * (0.45 + 0.55 * strength)
    return out, spots > 0.3, {"stains": n, "foxing": n_fox, "tint": [round(float(c), 3) for c in tint]}


def fading(img, strength, rng):
    """Reduced contrast: the print drifts towards a light grey; colour dyes fade faster than the silver, so
    colour images also lose saturation, up to nearly gray at full strength."""
    target = float(rng.uniform(0.55, 0.72))
    amount = float(rng.uniform(0.6, 0.75)) * strength
    if strength == 0:
        return untouched(img)
    if img.ndim == 3:
        img = img + (like(img, to_luma(img)) - img) * min(1.0, 1.3 * amount)
    out = img * (1.0 - amount) + target * amount
    return out, no_mask(img), {"contrast": round(1.0 - amount, 4), "toward": round(target, 4)}


def overexposure(img, strength, rng):
    """Washed-out print: brighter towards one side, highlights clipped to paper white, midtones lifted."""
    h, w = img.shape[:2]
    angle = rng.uniform(0, 2 * math.pi)
    base_gain, ramp_gain = rng.uniform(0.25, 0.45), rng.uniform(0.0, 0.5)
    if strength == 0:
        return untouched(img)
    y, x = pixel_grid(h, w)
    # gain = 1 + strength * (base + ramp * position along `angle`), built from a column plus a row
    ramp = strength * ramp_gain
    gain = (1.0 + strength * base_gain + ramp * (0.5 + math.sin(angle) * (y / max(h - 1, 1) - 0.5))
            + ramp * math.cos(angle) * (x / max(w - 1, 1) - 0.5))
    out = img * like(img, gain)
    out += 0.06 * strength
    out = cv2.pow(np.clip(out, 0.0, 1.0, out=out), 1.0 / (1.0 + 0.5 * strength))
    return out, no_mask(img), {"gain": round(1 + strength * base_gain, 4), "angle": round(angle, 4)}


def sepia(img, strength, rng):
    """Sepia toning and desaturation: luma mapped onto a brown-to-cream duotone.

    A gray image stays gray: it gets the duotone's luminance curve (lifted blacks, dimmer highlights),
    since a hue cannot be stored in one channel.
    """
    shadow = np.array([0.20, 0.12, 0.07]) + rng.normal(0.0, 0.02, 3)
    highlight = np.array([1.0, 0.93, 0.78]) + rng.normal(0.0, 0.02, 3)
    if strength == 0:
        return untouched(img)
    toned = colour_field(img, highlight - shadow, to_luma(img), offset=shadow)
    out = img + (toned - img) * strength
    return out, no_mask(img), {"shadow": [round(float(c), 3) for c in shadow],
                                                "highlight": [round(float(c), 3) for c in highlight]}


def blur(img, strength, rng):
    """Soft focus of an old lens: Gaussian blur up to ~3 px at 256 px, never below a visible 0.3 px."""
    sigma = 0.3 + float(rng.uniform(1.2, 2.7)) * strength * max(size_unit(img), 0.5)
    if strength == 0:
        return untouched(img)
    out = cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return out, no_mask(img), {"sigma": round(sigma, 4)}


def grain(img, strength, rng):
    """Film grain: clumped luminance noise, strongest in the midtones as in silver emulsions."""
    h, w = img.shape[:2]
    amplitude = float(rng.uniform(0.04, 0.08))
    size = float(rng.uniform(0.4, 0.8)) * max(size_unit(img), 0.5)
    noise = fine_noise(rng, h, w, size, size)
    if strength == 0:
        return untouched(img)
    luma = to_luma(img)
    field = noise * (strength * amplitude) * (0.35 + 2.6 * luma * (1.0 - luma))
    out = img + like(img, field)
    return out, no_mask(img), {"amplitude": round(strength * amplitude, 4), "size": round(size, 4)}


def dust(img, strength, rng):
    """Dust specks and hairs: dark ones lay on the print, bright ones lay on the negative."""
    h, w = img.shape[:2]
    n_max, hair_max = area_count(img, 90), area_count(img, 6)
    xy = rng.random((n_max, 2)) * (w, h)
    radius = (0.4 + 1.8 * rng.random(n_max) ** 3) * size_unit(img)
    squash, tilt = rng.uniform(0.4, 1.0, n_max), rng.uniform(0, 180, n_max)  # specks are clumps, not discs
    ink = rng.uniform(0.55, 1.0, n_max)
    dark = rng.random(n_max) < 0.7
    hairs = random_curves(rng, hair_max, h, w, 0.01, 0.06, 0.4)
    hair_dark = rng.random(hair_max) < 0.6
    if strength == 0:
        return untouched(img)
    n, n_hair = math.ceil(strength * n_max), math.ceil(strength * hair_max) if strength > 0.3 else 0
    layers = {True: np.zeros((h, w), np.uint8), False: np.zeros((h, w), np.uint8)}
    for (px, py), r, q, a, o, d in zip(fixed_point(xy[:n]), radius, squash, tilt, ink, dark):  # n specks
        axes = (int(r * (1 << SHIFT)), int(r * q * (1 << SHIFT)))
        cv2.ellipse(layers[bool(d)], (int(px), int(py)), axes, a, 0, 360, int(255 * o), -1,
                    cv2.LINE_AA, SHIFT)
    for curve, d in zip(hairs[:n_hair], hair_dark[:n_hair]):
        cv2.polylines(layers[bool(d)], [curve], False, 230, 1, cv2.LINE_AA, SHIFT)
    dark_a, bright_a = opacity(layers[True]), opacity(layers[False])
    out = blend(blend(img, (0.06, 0.06, 0.06), dark_a), (0.95, 0.95, 0.93), bright_a)
    return out, np.maximum(dark_a, bright_a) > 0.4, {"specks": n, "hairs": n_hair}


def creases(img, strength, rng):
    """Folds: a ridge lit on one side and shaded on the other, with the emulsion cracked white along it."""
    h, w = img.shape[:2]
    n_max = 3
    point = rng.random((n_max, 2)) * (w, h)
    angle = rng.integers(0, 2, n_max) * (math.pi / 2) + rng.normal(0.0, 0.25, n_max)
    grids = [[noise_grid(rng, h, w, cells) for cells in (3, 24, 64)] for _ in range(n_max)]
    if strength == 0:
        return untouched(img)
    n, unit = math.ceil(strength * n_max), max(size_unit(img), 0.25)
    y, x = pixel_grid(h, w)
    out, crack_total = img, np.zeros((h, w), np.float32)
    for i in range(n):
        nx, ny = -math.sin(angle[i]), math.cos(angle[i])
        wobble, breaks, jags = (upsample(grid, h, w) for grid in grids[i])
        px, py = point[i].tolist()
        d = ((x - px) * nx + (y - py) * ny + 4.0 * unit * wobble) / (3.0 * unit)
        shade = -0.18 * strength * d * np.exp(-d * d)  # one flank lighter, the other darker
        crack = smoothstep(0.5 - np.abs(d + 0.25 * jags), 0.0, 0.3) * smoothstep(breaks, -1.0, -0.2)
        out = out + like(img, shade)
        crack_total = np.maximum(crack_total, crack * (0.5 + 0.5 * strength))
    out = blend(out, (0.93, 0.92, 0.88), crack_total)
    return out, crack_total > 0.4, {"folds": n, "angles": [round(float(a), 3) for a in angle[:n]]}


def vignette(img, strength, rng):
    """Darkened corners of a simple lens, centred a little off the middle."""
    h, w = img.shape[:2]
    cx, cy = (0.5 + rng.normal(0.0, 0.04, 2)).tolist()
    power, depth = rng.uniform(2.0, 3.5), rng.uniform(0.45, 0.7)
    if strength == 0:
        return untouched(img)
    y, x = pixel_grid(h, w)
    r2 = ((x + 0.5) / w - cx) ** 2 * 2.0 + ((y + 0.5) / h - cy) ** 2 * 2.0  # ~1 at the corners
    dark = 1.0 - strength * depth * cv2.pow(np.clip(r2 / 1.5, 0.0, 1.0), power / 2)
    out = img * like(img, dark)
    return out, no_mask(img), {"depth": round(float(strength * depth), 4), "power": round(power, 3)}


def paper_texture(img, strength, rng):
    """Uneven paper: slow density changes plus fibres, multiplied in and added a little so blacks show it."""
    h, w = img.shape[:2]
    slow = smooth_noise(rng, h, w, 5)
    mottle = smooth_noise(rng, h, w, 40)
    long, short = 1.5 * max(size_unit(img), 0.4), 0.5
    fibres = fine_noise(rng, h, w, *((long, short) if rng.random() < 0.5 else (short, long)))
    if strength == 0:
        return untouched(img)
    texture = strength * (0.06 * slow + 0.03 * mottle + 0.02 * fibres)
    out = img * (1.0 + like(img, texture))
    out = out + 0.4 * like(img, texture)
    return out, no_mask(img), {"amount": round(0.06 * strength, 4)}


def jpeg(img, strength, rng):
    """Blocking and ringing of a cheaply digitised scan: JPEG quality 92 down to 15."""
    quality = int(round(92 - 77 * strength * rng.uniform(0.85, 1.0)))
    if strength == 0:
        return untouched(img)
    u8 = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    bgr = u8 if img.ndim == 2 else cv2.cvtColor(u8, cv2.COLOR_RGB2BGR)
    _, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    out = decoded if img.ndim == 2 else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return opacity(out), no_mask(img), {"quality": quality}


def torn_corners(img, strength, rng):
    """Missing corners: a ragged tear showing the album board, with a rim of white paper fibres."""
    h, w = img.shape[:2]
    corners = rng.permutation(4)[: rng.integers(1, 5)]
    size = rng.uniform(0.12, 0.3, 4) * min(h, w)
    jag = np.cumsum(rng.normal(0.0, 0.12, (4, 28)), axis=1)
    jag -= jag.mean(axis=1, keepdims=True)
    jag = 1.0 + 0.35 * jag / (np.abs(jag).max(axis=1, keepdims=True) + 1e-6)  # radius factor 0.65..1.35
    board = _album_board(rng)
    if strength == 0:
        return untouched(img)
    n = math.ceil(strength * len(corners))
    fill, rim = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    theta = np.linspace(0.0, math.pi / 2, 28)
    for c in corners[:n]:
        r = size[c] * strength * jag[c]
        pts = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
        origin = np.array([0.0 if c in (0, 3) else w, 0.0 if c in (0, 1) else h])
        pts = origin + pts * np.array([1 if c in (0, 3) else -1, 1 if c in (0, 1) else -1])
        cv2.fillPoly(fill, [fixed_point(np.vstack([origin, pts]))], 255, cv2.LINE_AA, SHIFT)
        rim_width = max(1, round(2 * size_unit(img)))
        cv2.polylines(rim, [fixed_point(pts)], False, 255, rim_width, cv2.LINE_AA, SHIFT)
    out, mask = _torn_away(img, fill, rim, board)
    return out, mask, {"corners": n, "board": round(float(np.mean(board)), 3)}


def torn_edges(img, strength, rng):
    """Pieces torn or chipped from a print's edges between its corners (the corners are `torn_corners'`):
    ragged notches showing the album board, dark or light, with a rim of white paper fibres, as on the real
    prints (the dark notch at the right edge of old_w_scratch/b.png, the light losses along the top of d.png).
    Strength adds notches and deepens them."""
    h, w = img.shape[:2]
    count = int(rng.integers(1, 4))
    sides = rng.integers(0, 4, 3)
    where = rng.uniform(0.15, 0.85, 3)
    depth = rng.uniform(0.03, 0.11, 3) * min(h, w)
    spread = rng.uniform(1.0, 2.5, 3)  # half the notch's width along the edge, in depths
    jag = np.cumsum(rng.normal(0.0, 0.15, (3, 24)), axis=1)
    jag = 1.0 + 0.4 * (jag - jag.mean(axis=1, keepdims=True)) / (np.abs(jag).max(axis=1, keepdims=True) + 1e-6)
    skew = rng.uniform(-0.5, 0.5, 3)
    board = _album_board(rng)
    if strength == 0:
        return untouched(img)
    n = math.ceil(strength * count)
    fill, rim = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    t = np.linspace(-1.0, 1.0, 24)
    rim_width = max(1, round(2 * size_unit(img)))
    for i in range(n):
        d = depth[i] * (0.4 + 0.6 * strength)
        length = w if sides[i] < 2 else h
        along = where[i] * length + (t + skew[i] * (1 - t * t)) * d * spread[i]
        inward = d * (1.0 - t * t) ** 0.6 * jag[i]
        inward = np.concatenate([[-2.0], inward, [-2.0]])  # the notch is closed just beyond the edge
        along = np.concatenate([along[:1], along, along[-1:]])
        x, y = {0: (along, inward), 1: (along, h - inward), 2: (inward, along), 3: (w - inward, along)}[int(sides[i])]
        pts = np.stack([x, y], axis=1)
        cv2.fillPoly(fill, [fixed_point(pts)], 255, cv2.LINE_AA, SHIFT)
        cv2.polylines(rim, [fixed_point(pts[1:-1])], False, 255, rim_width, cv2.LINE_AA, SHIFT)
    out, mask = _torn_away(img, fill, rim, board)
    return out, mask, {"notches": n, "board": round(float(np.mean(board)), 3)}


def _album_board(rng):
    """The colour a torn-off piece shows: a dark or a light album board, even odds."""
    return (0.16, 0.14, 0.12) if rng.random() < 0.5 else (0.88, 0.86, 0.8)


def _torn_away(img, fill, rim, board):
    """(the photo with the torn-off pieces drawn in `fill` (uint8 layer) showing the album `board` and their
    edges in `rim` white with paper fibres, the pieces and rims as destroyed): `torn_corners` and
    `torn_edges` tear alike."""
    fill_a, rim_a = opacity(fill), opacity(rim)
    return blend(blend(img, (0.95, 0.94, 0.9), rim_a), board, fill_a), np.maximum(fill_a, rim_a) > 0.4


# Thin-film colours of silver tarnish, from its faint inner fringe (gold) to the rim (blue, black-brown),
# as 256-entry tables indexed by tarnish depth: opacity, and colour premultiplied by it (RGB, then gray).
_TARNISH_STOPS = np.array([[0.80, 0.68, 0.45], [0.72, 0.52, 0.30], [0.50, 0.30, 0.42],
                           [0.24, 0.28, 0.48], [0.10, 0.08, 0.07]], dtype=np.float32)
_TARNISH_ALPHA = (0.85 * np.linspace(0.0, 1.0, 256) ** 0.7).astype(np.float32).reshape(1, 256)
_TARNISH_RGB = np.stack([np.interp(np.linspace(0, 4, 256), np.arange(5), _TARNISH_STOPS[:, ch])
                         for ch in range(3)], axis=1)
_TARNISH_RGB = (_TARNISH_RGB * _TARNISH_ALPHA.T).astype(np.float32).reshape(1, 256, 3)
_TARNISH_GRAY = (_TARNISH_RGB @ LUMA).astype(np.float32)


def tarnish(img, strength, rng):
    """Daguerreotype tarnish: an iridescent halo creeping in from the plate's edges, deepest at corners.
    Its depth is smooth, so it is worked out at half size; colour and opacity come from lookup tables."""
    h, w = img.shape[:2]
    mh, mw = _scaled_size(h, w, max(64, max(h, w) / 2))
    width = float(rng.uniform(0.1, 0.2))
    blotchy, fine = smooth_noise(rng, mh, mw, 5), smooth_noise(rng, mh, mw, 20)
    if strength == 0:
        return untouched(img)
    reach = width * strength * np.maximum(1.0 + 0.3 * blotchy, 0.3)
    depth = np.clip(1.0 - (edge_distance(mh, mw) + 0.012 * fine) / reach, 0.0, 1.0)  # 1 at the rim
    level = cv2.convertScaleAbs(cv2.resize(depth, (w, h), interpolation=cv2.INTER_LINEAR), alpha=255.0)
    alpha = cv2.LUT(level, _TARNISH_ALPHA)
    tinted = cv2.LUT(level, _TARNISH_GRAY) if img.ndim == 2 else cv2.LUT(like(img, level), _TARNISH_RGB)
    out = img - img * like(img, alpha) + tinted
    return out, alpha > 0.6, {"width": round(width * strength, 4)}


def oval_mat(img, strength, rng):
    """The brass mat of a cased daguerreotype: only an oval of the plate shows, framed by a bright bevel."""
    h, w = img.shape[:2]
    cx, cy = ((0.5 + rng.normal(0.0, 0.01, 2)) * (w, h)).tolist()
    shrink = rng.uniform(0.9, 1.0)
    brushed = cv2.GaussianBlur(rng.standard_normal((h, 1)).astype(np.float32), (1, 0), 1.0)
    patina = smooth_noise(rng, h, w, 8)
    brass = np.array([0.66, 0.54, 0.32]) + rng.normal(0.0, 0.03, 3)
    if strength == 0:
        return untouched(img)
    scale = 1.42 - 0.52 * strength * shrink  # 1.42: the oval just misses the corners
    y, x = pixel_grid(h, w)
    r = np.sqrt(((x + 0.5 - cx) / (w / 2 * scale)) ** 2 + ((y + 0.5 - cy) / (h / 2 * scale)) ** 2)
    px = 1.0 / (min(h, w) / 2 * scale)  # one pixel in units of r
    mat_a = smoothstep(r, 1.0, 1.0 + 1.5 * px)
    bevel = np.exp(-(((r - 1.0 - 3 * px) / (2.5 * px)) ** 2))
    shadow = 1.0 - 0.35 * np.exp(-(((r - 1.0) / (5 * px)) ** 2)) * (r < 1.0)
    light = 1.05 - 0.3 * y / max(h - 1, 1) + 0.04 * brushed + 0.06 * patina  # lit from above, worn
    metal = colour_field(img, brass, light)
    out = img * like(img, shadow)
    out = out + (metal - out) * like(img, mat_a)
    out = blend(out, (0.95, 0.88, 0.6), 0.7 * bevel * mat_a)
    return out, mat_a > 0.5, {"opening": round(float(scale), 4)}


def _crack_network(rng, h, w, unit, steps_max=70):
    """One network of emulsion cracks as a list of (points N x 2 in px, width in px, depth): a random walk
    with momentum from a start point that forks now and then, each branch thinner than its parent."""
    start = rng.random(2) * (w, h)
    branches, todo = [], [(start, rng.uniform(0, 2 * math.pi), rng.uniform(1.0, 3.5), 0, steps_max)]
    while todo and len(branches) < 24:
        point, heading, width, depth, steps = todo.pop()
        step = rng.uniform(2.5, 4.5) * unit
        points, course = [point], heading
        for _ in range(steps):
            # jagged but on course: each step zigzags around a course that itself drifts slowly
            course += rng.normal(0.0, 0.06)
            heading = course + rng.normal(0.0, 0.35) + (rng.normal(0.0, 0.9) if rng.random() < 0.04 else 0.0)
            point = point + step * np.array([math.cos(heading), math.sin(heading)])
            points.append(point)
            if not (-8 <= point[0] <= w + 8 and -8 <= point[1] <= h + 8):
                break
            if rng.random() < 0.09 and depth < 3:  # a fork: a thinner branch going off at an angle
                side = rng.choice((-1.0, 1.0)) * rng.uniform(0.5, 1.4)
                todo.append((point, course + side, width * rng.uniform(0.5, 0.85), depth + 1,
                             int(steps * rng.uniform(0.2, 0.6))))
        branches.append((np.array(points), width, depth))
    return branches


def cracks(img, strength, rng):
    """Networks of cracks in a dried-out emulsion: branching lines, mostly paper white where the gelatine
    split, 1-5 px wide at 256 px, with flakes where it came off. Real scratched prints show these more than
    long straight scratches (see the real prints beside the synthetic ones in notebook 01)."""
    h, w = img.shape[:2]
    unit = max(size_unit(img), 0.25)
    n_max = max(1, round(3 * math.sqrt(h * w) / 256))
    networks = [_crack_network(rng, h, w, unit) for _ in range(n_max)]
    dark = rng.random(n_max) < 0.15  # dirt settled in the crack instead of white paper showing
    ink = rng.uniform(0.6, 1.0, n_max)
    flake_max = 4 * n_max
    flake_at = rng.random((flake_max, 2))  # (which network, where along it), picked below
    flake_r = (1.0 + 4.0 * rng.random(flake_max) ** 2) * unit
    flake_shape = rng.uniform(0.3, 1.3, (flake_max, 9))
    if strength == 0:
        return untouched(img)
    n, n_flakes = math.ceil(strength * n_max), math.ceil(strength * flake_max)
    layers = {True: np.zeros((h, w), np.uint8), False: np.zeros((h, w), np.uint8)}
    for network, is_dark, opacity_ in zip(networks[:n], dark[:n], ink[:n]):
        for points, width, _ in network:
            thickness = max(1, round(width * unit * (0.55 + 0.45 * strength)))
            cv2.polylines(layers[bool(is_dark)], [fixed_point(points)], False,
                          int(255 * opacity_ * (0.6 + 0.4 * strength)), thickness,
                          cv2.LINE_AA, SHIFT)
    angles = np.linspace(0, 2 * math.pi, 9, endpoint=False)
    for (which, along), r, shape in zip(flake_at[:n_flakes], flake_r, flake_shape):
        points, _, _ = networks[int(which * n)][0]
        centre = points[min(len(points) - 1, int(along * len(points)))]
        ring = centre + (r * shape)[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        cv2.fillPoly(layers[False], [fixed_point(ring)], 240, cv2.LINE_AA, SHIFT)  # flakes show the paper
    bright_a, dark_a = opacity(layers[False]), opacity(layers[True])
    out = blend(blend(img, (0.93, 0.91, 0.86), bright_a), (0.12, 0.1, 0.08), 0.8 * dark_a)
    mask = np.maximum(bright_a, 0.8 * dark_a) > 0.3
    return out, mask, {"networks": n, "flakes": n_flakes, "dark": int(dark[:n].sum())}
