"""Triton kernels of the CMax engine (iterative warp, bilinear splat) with their autograd wrappers.

Nothing here is imported by ``import tinyflow``: :mod:`tinyflow.cmax.backend` loads
:mod:`tinyflow.cmax.triton.ops` on first use of the Triton backend. The kernels compute what the PyTorch
references :func:`tinyflow.cmax.warp.warp_iterative_torch` and :func:`tinyflow.cmax.splat.splat_points_torch`
compute, with the same padding and the same derivatives at integer coordinates (see
:mod:`tinyflow.cmax.bilinear`).
"""
