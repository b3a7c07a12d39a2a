"""``python train.py init_from=<run id>``: a new run whose network starts from another run's weights.

Only the network's weights come over (from the source run's ``last.ckpt``): optimiser, schedule, data
position, recurrent state and step count start fresh, and the new run has its own id and folder. The
source must be a float run (``quant=none``) with the same model config as the new run; quantisation-aware
fine-tuning (``quant=qat_int8``) and post-training quantisation (``quant=ptq_int8``) quantise those float
weights.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from tinyflow.app.checkpoints import load_checkpoint_file
from tinyflow.app.checks import ConfigError
from tinyflow.app.runs import Run, find_run

NETWORK_PREFIX = "network.network."  # the pure network in a task's state dict (task.network.network)
FLOAT_TARGET = "tinyflow.quant.NoQuantisation"


def initial_weights(cfg: DictConfig) -> dict[str, Tensor] | None:
    """The network weights of run ``cfg.init_from`` (its last checkpoint), or None without ``init_from``.

    Raises:
        RunNotFoundError: no such run.
        ConfigError: the source run is quantised, or its model config differs from ``cfg.model``.
        CheckpointError: its checkpoint cannot be read safely.
    """
    source_id = cfg.get("init_from")
    if source_id is None:
        return None
    run = find_run(str(source_id), cfg.paths.runs_dir)
    source = run.config()
    _check_float_source(run, source)
    _check_same_model(run, source, cfg)
    path = run.checkpoint("last")
    state = load_checkpoint_file(path, map_location="cpu")["state_dict"]
    weights = {
        key[len(NETWORK_PREFIX) :]: value for key, value in state.items() if key.startswith(NETWORK_PREFIX)
    }
    if not weights:
        raise ConfigError(f"init_from={source_id}: {path} holds no network weights ({NETWORK_PREFIX}*)")
    return weights


def _check_float_source(run: Run, source: DictConfig) -> None:
    target = OmegaConf.select(source, "quant._target_", default=FLOAT_TARGET)
    if target != FLOAT_TARGET:
        raise ConfigError(
            f"init_from={run.run_id}: that run is quantised (quant._target_={target}); init_from takes a "
            "float run (quant=none), whose weights this run quantises"
        )


def _check_same_model(run: Run, source: DictConfig, cfg: DictConfig) -> None:
    wanted = OmegaConf.to_container(cfg.model, resolve=True)
    trained = OmegaConf.to_container(source.model, resolve=True)
    differing = sorted(k for k in set(wanted) | set(trained) if wanted.get(k) != trained.get(k))
    if differing:
        changes = ", ".join(
            f"model.{k}={wanted.get(k)!r} (run {run.run_id}: {trained.get(k)!r})" for k in differing
        )
        raise ConfigError(
            f"init_from={run.run_id}: the network differs from the one that run trained: {changes}; "
            "keep the source run's model (and data.num_bins)"
        )
