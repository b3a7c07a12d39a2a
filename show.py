"""Show what a dataset config holds: ``python show.py data=synthetic`` or ``data=h5dir data.root=DIR``.

Prints the recordings' tables, then streams the recordings to Rerun (``rerun.mode=save`` writes an .rrd).
"""

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console

from tinyflow.app.console import recordings_table
from tinyflow.app.resolvers import register_resolvers
from tinyflow.viz.blueprint import dataset_blueprint
from tinyflow.viz.dataset import as_recordings, show_recordings
from tinyflow.viz.sink import RerunSink

register_resolvers()
SPLITS = ("val", "train", "all")


@hydra.main(version_base="1.3", config_path="config", config_name="show")
def main(cfg: DictConfig) -> None:
    if cfg.split not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}; got {cfg.split!r}")
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    console = Console()
    train_paths, val_paths = datamodule.train_paths(), datamodule.val_paths()
    console.print(recordings_table(train_paths, "training recordings"))
    console.print(recordings_table(val_paths, "validation recordings"))
    chosen = {"val": val_paths, "train": train_paths, "all": [*val_paths, *train_paths]}[cfg.split]
    recordings = as_recordings(chosen)[: cfg.max_recordings]
    stereo = [r.name for r in recordings if len(r.cameras) > 1]
    blueprint = dataset_blueprint([r.name for r in recordings], stereo=stereo)
    stream = RerunSink(**cfg.rerun).open("tinyflow-data", None, blueprint)
    logged = show_recordings(stream, recordings, datamodule.val_windowing, cfg.max_windows, cfg.arrow_stride)
    stream.flush()
    stream.disconnect()
    console.print(f"rerun ({cfg.rerun.mode}): {sum(logged.values())} windows of {len(logged)} recordings")


if __name__ == "__main__":
    main()
