"""The transfer table of a flow run: ``python scripts/eval_transfer.py runid=<id> [output=transfer.json]``.

AEE, zero-flow AEE and their ratio on the run's own validation data and on every transfer set of
``config/eval_transfer.yaml`` (motion sets of the synthetic camera held apart from training, and the real ECD
rotation slices), printed as a markdown table.
"""

import hydra
from omegaconf import DictConfig

from tinyflow.app.errors import user_errors_as_messages
from tinyflow.app.resolvers import register_resolvers
from tinyflow.app.transfer import transfer_table

register_resolvers()


@hydra.main(version_base="1.3", config_path="../config", config_name="eval_transfer")
def main(cfg: DictConfig) -> None:
    with user_errors_as_messages():
        transfer_table(cfg)


if __name__ == "__main__":
    main()
