"""What ``export.py`` does, importable and testable without the Hydra entry point."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console

from tinyflow.app.build import build_task
from tinyflow.app.checkpoints import load_checkpoint_file
from tinyflow.app.checks import ConfigError, hardware_profile
from tinyflow.app.console import print_summary
from tinyflow.app.loading import load_run
from tinyflow.app.quiet import quiet_console
from tinyflow.app.resolvers import register_resolvers
from tinyflow.export.files import sha256_file
from tinyflow.export.manifest import MANIFEST_NAME, PARITY_NAME, InputSpec, Source
from tinyflow.export.pipeline import ExportResult, export_network
from tinyflow.metrics.hardware import EXPORT_FORMATS, HardwareProfile

EXPORT_OVERRIDABLE_GROUPS = ("data",)
EXPORT_DIR = "export"


def hardware_format(profile: HardwareProfile) -> str:
    """The export format a hardware profile asks for: its ``export_format``, INT8 ONNX where it says ``onnx``
    at ``precision: int8`` (NIR keeps float weights whatever the chip's precision: its toolchain maps them)."""
    if profile.precision == "int8" and profile.export_format == "onnx":
        return "onnx_int8"
    return profile.export_format


def chosen_format(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig | None:
    """The ``export`` config to use: the one the command line picks (``export=...``), else the hardware
    profile's (:func:`hardware_format`, composed from ``config/export``), else the default (``onnx``)."""
    explicit = any(o.split("=", 1)[0].lstrip("+~") == "export" for o in overrides)
    profile = hardware_profile(cfg)
    if explicit or profile is None:
        return cfg.get("export")
    name = hardware_format(profile)
    if HydraConfig.initialized() and HydraConfig.get().runtime.choices.get("export") == name:
        return cfg.export
    from hydra import compose

    return compose(config_name="export", overrides=[*overrides, f"export={name}"]).export


def export_run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> ExportResult:
    """Export a run's checkpoint (``runid``, ``checkpoint``) in the chosen format into
    ``<run dir>/export/<format>/``: the model, ``manifest.json`` and ``parity.json``; print the parity table.

    The run, its checkpoint and its data load as in ``validate.py`` (:func:`tinyflow.app.loading.load_run`;
    ``data=`` picks other parity data). An existing export is refused unless ``overwrite=true``.

    Args:
        cfg: the composed ``export`` config.
        overrides: the command line's overrides (which say whether ``export=`` was given); default: Hydra's.
    """
    register_resolvers()
    quiet_console()
    if overrides is None:
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    format_cfg = chosen_format(cfg, overrides)
    if not format_cfg:
        raise ConfigError(f"export=none: nothing to export; expected export={'|'.join(EXPORT_FORMATS)}")
    export_format = instantiate(format_cfg)
    parity = instantiate(cfg.parity)
    loaded = load_run(cfg, EXPORT_OVERRIDABLE_GROUPS)
    run, checkpoint = loaded.run, loaded.checkpoint
    print(f"run id: {run.run_id}\ncheckpoint: {checkpoint}\nformat: {export_format.name}")
    saved = load_checkpoint_file(checkpoint, map_location=torch.device("cpu"))
    task = build_task(loaded.config)
    task.load_state_dict(saved["state_dict"])
    datamodule = loaded.datamodule
    datamodule.setup("validate")
    dataset = datamodule.val_set
    source = Source(run.run_id, str(checkpoint), sha256_file(Path(checkpoint)), saved.get("global_step"))
    folder = Path(cfg.output_dir) if cfg.get("output_dir") else run.run_dir / EXPORT_DIR / export_format.name
    start = time.perf_counter()
    result = export_network(
        task.network.network,
        export_format,
        dataset,
        InputSpec.of(datamodule, dataset.sensor_size),
        source,
        folder,
        parity,
        overwrite=bool(cfg.get("overwrite")),
        readout=task.readout(),
    )
    print_report(result, f"{export_format.name} export of run {run.run_id} vs PyTorch")
    print_summary(
        {
            "model": result.model.resolve(),
            "manifest": (result.folder / MANIFEST_NAME).resolve(),
            "parity report": (result.folder / PARITY_NAME).resolve(),
            "wall time": f"{time.perf_counter() - start:.1f} s",
        },
        title=f"export of run {run.run_id}",
    )
    return result


def print_report(result: ExportResult, title: str) -> None:
    Console().print(result.report.table(title))


__all__ = ["EXPORT_FORMATS", "chosen_format", "export_run", "hardware_format"]
