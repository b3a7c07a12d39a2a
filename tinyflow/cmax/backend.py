"""Choice between the PyTorch and the Triton implementations of the CMax kernels (warp and splat).

Triton is imported only when a Triton backend is resolved, so ``import tinyflow`` works without it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Literal

import torch

Backend = Literal["auto", "torch", "triton"]
BACKENDS = ("auto", "torch", "triton")
TRITON_OPS_MODULE = "tinyflow.cmax.triton.ops"


def triton_ops() -> ModuleType:
    """The Triton autograd wrappers (:mod:`tinyflow.cmax.triton.ops`); ImportError if Triton cannot load."""
    try:
        return importlib.import_module(TRITON_OPS_MODULE)
    except (ImportError, RuntimeError) as error:
        raise ImportError(
            "backend='triton': Triton could not be loaded "
            f"({type(error).__name__}: {error}); install it with pip install 'tinyflow[triton]' "
            "(Linux x86_64) or use backend='torch'"
        ) from error


def triton_available() -> bool:
    """Whether Triton and the kernels of :mod:`tinyflow.cmax.triton` can be imported."""
    try:
        triton_ops()
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device: torch.device) -> Literal["torch", "triton"]:
    """The implementation to run for tensors on ``device``.

    ``"auto"`` picks Triton for CUDA tensors when Triton loads, PyTorch otherwise. ``"triton"`` needs
    CUDA tensors, or ``TRITON_INTERPRET=1`` (Triton's CPU interpreter, for tests) set before the kernels
    are first imported.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "torch":
        return "torch"
    if backend == "auto":
        return "triton" if device.type == "cuda" and triton_available() else "torch"
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET", "0").lower() not in ("1", "true", "on"):
        raise ValueError(
            f"backend='triton' needs CUDA tensors (got {device.type}); set TRITON_INTERPRET=1 to run the "
            "kernels in Triton's CPU interpreter, or use backend='torch'"
        )
    triton_ops()
    return "triton"
