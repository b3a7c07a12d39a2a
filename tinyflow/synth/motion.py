"""Exact, analytic 2-D similarity motions of scene layers.

A layer maps its layer coordinates ``q = (qx, qy)`` (pixels) to image coordinates
``p = (x, y)`` = (column, row) at time ``t_s`` (seconds) by a similarity
``p = scale * R(angle) @ q + offset``. Velocities are smooth in time (a mean plus a sinusoid)
and are integrated in closed form, so positions at any time are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmoothRate:
    """A rate ``r(t) = mean + amplitude * sin(2π t / period_s + phase)`` with its exact integral."""

    mean: float
    amplitude: float = 0.0
    period_s: float = 1.0
    phase: float = 0.0

    def integral(self, t_s: np.ndarray) -> np.ndarray:
        """``∫_0^t r(τ) dτ``."""
        omega = 2 * np.pi / self.period_s
        return self.mean * t_s + self.amplitude / omega * (
            np.cos(self.phase) - np.cos(omega * t_s + self.phase)
        )


@dataclass(frozen=True)
class Similarity:
    """Similarities at T times: ``p = scale * R(angle) q + offset``.

    Attributes:
        scale: float [T].
        angle: float [T], radians; a positive angle turns +x towards +y (clockwise as displayed,
            since rows point down).
        offset: float [T, 2], (x, y) in pixels.
    """

    scale: np.ndarray
    angle: np.ndarray
    offset: np.ndarray

    def _expand(self, points: np.ndarray) -> tuple[np.ndarray, ...]:
        """Parameters shaped [T, 1, ...] against points of shape S, in the points' float precision."""
        shape = self.scale.shape + (1,) * np.ndim(points)
        dtype = np.result_type(points, np.float32)
        parts = (self.scale, np.cos(self.angle), np.sin(self.angle), self.offset[:, 0], self.offset[:, 1])
        return tuple(part.astype(dtype).reshape(shape) for part in parts)

    def apply(self, qx: np.ndarray, qy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map layer points (any shape S) to image points at every time: two [T, *S] arrays.

        Computed in the points' precision (float32 points give float32 results).
        """
        s, c, n, bx, by = self._expand(qx)
        return s * (c * qx - n * qy) + bx, s * (n * qx + c * qy) + by

    def invert(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map image points (any shape S) back to layer points at every time: two [T, *S] arrays.

        Computed in the points' precision (float32 points give float32 results).
        """
        s, c, n, bx, by = self._expand(px)
        dx, dy = px - bx, py - by
        return (c * dx + n * dy) / s, (-n * dx + c * dy) / s

    def relative_to(self, reference: Similarity) -> Similarity:
        """The map ``self ∘ reference⁻¹``: image points under ``reference`` to image points under ``self``."""
        scale = self.scale / reference.scale
        angle = self.angle - reference.angle
        c, n = np.cos(angle), np.sin(angle)
        bx, by = reference.offset[:, 0], reference.offset[:, 1]
        offset = self.offset - scale[:, None] * np.stack([c * bx - n * by, n * bx + c * by], axis=-1)
        return Similarity(scale, angle, offset)


@dataclass(frozen=True)
class ObjectMotion:
    """A layer moving on its own: translation of its centre, rotation and scaling about it.

    ``p = centre(t) + scale(t) R(angle(t)) q``, so the layer point ``q = 0`` is the centre.

    Attributes:
        centre_xy: image position of the centre at t = 0, pixels.
        velocity_x, velocity_y: centre velocity, px/s.
        angular_velocity: rad/s.
        log_scale_rate: d ln(scale) / dt, 1/s.
        depth_m: constant depth of the layer in metres (scaling changes the object's size, not its depth).
    """

    centre_xy: tuple[float, float]
    velocity_x: SmoothRate
    velocity_y: SmoothRate
    angular_velocity: SmoothRate
    log_scale_rate: SmoothRate
    depth_m: float

    def pose(self, t_s: np.ndarray) -> Similarity:
        t_s = np.atleast_1d(np.asarray(t_s, np.float64))
        offset = np.stack(
            [
                self.centre_xy[0] + self.velocity_x.integral(t_s),
                self.centre_xy[1] + self.velocity_y.integral(t_s),
            ],
            axis=-1,
        )
        return Similarity(
            np.exp(self.log_scale_rate.integral(t_s)), self.angular_velocity.integral(t_s), offset
        )

    def depth(self, t_s: np.ndarray) -> np.ndarray:
        """Depth in metres at each time [T]."""
        return np.full(np.shape(np.atleast_1d(t_s)), self.depth_m)


@dataclass(frozen=True)
class CameraMotion:
    """Motion of a camera looking at static fronto-parallel planes (shared by every layer).

    Attributes:
        velocity_x, velocity_y: lateral image velocity, px/s, of a point at ``reference_depth_m``
            (a point at depth Z moves ``reference_depth_m / Z`` times as fast: translation parallax).
        angular_velocity: image rotation about ``centre_xy``, rad/s (the same for every depth).
        forward_velocity: speed towards the scene along the optical axis, m/s.
        reference_depth_m: depth at which ``velocity_x/y`` is given, metres.
        centre_xy: principal point (x, y), pixels.
    """

    velocity_x: SmoothRate
    velocity_y: SmoothRate
    angular_velocity: SmoothRate
    forward_velocity: SmoothRate
    reference_depth_m: float
    centre_xy: tuple[float, float]


@dataclass(frozen=True)
class CameraLayerMotion:
    """A static plane at depth ``depth_m`` (at t = 0) seen by a moving camera.

    Layer coordinates are the image coordinates at t = 0. A pinhole camera translating by
    ``(Tx, Ty, Tz)`` and rolling by ``angle`` sees the plane through the similarity
    ``p = o + Z / (Z - Tz) R(angle) (q - o + u * Z_ref / Z)`` with ``u`` the integrated image velocity.
    """

    camera: CameraMotion
    depth_m: float

    def pose(self, t_s: np.ndarray) -> Similarity:
        t_s = np.atleast_1d(np.asarray(t_s, np.float64))
        cam = self.camera
        scale = self.depth_m / self.depth(t_s)
        angle = cam.angular_velocity.integral(t_s)
        parallax = cam.reference_depth_m / self.depth_m
        shift_x = parallax * cam.velocity_x.integral(t_s) - cam.centre_xy[0]
        shift_y = parallax * cam.velocity_y.integral(t_s) - cam.centre_xy[1]
        offset = np.stack(
            [
                cam.centre_xy[0] + scale * (np.cos(angle) * shift_x - np.sin(angle) * shift_y),
                cam.centre_xy[1] + scale * (np.sin(angle) * shift_x + np.cos(angle) * shift_y),
            ],
            axis=-1,
        )
        return Similarity(scale, angle, offset)

    def depth(self, t_s: np.ndarray) -> np.ndarray:
        """Depth in metres at each time [T]; raises if the camera reaches the plane."""
        depth = self.depth_m - self.camera.forward_velocity.integral(np.atleast_1d(t_s))
        if np.any(depth <= 0):
            raise ValueError(f"camera reaches the layer at depth {self.depth_m} m (forward motion too large)")
        return depth


@dataclass(frozen=True)
class StereoShiftedMotion:
    """A layer seen by the right camera of a rectified stereo pair whose left camera sees ``left``.

    The right camera sits ``b`` metres to the right of the left one, looking the same way (rectified), so a
    point at depth Z seen at left pixel (x, y) is at (x - d, y) with the disparity ``d = f b / Z`` (f: focal
    length in pixels). A layer is a fronto-parallel plane, so its right image is its left image shifted by
    -d(t) along x: exact, for every pose of ``left`` (the pair moves rigidly, rolling about the left axis).

    Attributes:
        left: the layer's motion in the left camera.
        focal_baseline_px_m: f b, pixels x metres.
    """

    left: ObjectMotion | CameraLayerMotion
    focal_baseline_px_m: float

    def disparity_px(self, t_s: np.ndarray) -> np.ndarray:
        """Disparity in pixels at each time [T] (positive: the right image lies to the left)."""
        return self.focal_baseline_px_m / self.left.depth(t_s)

    def pose(self, t_s: np.ndarray) -> Similarity:
        left = self.left.pose(t_s)
        offset = left.offset - np.stack([self.disparity_px(t_s), np.zeros(len(left.scale))], axis=-1)
        return Similarity(left.scale, left.angle, offset)

    def depth(self, t_s: np.ndarray) -> np.ndarray:
        """Depth in metres at each time [T], the same for both cameras of the rectified pair."""
        return self.left.depth(t_s)


LayerMotion = ObjectMotion | CameraLayerMotion | StereoShiftedMotion
