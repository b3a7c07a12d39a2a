"""Contrast maximisation: warps, splatting into images of warped events, focus objectives, smoothness."""

from tinyflow.cmax.losses import CMaxLinearLoss, WarpedEventImages

__all__ = ["CMaxLinearLoss", "WarpedEventImages"]
