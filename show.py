"""Show what a dataset config holds: ``python show.py data=synthetic`` or ``data=h5dir data.root=DIR``."""

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console

from tinyflow.config import register_resolvers
from tinyflow.summary import recordings_table

register_resolvers()


@hydra.main(version_base="1.3", config_path="config", config_name="show")
def main(cfg: DictConfig) -> None:
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    console = Console()
    console.print(recordings_table(datamodule.train_paths(), "training recordings"))
    console.print(recordings_table(datamodule.val_paths(), "validation recordings"))


if __name__ == "__main__":
    main()
