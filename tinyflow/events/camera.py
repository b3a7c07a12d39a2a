"""Camera geometry: lens distortion models, undistortion maps, event remapping, rotational flow.

Pixel coordinates are (x, y) = (column, row); normalised coordinates are ``((x - cx) / fx,
(y - cy) / fy)`` on the undistorted image plane at unit depth. Two distortion models:

- ``radtan`` (OpenCV / ECD / MVSEC / DSEC): coefficients ``(k1, k2, p1, p2[, k3])``;
- ``equidistant`` (Kalibr fisheye, UZH-FPV): coefficients ``(k1, k2, k3, k4)`` of
  ``theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tinyflow.events.core import Events

DistortionModel = Literal["radtan", "equidistant"]
UNDISTORT_ITERATIONS = 20  # fixed-point / Newton steps: round trip error < 1e-9 px on ECD and DAVIS lenses


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics in pixels and a lens distortion model (see the module docstring)."""

    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = ()
    model: DistortionModel = "radtan"

    def __post_init__(self) -> None:
        sizes = {"radtan": (0, 4, 5), "equidistant": (0, 4)}
        if self.model not in sizes:
            raise ValueError(f"camera model must be 'radtan' or 'equidistant', got {self.model!r}")
        if len(self.distortion) not in sizes[self.model]:
            raise ValueError(
                f"{self.model} distortion takes {' or '.join(map(str, sizes[self.model]))} coefficients, "
                f"got {len(self.distortion)}: {self.distortion}"
            )

    @property
    def intrinsics(self) -> np.ndarray:
        """float64 [4]: ``(fx, fy, cx, cy)``."""
        return np.array([self.fx, self.fy, self.cx, self.cy], np.float64)

    def to_normalized(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(x, np.float64) - self.cx) / self.fx, (
            np.asarray(y, np.float64) - self.cy
        ) / self.fy

    def to_pixels(self, xn: np.ndarray, yn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return xn * self.fx + self.cx, yn * self.fy + self.cy

    def distort(self, xn: np.ndarray, yn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Undistorted normalised coordinates -> distorted normalised coordinates."""
        if not any(self.distortion):
            return xn, yn
        if self.model == "equidistant":
            r = np.hypot(xn, yn)
            theta = np.arctan(r)
            scale = np.where(r > 0, self._theta_d(theta) / np.where(r > 0, r, 1.0), 1.0)
            return xn * scale, yn * scale
        k1, k2, p1, p2, k3 = (*self.distortion, 0.0)[:5]
        r2 = xn * xn + yn * yn
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        return (
            xn * radial + 2 * p1 * xn * yn + p2 * (r2 + 2 * xn * xn),
            yn * radial + p1 * (r2 + 2 * yn * yn) + 2 * p2 * xn * yn,
        )

    def _theta_d(self, theta: np.ndarray) -> np.ndarray:
        k1, k2, k3, k4 = self.distortion
        t2 = theta * theta
        return theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))

    def undistort(self, xd: np.ndarray, yd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distorted normalised coordinates -> undistorted normalised coordinates (iterative inverse)."""
        xd, yd = np.asarray(xd, np.float64), np.asarray(yd, np.float64)
        if not any(self.distortion):
            return xd, yd
        if self.model == "equidistant":
            theta_d = np.hypot(xd, yd)
            theta = theta_d.copy()
            k1, k2, k3, k4 = self.distortion
            for _ in range(UNDISTORT_ITERATIONS):  # Newton on theta_d(theta) = theta_d
                t2 = theta * theta
                slope = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
                theta = theta - (self._theta_d(theta) - theta_d) / slope
            scale = np.where(theta_d > 0, np.tan(theta) / np.where(theta_d > 0, theta_d, 1.0), 1.0)
            return xd * scale, yd * scale
        k1, k2, p1, p2, k3 = (*self.distortion, 0.0)[:5]
        xn, yn = xd.copy(), yd.copy()
        for _ in range(UNDISTORT_ITERATIONS):  # fixed point, as OpenCV's undistortPoints
            r2 = xn * xn + yn * yn
            radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
            dx = 2 * p1 * xn * yn + p2 * (r2 + 2 * xn * xn)
            dy = p1 * (r2 + 2 * yn * yn) + 2 * p2 * xn * yn
            xn, yn = (xd - dx) / radial, (yd - dy) / radial
        return xn, yn

    def undistort_pixels(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (distorted) pixel positions -> undistorted pixel positions on the same intrinsics."""
        return self.to_pixels(*self.undistort(*self.to_normalized(x, y)))

    def distort_pixels(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Undistorted pixel positions -> raw (distorted) pixel positions."""
        return self.to_pixels(*self.distort(*self.to_normalized(x, y)))

    def undistort_map(self, sensor_size: tuple[int, int]) -> np.ndarray:
        """float32 [H, W, 2]: undistorted (x, y) of every raw pixel (DSEC's ``rectify_map`` convention)."""
        return _pixel_map(self.undistort_pixels, sensor_size)

    def distort_map(self, sensor_size: tuple[int, int]) -> np.ndarray:
        """float32 [H, W, 2]: raw (x, y) of every undistorted pixel (a remap table for frames)."""
        return _pixel_map(self.distort_pixels, sensor_size)

    def calib(self) -> dict[str, np.ndarray]:
        """Arrays for the canonical ``/calib`` group: intrinsics and ``distortion_<model>``."""
        return {
            "intrinsics": self.intrinsics,
            f"distortion_{self.model}": np.asarray(self.distortion, np.float64),
        }


def _pixel_map(function, sensor_size: tuple[int, int]) -> np.ndarray:
    height, width = sensor_size
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    mx, my = function(x, y)
    return np.stack([mx, my], axis=-1).astype(np.float32)


def remap_events(events: Events, xy_map: np.ndarray, sensor_size: tuple[int, int]) -> Events:
    """Move each event to ``xy_map[y, x]`` rounded to the nearest pixel; events landing outside drop.

    Args:
        xy_map: float [H_in, W_in, 2], new (x, y) of every input pixel (e.g. :meth:`Camera.undistort_map`).
        sensor_size: ``(height, width)`` of the output grid.
    """
    height, width = sensor_size
    target = np.rint(xy_map[events.y.astype(np.int64), events.x.astype(np.int64)]).astype(np.int64)
    inside = (target[:, 0] >= 0) & (target[:, 0] < width) & (target[:, 1] >= 0) & (target[:, 1] < height)
    return Events(
        target[inside, 0].astype(np.uint16),
        target[inside, 1].astype(np.uint16),
        events.t_us[inside],
        events.p[inside],
    )


def rotational_flow(
    camera: Camera, angular_velocity: np.ndarray, duration_us: float, sensor_size: tuple[int, int]
) -> np.ndarray:
    """Optical flow of a purely rotating camera, float32 [2, H, W] in pixels over ``duration_us``.

    The rotational motion field (Longuet-Higgins & Prazdny) does not depend on depth: for normalised
    coordinates (x, y) and angular velocity w = (wx, wy, wz) in rad/s in the camera frame
    (x right, y down, z forward), ``u = x y wx - (1 + x^2) wy + y wz`` and
    ``v = (1 + y^2) wx - x y wy - x wz`` (normalised units per second), scaled by (fx, fy) and the
    interval (first order in the rotation angle). Pixels are on the undistorted grid of ``camera``.
    """
    wx, wy, wz = np.asarray(angular_velocity, np.float64)
    height, width = sensor_size
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    xn, yn = camera.to_normalized(x, y)
    seconds = duration_us * 1e-6
    u = xn * yn * wx - (1 + xn * xn) * wy + yn * wz
    v = (1 + yn * yn) * wx - xn * yn * wy - xn * wz
    return np.stack([u * camera.fx * seconds, v * camera.fy * seconds]).astype(np.float32)
