"""Validate a run: ``python validate.py runid=<id> [checkpoint=last|best|FILE] [data=...] [output=m.json]``."""

import hydra
from omegaconf import DictConfig

from tinyflow.app.errors import user_errors_as_messages
from tinyflow.app.resolvers import register_resolvers
from tinyflow.app.validate import validate

register_resolvers()


@hydra.main(version_base="1.3", config_path="config", config_name="validate")
def main(cfg: DictConfig) -> None:
    with user_errors_as_messages():
        validate(cfg)


if __name__ == "__main__":
    main()
