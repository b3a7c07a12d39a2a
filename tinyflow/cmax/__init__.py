"""Contrast maximisation: warps, splatting into images of warped events, focus objectives, smoothness."""

from tinyflow.cmax.losses import CMaxIterativeLoss, CMaxLinearLoss, CMaxLoss, WarpedEventImages

__all__ = ["CMaxIterativeLoss", "CMaxLinearLoss", "CMaxLoss", "WarpedEventImages"]
