"""Quantisation (brevitas): INT8 QAT and PTQ of a built network, membrane-potential grids, QCDQ ONNX export.

The ``quant`` config options (:mod:`tinyflow.quant.profiles`) import without brevitas, so float runs need
none; :mod:`~tinyflow.quant.converters`, :mod:`~tinyflow.quant.calibrate` and
:mod:`~tinyflow.quant.onnx_qcdq` need it (``pip install -e ".[export]"``).
"""

from tinyflow.quant.profiles import Int8Quantisation, NoQuantisation, Quantisation

__all__ = ["Int8Quantisation", "NoQuantisation", "Quantisation"]
