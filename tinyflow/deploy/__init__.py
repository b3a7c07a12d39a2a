"""A stream runner for exported ONNX step graphs that needs neither Lightning nor Hydra nor torch:
``python -m tinyflow.deploy <model.onnx> <recording.h5> [--output flow.h5]``."""
