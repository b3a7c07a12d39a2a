"""INT8 ONNX from a float step graph: ONNX Runtime's static quantisation (QDQ format), calibrated on windows fed
in sequence with their recurrent states.

A step graph's inputs are a window and the state that the previous windows left, so a calibration sample is
``{x, state.*}`` as the float graph produces it: :class:`SequenceCalibration` runs the float graph over the
windows (zeroing the state where a recording starts) and hands ONNX Runtime's calibrator each window with the
state it is fed at deployment. The quantised graph holds ``QuantizeLinear`` / ``DequantizeLinear`` pairs
around the quantised operators (standard ONNX, default domain) and runs in stock ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from tinyflow.export.runtime import INPUT_NAME, OnnxStep

CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
# windows whose intermediate tensors the calibrator holds before it folds them into its ranges (memory)
MAX_INTERMEDIATE_OUTPUTS = 8


class SequenceCalibration(CalibrationDataReader):
    """Calibration samples ``{x, state.*}``: each window with the state the float graph carries into it.

    Args:
        float_path: the float step graph.
        windows: ``(x, starts_recording)`` in order; the state is zeroed before a window that starts one.
    """

    def __init__(self, float_path: Path, windows: Iterable[tuple[np.ndarray, bool]]) -> None:
        self.step = OnnxStep(float_path)
        self.windows = iter(windows)
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        window = next(self.windows, None)
        if window is None:
            return None
        x, starts_recording = window
        if starts_recording:
            self.step.reset()
        sample = {INPUT_NAME: x, **self.step.state}
        self.step(x)
        self.count += 1
        return sample


def quantize_int8(
    float_path: Path,
    int8_path: Path,
    windows: Iterable[tuple[np.ndarray, bool]],
    *,
    per_channel: bool,
    op_types: Sequence[str] | None,
    calibration: str,
) -> int:
    """Write the INT8 (QDQ) graph of ``float_path`` to ``int8_path``; returns the number of calibration windows.

    Args:
        windows: the calibration windows (see :class:`SequenceCalibration`).
        per_channel: per-output-channel weight scales (else one scale per tensor).
        op_types: operator types to quantise (e.g. ``["Conv"]``); None: every type ONNX Runtime quantises.
        calibration: ``minmax``, ``entropy`` or ``percentile`` (the activation ranges).
    """
    if calibration not in CALIBRATION_METHODS:
        raise ValueError(f"calibration={calibration!r}: expected one of {sorted(CALIBRATION_METHODS)}")
    prepared = int8_path.with_name(f".{int8_path.stem}.prepared.onnx")
    try:
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        reader = SequenceCalibration(float_path, windows)
        quantize_static(
            str(prepared),
            str(int8_path),
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(op_types) if op_types else None,
            per_channel=per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CALIBRATION_METHODS[calibration],
            extra_options={"CalibMaxIntermediateOutputs": MAX_INTERMEDIATE_OUTPUTS},
        )
    finally:
        prepared.unlink(missing_ok=True)
    return reader.count


__all__ = ["CALIBRATION_METHODS", "SequenceCalibration", "quantize_int8"]
