"""``manifest.json``: what a runtime needs to feed an exported model and read its output, and where it came from."""

from __future__ import annotations

import datetime
import importlib.metadata
from dataclasses import asdict, dataclass
from typing import Any

MANIFEST_NAME = "manifest.json"
PARITY_NAME = "parity.json"
MANIFEST_VERSION = 1
VERSIONED_PACKAGES = ("tinyflow", "torch", "onnx", "onnxruntime", "nir", "snntorch")


@dataclass(frozen=True)
class InputSpec:
    """How a window becomes the network's input.

    Attributes:
        encoding: ``counts`` ([2, H, W] per-polarity counts) or ``voxel`` ([num_bins, H, W]).
        num_bins: channels of a voxel grid.
        sensor_size: (height, width) in pixels of the exported input.
        windowing: how the network's training windows were cut (``mode`` and its length), what a stream
            should cut.
        validation_windowing: how the parity windows were cut.
        hot_pixels: the data's hot-pixel filter settings (applied over a whole recording), or None.
    """

    encoding: str
    num_bins: int
    sensor_size: tuple[int, int]
    windowing: dict[str, Any]
    validation_windowing: dict[str, Any]
    hot_pixels: dict[str, Any] | None = None

    @classmethod
    def of(cls, datamodule: Any, sensor_size: tuple[int, int]) -> InputSpec:
        """The spec of an :class:`~tinyflow.data.datamodule.EventDataModule`'s windows at ``sensor_size``."""
        hot_pixels = datamodule.hot_pixels
        return cls(
            encoding=datamodule.encoding,
            num_bins=datamodule.num_bins,
            sensor_size=tuple(sensor_size),
            windowing=windowing_spec(datamodule.train_windowing),
            validation_windowing=windowing_spec(datamodule.val_windowing),
            hot_pixels=asdict(hot_pixels) if hot_pixels is not None else None,
        )


@dataclass(frozen=True)
class Source:
    """What was exported: the run, its checkpoint file and its hash (None for weights in memory, e.g. the
    export at the end of training), the training step."""

    run_id: str | None
    checkpoint: str | None
    checkpoint_sha256: str | None
    global_step: int | None = None


def windowing_spec(windowing: Any) -> dict[str, Any]:
    """The fields of a :class:`~tinyflow.data.dataset.Windowing` that its mode uses."""
    mode = windowing.mode
    length = {"count": "events_per_window", "duration": "duration_us", "gt": "flow_name"}.get(mode)
    spec = {"mode": mode}
    if length is not None:
        spec[length] = getattr(windowing, length)
    if mode == "gt":
        spec["without_gt"] = windowing.without_gt
    return spec


def _versions() -> dict[str, str]:
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def build_manifest(
    *,
    format_name: str,
    precision: str,
    exported: Any,
    network: Any,
    inputs: InputSpec,
    source: Source,
    weights_sha256: str,
    readout: str | None = None,
) -> dict[str, Any]:
    """The manifest of an export (``exported``: a :class:`~tinyflow.export.formats.Exported`); ``readout``: the
    formula from the model's output to the prediction, where the output is not the prediction itself."""
    prediction = network.prediction.output_key
    window = asdict(inputs)
    window["sensor_size"] = list(inputs.sensor_size)
    return {
        "manifest_version": MANIFEST_VERSION,
        "format": format_name,
        "precision": precision,
        "model": exported.model_file,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "network": {
            "type": type(network).__name__,
            "parameters": sum(p.numel() for p in network.parameters()),
            "weights_sha256": weights_sha256,
        },
        "inputs": exported.inputs,
        "outputs": exported.outputs,
        "state": exported.state,
        "window": window,
        "prediction": prediction,
        "flow_units": (
            "pixels of displacement over the input window (its duration), x (column) first, at the input "
            "resolution; multiply by T / window duration for another interval T"
            if prediction == "flow"
            else None
        ),
        "readout": readout or "the output is the prediction",
        **exported.details,
        "source": asdict(source),
        "versions": _versions(),
        "parity": PARITY_NAME,
    }


__all__ = ["MANIFEST_NAME", "PARITY_NAME", "InputSpec", "Source", "build_manifest", "windowing_spec"]
