"""An export from start to end: the model file, ``manifest.json`` and ``parity.json``, in a folder that appears
whole (what ``export.py`` and the export callback both run)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tinyflow.export.errors import ExportError
from tinyflow.export.files import export_folder, weights_sha256, write_json
from tinyflow.export.manifest import MANIFEST_NAME, PARITY_NAME, InputSpec, Source, build_manifest
from tinyflow.export.parity import ParityCheck, ParityReport, TorchRunner, ValidationSequence

if TYPE_CHECKING:  # the formats import onnx and nir (the export extra); an export format object brings them
    from tinyflow.export.formats import ExportFormat


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it measured."""

    folder: Path
    model: Path
    manifest: dict[str, Any]
    report: ParityReport


def export_network(
    network: nn.Module,
    export_format: ExportFormat,
    dataset: Any,
    inputs: InputSpec,
    source: Source,
    folder: Path,
    parity: ParityCheck,
    overwrite: bool = False,
    readout: str | None = None,
) -> ExportResult:
    """Export ``network`` (a pure network, left unchanged: a CPU copy is exported) into ``folder``.

    The input size is that of ``dataset``'s windows (the validation data); the parity check and any
    calibration read its windows in sequence.

    Args:
        dataset: validation windows (a :class:`~tinyflow.data.dataset.WindowDataset`).
        inputs: the input encoding and windowing, for the manifest.
        source: the run and checkpoint, for the manifest.
        folder: the export's folder (``<run>/export/<format>``); refused if it exists, unless ``overwrite``.
        readout: how the model's output becomes the prediction (the task's
            :meth:`~tinyflow.tasks.recurrent.RecurrentTask.readout`), for the manifest.

    Raises:
        ExportError: the folder exists, the format cannot represent the network, or its input size does not fit.
    """
    network = copy.deepcopy(network).cpu().eval()
    windows = ValidationSequence(dataset, max(parity.windows, export_format.calibration_windows))
    if len(windows) == 0:
        raise ExportError("no validation window to export with (the parity check and calibration need some)")
    x = torch.from_numpy(next(iter(windows)).x)
    try:
        network.check_input(x, None)
    except ValueError as error:
        raise ExportError(f"the validation windows do not fit the network: {error}") from None
    with export_folder(folder, overwrite) as temporary:
        exported = export_format.write(network, x, temporary, windows.inputs(), parity.threads)
        prediction = network.prediction.output_key
        parity_windows = ValidationSequence(dataset, parity.windows)
        report = parity.run(TorchRunner(network), exported.runner, parity_windows, prediction)
        manifest = build_manifest(
            format_name=export_format.name,
            precision=export_format.precision,
            exported=exported,
            network=network,
            inputs=inputs,
            source=source,
            weights_sha256=weights_sha256(network),
            readout=readout,
        )
        write_json(temporary / MANIFEST_NAME, manifest)
        write_json(temporary / PARITY_NAME, report.to_dict())
    return ExportResult(folder, folder / exported.model_file, manifest, report)


__all__ = ["ExportResult", "export_network"]
