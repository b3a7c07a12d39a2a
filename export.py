"""Export a run: ``python export.py runid=<id> [export=onnx|onnx_int8|nir] [checkpoint=last|best|FILE]``."""

import hydra
from omegaconf import DictConfig

from tinyflow.app.errors import user_errors_as_messages
from tinyflow.app.export import export_run
from tinyflow.app.resolvers import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="config", config_name="export")
def main(cfg: DictConfig) -> None:
    with user_errors_as_messages():
        export_run(cfg)


if __name__ == "__main__":
    main()
