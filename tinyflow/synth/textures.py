"""Procedural layer textures: multi-scale value noise, natural-statistics (1/f, dead-leaves) tiles and
anti-aliased shapes; :data:`TEXTURES` names each kind's background and object makers.

Texture arrays are indexed ``[row, column]``; a texture's layer coordinates ``q = (qx, qy)``
of element ``[r, c]`` are ``(c + origin_x, r + origin_y)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SHAPE_KINDS: tuple[str, ...] = ("disk", "rectangle", "polygon")
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class LayerTexture:
    """Premultiplied intensity and alpha of one layer, sampled bilinearly.

    Attributes:
        channels: float32 [h, w, 2]: (alpha * intensity, alpha), intensity linear in (0, 1].
        origin_xy: layer coordinates of element [0, 0].
        periodic: tile the plane (a background; h and w must be powers of two); otherwise the
            texture is zero outside its array, whose one-pixel border must be transparent.
    """

    channels: np.ndarray
    origin_xy: tuple[float, float]
    periodic: bool

    def __post_init__(self) -> None:
        ch = self.channels
        if ch.ndim != 3 or ch.shape[2] != 2 or ch.shape[0] < 2 or ch.shape[1] < 2 or ch.dtype != np.float32:
            raise ValueError(
                f"LayerTexture.channels: expected float32 [h>=2, w>=2, 2], got {ch.dtype} {ch.shape}"
            )
        h, w, _ = ch.shape
        if self.periodic and (h & (h - 1) or w & (w - 1)):
            raise ValueError(
                f"LayerTexture.channels: a periodic texture needs power-of-two sides, got {(h, w)}"
            )
        if not self.periodic:
            border = np.concatenate([ch[0], ch[-1], ch[:, 0], ch[:, -1]])
            if np.any(border != 0):
                raise ValueError(
                    "LayerTexture.channels: a non-periodic texture needs a transparent (zero) border"
                )

    @property
    def opaque(self) -> bool:
        return bool(np.all(self.channels[..., 1] == 1))

    def corners_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Layer coordinates (x, y) of the four corner elements of the array, float64 [4] each."""
        h, w, _ = self.channels.shape
        ox, oy = self.origin_xy
        return np.array([ox, ox + w - 1, ox, ox + w - 1]), np.array([oy, oy, oy + h - 1, oy + h - 1])

    def sample(self, qx: np.ndarray, qy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear samples at layer points (any shape S): (alpha * intensity, alpha), float32 [*S] each."""
        h, w, _ = self.channels.shape
        col = (qx - self.origin_xy[0]).astype(np.float32)
        row = (qy - self.origin_xy[1]).astype(np.float32)
        if not self.periodic:
            np.clip(col, 0, w - 1, out=col)
            np.clip(row, 0, h - 1, out=row)
        c0 = np.floor(col)
        r0 = np.floor(row)
        col -= c0
        row -= r0
        c0 = c0.astype(np.int32)
        r0 = r0.astype(np.int32)
        if self.periodic:
            c0 &= w - 1
            r0 &= h - 1
            c1 = (c0 + 1) & (w - 1)
            r1 = ((r0 + 1) & (h - 1)) * w
        else:
            c1 = np.minimum(c0 + 1, w - 1)
            r1 = np.minimum(r0 + 1, h - 1) * w
        r0 *= w
        # Both channels travel as one complex64 so that each corner is a single 1-D gather.
        packed = self.channels.reshape(-1).view(np.complex64)
        top = packed.take(r0 + c0)
        top += (packed.take(r0 + c1) - top) * col
        bottom = packed.take(r1 + c0)
        bottom += (packed.take(r1 + c1) - bottom) * col
        top += (bottom - top) * row
        return top.real, top.imag


def periodic_value_noise(
    size_hw: tuple[int, int], cell_sizes: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Sum of smooth value-noise octaves that tiles the plane, rescaled to [0, 1]: float64 [h, w].

    Each octave draws uniform values on a lattice of spacing ``cell`` pixels (which must divide
    h and w) and interpolates them with smoothstep weights; all octaves weigh the same.
    """
    h, w = size_hw
    total = np.zeros((h, w))
    for cell in cell_sizes:
        if h % cell or w % cell:
            raise ValueError(f"periodic_value_noise: cell size {cell} must divide the size {size_hw}")
        lattice = rng.uniform(size=(h // cell, w // cell))
        total += _smooth_upsample(_smooth_upsample(lattice, cell, axis=1), cell, axis=0)
    return (total - total.min()) / max(total.max() - total.min(), 1e-12)


def _smooth_upsample(lattice: np.ndarray, cell: int, axis: int) -> np.ndarray:
    n = lattice.shape[axis]
    pos = np.arange(n * cell) / cell
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    weight = frac * frac * (3 - 2 * frac)
    a = np.take(lattice, i0, axis=axis)
    b = np.take(lattice, (i0 + 1) % n, axis=axis)
    shape = [1, 1]
    shape[axis] = -1
    return a + (b - a) * weight.reshape(shape)


def shape_alpha(kind: str, radius_px: float, rng: np.random.Generator) -> np.ndarray:
    """Anti-aliased coverage [n, n] of a random shape of the given kind centred in a square canvas.

    The canvas has a transparent border of at least two pixels. ``kind`` is one of
    :data:`SHAPE_KINDS`: an ellipse, a rotated rectangle, or a star-shaped polygon of 3-8 vertices,
    each reaching at most ``radius_px`` from the centre.
    """
    n = 2 * int(np.ceil(radius_px)) + 5
    sub = (np.arange(n * _SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - n / 2
    x, y = np.meshgrid(sub, sub)
    if kind == "disk":
        ax, ay = radius_px * rng.uniform(0.6, 1.0, size=2)
        theta = rng.uniform(0, np.pi)
        u = np.cos(theta) * x + np.sin(theta) * y
        v = -np.sin(theta) * x + np.cos(theta) * y
        inside = (u / ax) ** 2 + (v / ay) ** 2 <= 1
    elif kind == "rectangle":
        theta = rng.uniform(0, np.pi)
        half = radius_px * rng.uniform(0.4, 1.0, size=2)
        half *= radius_px / np.hypot(*half)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        inside = _inside_polygon(x, y, corners @ _rotation(theta).T)
    elif kind == "polygon":
        count = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=count))
        radii = radius_px * rng.uniform(0.5, 1.0, size=count)
        inside = _inside_polygon(x, y, np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1))
    else:
        raise ValueError(f"shape_alpha: unknown kind {kind!r}, expected one of {SHAPE_KINDS}")
    return inside.reshape(n, _SUPERSAMPLE, n, _SUPERSAMPLE).mean(axis=(1, 3))


def _rotation(theta: float) -> np.ndarray:
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def _inside_polygon(x: np.ndarray, y: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd (crossing number) point-in-polygon test for vertices [V, 2] in (x, y)."""
    inside = np.zeros(x.shape, bool)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        if y0 == y1:
            continue
        straddles = (y0 > y) != (y1 > y)
        crossing_x = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= straddles & (x < crossing_x)
    return inside


def remap(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Affinely map values in [0, 1] to [low, high]."""
    return low + (high - low) * values


def paste_periodic(
    values: np.ndarray, alpha: np.ndarray, fill: Callable[[], float | np.ndarray], rng: np.random.Generator
) -> None:
    """Blend ``fill()`` over the square tile ``values`` in place with opacity ``alpha``, at a random corner,
    wrapping across the seams (the corner is drawn before ``fill`` is called)."""
    side = values.shape[0]
    rows = (int(rng.integers(side)) + np.arange(alpha.shape[0])) % side
    cols = (int(rng.integers(side)) + np.arange(alpha.shape[1])) % side
    patch = np.ix_(rows, cols)
    values[patch] = values[patch] * (1 - alpha) + alpha * fill()


def opaque_tile(intensity: np.ndarray) -> LayerTexture:
    """A periodic, fully opaque layer texture of linear ``intensity`` [H, W]."""
    channels = np.stack([intensity, np.ones_like(intensity)], axis=-1).astype(np.float32)
    return LayerTexture(channels, (0.0, 0.0), periodic=True)


def background_texture(
    min_tile_size: int, intensity_range: tuple[float, float], rng: np.random.Generator
) -> LayerTexture:
    """Opaque tiling background: value noise with sharp-edged shapes pasted across the tile seams.

    The square tile side is the smallest power of two >= ``min_tile_size`` (at least 32); it holds
    one shape per 32x32 pixels of area on average.
    """
    side = max(32, 1 << int(np.ceil(np.log2(max(min_tile_size, 1)))))
    cells = tuple(c for c in (64, 32, 16, 8, 4) if c <= side // 4)
    values = periodic_value_noise((side, side), cells, rng)
    for _ in range(side * side // 1024):
        kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
        alpha = shape_alpha(kind, rng.uniform(0.03, 0.12) * side, rng)
        paste_periodic(values, alpha, rng.uniform, rng)
    return opaque_tile(remap(values, *intensity_range))


def object_texture(
    kind: str,
    radius_px: float,
    intensity_range: tuple[float, float],
    rng: np.random.Generator,
    centre_xy: tuple[float, float] = (0.0, 0.0),
) -> LayerTexture:
    """A textured shape centred on layer point ``centre_xy``: value noise over a random sub-range of
    intensities, and with probability 1/2 a sharp inner shape of another intensity.
    """
    alpha = shape_alpha(kind, radius_px, rng)
    n = alpha.shape[0]
    side = 16 * int(np.ceil(n / 16))
    low, high = np.sort(rng.uniform(0, 1, size=2))
    values = remap(periodic_value_noise((side, side), (16, 8, 4), rng)[:n, :n], low, high)
    if rng.uniform() < 0.5:
        inner_kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
        inner = shape_alpha(inner_kind, radius_px * rng.uniform(0.2, 0.5), rng)
        start = (n - inner.shape[0]) // 2 + int(rng.integers(-n // 8, n // 8 + 1))
        start = min(max(start, 0), n - inner.shape[0])
        window = (slice(start, start + inner.shape[0]),) * 2
        values[window] = values[window] * (1 - inner) + inner * rng.uniform()
    intensity = remap(values, *intensity_range)
    channels = np.stack([alpha * intensity, alpha], axis=-1).astype(np.float32)
    origin = (centre_xy[0] - (n - 1) / 2, centre_xy[1] - (n - 1) / 2)
    return LayerTexture(channels, origin, periodic=False)


def pink_noise(size_hw: tuple[int, int], rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    """Noise whose amplitude spectrum falls as ``1 / f**exponent`` (natural images: about 1), with random
    phases; it tiles the plane (an inverse FFT), rescaled to [0, 1]: float64 [h, w]."""
    h, w = size_hw
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(w), np.fft.fftfreq(h)))
    radius[0, 0] = np.inf  # no mean: the rescaling sets it
    phase = np.exp(2j * np.pi * rng.uniform(size=(h, w)))
    field = np.fft.ifft2(phase / radius**exponent).real
    return (field - field.min()) / max(field.max() - field.min(), 1e-12)


def log_remap(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map values in [0, 1] to intensities in [low, high] evenly in log intensity (the contrast the
    camera sees: every step of ``values`` is the same log-intensity change)."""
    return low * (high / low) ** values


def natural_background_texture(
    min_tile_size: int, intensity_range: tuple[float, float], rng: np.random.Generator
) -> LayerTexture:
    """Opaque tiling background of natural-image statistics: a dead-leaves tile.

    Shapes (:func:`shape_alpha`) of power-law radii (density ``r**-3``, from 2 px to a quarter of the tile)
    are stacked over a 1/f noise field (:func:`pink_noise`) until they cover it several times over; each
    is filled with its own 1/f noise over a random sub-range, so the tile has sharp occluding edges at every
    scale and an amplitude spectrum close to 1/f. Values map to ``intensity_range`` evenly in log intensity
    (:func:`log_remap`): a range of (0.01, 1) is a 100:1 contrast. The square side is as in
    :func:`background_texture`.
    """
    side = max(32, 1 << int(np.ceil(np.log2(max(min_tile_size, 1)))))
    values = pink_noise((side, side), rng)
    r_min, r_max = 2.0, side / 4
    covered = 0.0
    while covered < 4 * side * side:
        radius = r_min / np.sqrt(1 - rng.uniform() * (1 - (r_min / r_max) ** 2))  # density ~ r^-3
        kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
        alpha = shape_alpha(kind, radius, rng)
        n = alpha.shape[0]
        low, high = np.sort(rng.uniform(0, 1, size=2))
        fill = remap(pink_noise((n, n), rng), low, high)
        paste_periodic(values, alpha, fill.copy, rng)
        covered += float(alpha.sum())
    return opaque_tile(log_remap(values, *intensity_range))


def natural_object_texture(
    kind: str,
    radius_px: float,
    intensity_range: tuple[float, float],
    rng: np.random.Generator,
    centre_xy: tuple[float, float] = (0.0, 0.0),
) -> LayerTexture:
    """A shape centred on layer point ``centre_xy`` filled with 1/f noise over a random sub-range of
    ``intensity_range`` (in log intensity, as :func:`natural_background_texture`)."""
    alpha = shape_alpha(kind, radius_px, rng)
    n = alpha.shape[0]
    low, high = np.sort(rng.uniform(0, 1, size=2))
    intensity = log_remap(remap(pink_noise((n, n), rng), low, high), *intensity_range)
    channels = np.stack([alpha * intensity, alpha], axis=-1).astype(np.float32)
    origin = (centre_xy[0] - (n - 1) / 2, centre_xy[1] - (n - 1) / 2)
    return LayerTexture(channels, origin, periodic=False)


BackgroundMaker = Callable[[int, tuple[float, float], np.random.Generator], LayerTexture]
ObjectMaker = Callable[..., LayerTexture]


@dataclass(frozen=True)
class TextureKind:
    """How one kind of texture makes a scene's background (``(min_tile_size, intensity_range, rng)``) and
    its objects (``(kind, radius_px, intensity_range, rng, centre_xy)``)."""

    background: BackgroundMaker
    object: ObjectMaker


TEXTURES: dict[str, TextureKind] = {
    "value_noise": TextureKind(background_texture, object_texture),
    "natural": TextureKind(natural_background_texture, natural_object_texture),
}
