"""Train a flow network: ``python train.py [model=lif_firenet] [logger=wandb] [-m sweeps]``."""

import hydra
from omegaconf import DictConfig

from tinyflow.config import register_resolvers
from tinyflow.workflows import train

register_resolvers()


@hydra.main(version_base="1.3", config_path="config", config_name="train")
def main(cfg: DictConfig) -> float | None:
    results = train(cfg)
    return results["mean"].get("aee")


if __name__ == "__main__":
    main()
