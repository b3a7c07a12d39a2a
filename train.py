"""Train a network: ``python train.py [task=flow] [model=lif_firenet] [logger=wandb] [-m sweeps]``."""

import hydra
from omegaconf import DictConfig

from tinyflow.app.errors import user_errors_as_messages
from tinyflow.app.resolvers import register_resolvers
from tinyflow.app.train import sweep_objective, train

register_resolvers()


@hydra.main(version_base="1.3", config_path="config", config_name="train")
def main(cfg: DictConfig) -> float:
    """Returns what a hyperparameter search minimises (see :func:`tinyflow.app.train.sweep_objective`)."""
    with user_errors_as_messages():
        return sweep_objective(cfg, train(cfg))


if __name__ == "__main__":
    main()
