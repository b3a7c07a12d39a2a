"""Contrast maximisation: warps, splatting into images of warped events, focus objectives, smoothness."""
