"""``python train.py resume=<id> [overrides]``: continue a run from its last checkpoint with its own config.

The rule for overrides given with ``resume=``: a resumed run keeps everything its checkpoint was trained
with. Overrides of ``metrics``, ``trainer.*`` (e.g. ``trainer.max_steps`` to train longer) and ``callbacks.*`` (e.g.
``+callbacks=rerun`` to watch the rest; ``+callbacks.<name>=null`` drops one) apply; any other override (model, data, loss, task, optimiser,
scheduler, seed, ...) is refused with a message naming it. A cosine schedule keeps the length it was
started with (``scheduler.T_max``): ``trainer.max_steps`` beyond it is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf, open_dict

from tinyflow.app.checks import ConfigError
from tinyflow.app.tracking.lookup import mlflow_run_of

RESUMABLE_GROUPS = ("trainer", "callbacks", "metrics")
IGNORED_KEYS = ("resume", "hydra")


def override_key(override: str) -> tuple[str, bool]:
    """The dotted key of a Hydra override (``+a.b=1``, ``++a=x``, ``~a.b``) and whether it deletes it."""
    deletes = override.startswith("~")
    key = override.lstrip("+~").split("=", 1)[0]
    return key, deletes


def apply_resume_overrides(saved: DictConfig, composed: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The saved config of a run with the allowed ``overrides`` applied (values taken from ``composed``,
    the config Hydra built with them); :class:`ConfigError` naming every refused override."""
    keys = [(override, *override_key(override)) for override in overrides]
    refused = [o for o, key, _ in keys if key.split(".")[0] not in (*RESUMABLE_GROUPS, *IGNORED_KEYS)]
    if refused:
        raise ConfigError(
            f"resume={composed.resume} continues the run with its own config; these overrides would change what "
            f"its checkpoint was trained with: {', '.join(refused)}. With resume=, only trainer.* (e.g. "
            "trainer.max_steps) and callbacks.* overrides apply; start a new run for the others"
        )
    merged = saved.copy()
    with open_dict(merged):
        for _, key, deletes in keys:
            if key.split(".")[0] in IGNORED_KEYS:
                continue
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(merged, parent) if parent else merged
            if deletes:
                node.pop(leaf, None)
                continue
            value = OmegaConf.select(composed, key)
            unresolved = OmegaConf.to_container(value, resolve=False) if OmegaConf.is_config(value) else value
            OmegaConf.update(merged, key, unresolved, merge=False, force_add=True)
    _check_schedule_length(merged)
    return merged


def continue_tracker_runs(cfg: DictConfig, run_id: str) -> None:
    """Point the config's MLflow logger at the MLflow run of ``run_id`` so that the resumed run logs into it
    (W&B continues by itself: its run id is the tinyflow run id, with ``resume: allow``)."""
    for entry in (cfg.get("logger") or {}).values():
        if entry is not None and str(entry.get("_target_", "")).endswith("MLFlowLogger"):
            found = mlflow_run_of(run_id, entry.tracking_uri)
            if found is not None:
                with open_dict(entry):
                    entry.run_id = found


def _check_schedule_length(cfg: DictConfig) -> None:
    t_max, max_steps = OmegaConf.select(cfg, "scheduler.T_max"), OmegaConf.select(cfg, "trainer.max_steps")
    if isinstance(t_max, int) and isinstance(max_steps, int) and max_steps > t_max:
        raise ConfigError(
            f"trainer.max_steps={max_steps} continues past the run's learning-rate schedule "
            f"(scheduler.T_max={t_max}, fixed when the run started): resume with trainer.max_steps <= {t_max}, "
            "or start a new run"
        )
