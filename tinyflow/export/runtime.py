"""Stepping an exported ONNX step graph in ONNX Runtime with its state carried; needs numpy and onnxruntime only.

The graph's inputs are ``x`` (one encoded window, float32 [1, C, H, W]) and the state ``state.<layer>.<i>``;
its outputs are the prediction (``flow``: pixels over the window, channel 0 = x) and the new state
``new_state.<layer>.<i>``, fed back as ``state.<layer>.<i>`` at the next window. The state starts at zeros
and is zeroed again where a new recording starts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

INPUT_NAME = "x"
STATE_PREFIX = "state."
NEW_STATE_PREFIX = "new_state."
ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


def onnx_session(path: str | Path, threads: int = 1) -> ort.InferenceSession:
    """A CPU session of the model at ``path`` with ``threads`` intra-op threads (0: ONNX Runtime's choice)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no notes on initializers or unused nodes
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxStep:
    """One window at a time through an exported step graph, holding the state between calls.

    Args:
        path: the ``.onnx`` file (float or INT8).
        threads: ONNX Runtime intra-op threads.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.path = Path(path)
        self.session = onnx_session(path, threads)
        inputs = {node.name: node for node in self.session.get_inputs()}
        outputs = [node.name for node in self.session.get_outputs()]
        if INPUT_NAME not in inputs:
            raise ValueError(f"{path}: the graph has no input {INPUT_NAME!r} (inputs: {sorted(inputs)})")
        self.state_names = [name for name in inputs if name.startswith(STATE_PREFIX)]
        expected = {NEW_STATE_PREFIX + name.removeprefix(STATE_PREFIX) for name in self.state_names}
        missing = sorted(expected - set(outputs))
        if missing or len(inputs) != len(self.state_names) + 1:
            raise ValueError(
                f"{path}: expected inputs {INPUT_NAME!r} and {STATE_PREFIX}* with a {NEW_STATE_PREFIX}* output "
                f"for each; inputs {sorted(inputs)}, outputs {outputs}"
            )
        self.prediction_name = next(name for name in outputs if not name.startswith(NEW_STATE_PREFIX))
        self.output_names = [self.prediction_name] + [
            NEW_STATE_PREFIX + name.removeprefix(STATE_PREFIX) for name in self.state_names
        ]
        self.input_shape = tuple(inputs[INPUT_NAME].shape)
        self._zeros = {
            name: np.zeros(inputs[name].shape, ORT_DTYPES[inputs[name].type]) for name in self.state_names
        }
        self.state: dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the zero state (a new recording)."""
        self.state = {name: zeros.copy() for name, zeros in self._zeros.items()}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The prediction for window ``x`` (float32, the graph's input shape); the new state is kept."""
        if tuple(x.shape) != self.input_shape:
            raise ValueError(
                f"{self.path.name}: input of shape {tuple(x.shape)}: the graph takes {self.input_shape}"
            )
        prediction, *new_state = self.session.run(self.output_names, {INPUT_NAME: x, **self.state})
        self.state = dict(zip(self.state_names, new_state, strict=True))
        return prediction


__all__ = ["INPUT_NAME", "NEW_STATE_PREFIX", "STATE_PREFIX", "OnnxStep", "onnx_session"]
