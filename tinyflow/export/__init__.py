"""Export of a trained network as one time step with its recurrent state as explicit inputs and outputs.

Formats (:mod:`~tinyflow.export.formats`): float ONNX with standard operators, INT8 ONNX (QDQ, static
quantisation) and NIR for neuromorphic toolchains; each export writes the model, a ``manifest.json`` and
a parity report against the PyTorch network (:mod:`~tinyflow.export.parity`). The ONNX Runtime stepper
(:mod:`~tinyflow.export.runtime`) needs numpy and onnxruntime only. Modules are imported where used, so
``tinyflow.export.runtime`` loads without torch.
"""
