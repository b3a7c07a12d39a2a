"""Train a flow network: ``python train.py [model=lif_firenet] [logger=wandb] [-m sweeps]``."""

import hydra
from omegaconf import DictConfig

from tinyflow.config import register_resolvers
from tinyflow.workflows import sweep_objective, train

register_resolvers()


@hydra.main(version_base="1.3", config_path="config", config_name="train")
def main(cfg: DictConfig) -> float:
    """Returns what a hyperparameter search minimises (see :func:`tinyflow.workflows.sweep_objective`)."""
    return sweep_objective(train(cfg))


if __name__ == "__main__":
    main()
